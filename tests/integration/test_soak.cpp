// A long soak: many small tasks from several threads, with crashes and timeouts mixed in.
// Every task resolves exactly once, as its value or as the error its fault calls for, and
// the coordinator's memory, descriptors and threads stay flat after a warm-up.
// CREW_SOAK_TASKS sets the number of tasks (default 50,000).
#include <crew/process_pool.hpp>

#include "demo_jobs.hpp"
#include "fault_jobs.hpp"
#include "pool_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <semaphore>
#include <thread>

#include <unistd.h>

using crew::errc;
using namespace crew::test;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;  // their shadow memory and histories grow with the run
#else
constexpr bool sanitized = false;
#endif

enum class fault : std::uint8_t { none, crash, timeout };

std::size_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

std::size_t thread_count() {
  std::size_t n = 0;
  std::error_code ec;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec))
    ++n;
  return n;
}

std::size_t tasks_from_env() {
  const char* v = std::getenv("CREW_SOAK_TASKS");
  if (!v || !*v) return 50000;
  return std::max<std::size_t>(100, std::strtoull(v, nullptr, 10));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(soak, *boost::unit_test::timeout(600))

BOOST_FIXTURE_TEST_CASE(row_35_soak_every_task_resolves_once_and_the_coordinator_stays_flat,
                        io_fixture) {
  const std::size_t total = tasks_from_env();
  const std::size_t warm_tasks = std::min<std::size_t>(10000, total / 5);
  constexpr std::size_t submitters = 4;
  constexpr std::size_t workers = 2;
  constexpr std::ptrdiff_t max_in_flight = 256;

  crew::task_options timeout_options;
  timeout_options.timeout = 50ms;

  // Which tasks misbehave: about 1 in 2,000 crashes its worker, 1 in 5,000 times out.
  std::vector<fault> plan(total, fault::none);
  std::mt19937_64 rng(20240607);
  std::size_t planned_crashes = 0, planned_timeouts = 0;
  for (auto& f : plan) {
    const auto r = rng() % 10000;
    if (r < 5) {
      f = fault::crash;
      ++planned_crashes;
    } else if (r < 7) {
      f = fault::timeout;
      ++planned_timeouts;
    }
  }

  // Written by completion handlers (the pool's thread), read by the test thread.
  std::unique_ptr<std::atomic<int>[]> resolutions(new std::atomic<int>[total]);
  for (std::size_t i = 0; i < total; ++i)
    resolutions[i] = 0;
  std::atomic<std::size_t> resolved{0}, wrong{0}, crashes_seen{0}, timeouts_seen{0};
  std::mutex m;
  std::condition_variable cv;
  std::string first_wrong;
  std::counting_semaphore<max_in_flight> in_flight(max_in_flight);

  std::size_t rss_warm = 0, rss_end = 0, fds_warm = 0, fds_end = 0, threads_warm = 0,
              threads_end = 0;
  {
    auto o = crew::process_pool_options{};
    o.workers = workers;
    o.executable = CREW_FAULT_WORKER_PATH;
    o.on_output = [](const crew::output_line&) {};
    o.shutdown_grace = 200ms;
    o.pipeline_depth = 4;  // tasks wait behind crashing and hanging ones: they must survive
    crew::process_pool pool(ioc.get_executor(), o);

    auto record_wrong = [&](std::size_t i, const std::string& what) {
      ++wrong;
      std::lock_guard lock(m);
      if (first_wrong.empty()) first_wrong = "task " + std::to_string(i) + ": " + what;
    };
    auto finish = [&](std::size_t i) {
      resolutions[i].fetch_add(1);
      in_flight.release();
      resolved.fetch_add(1);
      std::lock_guard lock(m);  // the waiter checks `resolved` under the lock
      cv.notify_all();
    };
    auto submit_one = [&](std::size_t i) {
      in_flight.acquire();
      const int value = static_cast<int>(i);
      switch (plan[i]) {
        case fault::none:
          pool.async_submit(
              crew::demo::identity(value), [&, i, value](std::exception_ptr ep, int v) {
                if (ep)
                  record_wrong(i, std::string("failed: ") + crew::error_of(ep).message());
                else if (v != value)
                  record_wrong(i, "got " + std::to_string(v));
                finish(i);
              });
          break;
        case fault::crash:
          pool.async_submit(crew::test::crash(SIGSEGV), [&, i](std::exception_ptr ep, int) {
            if (crew::error_of(ep) == make_error_code(errc::worker_crashed))
              ++crashes_seen;
            else
              record_wrong(i, "a crash ended as: " + crew::error_of(ep).message());
            finish(i);
          });
          break;
        case fault::timeout:
          pool.async_submit(
              crew::test::sleep_ms(60000), timeout_options, [&, i](std::exception_ptr ep, int) {
                if (crew::error_of(ep) == make_error_code(errc::task_timeout))
                  ++timeouts_seen;
                else
                  record_wrong(i, "a timeout ended as: " + crew::error_of(ep).message());
                finish(i);
              });
          break;
      }
    };
    // Tasks [from, to) from `submitters` threads; returns once all of them resolved.
    auto run_phase = [&](std::size_t from, std::size_t to) {
      std::vector<std::thread> threads;
      for (std::size_t t = 0; t < submitters; ++t)
        threads.emplace_back([&, t] {
          for (std::size_t i = from + t; i < to; i += submitters)
            submit_one(i);
        });
      for (auto& th : threads)
        th.join();
      std::unique_lock lock(m);
      return cv.wait_for(lock, 120s, [&] { return resolved.load() == to; });
    };
    BOOST_REQUIRE_MESSAGE(run_phase(0, warm_tasks), "the warm-up did not resolve: "
                                                        << resolved.load() << " of " << warm_tasks);
    // Quiet: no task in flight (the phase is over) and every worker slot filled again.
    auto wait_full = [&] {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (pool.pids().size() < workers && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
      std::this_thread::sleep_for(200ms);
    };
    wait_full();
    rss_warm = rss_bytes();
    fds_warm = open_fds().size();
    threads_warm = thread_count();

    BOOST_REQUIRE_MESSAGE(run_phase(warm_tasks, total),
                          "the soak did not resolve: " << resolved.load() << " of " << total);
    wait_full();
    // A worker replaced at the very end may still hold its pipes for a moment.
    for (int i = 0; i < 250 && open_fds().size() != fds_warm; ++i)
      std::this_thread::sleep_for(20ms);
    rss_end = rss_bytes();
    fds_end = open_fds().size();
    threads_end = thread_count();
    pool.join();
  }

  std::size_t not_once = 0;
  for (std::size_t i = 0; i < total; ++i)
    if (resolutions[i].load() != 1) ++not_once;
  BOOST_TEST(not_once == 0u);
  BOOST_TEST(wrong.load() == 0u, first_wrong);
  BOOST_TEST(crashes_seen.load() == planned_crashes);
  BOOST_TEST(timeouts_seen.load() == planned_timeouts);
  BOOST_TEST_MESSAGE(total << " tasks, " << planned_crashes << " crashes, " << planned_timeouts
                           << " timeouts; RSS " << rss_warm << " -> " << rss_end << " bytes, fds "
                           << fds_warm << " -> " << fds_end << ", threads " << threads_warm
                           << " -> " << threads_end);
  if (!sanitized)
    BOOST_TEST(rss_end < rss_warm + (std::size_t{8} << 20),
               "RSS grew from " << rss_warm << " to " << rss_end);
  BOOST_TEST(fds_end == fds_warm);
  BOOST_TEST(threads_end == threads_warm);
  expect_no_leaks(fds_before);
}

BOOST_AUTO_TEST_SUITE_END()
