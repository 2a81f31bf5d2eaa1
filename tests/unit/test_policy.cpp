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

BOOST_AUTO_TEST_CASE(a_slot_past_the_limit_retries_at_the_capped_backoff) {
  BOOST_TEST(policy::max_boot_backoff.count() == 6400);
  BOOST_TEST(policy::boot_retry_delay(1, 3).count() == 200);
  BOOST_TEST(policy::boot_retry_delay(2, 3).count() == 400);
  BOOST_TEST(policy::boot_retry_delay(3, 3).count() == 6400);  // unavailable from here on
  BOOST_TEST(policy::boot_retry_delay(4, 3).count() == 6400);
  BOOST_TEST(policy::boot_retry_delay(1000, 3).count() == 6400);
  BOOST_TEST(policy::boot_retry_delay(5, 10).count() == 3200);  // below a higher limit
  BOOST_TEST(policy::boot_retry_delay(1, 0).count() == 6400);   // 0 counts as 1
}

BOOST_AUTO_TEST_CASE(a_slot_reaches_the_limit_in_a_row) {
  BOOST_TEST(!policy::slot_at_limit(0, 3));
  BOOST_TEST(!policy::slot_at_limit(2, 3));
  BOOST_TEST(policy::slot_at_limit(3, 3));
  BOOST_TEST(policy::slot_at_limit(4, 3));
  BOOST_TEST(policy::slot_at_limit(1, 1));
  BOOST_TEST(!policy::slot_at_limit(0, 0));
  BOOST_TEST(policy::slot_at_limit(1, 0));  // 0 counts as 1
}

// A worker that never starts: the pool breaks once every slot was tried, none is starting,
// and max_boot_failures starts failed (3 for a pool of one, as before).
BOOST_AUTO_TEST_CASE(a_pool_where_no_worker_ever_started_breaks_after_a_few_starts) {
  policy::boot_view one{.slots = 1, .at_limit = 0, .failures = 1};
  BOOST_TEST(!policy::boot_breaker_reason(one, 3));
  one.failures = 2;
  BOOST_TEST(!policy::boot_breaker_reason(one, 3));
  one.failures = 3;
  one.at_limit = 1;
  const auto why = policy::boot_breaker_reason(one, 3);
  BOOST_TEST_REQUIRE(why.has_value());
  BOOST_TEST(*why == "workers failed to start 3 times in a row");
  BOOST_TEST(policy::boot_breaker_reason({.slots = 1, .failures = 1}, 1).has_value());
  BOOST_TEST(policy::boot_breaker_reason({.slots = 1, .failures = 1}, 0).has_value());

  // Four slots: while others are still starting (or not tried yet), it waits for them.
  policy::boot_view four{.slots = 4, .starting = 3, .failures = 3};
  BOOST_TEST(!policy::boot_breaker_reason(four, 3));
  four.starting = 1;
  four.failures = 5;
  BOOST_TEST(!policy::boot_breaker_reason(four, 3));
  four.starting = 0;
  const auto all = policy::boot_breaker_reason(four, 3);
  BOOST_TEST_REQUIRE(all.has_value());
  BOOST_TEST(*all == "workers failed to start 5 times in a row");
}

// Issue 13: slots that cannot start do not break a pool that has a worker alive, however
// many times they fail.
BOOST_AUTO_TEST_CASE(a_pool_with_a_worker_alive_never_breaks_on_boot_failures) {
  for (bool ever : {false, true})
    BOOST_TEST(!policy::boot_breaker_reason({.slots = 4,
                                             .alive = 1,
                                             .starting = 0,
                                             .at_limit = 3,
                                             .ever_alive = ever,
                                             .failures = 1000},
                                            3));
  // Before the first hello, failures of some slots while another is still starting do not
  // count against it: the start-up race of a partly started pool.
  BOOST_TEST(!policy::boot_breaker_reason({.slots = 4, .starting = 2, .failures = 6}, 1));
}

// After a worker has served, the pool's count no longer decides: only every slot at its
// limit with no worker alive breaks it (one slot's single failure does not).
BOOST_AUTO_TEST_CASE(a_pool_that_served_breaks_only_when_every_slot_reached_the_limit) {
  policy::boot_view v{.slots = 4, .starting = 0, .at_limit = 3, .ever_alive = true, .failures = 40};
  BOOST_TEST(!policy::boot_breaker_reason(v, 3));
  v.at_limit = 4;
  const auto why = policy::boot_breaker_reason(v, 3);
  BOOST_TEST_REQUIRE(why.has_value());
  BOOST_TEST(*why ==
             "each of the 4 worker slots failed to start 3 times in a row, with no worker running");
  v.starting = 2;  // slots at their limit retrying: still nothing can start
  BOOST_TEST(policy::boot_breaker_reason(v, 3).has_value());
  const auto single = policy::boot_breaker_reason(
      {.slots = 1, .at_limit = 1, .ever_alive = true, .failures = 9}, 3);
  BOOST_TEST_REQUIRE(single.has_value());
  BOOST_TEST(*single == "the worker failed to start 3 times in a row");
  // Slots failing in turn while another starts cannot keep a dead pool going for ever.
  BOOST_TEST(
      policy::boot_breaker_reason({.slots = 2, .starting = 1, .at_limit = 2, .failures = 6}, 3)
          .has_value());
}

BOOST_AUTO_TEST_CASE(a_slot_is_reported_unavailable_once_at_the_limit_while_another_serves) {
  BOOST_TEST(!policy::reports_unavailable(2, 3, true, false));  // below the limit
  BOOST_TEST(policy::reports_unavailable(3, 3, true, false));
  BOOST_TEST(policy::reports_unavailable(7, 3, true, false));    // reached while none alive
  BOOST_TEST(!policy::reports_unavailable(3, 3, false, false));  // no other worker alive
  BOOST_TEST(!policy::reports_unavailable(4, 3, true, true));    // already reported
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
