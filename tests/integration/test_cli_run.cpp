// `crew run` for real work (issue 13): a user's own worker over JSON-lines input, results
// streamed with flat memory, nothing lost on a kill, checked writes, bounds on every
// option, signals drained in every mode.
#include "cli_support.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace json = boost::json;
using namespace cli_test;

namespace {

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// Every line of `text` parsed as JSON (the test fails on one that does not parse).
std::vector<json::object> json_lines(const std::string& text) {
  std::vector<json::object> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    BOOST_TEST_REQUIRE(!ec, "not JSON: " << line);
    out.push_back(v.as_object());
  }
  return out;
}

// A worker written outside the project: the Python example's runtime with jobs of its own.
std::filesystem::path write_user_worker(const std::filesystem::path& dir) {
  const auto path = dir / "my_worker.py";
  const std::filesystem::path examples =
      std::filesystem::path(CREW_PYTHON_WORKER_PATH).parent_path();
  write_file(path, "import os, sys\nsys.path.insert(0, " +
                       json::serialize(json::string(examples.string())) +
                       ")\nimport python_worker as pw\n"
                       "\n@pw.job('describe', 'str(str,i32,f64,vec<i64>,pair<bool,str>)')\n"
                       "def describe(name, n, x, values, flag):\n"
                       "    return f'{name}:{n}:{x}:{sum(values)}:{flag[0]}/{flag[1]}'\n"
                       "\n@pw.job('stats', 'pair<i64,f64>(vec<f64>)')\n"
                       "def stats(values):\n"
                       "    return (len(values), sum(values))\n"
                       "\n@pw.job('garble', 'i32(i32)')\n"
                       "def garble(code):\n"
                       "    os.write(2, b'bad bytes \\xff\\xfe\\x80 end\\n')\n"
                       "    os._exit(code)\n"
                       "\nif __name__ == '__main__':\n    pw.main()\n");
  return path;
}

std::string python_worker_flags(const std::filesystem::path& script) {
  return "--worker " CREW_PYTHON3 " --worker-arg " + script.string();
}

// Starts `crew <args>` with stdout to `out` and stderr to `err`; the child's pid.
pid_t start_crew(const std::vector<std::string>& args, const std::filesystem::path& out,
                 const std::filesystem::path& err) {
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv{const_cast<char*>(CREW_CLI_PATH)};
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(CREW_CLI_PATH, argv.data());
    ::_exit(127);
  }
  return pid;
}

// Runs `crew run <args>` with stdout/stderr in files; the child's peak RSS in KiB.
struct measured {
  int exit_code = -1;
  long max_rss_kib = 0;
};
measured run_measured(const std::vector<std::string>& args, const std::filesystem::path& out) {
  const pid_t pid = start_crew(args, out, "/dev/null");
  int status = 0;
  rusage ru{};
  ::wait4(pid, &status, 0, &ru);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ru.ru_maxrss};
}

// Starts `crew run <args>` (stdout, stderr to files), waits until stderr shows `ready`
// `times` times, sends `sig`, and returns the result.
run_result signal_run(const std::vector<std::string>& args, const std::string& ready,
                      std::size_t times, int sig, const std::filesystem::path& dir) {
  const auto out = dir / "out", err = dir / "err";
  // Not the last run's: ready means this run's lines.
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  const pid_t pid = start_crew(args, out, err);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (count(slurp(err), ready) < times && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  BOOST_TEST(count(slurp(err), ready) >= times, slurp(err));
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  run_result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_run, *boost::unit_test::timeout(300))

BOOST_AUTO_TEST_CASE(
    a_users_python_worker_runs_json_lines_of_mixed_types_and_a_bad_line_fails_alone) {
  const auto dir = scratch("user-worker");
  const auto worker = write_user_worker(dir);
  const std::string flags = python_worker_flags(worker);

  auto jobs = crew("jobs " + flags);
  BOOST_TEST(jobs.exit_code == 0, jobs.err);
  BOOST_TEST(contains(jobs.out, "describe  str(str,i32,f64,vec<i64>,pair<bool,str>)"), jobs.out);
  BOOST_TEST(contains(jobs.out, "stats  pair<i64,f64>(vec<f64>)"));

  write_file(dir / "tasks.jsonl", R"(["a", 1, 0.5, [1, 2, 3], [true, "x"]])"
                                  "\n\n"
                                  R"(["b", 2, 2, [], [false, "yé"]])"
                                  "\n"
                                  R"(["c", 3000000000, 1.0, [1], [true, "z"]])"
                                  "\n"
                                  R"(["d", 4, 1.5, [10, -10], [true, "w"]])"
                                  "\n"
                                  "not json\n");
  auto r = crew("run " + flags + " --job describe --input " + (dir / "tasks.jsonl").string() +
                " --workers 2 --jsonl --keep-order");
  BOOST_TEST(r.exit_code == 1, r.err);  // some tasks failed
  auto lines = json_lines(r.out);
  BOOST_REQUIRE_EQUAL(lines.size(), 5u);
  BOOST_TEST(lines[0].at("input").as_int64() == 1);
  BOOST_TEST(lines[0].at("value").as_string() == "a:1:0.5:6:True/x");
  BOOST_TEST(lines[1].at("input").as_int64() == 3);  // line 2 is blank
  BOOST_TEST(lines[1].at("value").as_string() == "b:2:2.0:0:False/yé");
  BOOST_TEST(lines[2].at("outcome").as_string() == "failed");
  BOOST_TEST(contains(std::string(lines[2].at("message").as_string()), "line 4"));
  BOOST_TEST(contains(std::string(lines[2].at("message").as_string()), "does not fit i32"));
  BOOST_TEST(lines[3].at("value").as_string() == "d:4:1.5:0:True/w");
  BOOST_TEST(lines[4].at("outcome").as_string() == "failed");
  BOOST_TEST(contains(std::string(lines[4].at("message").as_string()), "line 6: not JSON"));
  BOOST_TEST(lines[4].at("args").is_null());  // a record whatever the line held

  // Standard input, text output; a pair comes back as a tuple.
  write_file(dir / "stats.jsonl", "[[1.5, 2.5]]\n[[]]\n");
  r = crew("run " + flags + " --job stats --keep-order < " + (dir / "stats.jsonl").string());
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.out == "stats([1.5, 2.5]) = (2, 4.0)\nstats([]) = (0, 0.0)\n", r.out);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_workers_non_utf8_stderr_keeps_every_json_document_valid) {
  const auto dir = scratch("utf8");
  const auto worker = write_user_worker(dir);
  write_file(dir / "in.jsonl", "[3]\n");
  const auto log = dir / "log.jsonl";
  auto r = crew("run " + python_worker_flags(worker) + " --job garble --input " +
                (dir / "in.jsonl").string() + " --jsonl --joblog " + log.string());
  BOOST_TEST(r.exit_code == 1, r.err);
  const auto lines = json_lines(r.out);  // parses, though the worker wrote \xff\xfe\x80
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  BOOST_TEST(lines[0].at("error").as_string() == "worker_crashed");
  BOOST_TEST(
      contains(std::string(lines[0].at("message").as_string()), "bad bytes \\xff\\xfe\\x80"));
  BOOST_TEST(json_lines(slurp(log)).size() == 1u);
  // Python, the strictest reader at hand, reads the log too.
  BOOST_TEST(crew_shell(CREW_PYTHON3
                        " -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]; "
                        "print(\"ok\")' " +
                        log.string()) == "ok\n");
  // And --retry-failed reads it back.
  r = crew("run " + python_worker_flags(worker) + " --job garble --retry-failed " + log.string() +
           " --json");
  BOOST_TEST(json::parse(r.out).at("tasks").as_int64() == 1);
  std::filesystem::remove_all(dir);
}

// Issue 14: --sandbox changes nothing a job computes; a worker's escape sequences reach the
// terminal as text; the sandbox's flags are checked before anything starts.
BOOST_AUTO_TEST_CASE(sandboxed_runs_are_exact_and_worker_escapes_are_shown_not_obeyed) {
  auto plain = crew("run --job long_comp --range 0:3 --keep-order --jsonl --no-progress");
  auto boxed = crew(
      "run --sandbox --job long_comp --range 0:3 --keep-order "
      "--jsonl --no-progress");
  BOOST_TEST(boxed.exit_code == 0, boxed.err);
  const auto a = json_lines(plain.out), b = json_lines(boxed.out);
  BOOST_REQUIRE_EQUAL(b.size(), 3u);
  BOOST_REQUIRE_EQUAL(a.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i)
    BOOST_TEST(json::serialize(a[i].at("value")) == json::serialize(b[i].at("value")));

  const auto dir = scratch("escapes");
  write_file(dir / "in.jsonl", "[3]\n");
  auto r = crew(std::string("run --worker ") + CREW_HOSTILE_WORKER_PATH +
                " --worker-arg serve --job spew --input " + (dir / "in.jsonl").string() +
                " --no-progress");
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(contains(r.out, "line 2 \\x1b[31mred"), r.out);
  BOOST_TEST(r.out.find('\x1b') == std::string::npos);
  BOOST_TEST(r.out.find('\a') == std::string::npos);
  std::filesystem::remove_all(dir);

  r = crew("run --sandbox-network --job long_comp --range 0:1");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "go with --sandbox"), r.err);
  r = crew("run --sandbox --sandbox-write /nonexistent/crew-x --job long_comp --range 0:1");
  BOOST_TEST(r.exit_code == 4);
  BOOST_TEST(contains(r.err, "'/nonexistent/crew-x' does not exist"), r.err);
  r = crew("run --env-allow 'A=B' --job long_comp --range 0:1");
  BOOST_TEST(r.exit_code == 2);
}

// Issue 15: --launcher runs each worker through a command (here `env`, locally: the remote
// cases are in tests/remote/), with the same results; local-only options are refused, and a
// launcher that cannot start is reported with its name.
BOOST_AUTO_TEST_CASE(launched_workers_give_the_same_results_and_local_only_options_are_refused) {
  auto plain = crew("run --job long_comp --range 0:4 --keep-order --jsonl --no-progress");
  auto launched = crew(
      "run --job long_comp --range 0:4 --keep-order --jsonl --no-progress "
      "--launcher env --launcher 'env -u NOTHING' --heartbeat-timeout 4000");
  BOOST_TEST(launched.exit_code == 0, launched.err);
  const auto a = json_lines(plain.out), b = json_lines(launched.out);
  BOOST_REQUIRE_EQUAL(b.size(), 4u);
  BOOST_REQUIRE_EQUAL(a.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i)
    BOOST_TEST(json::serialize(a[i].at("value")) == json::serialize(b[i].at("value")));

  const std::pair<const char*, const char*> refused[] = {
      {"--launcher env --sandbox", "does not go with --launcher"},
      {"--launcher env --transport shm", "does not go with --launcher"},
      {"--launcher env --mode threads", "--launcher runs worker processes"},
      {"--launcher \"ssh -T 'host\"", "unterminated ' quote"},
      {"--launcher ' '", "--launcher needs a command"},
      {"--remote-worker /x", "goes with --launcher"},
      {"--launcher env --heartbeat-timeout 50", "--heartbeat-timeout must be an integer from 100"},
  };
  for (const auto& [args, message] : refused) {
    auto r = crew(std::string("run --job identity --range 0:1 ") + args);
    BOOST_TEST(r.exit_code == 2, args);
    BOOST_TEST(contains(r.err, message), args << ": " << r.err);
  }
  // A launcher that does not exist: every worker's boot fails, naming it.
  auto r = crew("run --job identity --range 0:1 --launcher crew-no-such-launcher");
  BOOST_TEST(r.exit_code == 4, r.err);
  BOOST_TEST(contains(r.err, "cannot start launcher 'crew-no-such-launcher'"), r.err);
}

// Connect-back: --listen waits for --workers N workers that connect to crew (here two local
// crew-workers started by one --launcher-once command, which gets the worker's path as $0),
// with the same results as local workers and each task's host in its record, its job-log
// line and the timeline; the secret appears nowhere.
BOOST_AUTO_TEST_CASE(listening_for_workers_gives_the_same_results_with_their_hosts) {
  const auto dir = scratch("listen");
  const std::string two_workers = R"(--launcher-once 'sh -c "\"$0\" & \"$0\"; wait"')";
  auto plain = crew("run --job long_comp --range 0:6 --keep-order --json --no-progress");
  auto listened = crew(
      "run --job long_comp --range 0:6 --keep-order --json --no-progress "
      "--listen 127.0.0.1:0 --workers 2 " +
      two_workers);
  BOOST_TEST_REQUIRE(plain.exit_code == 0, plain.err);
  BOOST_TEST_REQUIRE(listened.exit_code == 0, listened.err);
  BOOST_TEST(contains(listened.err, "crew: listening on 127.0.0.1:"), listened.err);
  BOOST_TEST(!contains(listened.err, "listening on 127.0.0.1:0 "), listened.err);  // the real port
  BOOST_TEST(contains(listened.err, " for 2 workers\n"), listened.err);
  BOOST_TEST(!contains(listened.err, "refused"), listened.err);
  const auto a = json::parse(plain.out).as_object(), b = json::parse(listened.out).as_object();
  BOOST_TEST(!a.contains("peers_refused"));
  BOOST_TEST(b.at("peers_refused") == 0);
  const auto& ra = a.at("results").as_array();
  const auto& rb = b.at("results").as_array();
  BOOST_REQUIRE_EQUAL(ra.size(), 6u);
  BOOST_REQUIRE_EQUAL(rb.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    const auto& x = ra[i].as_object();
    const auto& y = rb[i].as_object();
    BOOST_TEST(json::serialize(x.at("value")) == json::serialize(y.at("value")));
    BOOST_TEST(json::serialize(x.at("args")) == json::serialize(y.at("args")));
    BOOST_TEST(!x.contains("host"));  // local workers: no host, the record as it was
    BOOST_TEST_REQUIRE(y.contains("host"), json::serialize(y));
    BOOST_TEST(!y.at("host").as_string().empty());
    BOOST_TEST(y.at("worker").as_int64() < 2);
  }

  // A secret of our own: in no output, log or picture; the job log and the timeline say
  // where each task ran.
  const std::string secret = "crew-test-secret-5f0c2a9e41";
  const auto log = dir / "log.jsonl", svg = dir / "t.svg";
  auto logged = crew(
      "run --job long_comp --range 0:4 --jsonl --no-progress --listen "
      "127.0.0.1:0 --workers 2 --joblog " +
          log.string() + " --timeline " + svg.string() + " " + two_workers,
      "env CREW_SECRET=" + secret);
  BOOST_TEST_REQUIRE(logged.exit_code == 0, logged.err);
  const auto records = joblog_lines(log);
  BOOST_REQUIRE_EQUAL(records.size(), 4u);
  std::set<std::string> hosts;
  for (const auto& r : records) {
    BOOST_TEST_REQUIRE(r.contains("host"), json::serialize(r));
    hosts.insert(std::string(r.at("host").as_string()));
  }
  BOOST_TEST(hosts.size() == 1u);  // both workers run here
  const std::string picture = slurp(svg);
  BOOST_TEST(contains(picture, "<title>" + *hosts.begin() + "</title>"), picture);
  for (const auto& text : {logged.out, logged.err, slurp(log), picture})
    BOOST_TEST(!contains(text, secret));
}

// A worker that proves a wrong secret is refused, counted and named in the summary; the
// pool goes on with the next one. What cannot work is refused before anything starts.
BOOST_AUTO_TEST_CASE(listening_refuses_wrong_secrets_and_what_cannot_work) {
  const std::string secret = "crew-test-secret-77d1e3b0aa";
  auto r = crew(
      "run --job identity --range 0:3 --json --no-progress --listen 127.0.0.1:0 --workers 1 "
      R"(--launcher-once 'sh -c "CREW_SECRET=not-the-secret-0123456789 \"$0\"; \"$0\""')",
      "env CREW_SECRET=" + secret);
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(contains(r.err, "crew: 1 connection refused (the last: 127.0.0.1:"), r.err);
  BOOST_TEST(contains(r.err, "wrong secret"), r.err);
  BOOST_TEST(!contains(r.err + r.out, secret));
  const auto doc = json::parse(r.out).as_object();
  BOOST_TEST(doc.at("peers_refused") == 1);
  BOOST_TEST(doc.at("results").as_array().size() == 3u);

  const auto dir = scratch("listen-refused");
  const auto open_file = dir / "secret";
  write_file(open_file, secret + "\n");
  std::filesystem::permissions(open_file, std::filesystem::perms(0644));
  const std::string listen = "--listen 127.0.0.1:0 ";
  const std::pair<std::string, std::string> refused[] = {
      {listen + "--launcher-once true", "--listen needs --workers N"},
      {listen + "--workers 0 --launcher-once true", "--listen needs --workers N"},
      {listen + "--workers 2 --launcher env", "--listen and --launcher do not go together"},
      {listen + "--workers 2",
       "--listen without --launcher-once needs a secret the workers also have: CREW_SECRET or "
       "--secret-file"},
      {listen + "--workers 2 --secret-file " + open_file.string(),
       "the secret file " + open_file.string() + " is readable or writable by others"},
      {listen + "--workers 2 --secret-file " + (dir / "none").string(),
       "cannot open the secret file " + (dir / "none").string()},
      {listen + "--workers 1 --launcher-once true --sandbox", "does not go with --listen"},
      {listen + "--workers 1 --launcher-once true --transport shm", "does not go with --listen"},
      {listen + "--workers 1 --launcher-once true --mode threads", "not --mode threads"},
      {listen + "--workers 1 --launcher-once ' '", "--launcher-once needs a command"},
      {"--listen ::1:0 --workers 1 --launcher-once true", "an IPv6 address goes in brackets"},
      {"--listen 127.0.0.1 --workers 1 --launcher-once true", "--listen takes ADDR:PORT"},
      {"--listen 127.0.0.1:65536 --workers 1 --launcher-once true", "--listen takes ADDR:PORT"},
      {"--tls", "go with --listen"},
      {"--launcher-once true", "go with --listen"},
      {listen + "--workers 1 --launcher-once true --connect-timeout 5",
       "--connect-timeout must be an integer from 100"},
  };
  for (const auto& [args, message] : refused) {
    auto u = crew("run --job identity --range 0:1 " + args, "env -u CREW_SECRET");
    BOOST_TEST(u.exit_code == 2, args << ": " << u.err);
    BOOST_TEST(contains(u.err, message), args << ": " << u.err);
  }
  // A secret the pool refuses (too short) is a usage error too, named by its source.
  auto short_secret =
      crew("run --job identity --range 0:1 " + listen + "--workers 1", "env CREW_SECRET=short");
  BOOST_TEST(short_secret.exit_code == 2, short_secret.err);
  BOOST_TEST(contains(short_secret.err, "CREW_SECRET: the secret is 5 bytes"), short_secret.err);
  BOOST_TEST(!contains(short_secret.err, "listening on"), short_secret.err);

  // The worker side never takes a secret on its command line (ps shows it to everyone).
  const int status = std::system(
      (std::string(CREW_WORKER_PATH) + " --connect 127.0.0.1:9 --secret x 2>/dev/null").c_str());
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 64), "status " << status);
}

// A signal while crew waits for its first worker stops the pool and --launcher-once's
// command with it, and exits with 128 + the signal.
BOOST_AUTO_TEST_CASE(a_signal_while_waiting_for_workers_stops_the_launcher_once_command) {
  const auto dir = scratch("listen-signal");
  const auto pid_file = dir / "pid";
  auto r = signal_run(
      {"run", "--job", "identity", "--range", "0:3", "--no-progress", "--listen", "127.0.0.1:0",
       "--workers", "1", "--launcher-once",
       "sh -c 'echo $$ > " + pid_file.string() + "; echo launcher-once-up >&2; exec sleep 60'"},
      "] launcher-once-up", 1, SIGTERM, dir);
  BOOST_TEST(r.exit_code == 128 + SIGTERM, r.err);
  BOOST_TEST(contains(r.err, "crew: listening on 127.0.0.1:"), r.err);
  BOOST_TEST(contains(r.err, "stopped while waiting for the first worker"), r.err);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  const int pid = std::atoi(slurp(pid_file).c_str());
  BOOST_TEST_REQUIRE(pid > 0);
  while (alive(pid) && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  BOOST_TEST(!alive(pid), "the --launcher-once command (pid " << pid << ") outlived crew");
}

BOOST_AUTO_TEST_CASE(a_million_streamed_tasks_keep_memory_flat) {
  const auto dir = scratch("flat");
  // The bound: what a run needs at all (workers, buffers), far below the ~1.7 KB per task
  // (1.7 GB here) that holding every result costs.
  constexpr long bound_kib = 96 * 1024;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Under a sanitizer memory figures mean nothing (shadow memory, quarantine) and a million
  // tasks take minutes: what is checked here is that every result arrives.
  const std::string tasks = "0:100000";
  constexpr std::size_t expected = 100000;
  constexpr bool check_rss = false;
#else
  const std::string tasks = "0:1000000";
  constexpr std::size_t expected = 1000000;
  constexpr bool check_rss = true;
#endif
  for (const char* format : {"--format=text", "--jsonl"}) {
    const auto m = run_measured(
        {"run", "--job", "identity", "--range", tasks, "--workers", "2", format, "--keep-order"},
        dir / "out");
    BOOST_TEST(m.exit_code == 0, format);
    if (check_rss)
      BOOST_TEST(m.max_rss_kib < bound_kib, format << ": peak RSS " << m.max_rss_kib << " KiB");
    // Every result is there, in order.
    std::ifstream in(dir / "out");
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line))
      ++n;
    BOOST_TEST(n == expected);
  }
  std::filesystem::remove_all(dir);
}

// --json holds every record to the end: more tasks than the run's window of unwritten
// tasks (65536) must still finish.
BOOST_AUTO_TEST_CASE(a_json_document_of_more_tasks_than_the_window_completes) {
  auto r = crew("run --job identity --range 0:70000 --json --keep-order --quiet");
  BOOST_TEST(r.exit_code == 0, r.err);
  const auto doc = json::parse(r.out).as_object();
  const auto& results = doc.at("results").as_array();
  BOOST_REQUIRE_EQUAL(results.size(), 70000u);
  BOOST_TEST(results[69999].at("value").as_int64() == 69999);
}

BOOST_AUTO_TEST_CASE(a_run_killed_midway_and_resumed_reports_every_value_exactly_once) {
  const auto dir = scratch("kill-resume");
  const auto log = dir / "log.jsonl", input = dir / "in.jsonl";
  std::string text;
  for (int i = 0; i < 12; ++i)
    text += "[" + std::to_string(100 + i) + "]\n";
  write_file(input, text);
  // 12 tasks of 0.1 s on 2 workers, SIGKILLed once 3 are in the log (no drain).
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(CREW_CLI_PATH, CREW_CLI_PATH, "run", "--job", "long_io", "--input", input.c_str(),
            "--workers", "2", "--io-scale", "0.05", "--joblog", log.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (joblog_lines(log).size() < 3 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  const auto before = joblog_lines(log).size();
  BOOST_REQUIRE_GE(before, 3u);
  BOOST_REQUIRE_LT(before, 12u);

  auto r = crew("run --job long_io --input " + input.string() +
                " --workers 2 --io-scale 0.01 --resume " + log.string() + " --jsonl");
  BOOST_TEST(r.exit_code == 0, r.err);
  std::map<std::int64_t, int> seen;  // input line -> times reported
  for (const auto& l : json_lines(r.out)) {
    const auto line = l.at("input").as_int64();
    ++seen[line];
    BOOST_TEST(l.at("value").as_int64() == 2 * (99 + line));  // long_io(i) returns 2i
  }
  BOOST_TEST(seen.size() == 12u);
  for (const auto& [line, n] : seen)
    BOOST_TEST(n == 1, "line " << line << " reported " << n << " times");
  // Nothing ran twice: the log holds each task once.
  std::map<std::int64_t, int> logged;
  for (const auto& l : joblog_lines(log))
    ++logged[l.at("input").as_int64()];
  BOOST_TEST(logged.size() == 12u);
  for (const auto& [line, n] : logged)
    BOOST_TEST(n == 1, "line " << line << " logged " << n << " times");
  BOOST_TEST(contains(r.err, std::to_string(before) + " done before"), r.err);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_torn_last_line_is_terminated_before_new_records) {
  const auto dir = scratch("torn");
  const auto log = dir / "log.jsonl";
  auto r = crew("run --job identity --range 0:2 --joblog " + log.string());
  BOOST_TEST(r.exit_code == 0);
  {  // a run killed in the middle of its third record
    std::ofstream out(log, std::ios::app | std::ios::binary);
    out << R"({"id":9,"job":"identity","input":null,"args":[2],"ar)";
  }
  r = crew("run --job identity --range 0:4 --resume " + log.string());
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(contains(r.err, "1 line(s)"), r.err);  // the torn one, ignored
  // Every line but the torn one is a whole record; tasks 2 and 3 are now done.
  std::size_t records = 0, torn = 0;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    boost::system::error_code ec;
    json::parse(line, ec);
    (ec ? torn : records) += 1;
  }
  BOOST_TEST(records == 4u);
  BOOST_TEST(torn == 1u);
  r = crew("run --job identity --range 0:4 --resume " + log.string() + " --json");
  BOOST_TEST(json::parse(r.out).at("tasks").as_int64() == 0);  // nothing runs again
  BOOST_TEST(json::parse(r.out).at("skipped").as_int64() == 4);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(logged_arguments_are_checked_against_the_signature_again) {
  const auto dir = scratch("retry-width");
  const auto log = dir / "log.jsonl";
  write_file(
      log,
      R"({"id":1,"job":"identity","input":null,"args":[99999999999],"outcome":"failed","error":"job_failed","message":"x"})"
      "\n");
  auto r = crew("run --job identity --retry-failed " + log.string() + " --jsonl");
  BOOST_TEST(r.exit_code == 1);
  const auto lines = json_lines(r.out);
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);  // failed, not run as 1215752191
  BOOST_TEST(lines[0].at("outcome").as_string() == "failed");
  BOOST_TEST(
      contains(std::string(lines[0].at("message").as_string()), "99999999999 does not fit i32"));
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(write_failures_stop_the_run_with_an_error) {
  auto r = crew("run --job identity --range 0:1000 --joblog /dev/full");
  BOOST_TEST(r.exit_code == 5);
  BOOST_TEST(contains(r.err, "job log '/dev/full': No space left on device"), r.err);
  r = crew("run --job identity --range 0:1000 > /dev/full");
  BOOST_TEST(r.exit_code == 5);
  BOOST_TEST(contains(r.err, "stdout: No space left on device"), r.err);
  r = crew("run --job identity --range 0:1000 --json > /dev/full");
  BOOST_TEST(r.exit_code == 5);
  r = crew("run --job identity --range 0:3 --timeline /nonexistent/t.svg");
  BOOST_TEST(r.exit_code == 4);  // refused before anything runs
  BOOST_TEST(contains(r.err, "/nonexistent/t.svg"));
  BOOST_TEST(!contains(r.out, "identity(0)"));
}

BOOST_AUTO_TEST_CASE(every_number_is_range_checked_and_nothing_is_guessed) {
  const std::pair<const char*, const char*> cases[] = {
      {"--timeout 9223372036854775807", "--timeout must be an integer from 0 to 604800000 ms"},
      {"--grace 9223372036854775807", "--grace must be an integer from 0 to 3600000 ms"},
      {"--retries 1000", "--retries must be an integer from 0 to 100"},
      {"--workers -1", "--workers must be a whole number"},
      {"--workers 4294967297", "is more than this machine allows"},
      {"--workers 100000", "at most"},
      {"--workers 2x", "--workers must be a whole number"},
      {"--chunk 99999999", "--chunk must be an integer from 0 to 65536"},
      {"--io-scale nan", "--io-scale must be a number"},
      {"::: a b", "unexpected argument ':::'"},
      {"-- x", "unexpected argument 'x'"},
      {"--work 2", "unrecognised option '--work'"},
      {"--worker-ar x", "unrecognised option"},
  };
  for (const auto& [args, message] : cases) {
    auto r = crew(std::string("run --job identity --range 0:1 ") + args);
    BOOST_TEST(r.exit_code == 2, args);
    BOOST_TEST(contains(r.err, message), args << ": " << r.err);
  }
  auto version = crew("--version");
  BOOST_TEST(version.exit_code == 0);
  BOOST_TEST(contains(version.out, "crew 0."));
  auto help = crew("run --help");
  BOOST_TEST(contains(help.out, "4 could not run at all"));
}

BOOST_AUTO_TEST_CASE(workers_beyond_the_limit_are_refused_before_anything_starts) {
  const auto dir = scratch("limit");
  const auto marker = dir / "started";
  // A worker that would leave a mark if it were ever started.
  const std::string worker =
      "--worker /bin/sh --worker-arg=-c --worker-arg='touch " + marker.string() + "' ";
  auto r = crew("run " + worker + "--job x --range 0:1 --workers 100000");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "crew's maximum"), r.err);
  // The user's process limit counts: 40 processes allowed, 60 asked.
  r = crew("run " + worker + "--job x --range 0:1 --workers 60", "prlimit --nproc=40");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "RLIMIT_NPROC"), r.err);
  // And the open-file limit: 6 descriptors a worker.
  r = crew("run " + worker + "--job x --range 0:1 --workers 60", "prlimit --nofile=128");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "open-file limit"), r.err);
  BOOST_TEST(!std::filesystem::exists(marker));
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_worker_that_never_starts_or_an_unknown_job_cannot_run) {
  auto r = crew("run --worker /nonexistent/worker --job x --range 0:3");
  BOOST_TEST(r.exit_code == 4);
  BOOST_TEST(contains(r.err, "no worker started"), r.err);
  BOOST_TEST(contains(r.err, "/nonexistent/worker"), r.err);
  r = crew("run --job sum --range 0:3");  // sum takes a vector
  BOOST_TEST(r.exit_code == 4);
  BOOST_TEST(contains(r.err, "--range needs a job of one integer"), r.err);
  r = crew("run --job identity --input /nonexistent/tasks.jsonl");
  BOOST_TEST(r.exit_code == 4);
  BOOST_TEST(contains(r.err, "cannot open --input"), r.err);
}

BOOST_AUTO_TEST_CASE(a_partly_started_pool_runs_every_task_and_warns) {
  const auto dir = scratch("partial");
  // Only 2 of the 4 workers can ever start (the first two to take a place file).
  std::string tasks;
  for (int i = 0; i < 30; ++i)
    tasks += "[100]\n";  // sleep_ms(100): long enough for the failing slots to give up
  write_file(dir / "tasks.jsonl", tasks);
  std::filesystem::create_directories(dir / "places");
  auto r = crew(std::string("run --worker ") + CREW_FAULT_WORKER_PATH + " --worker-arg=--places" +
                " --worker-arg=" + (dir / "places").string() + " --worker-arg=2 --workers 4" +
                " --job sleep_ms --input " + (dir / "tasks.jsonl").string() + " --jsonl");
  BOOST_TEST(r.exit_code == 0, r.err);
  std::size_t ok = 0;
  std::set<std::int64_t> workers;
  for (const auto& l : json_lines(r.out)) {
    ok += l.at("outcome").as_string() == "ok";
    workers.insert(l.at("worker").as_int64());
  }
  BOOST_TEST(ok == 30u);
  BOOST_TEST(workers.size() == 2u);
  BOOST_TEST(contains(r.err, "cannot start; the others go on"), r.err);
  BOOST_TEST(contains(r.err, "all 2 places taken"), r.err);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(signals_drain_threads_and_inline_runs_and_sighup_drains_processes) {
  const auto dir = scratch("signals");
  struct mode_case {
    const char* mode;
    int sig;
    int code;
    std::size_t running;
  };
  for (const auto& c : {mode_case{"threads", SIGINT, 130, 2}, mode_case{"inline", SIGTERM, 143, 1},
                        mode_case{"processes", SIGHUP, 129, 2}}) {
    // long_io: 0.5 s each; the first ones finish after the signal, nothing new starts.
    auto r = signal_run({"run", "--job", "long_io", "--range", "0:40", "--workers", "2",
                         "--io-scale", "0.25", "--mode", c.mode, "--jsonl"},
                        "started", c.running, c.sig, dir);
    BOOST_TEST(r.exit_code == c.code, c.mode << ": " << r.err);
    BOOST_TEST(contains(r.err, "stopping; no new task is started"), c.mode);
    const auto lines = json_lines(r.out);  // stdout holds only records
    std::size_t ok = 0;
    for (const auto& l : lines) {
      ok += l.at("outcome").as_string() == "ok";
      if (l.at("outcome").as_string() != "ok")  // taken in, never started
        BOOST_TEST(l.at("error").as_string() == "cancelled", c.mode);
    }
    BOOST_TEST(ok >= c.running, c.mode);  // the running ones finished within the grace
    BOOST_TEST(ok < 40u, c.mode);         // and nothing new started
    BOOST_TEST(contains(r.err, "interrupted by SIG"), c.mode);
  }
  std::filesystem::remove_all(dir);
}

// A run reading tasks from a pipe that stays open but silent: a signal ends it (drained,
// exit code 143) without waiting for a line that never comes.
BOOST_AUTO_TEST_CASE(a_signal_stops_a_run_waiting_for_input) {
  int in[2];
  BOOST_REQUIRE(::pipe(in) == 0);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::close(in[1]);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(CREW_CLI_PATH, CREW_CLI_PATH, "run", "--job", "identity", "--workers", "1",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(in[0]);
  const std::string line = "[7]\n";
  BOOST_REQUIRE(::write(in[1], line.data(), line.size()) == static_cast<ssize_t>(line.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let it reach the next read
  ::kill(pid, SIGTERM);
  int status = 0;
  pid_t done = 0;
  // Bounded: a run that waited for input would still be there after 20 s.
  for (int i = 0; i < 2000 && done == 0; ++i) {
    done = ::waitpid(pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ::close(in[1]);  // the input was never closed: only the signal could end the run
  BOOST_TEST(done == pid, "crew run still waiting for input after SIGTERM");
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 143));
}

BOOST_AUTO_TEST_SUITE_END()
