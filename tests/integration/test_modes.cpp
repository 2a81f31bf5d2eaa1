// The same registered jobs give the same results inline, on threads and in processes.
#include <crew/inline_runner.hpp>
#include <crew/process_pool.hpp>
#include <crew/thread_pool.hpp>

#include "demo_jobs.hpp"
#include "pool_fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <numeric>

namespace asio = boost::asio;
using namespace crew::test;

namespace {

crew::registry demo_registry() {
  crew::registry r;
  crew::demo::register_jobs(r);
  return r;
}

crew::process_pool_options worker_options() {
  crew::process_pool_options o;
  o.workers = 2;
  o.executable = CREW_WORKER_PATH;
  o.args = {"--io-scale", "0.01"};
  o.on_output = [](const crew::output_line&) {};
  return o;
}

// Runs the same checks through any runner.
template <class Runner>
struct results {
  std::vector<int> identity, long_io;
  std::vector<double> long_comp, sums;
  std::vector<std::string> echoes;
  std::string error_message;
  crew::errc error_code{};

  explicit results(Runner& r) {
    std::vector<int> ints(50);
    std::iota(ints.begin(), ints.end(), 0);
    identity = r.map(crew::demo::identity, ints);
    long_io = r.map(crew::demo::long_io, std::vector<int>{0, 1, 2, 3});
    long_comp = r.map(crew::demo::long_comp, std::vector<int>{0, 1, 2, 3});
    std::vector<std::vector<double>> vectors{
        {}, {1.5}, {1e308, -1e308, 0.25}, std::vector<double>(10000, 0.5)};
    sums = r.map(crew::demo::sum, vectors);
    echoes = r.map(crew::demo::echo, std::vector<std::string>{"", "x", std::string(100000, '\0')});
    try {
      r.submit(crew::demo::fail("same message everywhere")).get();
    } catch (const crew::task_error& e) {
      error_message = e.message();
      error_code = static_cast<crew::errc>(e.code().value());
    }
  }
};

template <class A, class B>
void expect_equal(const A& a, const B& b) {
  BOOST_TEST(a.identity == b.identity, boost::test_tools::per_element());
  BOOST_TEST(a.long_io == b.long_io, boost::test_tools::per_element());
  BOOST_TEST(a.long_comp == b.long_comp, boost::test_tools::per_element());
  BOOST_TEST(a.sums == b.sums, boost::test_tools::per_element());
  BOOST_TEST((a.echoes == b.echoes));
  BOOST_TEST(a.error_message == b.error_message);
  BOOST_TEST(static_cast<int>(a.error_code) == static_cast<int>(b.error_code));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(modes, *boost::unit_test::timeout(120))

BOOST_FIXTURE_TEST_CASE(inline_threads_and_processes_agree, io_fixture) {
  const auto jobs = demo_registry();
  crew::demo::set_io_scale(0.01);
  crew::inline_runner in(jobs);
  results<crew::inline_runner> a(in);

  // The notebook's exact values, bit for bit as CPython computes them.
  for (double v : a.long_comp)
    BOOST_TEST(v == 2236.5678097446853);
  BOOST_TEST(a.long_io == (std::vector<int>{0, 2, 4, 6}), boost::test_tools::per_element());
  BOOST_TEST(a.error_message == "same message everywhere");
  BOOST_TEST(static_cast<int>(a.error_code) == static_cast<int>(crew::errc::job_failed));

  for (std::size_t threads : {1u, 2u, 4u}) {
    crew::thread_pool tp(jobs, threads);
    results<crew::thread_pool> b(tp);
    expect_equal(a, b);
  }
  {
    crew::process_pool pp(ioc.get_executor(), worker_options());
    results<crew::process_pool> c(pp);
    expect_equal(a, c);
    pp.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(in_process_runners_take_every_completion_token, io_fixture) {
  const auto jobs = demo_registry();
  crew::thread_pool tp(jobs, 2);
  crew::inline_runner in(jobs, ioc.get_executor());
  auto f = asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<int> {
        int a = co_await tp.async_submit(crew::demo::identity(1), asio::use_awaitable);
        int b = co_await in.async_submit(crew::demo::identity(2), asio::use_awaitable);
        co_return a + b;
      },
      asio::use_future);
  BOOST_TEST(f.get() == 3);
  std::promise<std::pair<bool, int>>
      p;  // checked in the test thread: Boost.Test is not thread-safe
  in.async_submit(crew::demo::identity(5), [&](std::exception_ptr, int v) {
    p.set_value({ioc.get_executor().running_in_this_thread(), v});
  });
  const auto [on_executor, value] = p.get_future().get();
  BOOST_TEST(on_executor);
  BOOST_TEST(value == 5);
  tp.join();
  try {
    tp.submit(crew::demo::identity(1)).get();
    BOOST_FAIL("a joined thread_pool must refuse work");
  } catch (const crew::task_error& e) {
    BOOST_TEST(e.code() == make_error_code(crew::errc::shutting_down));
  }
}

// A non-const lvalue range through the tokens that defer the initiation, in-process: Asio
// hands the initiation its own copy of the range, as an rvalue (or, for a deferred operation
// invoked as an lvalue, as a const lvalue).
BOOST_FIXTURE_TEST_CASE(
    in_process_async_map_takes_a_non_const_lvalue_range_with_awaitable_and_deferred, io_fixture) {
  const auto jobs = demo_registry();
  crew::thread_pool tp(jobs, 2);
  crew::inline_runner in(jobs, ioc.get_executor());
  std::vector<int> v(50);
  std::iota(v.begin(), v.end(), -10);
  const std::vector<int> expected = v;
  auto f = asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<std::pair<std::vector<int>, std::vector<int>>> {
        auto a = co_await tp.async_map(crew::demo::identity, v, asio::use_awaitable);
        auto b = co_await in.async_map(crew::demo::identity, v, asio::use_awaitable);
        co_return std::pair{std::move(a), std::move(b)};
      },
      asio::use_future);
  const auto [from_threads, from_inline] = f.get();
  BOOST_TEST(from_threads == expected, boost::test_tools::per_element());
  BOOST_TEST(from_inline == expected, boost::test_tools::per_element());
  auto op = tp.async_map(crew::demo::identity, v, asio::deferred);
  BOOST_TEST(op(asio::use_future).get() == expected, boost::test_tools::per_element());
  BOOST_TEST(std::move(op)(asio::use_future).get() == expected, boost::test_tools::per_element());
  auto inline_op = in.async_map(crew::demo::identity, v, asio::deferred);
  BOOST_TEST(std::move(inline_op)(asio::use_future).get() == expected,
             boost::test_tools::per_element());
  BOOST_TEST(v == expected, boost::test_tools::per_element());  // read, not moved from
  tp.join();
}

BOOST_AUTO_TEST_CASE(a_joined_thread_pool_still_completes_callbacks) {
  const auto jobs = demo_registry();
  crew::thread_pool tp(jobs, 2);
  tp.join();
  std::promise<crew::errc> p;
  tp.async_submit(crew::demo::identity(1), [&](std::exception_ptr ep, int) {
    p.set_value(static_cast<crew::errc>(crew::error_of(ep).value()));
  });
  auto f = p.get_future();
  BOOST_REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  BOOST_TEST(static_cast<int>(f.get()) == static_cast<int>(crew::errc::shutting_down));
}

BOOST_AUTO_TEST_CASE(a_joined_thread_pool_refuses_a_map_instead_of_hanging) {
  const auto jobs = demo_registry();
  crew::thread_pool tp(jobs, 2);
  tp.join();
  auto f = tp.async_map(crew::demo::identity, std::vector<int>{1, 2}, asio::use_future);
  BOOST_REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  BOOST_TEST(failure_of(std::move(f)).code() == make_error_code(crew::errc::shutting_down));
}

// An operation keeps its handler's executor busy until it completes: an io_context that
// only waits for a task's completion does not return from run() before it.
BOOST_FIXTURE_TEST_CASE(a_pending_task_keeps_its_handlers_io_context_running, io_fixture) {
  const auto jobs = demo_registry();
  crew::demo::set_io_scale(0.01);  // in-process long_io: 20 ms (the workers get --io-scale)
  for (int mode = 0; mode < 2; ++mode) {
    asio::io_context handlers;
    int got = -1;
    auto on_done =
        asio::bind_executor(handlers, [&](std::exception_ptr ep, int v) { got = ep ? -2 : v; });
    crew::thread_pool tp(jobs, 1);
    crew::process_pool pp(ioc.get_executor(), worker_options());
    if (mode == 0)
      tp.async_submit(crew::demo::long_io(7), on_done);
    else
      pp.async_submit(crew::demo::long_io(7), on_done);
    handlers.run();  // returns only once the handler has run
    BOOST_TEST(got == 14, "mode " << mode);
    pp.join();
  }
}

BOOST_AUTO_TEST_CASE(async_map_outlives_the_runner_that_started_it) {
  // The map's completion runs after the runner is gone (caught by ASan if it touches it).
  const auto jobs = demo_registry();
  boost::asio::io_context ioc;
  std::vector<int> got;
  {
    crew::inline_runner in(jobs, ioc.get_executor());
    in.async_map(crew::demo::identity, std::vector<int>{1, 2, 3},
                 [&](std::exception_ptr, std::vector<int> v) { got = std::move(v); });
  }
  ioc.run();
  BOOST_TEST(got == (std::vector<int>{1, 2, 3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_job_missing_from_the_registry_is_an_error_in_process) {
  crew::registry empty;
  crew::inline_runner in(empty);
  try {
    in.submit(crew::demo::identity(1)).get();
    BOOST_FAIL("expected unknown_job");
  } catch (const crew::task_error& e) {
    BOOST_TEST(e.code() == make_error_code(crew::errc::unknown_job));
  }
}

BOOST_AUTO_TEST_SUITE_END()
