// The supervisor's rules on their own (lib/src/pool/policy.hpp): no processes, no timers.
#include "pool/policy.hpp"

#include <boost/test/unit_test.hpp>

#include <limits>
#include <map>
#include <ostream>

#include "pool_printers.hpp"

namespace {

namespace policy = crew::detail::policy;
using crew::errc;
using std::chrono::milliseconds;

BOOST_AUTO_TEST_CASE(boot_backoff_doubles_from_200ms_up_to_6400ms) {
  const milliseconds expected[] = {milliseconds(200),  milliseconds(400),  milliseconds(800),
                                   milliseconds(1600), milliseconds(3200), milliseconds(6400),
                                   milliseconds(6400), milliseconds(6400)};
  for (unsigned n = 1; n <= 8; ++n)
    BOOST_TEST(policy::boot_backoff(n).count() == expected[n - 1].count(), "after " << n);
  BOOST_TEST(policy::boot_backoff(1000).count() == 6400);
}

BOOST_AUTO_TEST_CASE(boot_breaker_trips_at_the_limit_in_a_row) {
  BOOST_TEST(!policy::boot_breaker_trips(1, 3));
  BOOST_TEST(!policy::boot_breaker_trips(2, 3));
  BOOST_TEST(policy::boot_breaker_trips(3, 3));
  BOOST_TEST(policy::boot_breaker_trips(4, 3));
  BOOST_TEST(policy::boot_breaker_trips(1, 1));
}

BOOST_AUTO_TEST_CASE(crash_loop_breaker_counts_crashes_in_a_row_and_resets_on_a_reply) {
  policy::crash_loop_breaker b(3);
  BOOST_TEST(!b.on_worker_killed());
  BOOST_TEST(!b.on_worker_killed());
  b.on_reply();  // a task completed in between: the run starts again
  BOOST_TEST(b.count() == 0u);
  BOOST_TEST(!b.on_worker_killed());
  BOOST_TEST(!b.on_worker_killed());
  BOOST_TEST(b.on_worker_killed());
  BOOST_TEST(b.count() == 3u);
}

BOOST_AUTO_TEST_CASE(crash_loop_breaker_with_limit_0_never_trips) {
  policy::crash_loop_breaker b(0);
  for (int i = 0; i < 1000; ++i)
    BOOST_TEST_REQUIRE(!b.on_worker_killed());
}

BOOST_AUTO_TEST_CASE(only_crashes_and_protocol_violations_count_as_killing_a_worker) {
  BOOST_TEST(policy::killed_its_worker(errc::worker_crashed));
  BOOST_TEST(policy::killed_its_worker(errc::protocol_error));
  for (errc e : {errc::job_failed, errc::task_timeout, errc::cancelled, errc::shutting_down,
                 errc::worker_boot_failed, errc::payload_too_large})
    BOOST_TEST(!policy::killed_its_worker(e), e);
}

BOOST_AUTO_TEST_CASE(retries_come_from_the_task_else_the_job_else_the_pool) {
  const std::map<std::string, unsigned, std::less<>> per_job{{"flaky", 5}};
  BOOST_TEST(policy::retries_for("other", std::nullopt, per_job, 1) == 1u);
  BOOST_TEST(policy::retries_for("flaky", std::nullopt, per_job, 1) == 5u);
  BOOST_TEST(policy::retries_for("flaky", 0u, per_job, 1) == 0u);
  BOOST_TEST(policy::retries_for("other", 2u, per_job, 1) == 2u);
}

BOOST_AUTO_TEST_CASE(only_worker_deaths_are_retried_within_the_allowance_while_serving) {
  BOOST_TEST(policy::should_retry(errc::worker_crashed, 0, 1, true));
  BOOST_TEST(!policy::should_retry(errc::worker_crashed, 1, 1, true));   // used up
  BOOST_TEST(!policy::should_retry(errc::worker_crashed, 0, 0, true));   // none allowed
  BOOST_TEST(!policy::should_retry(errc::worker_crashed, 0, 3, false));  // broken or destroyed
  for (errc e : {errc::job_failed, errc::task_timeout, errc::protocol_error, errc::cancelled})
    BOOST_TEST(!policy::should_retry(e, 0, 3, true), e);
}

BOOST_AUTO_TEST_CASE(recycling_by_task_count_and_by_resident_memory) {
  BOOST_TEST(!policy::recycle_reason(10, 0, std::nullopt, 0));  // no limits
  BOOST_TEST(!policy::recycle_reason(2, 3, std::nullopt, 0));
  auto by_count = policy::recycle_reason(3, 3, std::nullopt, 0);
  BOOST_TEST_REQUIRE(by_count.has_value());
  BOOST_TEST(*by_count == "it ran 3 tasks (max_tasks_per_worker)");
  BOOST_TEST(!policy::recycle_reason(1, 0, std::size_t{1} << 20, std::size_t{2} << 20));
  BOOST_TEST(!policy::recycle_reason(1, 0, std::nullopt, 1));  // unknown memory: kept
  auto by_rss = policy::recycle_reason(1, 0, std::size_t{3} << 20, std::size_t{2} << 20);
  BOOST_TEST_REQUIRE(by_rss.has_value());
  BOOST_TEST(*by_rss ==
             "its resident memory is 3072 KiB, over the limit of 2048 KiB (max_worker_rss)");
}

BOOST_AUTO_TEST_CASE(deadlines_per_task_and_per_batch_item_saturate) {
  BOOST_TEST(policy::task_deadline(std::nullopt, milliseconds(0), 0).count() == 0);
  BOOST_TEST(policy::task_deadline(std::nullopt, milliseconds(50), 0).count() == 50);
  BOOST_TEST(policy::task_deadline(milliseconds(70), milliseconds(50), 0).count() == 70);
  BOOST_TEST(policy::task_deadline(milliseconds(0), milliseconds(50), 0).count() == 0);
  BOOST_TEST(policy::task_deadline(std::nullopt, milliseconds(50), 1).count() == 50);
  BOOST_TEST(policy::task_deadline(std::nullopt, milliseconds(50), 4).count() == 200);
  BOOST_TEST(policy::task_deadline(std::nullopt, milliseconds(0), 4).count() == 0);
  const auto huge = milliseconds(std::numeric_limits<milliseconds::rep>::max() / 2);
  BOOST_TEST(policy::task_deadline(huge, milliseconds(0), 3).count() ==
             milliseconds::max().count());
}

BOOST_AUTO_TEST_CASE(stop_ladders_from_the_mildest_step) {
  const milliseconds grace(250);
  const auto graceful = policy::graceful_stop(grace);
  BOOST_TEST_REQUIRE(graceful.size == 3u);
  BOOST_TEST(graceful.rungs[0].step == policy::stop_step::close_input);
  BOOST_TEST(graceful.rungs[0].wait.count() == 250);
  BOOST_TEST(graceful.rungs[1].step == policy::stop_step::terminate);
  BOOST_TEST(graceful.rungs[1].wait.count() == 250);
  BOOST_TEST(graceful.rungs[2].step == policy::stop_step::kill);

  const auto overdue = policy::overdue_stop(grace);
  BOOST_TEST_REQUIRE(overdue.size == 2u);
  BOOST_TEST(overdue.rungs[0].step == policy::stop_step::terminate);
  BOOST_TEST(overdue.rungs[0].wait.count() == 250);
  BOOST_TEST(overdue.rungs[1].step == policy::stop_step::kill);

  const auto now = policy::kill_now();
  BOOST_TEST_REQUIRE(now.size == 1u);
  BOOST_TEST(now.rungs[0].step == policy::stop_step::kill);
}

}  // namespace
