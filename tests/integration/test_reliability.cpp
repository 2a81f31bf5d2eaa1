// The reliability promises (faults and bad input a pool must survive), one test case per
// promise that test_process_pool.cpp, test_shm.cpp and test_cli.cpp do not already check.
// Each case is named after its row: row_NN_what. Rows covered elsewhere:
//   3  exit_zero_mid_task_is_not_a_success (test_process_pool)
//   8  a_bad_handshake_is_a_boot_failure (test_process_pool)
//   9  a_task_past_its_deadline_fails_and_its_worker_is_replaced (test_process_pool)
//   11 a_dead_workers_children_die_with_it (test_process_pool)
//   19 what_a_job_prints_is_captured_and_tagged_not_mixed_into_the_protocol (test_process_pool)
//   21 oversized_arguments_fail_at_submit (test_process_pool)
//   22 payloads_larger_than_the_areas_go_through_the_pipe (test_shm)
//   23 bad_descriptors_kill_the_worker_and_fail_the_task (test_shm)
//   24 a_worker_scribbling_over_its_segment_cannot_hurt_the_coordinator (test_shm)
//   29 the CLI's signal handling (test_cli)
//   35 test_soak.cpp (label "soak")
#include <crew/process_pool.hpp>

#include "demo_jobs.hpp"
#include "fault_jobs.hpp"
#include "pool_fixture.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stop_token>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;
using crew::errc;
using namespace crew::test;
using namespace std::chrono_literals;

extern char** environ;

namespace {

constexpr crew::transport both_transports[] = {crew::transport::pipe, crew::transport::shm};

const char* name_of(crew::transport t) {
  return t == crew::transport::pipe ? "pipe" : "shm";
}

crew::process_pool_options fault_options(std::size_t workers = 1,
                                         crew::transport t = crew::transport::pipe) {
  crew::process_pool_options o;
  o.workers = workers;
  o.executable = CREW_FAULT_WORKER_PATH;
  o.on_output = [](const crew::output_line&) {};  // keep the test log readable
  o.transport = t;
  o.shm_area_bytes = std::size_t{4} << 20;
  o.shutdown_grace = 500ms;
  return o;
}

// Options for a task that `token` cancels.
crew::task_options stop_by(std::stop_token token) {
  crew::task_options o;
  o.stop = std::move(token);
  return o;
}

boost::system::error_code code(errc e) {
  return make_error_code(e);
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Polls `pred` until it holds or `limit` passes (only a guard against hangs); its last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A hang guard: true once `f` is ready.
template <class F>
bool resolves(F& f, std::chrono::seconds limit = 30s) {
  return f.wait_for(limit) == std::future_status::ready;
}

bool has_pid(const std::vector<int>& pids, int pid) {
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

// The lines workers wrote, recorded on the pool's thread and read on the test's.
class output_log {
 public:
  struct entry {
    int pid;
    crew::output_line::stream source;
    std::string text;
  };

  std::function<void(const crew::output_line&)> sink() {
    return [this](const crew::output_line& l) {
      std::lock_guard lock(m_);
      lines_.push_back({l.pid, l.source, std::string(l.text)});
      cv_.notify_all();
    };
  }

  // Waits until `n` lines contain `needle`; the pid of the worker that wrote the n-th, or -1.
  int wait_for(const std::string& needle, std::size_t n = 1, std::chrono::seconds limit = 30s) {
    std::unique_lock lock(m_);
    int pid = -1;
    cv_.wait_for(lock, limit, [&] {
      std::size_t seen = 0;
      for (const auto& e : lines_)
        if (contains(e.text, needle) && ++seen == n) {
          pid = e.pid;
          return true;
        }
      return false;
    });
    return pid;
  }

  std::size_t count(const std::string& needle) {
    std::lock_guard lock(m_);
    return static_cast<std::size_t>(std::count_if(
        lines_.begin(), lines_.end(), [&](const entry& e) { return contains(e.text, needle); }));
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<entry> lines_;
};

// Whether `pid` has SIGTERM ignored (from /proc/PID/status).
bool ignores_sigterm(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("SigIgn:", 0) == 0) {
      const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
      return (mask >> (SIGTERM - 1)) & 1;
    }
  return false;
}

std::size_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// SIGCHLD set as the host wants it for the scope, then restored.
struct sigchld_as {
  struct sigaction old {};
  explicit sigchld_as(void (*handler)(int)) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGCHLD, &sa, &old);
  }
  ~sigchld_as() { ::sigaction(SIGCHLD, &old, nullptr); }
};

std::atomic<int> sigchld_count{0};
extern "C" void count_sigchld(int) {
  sigchld_count.fetch_add(1);
}
// A host handler that reaps every child it can, crew's workers included.
extern "C" void reap_everything(int) {
  const int saved = errno;
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  errno = saved;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;  // their shadow memory does not fit under RLIMIT_AS
#else
constexpr bool sanitized = false;
#endif

}  // namespace

BOOST_AUTO_TEST_SUITE(worker_lifecycle, *boost::unit_test::timeout(120))

BOOST_FIXTURE_TEST_CASE(row_01_a_segfault_fails_only_its_task_on_both_transports, io_fixture) {
  for (auto t : both_transports) {
    BOOST_TEST_CONTEXT("transport " << name_of(t)) {
      output_log log;
      auto o = fault_options(2, t);
      o.on_output = log.sink();
      crew::process_pool pool(ioc.get_executor(), o);
      BOOST_TEST(pool.submit(crew::demo::identity(1)).get() == 1);
      auto other = pool.submit(crew::test::sleep_ms(300));
      auto e = failure_of(pool.submit(crew::test::crash(SIGSEGV)));
      const int crashed = log.wait_for("raising signal");
      BOOST_TEST(e.code() == code(errc::worker_crashed));
      BOOST_TEST(contains(e.message(), "SIGSEGV"), e.message());
      BOOST_TEST(contains(e.message(), "pid " + std::to_string(crashed)), e.message());
      BOOST_TEST(contains(e.message(), "raising signal"), e.message());  // the stderr tail
      BOOST_TEST(other.get() == 300);  // the task on the other worker is unaffected
      const std::string big(std::size_t{1} << 20, 'z');  // through the segment with shm
      BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));
      BOOST_TEST(eventually([&] {
        auto pids = pool.pids();
        return pids.size() == 2 && !has_pid(pids, crashed);
      }));  // reaped and respawned
      BOOST_TEST(!process_alive(crashed));
      pool.join();
    }
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_02_a_worker_killed_from_outside_is_reported_with_an_oom_hint,
                        io_fixture) {
  for (auto t : both_transports) {
    BOOST_TEST_CONTEXT("transport " << name_of(t)) {
      output_log log;
      auto o = fault_options(1, t);
      o.on_output = log.sink();
      crew::process_pool pool(ioc.get_executor(), o);
      auto running = pool.submit(crew::test::hang_busy(60000));
      const int pid = log.wait_for("hang_busy started");
      BOOST_REQUIRE(pid > 0);
      ::kill(pid, SIGKILL);  // as the OOM killer would
      BOOST_REQUIRE(resolves(running));
      auto e = failure_of(std::move(running));
      BOOST_TEST(e.code() == code(errc::worker_crashed));
      BOOST_TEST(contains(e.message(), "SIGKILL"), e.message());
      BOOST_TEST(contains(e.message(), "OOM"), e.message());
      BOOST_TEST(contains(e.message(), "pid " + std::to_string(pid)), e.message());
      BOOST_TEST(pool.submit(crew::demo::identity(2)).get() == 2);
      BOOST_TEST(!has_pid(pool.pids(), pid));
      pool.join();
    }
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_04_a_worker_dying_mid_result_fails_its_task_on_both_transports,
                        io_fixture) {
  for (auto t : both_transports) {
    BOOST_TEST_CONTEXT("transport " << name_of(t)) {
      crew::process_pool pool(ioc.get_executor(), fault_options(2, t));
      BOOST_TEST(pool.submit(crew::demo::identity(1)).get() == 1);
      auto other = pool.submit(crew::test::sleep_ms(300));
      auto dying = pool.submit(crew::test::die_mid_frame(0));
      BOOST_REQUIRE(resolves(dying));  // nothing blocks on the half frame
      auto e = failure_of(std::move(dying));
      BOOST_TEST(e.code() == code(errc::worker_crashed));
      BOOST_TEST(contains(e.message(), "middle of a frame"), e.message());
      BOOST_TEST(other.get() == 300);
      const std::string big(std::size_t{1} << 20, 'q');
      BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));
      pool.join();
    }
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_05_a_reply_just_before_exit_is_delivered_once_and_the_next_task_runs,
                        io_fixture) {
  for (auto t : both_transports) {
    BOOST_TEST_CONTEXT("transport " << name_of(t)) {
      crew::process_pool pool(ioc.get_executor(), fault_options(1, t));
      int pid = pool.submit(crew::test::leak_mib(0)).get();  // leak_mib(0) says who ran it
      for (int round = 0; round < 10; ++round) {
        const int exit_code = round % 2 == 0 ? 0 : 3;
        BOOST_TEST_CONTEXT("round " << round << ", exit code " << exit_code) {
          BOOST_TEST(pool.submit(crew::test::reply_then_exit(exit_code)).get() == exit_code);
          // Submitted at once, while the worker may still be exiting: it must not be lost
          // to the dying worker, and runs on a fresh one.
          auto next = pool.submit(crew::test::leak_mib(0));
          BOOST_REQUIRE(resolves(next));
          try {
            const int next_pid = next.get();
            BOOST_TEST(next_pid != pid);
            pid = next_pid;
          } catch (const crew::task_error& e) {
            BOOST_ERROR("the task after the reply failed: " << e.what());
            pid = pool.submit(crew::test::leak_mib(0)).get();
          }
        }
      }
      pool.join();
    }
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_06_boot_failures_stop_respawning_and_fail_fast_with_the_reason,
                        io_fixture) {
  output_log log;
  {
    auto o = fault_options(1);
    o.args = {"--exit-at-start", "7"};
    o.max_boot_failures = 3;
    o.on_output = log.sink();
    crew::process_pool pool(ioc.get_executor(), o);
    auto e = failure_of(pool.submit(crew::demo::identity(1)));
    BOOST_TEST(e.code() == code(errc::worker_boot_failed));
    BOOST_TEST(contains(e.message(), "exited with code 7"), e.message());
    BOOST_TEST(contains(e.message(), "exiting at start-up as asked"), e.message());  // stderr
    BOOST_TEST(eventually([&] { return !pool.broken_reason().empty(); }));
    const std::string reason = pool.broken_reason();
    BOOST_TEST(contains(reason, "exited with code 7"), reason);
    // New submissions fail at once with the reason.
    e = failure_of(pool.submit(crew::demo::identity(2)));
    BOOST_TEST(e.code() == code(errc::worker_boot_failed));
    BOOST_TEST(contains(e.message(), "exited with code 7"), e.message());
    // No fork storm: no more starts than allowed failures, and none after giving up. (Lines
    // reach the sink on the pool's output thread: let those already read arrive first.)
    std::this_thread::sleep_for(300ms);
    const std::size_t starts = log.count("exiting at start-up as asked");
    BOOST_TEST(starts >= 1u);
    BOOST_TEST(starts <= 3u);
    std::this_thread::sleep_for(500ms);
    BOOST_TEST(log.count("exiting at start-up as asked") == starts);
    BOOST_TEST(wait_for_no_children(5.0).empty());
    pool.join();
  }
  expect_no_leaks(fds_before);
}

// Row 6 with several slots, when nothing can start: the breaker still trips after a few
// starts (no fork storm), with the reason, and no slot is reported as unavailable (that is
// for a pool that goes on serving).
BOOST_FIXTURE_TEST_CASE(row_06_a_pool_where_no_worker_can_start_breaks_with_the_reason,
                        io_fixture) {
  output_log log;
  std::atomic<int> unavailable{0};
  {
    auto o = fault_options(4);
    o.args = {"--exit-at-start", "7"};
    o.max_boot_failures = 3;
    o.on_output = log.sink();
    o.on_event = [&](const crew::event& e) {
      if (e.kind == crew::event_kind::worker_unavailable) ++unavailable;
    };
    crew::process_pool pool(ioc.get_executor(), o);
    auto e = failure_of(pool.submit(crew::demo::identity(1)));
    BOOST_TEST(e.code() == code(errc::worker_boot_failed));
    BOOST_TEST(contains(e.message(), "exited with code 7"), e.message());
    BOOST_TEST(eventually([&] { return !pool.broken_reason().empty(); }));
    BOOST_TEST(contains(pool.broken_reason(), "exited with code 7"), pool.broken_reason());
    e = failure_of(pool.submit(crew::demo::identity(2)));
    BOOST_TEST(e.code() == code(errc::worker_boot_failed));
    // No fork storm: at most max_boot_failures starts per slot, and none after giving up.
    // (Lines reach the sink on the pool's output thread: let those already read arrive.)
    std::this_thread::sleep_for(300ms);
    const std::size_t starts = log.count("exiting at start-up as asked");
    BOOST_TEST(starts >= 3u);
    BOOST_TEST(starts <= 4u * 3u);
    std::this_thread::sleep_for(500ms);
    BOOST_TEST(log.count("exiting at start-up as asked") == starts);
    pool.join();
  }
  BOOST_TEST(unavailable.load() == 0);
  expect_no_leaks(fds_before);
}

// Issue 13: a pool that can start only some of its workers (a low ulimit, a small /dev/shm)
// serves every task with the workers it has, and reports each slot that cannot start with
// a worker_unavailable event; such a slot goes on trying at the capped back-off, so a place
// freed later heals it. The fault worker's --places mode makes the first two processes
// serve and every later one exit before its hello, whatever the timing.
BOOST_FIXTURE_TEST_CASE(row_06_a_partly_started_pool_serves_and_reports_the_slots_that_cannot_start,
                        io_fixture) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("crew-places-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  output_log log;
  struct report {
    std::size_t slot;
    errc error;
    std::string message;
  };
  std::mutex m;
  std::vector<report> reports;
  auto reported_slots = [&] {
    std::lock_guard lock(m);
    std::set<std::size_t> slots;
    for (const auto& r : reports)
      slots.insert(r.slot);
    return slots;
  };
  {
    auto o = fault_options(4);
    o.args = {"--places", dir.string(), "2"};
    o.max_boot_failures = 3;
    o.on_output = log.sink();
    o.on_event = [&](const crew::event& e) {
      if (e.kind != crew::event_kind::worker_unavailable) return;
      std::lock_guard lock(m);
      reports.push_back({e.worker, e.error, std::string(e.message)});
    };
    crew::process_pool pool(ioc.get_executor(), o);
    // Both slots that cannot start reach max_boot_failures; the pool goes on.
    BOOST_REQUIRE(eventually([&] { return reported_slots().size() == 2; }, 30s));
    std::vector<std::future<int>> results;
    for (int i = 0; i < 50; ++i)
      results.push_back(pool.submit(crew::demo::identity(i)));
    for (int i = 0; i < 50; ++i) {
      BOOST_REQUIRE(resolves(results[i]));
      try {
        BOOST_TEST(results[i].get() == i);
      } catch (const crew::task_error& e) {
        BOOST_ERROR("task " << i << " failed: " << e.what());
      }
    }
    BOOST_TEST(pool.broken_reason().empty(), pool.broken_reason());
    BOOST_TEST(eventually([&] { return log.count("took place") >= 2u; }));  // output thread
    BOOST_TEST(log.count("took place") == 2u);
    {
      // Each failing slot once, with the boot failure's code and text; never a serving one.
      std::lock_guard lock(m);
      BOOST_TEST(reports.size() == 2u);
      for (const auto& r : reports) {
        BOOST_TEST(r.slot < 4u);
        BOOST_TEST((r.error == errc::worker_boot_failed));
        BOOST_TEST(contains(r.message, "worker " + std::to_string(r.slot)), r.message);
        BOOST_TEST(contains(r.message, "exited with code 1 before its handshake"), r.message);
        BOOST_TEST(contains(r.message, "all 2 places taken"), r.message);  // its stderr
      }
    }
    // A place freed: a slot past its limit still retries (at the capped back-off), takes it
    // and serves; the pool serves on.
    std::filesystem::remove(dir / "place-0");
    BOOST_TEST(log.wait_for("took place", 3) > 0);
    results.clear();
    for (int i = 0; i < 50; ++i)
      results.push_back(pool.submit(crew::demo::identity(i)));
    for (int i = 0; i < 50; ++i) {
      BOOST_REQUIRE(resolves(results[i]));
      try {
        BOOST_TEST(results[i].get() == i);
      } catch (const crew::task_error& e) {
        BOOST_ERROR("task " << i << " failed after the heal: " << e.what());
      }
    }
    BOOST_TEST(pool.broken_reason().empty(), pool.broken_reason());
    pool.join();
  }
  std::filesystem::remove_all(dir);
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_07_a_worker_that_cannot_be_executed_is_named_with_its_errno,
                        io_fixture) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto not_executable = dir / ("crew-test-not-executable-" + std::to_string(::getpid()));
  const auto bad_format = dir / ("crew-test-bad-format-" + std::to_string(::getpid()));
  {
    std::ofstream(not_executable) << "#!/bin/sh\nexit 0\n";
    std::filesystem::permissions(
        not_executable, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    std::ofstream(bad_format, std::ios::binary) << std::string(
                                                       "\x7f"
                                                       "ELF\x02\x01\x01",
                                                       7)
                                                << std::string(57, '\0');
    std::filesystem::permissions(bad_format, std::filesystem::perms::owner_all);
  }
  const std::pair<std::filesystem::path, const char*> cases[] = {
      {not_executable, "Permission denied"}, {bad_format, "Exec format error"}};
  for (const auto& [path, why] : cases) {
    BOOST_TEST_CONTEXT(path) {
      auto o = fault_options(1);
      o.executable = path;
      crew::process_pool pool(ioc.get_executor(), o);
      auto e = failure_of(pool.submit(crew::demo::identity(1)));
      BOOST_TEST(e.code() == code(errc::worker_boot_failed));
      BOOST_TEST(contains(e.message(), path.string()), e.message());
      BOOST_TEST(contains(e.message(), why), e.message());
      BOOST_TEST(zombies().empty());
      pool.join();
    }
  }
  std::filesystem::remove(not_executable);
  std::filesystem::remove(bad_format);
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_10_shutdown_and_destruction_end_a_worker_that_ignores_sigterm,
                        io_fixture) {
  // Graceful shutdown: the task is cancelled, the worker ignores the cancel frame and
  // SIGTERM, and SIGKILL ends it.
  int pid = -1;
  {
    auto o = fault_options(1);
    o.shutdown_grace = 200ms;
    o.cancel_grace = 200ms;
    crew::process_pool pool(ioc.get_executor(), o);
    auto running = pool.submit(crew::test::stubborn_sleep(60000));
    BOOST_REQUIRE(eventually([&] {
      auto pids = pool.pids();
      return pids.size() == 1 && ignores_sigterm(pid = pids[0]);
    }));
    auto done = std::async(std::launch::async, [&] { pool.shutdown(0ms); });
    BOOST_REQUIRE(resolves(done));
    BOOST_REQUIRE(resolves(running));
    BOOST_TEST(failure_of(std::move(running)).code() == code(errc::cancelled));
    BOOST_TEST(!process_alive(pid));
    BOOST_TEST(pool.pids().empty());
  }
  // The destructor: the same worker, the same bound.
  {
    auto o = fault_options(1);
    o.shutdown_grace = 200ms;
    std::future<int> running;
    {
      auto pool = std::make_unique<crew::process_pool>(ioc.get_executor(), o);
      running = pool->submit(crew::test::stubborn_sleep(60000));
      BOOST_REQUIRE(eventually([&] {
        auto pids = pool->pids();
        return pids.size() == 1 && ignores_sigterm(pid = pids[0]);
      }));
      auto destroyed = std::async(std::launch::async, [&] { pool.reset(); });
      BOOST_REQUIRE(resolves(destroyed));
    }
    BOOST_REQUIRE(resolves(running));
    BOOST_TEST(failure_of(std::move(running)).code() == code(errc::shutting_down));
    BOOST_TEST(!process_alive(pid));
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_12_leaking_workers_are_recycled_between_tasks_and_limits_apply,
                        io_fixture) {
  BOOST_TEST_CONTEXT("max_tasks_per_worker") {
    auto o = fault_options(1);
    o.max_tasks_per_worker = 3;
    crew::process_pool pool(ioc.get_executor(), o);
    std::vector<int> ran_on;
    for (int i = 0; i < 9; ++i)
      ran_on.push_back(pool.submit(crew::test::leak_mib(1)).get());
    for (std::size_t i = 0; i < ran_on.size(); ++i)
      BOOST_TEST(ran_on[i] == ran_on[i - i % 3], "task " << i);  // three tasks a worker ...
    BOOST_TEST(ran_on[0] != ran_on[3]);                          // ... then a fresh one
    BOOST_TEST(ran_on[3] != ran_on[6]);
    BOOST_TEST(ran_on[0] != ran_on[6]);
    pool.join();
  }
  BOOST_TEST_CONTEXT("max_worker_rss") {
    auto o = fault_options(1);
    o.max_worker_rss = std::size_t{64} << 20;
    crew::process_pool pool(ioc.get_executor(), o);
    std::map<int, int> tasks_per_pid;
    for (int i = 0; i < 8; ++i)
      ++tasks_per_pid[pool.submit(crew::test::leak_mib(24)).get()];  // no task lost
    BOOST_TEST(tasks_per_pid.size() >= 2u);
    for (const auto& [pid, n] : tasks_per_pid)
      BOOST_TEST(n <= 3, "pid " << pid << " ran " << n << " tasks of 24 MiB each");
    pool.join();
  }
  BOOST_TEST_CONTEXT("recycling under concurrent load loses no task") {
    auto o = fault_options(2);
    o.max_tasks_per_worker = 2;
    crew::process_pool pool(ioc.get_executor(), o);
    std::vector<std::future<int>> fs;
    for (int i = 0; i < 40; ++i)
      fs.push_back(pool.submit(crew::demo::identity(i)));
    for (int i = 0; i < 40; ++i)
      BOOST_TEST(fs[static_cast<std::size_t>(i)].get() == i);
    pool.join();
  }
  if (!sanitized) {
    BOOST_TEST_CONTEXT("limit_address_space") {
      auto o = fault_options(1);
      o.limit_address_space = std::size_t{512} << 20;
      crew::process_pool pool(ioc.get_executor(), o);
      BOOST_TEST(pool.submit(crew::test::alloc_fails(8)).get() == 0);
      BOOST_TEST(pool.submit(crew::test::alloc_fails(1024)).get() == 1);
      BOOST_TEST(pool.submit(crew::demo::identity(5)).get() == 5);
      pool.join();
    }
  }
  BOOST_TEST_CONTEXT("limit_cpu") {
    auto o = fault_options(1);
    o.limit_cpu = std::chrono::seconds(1);
    crew::process_pool pool(ioc.get_executor(), o);
    auto burning = pool.submit(crew::test::burn_cpu(30));
    BOOST_REQUIRE(resolves(burning));
    auto e = failure_of(std::move(burning));
    BOOST_TEST(e.code() == code(errc::worker_crashed));
    BOOST_TEST((contains(e.message(), "SIGXCPU") || contains(e.message(), "SIGKILL")), e.message());
    BOOST_TEST(pool.submit(crew::demo::identity(6)).get() == 6);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_13_the_crash_loop_breaker_fails_pending_tasks_fast_with_the_reason,
                        io_fixture) {
  output_log log;
  {
    auto o = fault_options(1);
    o.crash_loop_limit = 3;
    o.on_output = log.sink();
    crew::process_pool pool(ioc.get_executor(), o);
    std::vector<std::future<int>> crashes;
    for (int i = 0; i < 6; ++i)
      crashes.push_back(pool.submit(crew::test::crash(SIGSEGV)));
    auto queued = pool.submit(crew::demo::identity(1));
    for (auto& f : crashes)
      BOOST_REQUIRE(resolves(f));
    BOOST_REQUIRE(resolves(queued));
    const std::string reason = pool.broken_reason();
    BOOST_TEST(!reason.empty());
    for (std::size_t i = 0; i < crashes.size(); ++i) {
      auto e = failure_of(std::move(crashes[i]));
      BOOST_TEST(e.code() == code(errc::worker_crashed), "task " << i);
      if (i < 3)
        BOOST_TEST(contains(e.message(), "SIGSEGV"), "task " << i << ": " << e.message());
      else
        BOOST_TEST(contains(e.message(), reason), "task " << i << ": " << e.message());
    }
    auto e = failure_of(std::move(queued));
    BOOST_TEST(e.code() == code(errc::worker_crashed));
    BOOST_TEST(contains(e.message(), reason), e.message());
    e = failure_of(pool.submit(crew::demo::identity(2)));  // new work fails fast too
    BOOST_TEST(e.code() == code(errc::worker_crashed));
    BOOST_TEST(contains(e.message(), reason), e.message());
    // No respawn storm: three workers ran a task and died, and no other was started.
    BOOST_TEST(eventually([&] { return log.count("raising signal") >= 3u; }));  // output thread
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(log.count("raising signal") == 3u);
    BOOST_TEST(wait_for_no_children(5.0).empty());
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(children().empty());
    pool.join();
  }
  expect_no_leaks(fds_before);
}

// Retries (issue 4): only a worker's death is retried, within the bound, per pool, per job
// or per task; a job's own error and a timeout never are.
BOOST_FIXTURE_TEST_CASE(retries_rerun_only_tasks_whose_worker_died, io_fixture) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("crew-retries-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto counter = [&](const std::string& name) { return (dir / name).string(); };
  auto runs = [&](const std::string& name) {
    std::ifstream in(counter(name));
    int n = 0;
    in >> n;
    return n;
  };
  {
    auto o = fault_options(1);
    o.job_retries = {{"flaky", 1}};
    crew::process_pool pool(ioc.get_executor(), o);
    // The job's retry count (1): one crash, then success on a fresh worker.
    BOOST_TEST(pool.submit(crew::test::flaky(counter("a"), 1, 0)).get() == 2);
    // Per task, more: two crashes, then success.
    crew::task_options twice;
    twice.retries = 2;
    BOOST_TEST(pool.submit(crew::test::flaky(counter("b"), 2, 0), twice).get() == 3);
    // Past the bound: the error says how many attempts there were.
    auto e = failure_of(pool.submit(crew::test::flaky(counter("c"), 5, 0), twice));
    BOOST_TEST(e.code() == code(errc::worker_crashed));
    BOOST_TEST(contains(e.message(), "after 3 attempts"), e.message());
    BOOST_TEST(runs("c") == 3);
    // Per task, none: the first crash is final.
    crew::task_options none;
    none.retries = 0;
    e = failure_of(pool.submit(crew::test::flaky(counter("d"), 1, 0), none));
    BOOST_TEST(e.code() == code(errc::worker_crashed));
    BOOST_TEST(runs("d") == 1);
    // A job's own exception is never retried.
    crew::task_options many;
    many.retries = 3;
    e = failure_of(pool.submit(crew::test::flaky(counter("e"), 1, 1), many));
    BOOST_TEST(e.code() == code(errc::job_failed));
    BOOST_TEST(contains(e.message(), "flaky failure 1"));
    BOOST_TEST(runs("e") == 1);
    // Nor is a timeout.
    many.timeout = 200ms;
    e = failure_of(pool.submit(crew::test::flaky(counter("f"), 1, 2), many));
    BOOST_TEST(e.code() == code(errc::task_timeout));
    BOOST_TEST(runs("f") == 1);
    pool.join();
  }
  {
    // The pool's default is none; `retries` on the pool sets it for every job.
    crew::process_pool plain(ioc.get_executor(), fault_options(1));
    auto e = failure_of(plain.submit(crew::test::flaky(counter("g"), 1, 0)));
    BOOST_TEST(e.code() == code(errc::worker_crashed));
    plain.join();
    auto o = fault_options(1);
    o.retries = 1;
    crew::process_pool retrying(ioc.get_executor(), o);
    BOOST_TEST(retrying.submit(crew::test::flaky(counter("h"), 1, 0)).get() == 2);
    retrying.join();
  }
  std::filesystem::remove_all(dir);
  expect_no_leaks(fds_before);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_input, *boost::unit_test::timeout(120))

BOOST_FIXTURE_TEST_CASE(row_14_garbage_on_the_result_channel_is_a_protocol_error_on_both_transports,
                        io_fixture) {
  const std::string garbage[] = {
      std::string(64, '\x7f'),
      std::string("CREW\x09\x03\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00xxxx", 24),
      std::string("CREW\x01\x63\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20)};
  for (auto t : both_transports) {
    BOOST_TEST_CONTEXT("transport " << name_of(t)) {
      crew::process_pool pool(ioc.get_executor(), fault_options(1, t));
      for (std::size_t k = 0; k < std::size(garbage); ++k) {
        const int pid = pool.submit(crew::test::leak_mib(0)).get();
        auto e = failure_of(pool.submit(crew::test::raw_reply(garbage[k])));
        BOOST_TEST(e.code() == code(errc::protocol_error), "garbage " << k);
        BOOST_TEST(eventually([&] { return !process_alive(pid); }), "garbage " << k);
        BOOST_TEST(pool.submit(crew::demo::identity(static_cast<int>(k))).get() ==
                   static_cast<int>(k));
      }
      pool.join();
    }
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_15_a_truncated_frame_then_eof_is_a_protocol_error_at_once, io_fixture) {
  {
    auto o = fault_options(1);
    o.frame_timeout = 120s;  // only the end of the channel can end this task in time
    crew::process_pool pool(ioc.get_executor(), o);
    const int pid = pool.submit(crew::test::leak_mib(0)).get();
    auto truncated = pool.submit(crew::test::truncated_frame(1));  // half a header, close
    BOOST_REQUIRE(resolves(truncated));
    auto e = failure_of(std::move(truncated));
    BOOST_TEST(e.code() == code(errc::protocol_error), e.what());
    BOOST_TEST(eventually([&] { return !process_alive(pid); }));  // the worker was killed
    BOOST_TEST(pool.submit(crew::demo::identity(3)).get() == 3);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_16_a_truncated_frame_then_silence_hits_the_frame_deadline, io_fixture) {
  {
    auto o = fault_options(1);
    o.frame_timeout = 300ms;
    crew::process_pool pool(ioc.get_executor(), o);
    const int pid = pool.submit(crew::test::leak_mib(0)).get();
    auto truncated = pool.submit(crew::test::truncated_frame(0));  // half a header, silence
    BOOST_REQUIRE(resolves(truncated));
    auto e = failure_of(std::move(truncated));
    BOOST_TEST(e.code() == code(errc::protocol_error), e.what());
    BOOST_TEST(eventually([&] { return !process_alive(pid); }));  // the worker was killed
    BOOST_TEST(pool.submit(crew::demo::identity(4)).get() == 4);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_17_a_length_over_the_configured_limit_is_refused_from_the_header,
                        io_fixture) {
  // test_process_pool checks a 4 GiB length against the default limit; this one a length
  // just over a small configured limit, and the u32 maximum, on both transports.
  for (auto t : both_transports) {
    BOOST_TEST_CONTEXT("transport " << name_of(t)) {
      auto o = fault_options(1, t);
      o.max_payload = 64 * 1024;
      o.frame_timeout = 120s;  // refused from the header, not by a deadline
      crew::process_pool pool(ioc.get_executor(), o);
      for (std::uint32_t length : {std::uint32_t{64 * 1024 + 1}, ~std::uint32_t{0}}) {
        const int pid = pool.submit(crew::test::leak_mib(0)).get();
        auto f = pool.submit(crew::test::oversized_frame(length));
        BOOST_REQUIRE(resolves(f));
        auto e = failure_of(std::move(f));
        BOOST_TEST(e.code() == code(errc::protocol_error), "length " << length << ": " << e.what());
        BOOST_TEST(eventually([&] { return !process_alive(pid); }));
        BOOST_TEST(pool.submit(crew::demo::identity(17)).get() == 17);
      }
      pool.join();
    }
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_18_duplicate_and_late_replies_never_resolve_a_task_twice, io_fixture) {
  output_log log;
  {
    auto o = fault_options(1);
    o.cancel_grace = 20s;  // the late reply comes well within it
    o.on_output = log.sink();
    crew::process_pool pool(ioc.get_executor(), o);
    // A duplicate reply: the task resolves once, with the first; the violation kills the
    // worker, and the next task runs on a fresh one.
    const int pid = pool.submit(crew::test::leak_mib(0)).get();
    BOOST_TEST(pool.submit(crew::test::duplicate_reply(5)).get() == 5);
    BOOST_TEST(eventually([&] { return !process_alive(pid); }));
    BOOST_TEST(pool.submit(crew::demo::identity(6)).get() == 6);
    // A reply after cancel is discarded: it must not become the next task's result (both
    // are int(int): a leak would show as 300 instead of 42).
    std::stop_source stop;
    auto late = pool.submit(crew::test::ignore_cancel(300), stop_by(stop.get_token()));
    BOOST_REQUIRE(log.wait_for("ignore_cancel started") > 0);
    stop.request_stop();
    BOOST_REQUIRE(resolves(late));
    BOOST_TEST(failure_of(std::move(late)).code() == code(errc::cancelled));
    BOOST_TEST(pool.submit(crew::demo::identity(42)).get() == 42);
    BOOST_TEST(pool.submit(crew::demo::identity(43)).get() == 43);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_20_a_worker_flooding_stderr_neither_blocks_nor_grows_the_log,
                        io_fixture) {
  std::atomic<std::size_t> lines{0}, longest{0};
  {
    auto o = fault_options(1);
    o.on_output = [&](const crew::output_line& l) {  // on the pool's thread: atomics only
      ++lines;
      if (l.text.size() > longest.load()) longest = l.text.size();
    };
    crew::process_pool pool(ioc.get_executor(), o);
    BOOST_TEST(pool.submit(crew::demo::identity(1)).get() == 1);
    const std::size_t rss_before = rss_bytes();
    auto flood = pool.submit(crew::test::flood_stderr(32));
    BOOST_REQUIRE(resolves(flood));  // no deadlock on a full stderr pipe
    BOOST_TEST(flood.get() == 32);
    const std::size_t rss_after = rss_bytes();
    if (!sanitized)  // ASan's quarantine keeps freed lines resident
      BOOST_TEST(rss_after < rss_before + (std::size_t{24} << 20),
                 "the coordinator grew by " << (rss_after - rss_before) << " bytes");
    // What is kept of stderr (the tail in a crash report) is bounded too.
    auto e = failure_of(pool.submit(crew::test::crash(SIGSEGV)));
    BOOST_TEST(e.code() == code(errc::worker_crashed));
    BOOST_TEST(contains(e.message(), "raising signal"));
    BOOST_TEST(e.message().size() < std::size_t{64} << 10, e.message().size() << " bytes");
    pool.join();
  }
  BOOST_TEST(lines.load() > 0u);
  BOOST_TEST(longest.load() < std::size_t{1} << 20);  // the 1 MiB line was cut
  expect_no_leaks(fds_before);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(coordinator, *boost::unit_test::timeout(120))

BOOST_AUTO_TEST_CASE(row_30_a_killed_coordinator_takes_its_workers_and_their_children_along) {
  const auto fds_before = open_fds();
  // listen: workers that connected back, whose only link is their connection (its end,
  // and the relay's silence limit, end them: docs/remote.md).
  for (const char* transport : {"pipe", "shm", "listen"}) {
    BOOST_TEST_CONTEXT("transport " << transport) {
      int out[2];
      BOOST_REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
      const std::string workers = "2";
      std::vector<std::string> args{CREW_TEST_COORDINATOR_PATH, CREW_FAULT_WORKER_PATH, workers,
                                    transport};
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_adddup2(&fa, out[1], 1);
      pid_t coordinator = -1;
      const int rc = ::posix_spawn(&coordinator, argv[0], &fa, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      ::close(out[1]);
      BOOST_REQUIRE(rc == 0);
      // Its report: "worker PID", "grandchild PID" lines, then "ready".
      std::string text;
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (!contains(text, "ready\n") && std::chrono::steady_clock::now() < deadline) {
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[512];
        const auto n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
      }
      ::close(out[0]);
      std::vector<int> worker_pids, grandchild_pids;
      std::istringstream lines(text);
      std::string what;
      int pid = 0;
      while (lines >> what) {
        if (what == "ready") break;
        lines >> pid;
        (what == "worker" ? worker_pids : grandchild_pids).push_back(pid);
      }
      if (worker_pids.size() != 2u || grandchild_pids.size() != 2u) {
        ::kill(coordinator, SIGKILL);
        ::waitpid(coordinator, nullptr, 0);
        BOOST_FAIL("the coordinator reported: " << text);
      }
      std::vector<int> all = worker_pids;
      all.insert(all.end(), grandchild_pids.begin(), grandchild_pids.end());
      for (int p : all)
        BOOST_TEST(process_alive(p), "pid " << p);
      ::kill(coordinator, SIGKILL);
      ::waitpid(coordinator, nullptr, 0);
      // Pipe EOF and the parent-death signal: every worker and grandchild goes (zombies
      // left to an init that does not reap count as gone).
      const bool gone =
          eventually([&] { return std::none_of(all.begin(), all.end(), process_alive); }, 3000ms);
      BOOST_TEST(gone);
      for (int p : all)
        if (process_alive(p)) {
          BOOST_ERROR("pid " << p << " outlived its coordinator");
          ::kill(p, SIGKILL);
        }
      BOOST_TEST(shm_entries_of(coordinator).empty());
    }
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_31_shutdown_while_a_worker_crashes_or_from_a_handler_resolves_all,
                        io_fixture) {
  const auto one_of = [](const boost::system::error_code& ec, std::initializer_list<errc> ok) {
    return std::any_of(ok.begin(), ok.end(), [&](errc e) { return ec == code(e); });
  };
  BOOST_TEST_CONTEXT("shutdown while a worker is crashing") {
    auto o = fault_options(2);
    o.shutdown_grace = 200ms;
    o.cancel_grace = 200ms;
    crew::process_pool pool(ioc.get_executor(), o);
    auto crashing = pool.submit(crew::test::crash(SIGSEGV));
    auto busy = pool.submit(crew::test::hang_busy(60000));
    std::vector<std::future<int>> queued;
    for (int i = 0; i < 10; ++i)
      queued.push_back(pool.submit(crew::demo::identity(i)));
    auto done = std::async(std::launch::async, [&] { pool.shutdown(50ms); });
    BOOST_REQUIRE(resolves(done));
    BOOST_REQUIRE(resolves(crashing));
    BOOST_REQUIRE(resolves(busy));
    auto e = failure_of(std::move(crashing));
    BOOST_TEST(one_of(e.code(), {errc::worker_crashed, errc::cancelled}), e.what());
    e = failure_of(std::move(busy));
    BOOST_TEST(one_of(e.code(), {errc::cancelled, errc::worker_crashed}), e.what());
    for (int i = 0; i < 10; ++i) {
      auto& f = queued[static_cast<std::size_t>(i)];
      BOOST_REQUIRE(resolves(f));
      try {
        BOOST_TEST(f.get() == i);
      } catch (const crew::task_error& x) {
        BOOST_TEST(one_of(x.code(), {errc::cancelled}), x.what());
      }
    }
    BOOST_TEST(pool.pids().empty());
    BOOST_TEST(failure_of(pool.submit(crew::demo::identity(1))).code() ==
               code(errc::shutting_down));
  }
  BOOST_TEST_CONTEXT("shutdown from the completion handler of a crashed task") {
    auto o = fault_options(2);
    o.shutdown_grace = 200ms;
    o.cancel_grace = 200ms;
    crew::process_pool pool(ioc.get_executor(), o);
    auto busy = pool.submit(crew::test::hang_busy(60000));
    std::promise<boost::system::error_code> crash_code;
    std::promise<void> shut;
    pool.async_submit(crew::test::crash(SIGSEGV), [&](std::exception_ptr ep, int) {
      crash_code.set_value(crew::error_of(ep));
      pool.async_shutdown(0ms, [&] { shut.set_value(); });
    });
    auto shut_future = shut.get_future();
    BOOST_REQUIRE(resolves(shut_future));
    BOOST_TEST(crash_code.get_future().get() == code(errc::worker_crashed));
    BOOST_REQUIRE(resolves(busy));
    BOOST_TEST(failure_of(std::move(busy)).code() == code(errc::cancelled));
    BOOST_TEST(pool.pids().empty());
  }
  BOOST_TEST_CONTEXT("shutdown and join from handlers of successful tasks") {
    auto o = fault_options(2);
    crew::process_pool pool(ioc.get_executor(), o);
    std::vector<std::future<int>> others;
    for (int i = 0; i < 20; ++i)
      others.push_back(pool.submit(crew::test::sleep_ms(i % 3)));
    std::promise<void> shut, joined;
    pool.async_submit(crew::demo::identity(1), [&](std::exception_ptr, int) {
      pool.async_shutdown(1000ms, [&] { shut.set_value(); });
      pool.async_join([&] { joined.set_value(); });
    });
    auto shut_future = shut.get_future();
    auto joined_future = joined.get_future();
    BOOST_REQUIRE(resolves(shut_future));
    BOOST_REQUIRE(resolves(joined_future));
    for (auto& f : others) {
      BOOST_REQUIRE(resolves(f));
      try {
        f.get();
      } catch (const crew::task_error& x) {
        BOOST_TEST(one_of(x.code(), {errc::cancelled}), x.what());
      }
    }
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_32_a_host_ignoring_or_handling_sigchld_does_not_blind_the_pool,
                        io_fixture) {
  BOOST_TEST_CONTEXT("SIGCHLD ignored") {
    sigchld_as ignored(SIG_IGN);
    crew::process_pool pool(ioc.get_executor(), fault_options(1));
    BOOST_TEST(pool.submit(crew::demo::identity(1)).get() == 1);
    auto crashed = pool.submit(crew::test::crash(SIGSEGV));
    BOOST_REQUIRE(resolves(crashed));
    auto e = failure_of(std::move(crashed));
    BOOST_TEST(e.code() == code(errc::worker_crashed));
    BOOST_TEST(contains(e.message(), "SIGCHLD"), e.message());  // why the status is unknown
    BOOST_TEST(pool.submit(crew::demo::identity(2)).get() == 2);
    auto done = std::async(std::launch::async, [&] { pool.join(); });
    BOOST_REQUIRE(resolves(done));
  }
  BOOST_TEST_CONTEXT("the host's own SIGCHLD handler") {
    sigchld_as handled(count_sigchld);
    crew::process_pool pool(ioc.get_executor(), fault_options(1));
    BOOST_TEST(pool.submit(crew::demo::identity(1)).get() == 1);
    auto e = failure_of(pool.submit(crew::test::crash(SIGSEGV)));
    BOOST_TEST(e.code() == code(errc::worker_crashed));
    BOOST_TEST(contains(e.message(), "SIGSEGV"), e.message());  // the status is still known
    BOOST_TEST(pool.submit(crew::demo::identity(2)).get() == 2);
    pool.join();
    BOOST_TEST(sigchld_count.load() > 0);
  }
  BOOST_TEST_CONTEXT("a host handler that reaps every child") {
    sigchld_as handled(reap_everything);
    crew::process_pool pool(ioc.get_executor(), fault_options(1));
    BOOST_TEST(pool.submit(crew::demo::identity(1)).get() == 1);
    auto crashed = pool.submit(crew::test::crash(SIGSEGV));
    BOOST_REQUIRE(resolves(crashed));
    BOOST_TEST(failure_of(std::move(crashed)).code() == code(errc::worker_crashed));
    BOOST_TEST(pool.submit(crew::demo::identity(2)).get() == 2);
    auto done = std::async(std::launch::async, [&] { pool.join(); });
    BOOST_REQUIRE(resolves(done));
  }
  expect_no_leaks(fds_before);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(load, *boost::unit_test::timeout(120))

BOOST_FIXTURE_TEST_CASE(row_33_a_full_queue_makes_submit_wait_or_fail_by_policy, io_fixture) {
  for (auto policy : {crew::queue_policy::fail, crew::queue_policy::wait}) {
    BOOST_TEST_CONTEXT((policy == crew::queue_policy::fail ? "fail" : "wait")) {
      output_log log;
      auto o = fault_options(1);
      o.max_queue = 2;
      o.when_full = policy;
      o.on_output = log.sink();
      crew::process_pool pool(ioc.get_executor(), o);
      std::stop_source blocker_stop;
      auto blocker = pool.submit(crew::test::until_cancelled(5), stop_by(blocker_stop.get_token()));
      BOOST_REQUIRE(log.wait_for("until_cancelled started") > 0);  // sent, not queued
      auto q1 = pool.submit(crew::demo::identity(1));
      auto q2 = pool.submit(crew::demo::identity(2));
      std::future<int> third;
      std::atomic<bool> returned{false};
      std::thread submitter;
      if (policy == crew::queue_policy::fail) {
        auto e = failure_of(pool.submit(crew::demo::identity(3)));
        BOOST_TEST(e.code() == code(errc::queue_full));
      } else {
        submitter = std::thread([&] {
          third = pool.submit(crew::demo::identity(3));
          returned = true;
        });
        std::this_thread::sleep_for(300ms);
        BOOST_TEST(!returned.load());  // still waiting for room
        // On a thread that runs the pool's executor waiting would deadlock: it fails.
        std::promise<boost::system::error_code> from_executor;
        asio::post(ioc, [&] {
          pool.async_submit(crew::demo::identity(4), [&](std::exception_ptr ep, int) {
            from_executor.set_value(crew::error_of(ep));
          });
        });
        auto f = from_executor.get_future();
        BOOST_REQUIRE(resolves(f));
        BOOST_TEST(f.get() == code(errc::queue_full));
      }
      blocker_stop.request_stop();
      BOOST_REQUIRE(resolves(blocker));
      BOOST_TEST(failure_of(std::move(blocker)).code() == code(errc::cancelled));
      BOOST_TEST(q1.get() == 1);
      BOOST_TEST(q2.get() == 2);
      if (submitter.joinable()) {
        submitter.join();
        BOOST_TEST(returned.load());
        BOOST_TEST(third.get() == 3);
      }
      pool.join();
    }
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_34_cancelling_a_task_resolves_it_once_as_cancelled, io_fixture) {
  BOOST_TEST_CONTEXT("a cooperative job, through the handler's cancellation slot") {
    output_log log;
    auto o = fault_options(1);
    o.cancel_grace = 20s;  // it stops on its own long before
    o.on_output = log.sink();
    crew::process_pool pool(ioc.get_executor(), o);
    const int pid = pool.submit(crew::test::leak_mib(0)).get();
    asio::cancellation_signal signal;
    auto f = pool.async_submit(crew::test::until_cancelled(2),
                               asio::bind_cancellation_slot(signal.slot(), asio::use_future));
    BOOST_REQUIRE(log.wait_for("until_cancelled started") > 0);
    signal.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(resolves(f));
    BOOST_TEST(failure_of(std::move(f)).code() == code(errc::cancelled));
    // The job saw the cancel frame and stopped: the same worker serves the next task.
    BOOST_TEST(pool.submit(crew::test::leak_mib(0)).get() == pid);
    BOOST_TEST(pool.submit(crew::demo::identity(7)).get() == 7);

    // A queued task is dropped and never runs.
    std::stop_source running_stop, queued_stop;
    auto running = pool.submit(crew::test::until_cancelled(2), stop_by(running_stop.get_token()));
    BOOST_REQUIRE(log.wait_for("until_cancelled started", 2) > 0);
    auto queued = pool.submit(crew::demo::chatty(3), stop_by(queued_stop.get_token()));
    queued_stop.request_stop();
    BOOST_REQUIRE(resolves(queued));
    BOOST_TEST(failure_of(std::move(queued)).code() == code(errc::cancelled));
    running_stop.request_stop();
    BOOST_REQUIRE(resolves(running));
    BOOST_TEST(failure_of(std::move(running)).code() == code(errc::cancelled));
    BOOST_TEST(pool.submit(crew::demo::identity(8)).get() == 8);
    BOOST_TEST(log.count("chatty line") == 0u);

    // A stop requested before submission cancels at once.
    std::stop_source early;
    early.request_stop();
    auto e = failure_of(pool.submit(crew::demo::identity(9), stop_by(early.get_token())));
    BOOST_TEST(e.code() == code(errc::cancelled));
    pool.join();
  }
  BOOST_TEST_CONTEXT("a job that ignores the cancel frame is killed after cancel_grace") {
    output_log log;
    auto o = fault_options(1);
    o.cancel_grace = 200ms;
    o.on_output = log.sink();
    crew::process_pool pool(ioc.get_executor(), o);
    const int pid = pool.submit(crew::test::leak_mib(0)).get();
    std::stop_source stop;
    auto f = pool.submit(crew::test::ignore_cancel(60000), stop_by(stop.get_token()));
    BOOST_REQUIRE(log.wait_for("ignore_cancel started") > 0);
    stop.request_stop();
    BOOST_REQUIRE(resolves(f));
    BOOST_TEST(failure_of(std::move(f)).code() == code(errc::cancelled));
    const int next = pool.submit(crew::test::leak_mib(0)).get();
    BOOST_TEST(next != pid);  // replaced
    BOOST_TEST(eventually([&] { return !process_alive(pid); }));
    BOOST_TEST(pool.submit(crew::demo::identity(10)).get() == 10);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(row_36_threads_submitting_cancelling_and_shutting_down_lose_no_future,
                        io_fixture) {
  struct submitted {
    std::future<int> result;
    int expected;
  };
  constexpr int submitters = 4;
  constexpr int per_thread = 150;
  constexpr int window = 8;
  std::vector<std::vector<submitted>> results(submitters);
  std::mutex stops_mutex;
  std::vector<std::shared_ptr<std::stop_source>> stops;
  std::atomic<int> count{0};
  std::atomic<bool> submitting_done{false};
  {
    auto o = fault_options(2);
    o.cancel_grace = 100ms;
    o.shutdown_grace = 200ms;
    crew::process_pool pool(ioc.get_executor(), o);
    std::vector<std::thread> threads;
    for (int t = 0; t < submitters; ++t)
      threads.emplace_back([&, t] {
        std::mt19937 rng(static_cast<unsigned>(t));
        auto& mine = results[static_cast<std::size_t>(t)];
        for (int i = 0; i < per_thread; ++i) {
          // At most `window` tasks of this thread outstanding: the pool makes progress
          // while others submit, cancel and shut down (a lost future fails below).
          if (i >= window) mine[static_cast<std::size_t>(i - window)].result.wait_for(30s);
          auto stop = std::make_shared<std::stop_source>();
          const int v = t * 1000 + i;
          const crew::task_options opts = stop_by(stop->get_token());
          if (rng() % 3 == 0) {
            const int ms = static_cast<int>(rng() % 10);
            mine.push_back({pool.submit(crew::test::sleep_ms(ms), opts), ms});
          } else {
            mine.push_back({pool.submit(crew::demo::identity(v), opts), v});
          }
          {
            std::lock_guard lock(stops_mutex);
            stops.push_back(std::move(stop));
          }
          ++count;
        }
      });
    std::thread canceller([&] {
      std::mt19937 rng(99);
      while (!submitting_done.load()) {
        std::shared_ptr<std::stop_source> victim;
        {
          std::lock_guard lock(stops_mutex);
          if (!stops.empty()) victim = stops[rng() % stops.size()];
        }
        if (victim) victim->request_stop();
        std::this_thread::sleep_for(1ms);
      }
    });
    std::thread shutter([&] {
      while (count.load() < submitters * per_thread / 2)
        std::this_thread::sleep_for(1ms);
      pool.shutdown(50ms);
    });
    for (auto& th : threads)
      th.join();
    submitting_done = true;
    canceller.join();
    shutter.join();
  }
  int values = 0, cancelled = 0, refused = 0, wrong = 0, unresolved = 0;
  std::string first_wrong;
  for (auto& per : results)
    for (auto& s : per) {
      if (!resolves(s.result, 30s)) {
        ++unresolved;
        continue;
      }
      try {
        const int v = s.result.get();
        if (v == s.expected) {
          ++values;
        } else {
          ++wrong;
          if (first_wrong.empty())
            first_wrong = std::to_string(v) + " instead of " + std::to_string(s.expected);
        }
      } catch (const crew::task_error& e) {
        if (e.code() == code(errc::cancelled)) {
          ++cancelled;
        } else if (e.code() == code(errc::shutting_down)) {
          ++refused;
        } else {
          ++wrong;
          if (first_wrong.empty()) first_wrong = e.what();
        }
      }
    }
  BOOST_TEST(unresolved == 0);
  BOOST_TEST(wrong == 0, first_wrong);
  BOOST_TEST(values + cancelled + refused == submitters * per_thread);
  BOOST_TEST_MESSAGE("values " << values << ", cancelled " << cancelled
                               << ", refused after shutdown " << refused);
  expect_no_leaks(fds_before);
}

// Pipelining (pipeline_depth > 1): tasks wait in a worker's pipe behind the running one. A
// worker's death fails only the task it ran; the ones behind it run elsewhere, unharmed; a
// cancelled task waiting in the pipe never runs and never answers anyone; deadlines start
// when a task starts.
BOOST_FIXTURE_TEST_CASE(pipelined_tasks_survive_crashes_cancels_and_deadlines, io_fixture) {
  {
    auto o = fault_options(2);
    o.pipeline_depth = 8;
    o.cancel_grace = 5s;  // a cancelled waiting task is answered at once, not killed
    crew::process_pool pool(ioc.get_executor(), o);
    // Many small tasks, results in place.
    std::vector<std::future<int>> many;
    for (int i = 0; i < 2000; ++i)
      many.push_back(pool.submit(crew::demo::identity(i)));
    for (int i = 0; i < 2000; ++i)
      BOOST_TEST(many[static_cast<std::size_t>(i)].get() == i);
    // A crash among queued tasks: only the crashing task fails.
    std::vector<std::future<int>> around;
    for (int i = 0; i < 40; ++i)
      around.push_back(i == 10 ? pool.submit(crew::test::crash(SIGSEGV))
                               : pool.submit(crew::test::sleep_ms(5)));
    int crashed = 0;
    for (int i = 0; i < 40; ++i) {
      auto& f = around[static_cast<std::size_t>(i)];
      BOOST_REQUIRE(resolves(f));
      if (i == 10) {
        BOOST_TEST(failure_of(std::move(f)).code() == code(errc::worker_crashed));
        ++crashed;
      } else {
        BOOST_TEST(f.get() == 5, "task " << i);
      }
    }
    BOOST_TEST(crashed == 1);
    // Cancel a task that waits behind a running one: it resolves as cancelled at once and
    // its worker, not killed, serves on.
    auto o1 = fault_options(1);
    o1.pipeline_depth = 4;
    o1.cancel_grace = 10s;
    crew::process_pool one(ioc.get_executor(), o1);
    BOOST_TEST(one.submit(crew::demo::identity(1)).get() == 1);
    const int pid = one.pids().at(0);
    auto running = one.submit(crew::test::sleep_ms(300));
    std::stop_source stop;
    auto waiting = one.submit(crew::test::sleep_ms(5000), stop_by(stop.get_token()));
    auto after = one.submit(crew::demo::identity(7));
    stop.request_stop();
    BOOST_REQUIRE(resolves(waiting, 5s));
    BOOST_TEST(failure_of(std::move(waiting)).code() == code(errc::cancelled));
    BOOST_TEST(running.get() == 300);
    BOOST_TEST(after.get() == 7);  // the 5 s task never ran: 7 comes right after 300
    BOOST_TEST(one.pids().at(0) == pid);
    // A deadline counts from the start of the task, not from when it was sent: a task
    // waiting behind a slow one does not time out while it waits.
    crew::task_options quick;
    quick.timeout = 1000ms;
    auto slow = one.submit(crew::test::sleep_ms(600));
    auto behind = one.submit(crew::test::sleep_ms(600), quick);
    BOOST_TEST(slow.get() == 600);
    BOOST_TEST(behind.get() == 600);
    crew::task_options tight;
    tight.timeout = 200ms;
    auto too_slow = one.submit(crew::test::sleep_ms(3000), tight);
    auto next = one.submit(crew::demo::identity(8));
    BOOST_TEST(failure_of(std::move(too_slow)).code() == code(errc::task_timeout));
    BOOST_TEST(next.get() == 8);  // put back and run on the replacement worker
    one.join();
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_AUTO_TEST_SUITE_END()
