#include "policy.hpp"

#include <algorithm>

namespace crew::detail::policy {

milliseconds boot_backoff(unsigned failures_in_a_row) noexcept {
  return std::min(milliseconds(100) * (1 << std::min(failures_in_a_row, 6u)), max_boot_backoff);
}

namespace {
unsigned limit_of(unsigned max_boot_failures) noexcept {
  return std::max(max_boot_failures, 1u);
}
}  // namespace

milliseconds boot_retry_delay(unsigned failures_in_a_row, unsigned max_boot_failures) noexcept {
  return slot_at_limit(failures_in_a_row, max_boot_failures) ? max_boot_backoff
                                                             : boot_backoff(failures_in_a_row);
}

bool slot_at_limit(unsigned failures_in_a_row, unsigned max_boot_failures) noexcept {
  return failures_in_a_row >= limit_of(max_boot_failures);
}

std::optional<std::string> boot_breaker_reason(const boot_view& v, unsigned max_boot_failures) {
  if (v.alive > 0) return std::nullopt;
  const unsigned limit = limit_of(max_boot_failures);
  if (!v.ever_alive && v.starting == 0 && v.failures >= limit)
    return "workers failed to start " + std::to_string(v.failures) + " times in a row";
  if (v.slots > 0 && v.at_limit >= v.slots)
    return v.slots == 1
               ? "the worker failed to start " + std::to_string(limit) + " times in a row"
               : "each of the " + std::to_string(v.slots) + " worker slots failed to start " +
                     std::to_string(limit) + " times in a row, with no worker running";
  return std::nullopt;
}

bool reports_unavailable(unsigned failures_in_a_row, unsigned max_boot_failures, bool other_alive,
                         bool reported) noexcept {
  return other_alive && !reported && slot_at_limit(failures_in_a_row, max_boot_failures);
}

bool killed_its_worker(errc code) noexcept {
  return code == errc::worker_crashed || code == errc::protocol_error;
}

unsigned retries_for(std::string_view job, std::optional<unsigned> task_retries,
                     const std::map<std::string, unsigned, std::less<>>& job_retries,
                     unsigned pool_retries) {
  if (task_retries) return *task_retries;
  if (auto it = job_retries.find(job); it != job_retries.end()) return it->second;
  return pool_retries;
}

bool should_retry(errc code, unsigned attempts, unsigned allowed, bool serving) noexcept {
  return (code == errc::worker_crashed || code == errc::worker_lost) && attempts < allowed &&
         serving;
}

std::optional<std::string> recycle_reason(std::size_t tasks_done, std::size_t max_tasks,
                                          std::optional<std::size_t> resident_bytes,
                                          std::size_t max_resident) {
  std::optional<std::string> why;
  if (max_tasks > 0 && tasks_done >= max_tasks)
    why = "it ran " + std::to_string(tasks_done) + " tasks (max_tasks_per_worker)";
  if (max_resident > 0 && resident_bytes && *resident_bytes > max_resident)
    why = "its resident memory is " + std::to_string(*resident_bytes >> 10) +
          " KiB, over the limit of " + std::to_string(max_resident >> 10) + " KiB (max_worker_rss)";
  return why;
}

milliseconds task_deadline(std::optional<milliseconds> task_timeout, milliseconds pool_timeout,
                           std::uint32_t batch_items) noexcept {
  milliseconds t = task_timeout.value_or(pool_timeout);
  if (batch_items > 1 && t.count() > 0)
    t = t.count() > milliseconds::max().count() / batch_items ? milliseconds::max()
                                                              : t * batch_items;
  return t;
}

stop_ladder graceful_stop(milliseconds grace) noexcept {
  return {{{{stop_step::close_input, grace}, {stop_step::terminate, grace}, {stop_step::kill, {}}}},
          3};
}

stop_ladder overdue_stop(milliseconds grace) noexcept {
  return {{{{stop_step::terminate, grace}, {stop_step::kill, {}}}}, 2};
}

stop_ladder kill_now() noexcept {
  return {{{{stop_step::kill, {}}}}, 1};
}

}  // namespace crew::detail::policy
