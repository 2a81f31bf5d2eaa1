#include "policy.hpp"

#include <algorithm>

namespace crew::detail::policy {

milliseconds boot_backoff(unsigned failures_in_a_row) noexcept {
  return milliseconds(100) * (1 << std::min(failures_in_a_row, 6u));
}

bool boot_breaker_trips(unsigned failures_in_a_row, unsigned max_boot_failures) noexcept {
  return failures_in_a_row >= max_boot_failures;
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
  return code == errc::worker_crashed && attempts < allowed && serving;
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
