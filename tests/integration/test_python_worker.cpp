// process_pool with workers written in Python from docs/protocol.md alone
// (apps/examples/python_worker.py): values, errors, batches, crashes, clean ends.
#include <crew/process_pool.hpp>

#include "pool_fixture.hpp"

#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <future>
#include <limits>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

namespace asio = boost::asio;
using crew::errc;
using namespace crew::test;
using namespace std::string_literals;

namespace {

// The jobs the Python worker serves, declared as a C++ coordinator sees them.
const crew::job<std::string(std::string)> py_upper{"py_upper"};
const crew::job<std::int64_t(std::int64_t, std::int64_t)> py_add{"py_add"};
const crew::job<double(std::vector<double>)> py_sum{"py_sum"};
const crew::job<std::vector<std::string>(std::string, std::string)> py_split{"py_split"};
const crew::job<int(std::string)> py_fail{"py_fail"};
const crew::job<int(int)> py_exit{"py_exit"};
const crew::job<int(int)> py_sleep_ms{"py_sleep_ms"};
const crew::job<std::uint64_t(int)> py_task_id{"py_task_id"};  // the frame's task id

crew::process_pool_options worker_options(std::size_t workers = 2) {
  crew::process_pool_options o;
  o.workers = workers;
  o.executable = CREW_PYTHON3_PATH;
  o.args = {CREW_PYTHON_WORKER_PATH};
  o.on_output = [](const crew::output_line&) {};  // keep the test log readable
  return o;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(python_worker, *boost::unit_test::timeout(60))

BOOST_FIXTURE_TEST_CASE(every_job_returns_its_values_with_their_types, io_fixture) {
  {
    crew::process_pool pool(ioc.get_executor(), worker_options());
    // str is bytes: NUL bytes and bytes that are not UTF-8 travel unchanged.
    BOOST_TEST(pool.submit(py_upper("a\0b\xff-z"s)).get() == "A\0B\xff-Z"s);
    BOOST_TEST(pool.submit(py_upper(""s)).get() == ""s);
    BOOST_TEST(pool.submit(py_add(-5, 3)).get() == -2);
    constexpr auto min = std::numeric_limits<std::int64_t>::min();
    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    BOOST_TEST(pool.submit(py_add(min, max)).get() == -1);
    BOOST_TEST(pool.submit(py_add(max - 1, 1)).get() == max);
    BOOST_TEST(pool.submit(py_sum(std::vector<double>{1.5, -0.25, 2.0})).get() == 3.25);
    BOOST_TEST(pool.submit(py_sum(std::vector<double>{})).get() == 0.0);
    std::vector<double> many(10000, 0.5);
    BOOST_TEST(pool.submit(py_sum(many)).get() == 5000.0);
    const std::vector<std::string> parts{"a", "", "b\0c"s, ""};
    BOOST_TEST(pool.submit(py_split("a,,b\0c,"s, ","s)).get() == parts,
               boost::test_tools::per_element());
    BOOST_TEST(pool.submit(py_sleep_ms(1)).get() == 1);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(tasks_sent_ahead_come_back_in_order, io_fixture) {
  {
    auto o = worker_options(1);
    o.pipeline_depth = 8;  // several task frames wait in the worker's pipe
    crew::process_pool pool(ioc.get_executor(), o);
    std::vector<std::future<std::int64_t>> results;
    for (std::int64_t i = 0; i < 300; ++i)
      results.push_back(pool.submit(py_add(i, -1000)));
    for (std::int64_t i = 0; i < 300; ++i)
      BOOST_TEST(results[static_cast<std::size_t>(i)].get() == i - 1000);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(a_python_exception_arrives_as_job_failed_with_its_message, io_fixture) {
  {
    crew::process_pool pool(ioc.get_executor(), worker_options(1));
    auto e = failure_of(pool.submit(py_fail("disk quota exceeded on /data"s)));
    BOOST_TEST(e.code() == make_error_code(errc::job_failed));
    BOOST_TEST(e.message() == "disk quota exceeded on /data");
    e = failure_of(pool.submit(py_fail("na\xc3\xafve \xe2\x82\xac"s)));  // UTF-8 survives
    BOOST_TEST(e.message() == "na\xc3\xafve \xe2\x82\xac");
    // The worker survives its job's exception and serves the next task.
    const auto pid = pool.pids().at(0);
    BOOST_TEST(pool.submit(py_add(2, 3)).get() == 5);
    BOOST_TEST(pool.pids().at(0) == pid);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

// The Python worker sets the hello's batch flag: map sends it batch frames (§9).
BOOST_FIXTURE_TEST_CASE(map_sends_batches_and_keeps_the_order, io_fixture) {
  {
    auto o = worker_options(2);
    o.map_chunk = 50;
    crew::process_pool pool(ioc.get_executor(), o);
    std::vector<int> in(300);
    for (int i = 0; i < 300; ++i)
      in[static_cast<std::size_t>(i)] = i;
    // py_task_id returns the id of the frame its call came in: items k*50 .. k*50+49 share
    // one, i.e. they came in one batch frame, and no two batches share an id.
    const auto ids = pool.map(py_task_id, in);
    BOOST_TEST_REQUIRE(ids.size() == in.size());
    BOOST_TEST(std::set<std::uint64_t>(ids.begin(), ids.end()).size() == 6u);
    for (std::size_t i = 0; i < ids.size(); ++i)
      BOOST_TEST(ids[i] == ids[i - i % 50], "item " << i);

    std::vector<std::string> words, upper;
    for (int i = 0; i < 300; ++i) {
      words.push_back("item " + std::to_string(i) + "\0x"s);
      upper.push_back("ITEM " + std::to_string(i) + "\0X"s);
    }
    BOOST_TEST(pool.map(py_upper, words) == upper, boost::test_tools::per_element());

    // An item that raises fails the map with its own message; the pool is unharmed.
    auto e = failure_of(pool.async_map(py_fail, words, asio::use_future));
    BOOST_TEST(e.code() == make_error_code(errc::job_failed));
    BOOST_TEST((std::find(words.begin(), words.end(), e.message()) != words.end()), e.message());
    BOOST_TEST(pool.map(py_upper, std::vector<std::string>{"x", "y"}) ==
                   (std::vector<std::string>{"X", "Y"}),
               boost::test_tools::per_element());
    pool.join();
  }
  expect_no_leaks(fds_before);
}

// Started with --no-batch the worker leaves the flag clear: one task frame per item.
BOOST_FIXTURE_TEST_CASE(without_the_batch_flag_each_item_is_its_own_task, io_fixture) {
  {
    auto o = worker_options(2);
    o.args.push_back("--no-batch");
    o.map_chunk = 50;
    crew::process_pool pool(ioc.get_executor(), o);
    std::vector<int> in(200, 0);
    const auto ids = pool.map(py_task_id, in);
    BOOST_TEST(std::set<std::uint64_t>(ids.begin(), ids.end()).size() == in.size());
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(a_worker_exiting_mid_task_fails_it_and_is_replaced, io_fixture) {
  {
    crew::process_pool pool(ioc.get_executor(), worker_options(1));
    BOOST_TEST(pool.submit(py_add(1, 1)).get() == 2);
    const int first = pool.pids().at(0);
    auto e = failure_of(pool.submit(py_exit(3)));
    BOOST_TEST(e.code() == make_error_code(errc::worker_crashed));
    BOOST_TEST(contains(e.message(), "exited with code 3"), e.message());
    BOOST_TEST(contains(e.message(), "pid " + std::to_string(first)), e.message());
    BOOST_TEST(contains(e.message(), "exiting with status 3"), e.message());  // stderr tail
    // Exit status 0 in the middle of a task is a crash too.
    e = failure_of(pool.submit(py_exit(0)));
    BOOST_TEST(e.code() == make_error_code(errc::worker_crashed));
    // A new worker serves the next task, and a batch whose worker dies fails as a whole.
    BOOST_TEST(pool.submit(py_add(2, 2)).get() == 4);
    BOOST_TEST(pool.pids().at(0) != first);
    e = failure_of(pool.async_map(py_exit, std::vector<int>{5, 5, 5}, asio::use_future));
    BOOST_TEST(e.code() == make_error_code(errc::worker_crashed));
    BOOST_TEST(pool.map(py_upper, std::vector<std::string>{"a", "b"}) ==
                   (std::vector<std::string>{"A", "B"}),
               boost::test_tools::per_element());
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(a_mismatched_signature_and_an_unknown_job_are_named, io_fixture) {
  {
    crew::process_pool pool(ioc.get_executor(), worker_options(1));
    const crew::job<int(double)> wrong_signature{"py_add"};
    auto e = failure_of(pool.submit(wrong_signature(1.5)));
    BOOST_TEST(e.code() == make_error_code(errc::signature_mismatch));
    BOOST_TEST(contains(e.message(), "i64(i64,i64)"), e.message());
    BOOST_TEST(contains(e.message(), "i32(f64)"), e.message());

    const crew::job<int(int)> missing{"no_such_job"};
    e = failure_of(pool.submit(missing(1)));
    BOOST_TEST(e.code() == make_error_code(errc::unknown_job));
    BOOST_TEST(contains(e.message(), "no_such_job"), e.message());
    BOOST_TEST(contains(e.message(), "py_upper"), e.message());  // what the hello listed
    BOOST_TEST(pool.submit(py_add(-1, -1)).get() == -2);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

// The worker ignores cancel frames (the protocol allows it): the pool kills it after the
// cancel grace and serves the next task on a new worker.
BOOST_FIXTURE_TEST_CASE(a_cancelled_task_ends_a_worker_that_ignores_cancels, io_fixture) {
  std::promise<void> sleeping;
  std::once_flag once;
  {
    auto o = worker_options(1);
    o.cancel_grace = std::chrono::milliseconds(200);
    o.on_output = [&](const crew::output_line& l) {
      if (contains(std::string(l.text), "py_sleep_ms: sleeping"))
        std::call_once(once, [&] { sleeping.set_value(); });
    };
    crew::process_pool pool(ioc.get_executor(), o);
    BOOST_TEST(pool.submit(py_add(0, 0)).get() == 0);
    const int first = pool.pids().at(0);
    std::stop_source stop;
    crew::task_options opts;
    opts.stop = stop.get_token();
    auto running = pool.submit(py_sleep_ms(60000), opts);
    sleeping.get_future().get();  // the job runs (it says so on stdout)
    stop.request_stop();
    BOOST_TEST(failure_of(std::move(running)).code() == make_error_code(errc::cancelled));
    BOOST_TEST(pool.submit(py_add(4, 5)).get() == 9);
    BOOST_TEST(pool.pids().at(0) != first);
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(close_and_join_finish_the_work_and_leave_no_child, io_fixture) {
  {
    crew::process_pool pool(ioc.get_executor(), worker_options());
    std::vector<std::future<int>> queued;
    for (int i = 1; i <= 6; ++i)
      queued.push_back(pool.submit(py_sleep_ms(i * 10)));
    pool.close();
    BOOST_TEST(failure_of(pool.submit(py_add(1, 2))).code() ==
               make_error_code(errc::shutting_down));
    pool.join();
    for (int i = 1; i <= 6; ++i)
      BOOST_TEST(queued[static_cast<std::size_t>(i - 1)].get() == i * 10);
    BOOST_TEST(pool.pids().empty());
    BOOST_TEST(children().empty());
  }
  expect_no_leaks(fds_before);
}

BOOST_AUTO_TEST_SUITE_END()
