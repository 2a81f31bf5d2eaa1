// Workers on other machines (issue 15): pools whose workers run through ssh and through
// srun, on the two-node Slurm cluster and the sshd that tests/remote/cluster.sh starts on
// 127.0.0.1 (its settings come from the file $CREW_REMOTE_ENV). Every case runs through both
// launchers where both apply, and ends with nothing left: no worker or child of one (found
// by a mark in their environment), no Slurm step, no ssh session, no launcher.
#include <crew/process_pool.hpp>

#include "demo_jobs.hpp"
#include "fault_jobs.hpp"
#include "pool_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using crew::errc;
using crew::launcher;
using namespace crew::test;
using namespace std::chrono_literals;

namespace {

// --- the cluster --------------------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The settings cluster.sh wrote (KEY=value lines); SLURM_CONF goes into this process's
// environment for srun, before any pool starts a thread.
struct cluster {
  std::map<std::string, std::string> env;
  cluster() {
    const char* path = std::getenv("CREW_REMOTE_ENV");
    BOOST_TEST_REQUIRE(path != nullptr,
                       "CREW_REMOTE_ENV is not set: run through ctest (the "
                       "remote_cluster fixture starts the cluster)");
    std::ifstream in(path);
    BOOST_TEST_REQUIRE(in.good(), "cannot read " << path << ": did remote_cluster_start run?");
    std::string line;
    while (std::getline(in, line)) {
      const auto eq = line.find('=');
      if (eq != std::string::npos && line[0] != '#') env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    for (const char* key : {"SLURM_CONF", "CREW_REMOTE_DIR", "CREW_SLURM_JOB", "CREW_SSH_CONFIG",
                            "CREW_SSH_HOSTS", "CREW_SSH_DEAD_HOST"})
      BOOST_TEST_REQUIRE(env.count(key) == 1, key << " missing from " << path);
    ::setenv("SLURM_CONF", env["SLURM_CONF"].c_str(), 1);
    BOOST_TEST_REQUIRE(sshd_pid() > 0,
                       "no sshd pid in " << env["CREW_REMOTE_DIR"] << "/run/sshd.pid");
    sessions_before = sessions();
  }
  // sshd's session processes now: the children of the sshd cluster.sh started.
  int sshd_pid() { return std::atoi(read_file(env["CREW_REMOTE_DIR"] + "/run/sshd.pid").c_str()); }
  std::set<int> sessions() {
    std::set<int> out;
    for (int c : children_of(sshd_pid()))
      if (process_alive(c)) out.insert(c);
    return out;
  }
  // Sessions open before the first case (the smoke test's ControlMaster) are not ours.
  std::set<int> sessions_before;
  const std::string& operator[](const std::string& key) { return env[key]; }
};

cluster& the_cluster() {
  static cluster c;
  return c;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

launcher ssh_to(const std::string& host) {
  return {{"ssh", "-T", "-F", the_cluster()["CREW_SSH_CONFIG"], host}, "", {}};
}

launcher srun_on(const std::string& node) {
  return {
      {"srun", "-n1", "-u", "--jobid=" + the_cluster()["CREW_SLURM_JOB"], "--overlap", "-w", node},
      "",
      {}};
}

// Two launchers of one kind, one per host.
struct kind {
  std::string name;  // "ssh" or "srun"
  std::vector<launcher> launchers;
  std::vector<std::string> hosts;  // what their workers' errors name
};

std::vector<kind> both_kinds() {
  auto& c = the_cluster();
  const auto hosts = split(c["CREW_SSH_HOSTS"], ',');
  const std::vector<std::string> nodes{"n1", "n2"};
  BOOST_TEST_REQUIRE(hosts.size() >= 2u);
  return {{"ssh", {ssh_to(hosts[0]), ssh_to(hosts[1])}, {hosts[0], hosts[1]}},
          {"srun", {srun_on(nodes[0]), srun_on(nodes[1])}, nodes}};
}

// --- what is left ----------------------------------------------------------------------------

// A mark unique to one pool, put in its workers' environment (and so in their children's).
std::string new_mark() {
  static std::atomic<int> n{0};
  return "crewtest" + std::to_string(::getpid()) + "x" + std::to_string(++n);
}

// Processes on this machine (the "remote" hosts are this machine) whose environment or
// command line holds `mark`, zombies excluded (PID 1 here does not reap what daemonized).
std::vector<int> processes_marked(const std::string& mark) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int pid = std::stoi(name);
    if (pid == ::getpid() || !process_alive(pid)) continue;
    // The workers and their children carry it in their environment, launchers (and env)
    // on their command line.
    const std::string wanted = "CREW_TEST_MARK=" + mark;
    if (read_file("/proc/" + name + "/environ").find(wanted) != std::string::npos ||
        read_file("/proc/" + name + "/cmdline").find(wanted) != std::string::npos)
      out.push_back(pid);
  }
  return out;
}

// Output of a shell command.
std::string run(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
      out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// The steps of the test allocation that run now ("squeue -s").
std::string slurm_steps() {
  return run("squeue -h -s -j " + the_cluster()["CREW_SLURM_JOB"] + " -o %i 2>&1");
}

// The ssh sessions the cases opened and left.
std::vector<int> ssh_sessions() {
  auto& c = the_cluster();
  std::vector<int> out;
  for (int pid : c.sessions())
    if (c.sessions_before.count(pid) == 0) out.push_back(pid);
  return out;
}

// Waits up to `seconds` for nothing of `mark` to be left — no worker or child of one, no
// Slurm step, no ssh session, no launcher (a child of this process) — and checks it.
void expect_nothing_left(const std::string& mark, double seconds = 10) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<int> marked, sessions;
  std::string steps;
  for (;;) {
    marked = processes_marked(mark);
    steps = slurm_steps();
    sessions = ssh_sessions();
    if ((marked.empty() && steps.empty() && sessions.empty()) ||
        std::chrono::steady_clock::now() > until)
      break;
    std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(marked.empty(), marked.size() << " worker processes left, the first pid "
                                           << (marked.empty() ? 0 : marked[0]));
  BOOST_TEST(steps.empty(), "Slurm steps left: " << steps);
  BOOST_TEST(sessions.empty(), sessions.size() << " ssh sessions left");
  const auto left = wait_for_no_children(seconds);
  BOOST_TEST(left.empty(), left.size() << " launcher processes left");
}

// --- pools -------------------------------------------------------------------------------------

// Worker output lines, gathered (on_output runs on the pool's output thread).
struct lines {
  std::mutex m;
  std::vector<std::string> all;
  std::function<void(const crew::output_line&)> sink() {
    return [this](const crew::output_line& l) {
      std::lock_guard lock(m);
      all.emplace_back(l.text);
    };
  }
  // Waits up to 20 s for a line starting with `prefix` (the `n`th such); its rest, or "".
  std::string wait_for(const std::string& prefix, std::size_t n = 1) {
    for (int i = 0; i < 2000; ++i) {
      {
        std::lock_guard lock(m);
        std::size_t seen = 0;
        for (const auto& l : all)
          if (l.rfind(prefix, 0) == 0 && ++seen == n) return l.substr(prefix.size());
      }
      std::this_thread::sleep_for(10ms);
    }
    return {};
  }
  bool any_contains(const std::string& text) {
    std::lock_guard lock(m);
    return std::any_of(all.begin(), all.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }
};

crew::process_pool_options remote_options(std::vector<launcher> ls, const std::string& mark,
                                          bool fault_worker = false) {
  crew::process_pool_options o;
  o.launchers = std::move(ls);
  o.workers = o.launchers.size();
  o.executable = fault_worker ? CREW_FAULT_WORKER_PATH : CREW_WORKER_PATH;
  o.env = {"CREW_TEST_MARK=" + mark};
  o.heartbeat_interval = 250ms;
  o.heartbeat_timeout = 3000ms;
  o.shutdown_grace = 1000ms;
  return o;
}

int first_pid_line(lines& out, std::size_t n = 1) {
  const auto text = out.wait_for("worker pid ", n);
  BOOST_TEST_REQUIRE(!text.empty(), "no 'worker pid' line from the remote worker");
  return std::stoi(text);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(remote)

BOOST_AUTO_TEST_CASE(the_notebooks_jobs_give_the_same_results_through_ssh_and_srun) {
  for (auto& k : both_kinds()) {
    BOOST_TEST_CONTEXT(k.name) {
      const auto mark = new_mark();
      {
        io_fixture io;
        auto o = remote_options(k.launchers, mark);
        o.args = {"--io-scale", "0.05"};
        crew::process_pool pool(io.ioc.get_executor(), o);
        std::vector<std::future<double>> comp;
        std::vector<std::future<int>> io_jobs;
        for (int i = 0; i < 4; ++i) {
          comp.push_back(pool.submit(crew::demo::long_comp(i)));
          io_jobs.push_back(pool.submit(crew::demo::long_io(i)));
        }
        for (auto& f : comp)
          BOOST_TEST(f.get() == 2236.5678097446853);  // the notebook's, bit for bit
        for (int i = 0; i < 4; ++i)
          BOOST_TEST(io_jobs[i].get() == i * 2);
        // map, in batches of 64 items per frame.
        std::vector<int> in(2000);
        for (int i = 0; i < 2000; ++i)
          in[i] = i * 7 - 3000;
        BOOST_TEST(pool.map(crew::demo::identity, in) == in, boost::test_tools::per_element());
        pool.join();
      }
      expect_nothing_left(mark);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_pool_over_both_slurm_nodes_uses_both) {
  const auto mark = new_mark();
  {
    io_fixture io;
    auto o = remote_options({srun_on("n1"), srun_on("n2")}, mark, true);
    crew::process_pool pool(io.ioc.get_executor(), o);
    // Each task keeps its worker busy 3 s: the second goes to the other worker.
    auto a = pool.submit(node_after(3000));
    auto b = pool.submit(node_after(3000));
    std::set<std::string> nodes{a.get(), b.get()};
    BOOST_TEST((nodes == std::set<std::string>{"n1", "n2"}), "nodes: " << *nodes.begin());
    pool.join();
  }
  expect_nothing_left(mark);
}

BOOST_AUTO_TEST_CASE(a_jobs_stdout_and_16_mib_both_ways_pass_intact) {
  for (auto& k : both_kinds()) {
    BOOST_TEST_CONTEXT(k.name) {
      const auto mark = new_mark();
      {
        io_fixture io;
        lines out;
        auto o = remote_options({k.launchers[0]}, mark);
        o.on_output = out.sink();
        crew::process_pool pool(io.ioc.get_executor(), o);
        // chatty prints lines to stdout, some shaped like frames: they must arrive as output
        // lines (through stderr), never in the frame stream.
        BOOST_TEST(pool.submit(crew::demo::chatty(20)).get() == 20);
        std::string big(16 << 20, '\0');
        for (std::size_t i = 0; i < big.size(); ++i)
          big[i] = static_cast<char>((i * 2654435761u) >> 13);
        BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));
        BOOST_TEST(pool.submit(crew::demo::identity(7)).get() == 7);  // the stream is intact
        pool.join();
        // Every line of the job's stdout arrived as output (the last one tells).
        BOOST_TEST(!out.wait_for("chatty line 19:").empty());
        BOOST_TEST(out.any_contains("chatty wrote 20 lines"));
      }
      expect_nothing_left(mark);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_remote_worker_killed_mid_task_is_a_crash_naming_its_host_and_is_retried) {
  for (auto& k : both_kinds()) {
    BOOST_TEST_CONTEXT(k.name) {
      const auto mark = new_mark();
      {
        io_fixture io;
        lines out;
        auto o = remote_options({k.launchers[0]}, mark, true);
        o.on_output = out.sink();
        crew::process_pool pool(io.ioc.get_executor(), o);
        // Without retries: the crash, with the host in the message.
        auto f = pool.submit(pid_then_sleep(60000));
        const int pid = first_pid_line(out);
        ::kill(pid, SIGKILL);
        auto e = failure_of(std::move(f));
        BOOST_TEST(e.code() == crew::make_error_code(errc::worker_crashed));
        BOOST_TEST(std::string(e.what()).find("on " + k.hosts[0]) != std::string::npos, e.what());
        // With one retry: it runs again on a fresh worker.
        crew::task_options retry;
        retry.retries = 1;
        auto g = pool.submit(pid_then_sleep(1500), retry);
        const int second = first_pid_line(out, 2);
        ::kill(second, SIGKILL);
        const int third = g.get();
        BOOST_TEST(third != second);
        BOOST_TEST(third == first_pid_line(out, 3));
        pool.join();
      }
      expect_nothing_left(mark);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_launcher_killed_ends_its_remote_worker) {
  for (auto& k : both_kinds()) {
    BOOST_TEST_CONTEXT(k.name) {
      const auto mark = new_mark();
      {
        io_fixture io;
        lines out;
        auto o = remote_options({k.launchers[0]}, mark, true);
        o.on_output = out.sink();
        crew::process_pool pool(io.ioc.get_executor(), o);
        auto f = pool.submit(pid_then_sleep(60000));
        const int remote = first_pid_line(out);
        const auto launchers = pool.pids();
        BOOST_TEST_REQUIRE(launchers.size() == 1u);
        ::kill(launchers[0], SIGKILL);
        auto e = failure_of(std::move(f));
        BOOST_TEST(e.code() == crew::make_error_code(errc::worker_crashed));
        // The remote worker, busy in a job that reads nothing, is gone within seconds.
        for (int i = 0; i < 200 && process_alive(remote); ++i)
          std::this_thread::sleep_for(50ms);
        BOOST_TEST(!process_alive(remote));
        BOOST_TEST(pool.submit(crew::test::sleep_ms(1)).get() == 1);  // a fresh worker serves
        pool.join();
      }
      expect_nothing_left(mark);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_stopped_remote_worker_is_lost_after_the_heartbeat_deadline) {
  for (auto& k : both_kinds()) {
    BOOST_TEST_CONTEXT(k.name) {
      const auto mark = new_mark();
      int stopped = 0;
      {
        io_fixture io;
        lines out;
        auto o = remote_options({k.launchers[0]}, mark, true);
        o.on_output = out.sink();
        o.heartbeat_timeout = 2000ms;
        crew::process_pool pool(io.ioc.get_executor(), o);
        auto f = pool.submit(pid_then_sleep(60000));
        stopped = first_pid_line(out);
        ::kill(stopped, SIGSTOP);  // a hung host: no byte, no pong
        auto e = failure_of(std::move(f));
        BOOST_TEST(e.code() == crew::make_error_code(errc::worker_lost));
        BOOST_TEST(std::string(e.what()).find("heartbeat_timeout") != std::string::npos, e.what());
        BOOST_TEST(std::string(e.what()).find("on " + k.hosts[0]) != std::string::npos, e.what());
        // Retried per policy: with a retry the task runs again on a fresh worker.
        crew::task_options retry;
        retry.retries = 1;
        auto g = pool.submit(pid_then_sleep(3000), retry);
        const int again = first_pid_line(out, 2);
        ::kill(again, SIGSTOP);
        BOOST_TEST(g.get() == first_pid_line(out, 3));
        ::kill(again, SIGCONT);
        pool.join();
      }
      // Slurm kills a stopped task; through ssh the worker sees its input closed once it
      // runs again.
      ::kill(stopped, SIGCONT);
      expect_nothing_left(mark);
    }
  }
}

BOOST_AUTO_TEST_CASE(an_unreachable_host_among_two_leaves_the_other_serving) {
  auto& c = the_cluster();
  const auto hosts = split(c["CREW_SSH_HOSTS"], ',');
  const std::vector<kind> kinds{
      {"ssh", {ssh_to(c["CREW_SSH_DEAD_HOST"]), ssh_to(hosts[0])}, {c["CREW_SSH_DEAD_HOST"]}},
      {"srun", {srun_on("n9"), srun_on("n1")}, {"n9"}}};  // n9: no such node
  for (auto& k : kinds) {
    BOOST_TEST_CONTEXT(k.name) {
      const auto mark = new_mark();
      {
        io_fixture io;
        std::mutex m;
        std::vector<std::string> unavailable;
        auto o = remote_options(k.launchers, mark);
        o.max_boot_failures = 2;
        o.on_event = [&](const crew::event& e) {
          if (e.kind != crew::event_kind::worker_unavailable) return;
          std::lock_guard lock(m);
          unavailable.emplace_back(e.message);
        };
        crew::process_pool pool(io.ioc.get_executor(), o);
        std::vector<std::future<int>> fs;
        for (int i = 0; i < 20; ++i)
          fs.push_back(pool.submit(crew::demo::identity(i)));
        for (int i = 0; i < 20; ++i)
          BOOST_TEST(fs[i].get() == i);
        // The dead host's slot is reported, with the launcher's reason and the host's name.
        std::string reported;
        for (int i = 0; i < 400 && reported.empty(); ++i) {
          {
            std::lock_guard lock(m);
            if (!unavailable.empty()) reported = unavailable.front();
          }
          std::this_thread::sleep_for(25ms);
        }
        BOOST_TEST(reported.find(k.hosts[0]) != std::string::npos, reported);
        BOOST_TEST(pool.broken_reason().empty());
        pool.join();
      }
      expect_nothing_left(mark);
    }
  }
}

BOOST_AUTO_TEST_CASE(timeout_cancel_and_shutdown_of_remote_tasks) {
  for (auto& k : both_kinds()) {
    BOOST_TEST_CONTEXT(k.name) {
      const auto mark = new_mark();
      {
        io_fixture io;
        auto o = remote_options(k.launchers, mark, true);
        o.cancel_grace = 500ms;
        crew::process_pool pool(io.ioc.get_executor(), o);
        crew::task_options deadline;
        deadline.timeout = 500ms;
        auto late = pool.submit(pid_then_sleep(60000), deadline);
        BOOST_TEST(failure_of(std::move(late)).code() == crew::make_error_code(errc::task_timeout));
        std::stop_source stop;
        crew::task_options cancellable;
        cancellable.stop = stop.get_token();
        auto cancelled = pool.submit(pid_then_sleep(60000), cancellable);
        std::this_thread::sleep_for(300ms);
        stop.request_stop();
        BOOST_TEST(failure_of(std::move(cancelled)).code() ==
                   crew::make_error_code(errc::cancelled));
        BOOST_TEST(pool.submit(crew::test::sleep_ms(1)).get() == 1);
        // Shutdown with both workers busy: every task resolves, nothing is left.
        auto a = pool.submit(pid_then_sleep(60000));
        auto b = pool.submit(pid_then_sleep(60000));
        std::this_thread::sleep_for(500ms);
        pool.shutdown(200ms);
        for (auto* f : {&a, &b}) {
          const auto code = failure_of(std::move(*f)).code();
          BOOST_TEST((code == crew::make_error_code(errc::cancelled) ||
                      code == crew::make_error_code(errc::shutting_down)));
        }
      }
      expect_nothing_left(mark);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_coordinator_killed_leaves_nothing_on_either_host) {
  // The coordinator is `crew run` in a process of its own, SIGKILLed while four remote
  // workers (two per host) run long tasks.
  const std::string input = std::filesystem::temp_directory_path() /
                            ("crew-remote-" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream f(input);
    for (int i = 0; i < 4; ++i)
      f << "[600000]\n";
  }
  for (auto& k : both_kinds()) {
    BOOST_TEST_CONTEXT(k.name) {
      const auto mark = new_mark();
      std::vector<std::string> args{CREW_CLI_PATH, "run",
                                    "--worker",    CREW_FAULT_WORKER_PATH,
                                    "--job",       "pid_then_sleep",
                                    "--input",     input,
                                    "--workers",   "4",
                                    "--env",       "CREW_TEST_MARK=" + mark,
                                    "--quiet"};
      for (const auto& l : k.launchers) {
        std::string text;
        for (const auto& w : l.command)
          text += (text.empty() ? "" : " ") + w;
        args.push_back("--launcher");
        args.push_back(text);
      }
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
      pid_t crew = 0;
      BOOST_TEST_REQUIRE(::posix_spawn(&crew, argv[0], &fa, nullptr, argv.data(), environ) == 0);
      posix_spawn_file_actions_destroy(&fa);
      // Four workers running their tasks (the workers themselves, not `env` or a launcher).
      std::size_t running = 0;
      for (int i = 0; i < 600 && running < 4; ++i) {
        std::this_thread::sleep_for(50ms);
        running = 0;
        for (int pid : processes_marked(mark))
          if (read_file("/proc/" + std::to_string(pid) + "/comm").rfind("crew-fault", 0) == 0)
            ++running;
      }
      BOOST_TEST_REQUIRE(running >= 4u, "only " << running << " remote workers started");
      ::kill(crew, SIGKILL);
      int status = 0;
      ::waitpid(crew, &status, 0);
      expect_nothing_left(mark, 15);
    }
  }
  std::filesystem::remove(input);
}

// --- connect-back: one srun brings many workers ---------------------------------------------

// `srun -N2 -n8` in the test allocation, as listen_options::launch_once: eight workers, four
// per node, that connect back to the pool on 127.0.0.1.
std::vector<std::string> srun_many(int nodes, int tasks) {
  return {"srun",
          "-N" + std::to_string(nodes),
          "-n" + std::to_string(tasks),
          "--input=none",
          "--jobid=" + the_cluster()["CREW_SLURM_JOB"],
          "--overlap"};
}

BOOST_AUTO_TEST_CASE(one_srun_brings_eight_workers_that_connect_back_from_both_nodes) {
  const auto mark = new_mark();
  {
    io_fixture io;
    std::mutex m;
    std::vector<std::string> hosts;
    crew::process_pool_options o;
    o.workers = 8;
    o.executable = CREW_WORKER_PATH;
    o.args = {"--io-scale", "0.05"};
    o.env = {"CREW_TEST_MARK=" + mark};
    o.listen.address = "127.0.0.1";
    o.listen.launch_once = srun_many(2, 8);
    o.heartbeat_interval = 250ms;
    o.heartbeat_timeout = 3000ms;
    o.shutdown_grace = 1000ms;
    o.on_event = [&](const crew::event& e) {
      if (e.kind != crew::event_kind::worker_spawned) return;
      std::lock_guard lock(m);
      hosts.emplace_back(e.host);
    };
    crew::process_pool pool(io.ioc.get_executor(), o);
    std::vector<std::future<double>> comp;
    std::vector<std::future<int>> io_jobs;
    for (int i = 0; i < 8; ++i) {
      comp.push_back(pool.submit(crew::demo::long_comp(i)));
      io_jobs.push_back(pool.submit(crew::demo::long_io(i)));
    }
    for (auto& f : comp)
      BOOST_TEST(f.get() == 2236.5678097446853);  // the notebook's, bit for bit
    for (int i = 0; i < 8; ++i)
      BOOST_TEST(io_jobs[i].get() == i * 2);
    std::vector<int> in(2000);
    for (int i = 0; i < 2000; ++i)
      in[i] = i * 7 - 3000;
    BOOST_TEST(pool.map(crew::demo::identity, in) == in, boost::test_tools::per_element());
    pool.join();
    BOOST_TEST(pool.peers_refused() == 0u);
    std::lock_guard lock(m);
    BOOST_TEST(hosts.size() == 8u);
    BOOST_TEST(std::count(hosts.begin(), hosts.end(), "n1") >= 1);
    BOOST_TEST(std::count(hosts.begin(), hosts.end(), "n2") >= 1);
    BOOST_TEST(std::count(hosts.begin(), hosts.end(), "n1") +
                   std::count(hosts.begin(), hosts.end(), "n2") ==
               8);
  }
  // The pool's end ended every worker, and so srun and its step.
  expect_nothing_left(mark);
}

BOOST_AUTO_TEST_CASE(a_coordinator_killed_ends_every_connected_worker_and_the_slurm_step) {
  // `crew run --listen` with its eight workers from one `srun -N2 -n8`, SIGKILLed while they
  // run long tasks: each worker's connection ends, each ends itself and its children, srun
  // ends with its last task, and so does its step.
  const std::string input = std::filesystem::temp_directory_path() /
                            ("crew-connect-" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream f(input);
    for (int i = 0; i < 8; ++i)
      f << "[600000]\n";
  }
  const auto mark = new_mark();
  std::string once;
  for (const auto& w : srun_many(2, 8))
    once += (once.empty() ? "" : " ") + w;
  std::vector<std::string> args{CREW_CLI_PATH, "run",
                                "--worker",    CREW_FAULT_WORKER_PATH,
                                "--job",       "pid_then_sleep",
                                "--input",     input,
                                "--workers",   "8",
                                "--listen",    "127.0.0.1:0",
                                "--launcher-once", once,
                                "--env",       "CREW_TEST_MARK=" + mark};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // Its output: each task prints "worker pid N" as it starts, on a worker that connected.
  const std::string log = input + ".log";
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t crew = 0;
  BOOST_TEST_REQUIRE(::posix_spawn(&crew, argv[0], &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  struct reaper {  // a failed check below must not leave crew run behind
    pid_t& pid;
    ~reaper() {
      if (pid <= 0) return;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{crew};
  // Eight workers connected (a worker still trying to connect when its pool dies retries
  // until CREW_CONNECT_TIMEOUT_MS: not what this case is about): eight established TCP
  // connections to the port crew run announced, counted from the workers' side.
  auto connected = [&] {
    const std::string text = read_file(log);
    const auto at = text.find("listening on 127.0.0.1:");
    if (at == std::string::npos) return 0;
    const int port = std::atoi(text.c_str() + at + std::strlen("listening on 127.0.0.1:"));
    char want[16];
    std::snprintf(want, sizeof want, ":%04X 01", port);  // rem_address's port, state ESTABLISHED
    std::istringstream tcp(read_file("/proc/net/tcp"));
    std::string line;
    int n = 0;
    while (std::getline(tcp, line))
      if (line.size() > 40 && line.find(want, 20) != std::string::npos) ++n;
    return n;
  };
  int workers = 0;
  for (int i = 0; i < 1200 && workers < 8; ++i) {
    std::this_thread::sleep_for(50ms);
    workers = connected();
  }
  BOOST_TEST_REQUIRE(workers >= 8, "only " << workers << " workers connected; crew run said:\n"
                                           << read_file(log));
  std::this_thread::sleep_for(500ms);  // their handshakes done
  BOOST_TEST(!slurm_steps().empty());
  ::kill(crew, SIGKILL);
  int status = 0;
  ::waitpid(crew, &status, 0);
  crew = 0;
  expect_nothing_left(mark, 15);
  std::filesystem::remove(input);
  std::filesystem::remove(log);
}

BOOST_AUTO_TEST_SUITE_END()
