// crew/detail/in_process.hpp — internal: running a task in the calling thread, what
// thread_pool and inline_runner share. Not part of the API: it changes without notice.
//
// Contract: `run_and_complete` runs one task of a registry in the calling thread, reports
// it (task_started, then task_finished or task_failed) and completes its handler through
// the handler's associated executor (else `fallback`): posted, or with `Dispatch`
// dispatched (inline when the calling thread runs that executor). It never throws: a job's
// exception reaches the handler as a task_error (one the job throws as is, any other as
// `job_failed` with its what()), and a stop requested before the job starts fails it with
// `cancelled` without running it. `check_in_process` refuses, by throwing
// std::invalid_argument, the task_options only a process_pool honours.
#pragma once

#include <crew/detail/completion.hpp>
#include <crew/detail/inproc_events.hpp>
#include <crew/error.hpp>
#include <crew/events.hpp>
#include <crew/job.hpp>
#include <crew/registry.hpp>
#include <crew/runner.hpp>

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace crew::detail {

/// Throws std::invalid_argument for options only a process_pool honours; `pool` names the
/// caller in the message.
inline void check_in_process(const task_options& o, const char* pool) {
  if (o.timeout || o.retries)
    throw std::invalid_argument(std::string(pool) +
                                ": task_options::timeout and ::retries need a process_pool "
                                "(a thread cannot be stopped or replaced)");
}

/// The exception being handled, as an in-process task delivers it: a task_error as thrown,
/// anything else as a task_error with `job_failed` and its text (describe_failure), the shape a
/// worker's error takes. Call it only inside a catch block.
inline std::exception_ptr wrap_current() {
  auto ep = std::current_exception();
  try {
    throw;
  } catch (const task_error&) {
    return ep;
  } catch (...) {
    return make_task_error(errc::job_failed, describe_failure(ep).message);
  }
}

/// Runs a job in this thread, reporting it to `events`, and completes `h` (see the contract
/// above).
template <bool Dispatch = false, class R, class... A, class Handler, class Executor>
void run_and_complete(const registry& jobs, invocation<R, A...> call, Handler&& h,
                      const Executor& fallback, inproc_events& events, std::uint64_t id,
                      const task_options& opts) {
  const std::string job = call.target->name();
  std::exception_ptr ep;
  std::conditional_t<std::is_void_v<R>, int, R> value{};
  if (opts.stop.stop_requested()) {
    ep = make_task_error(errc::cancelled, "cancelled before it started");
  } else {
    events.emit(event_kind::task_started, id, job, opts.label, true);
    try {
      if constexpr (std::is_void_v<R>)
        jobs.call(std::move(call));
      else
        value = jobs.call(std::move(call));
    } catch (...) {
      ep = wrap_current();
    }
  }
  if (events) {
    if (ep) {
      const auto f = describe_failure(ep);
      events.emit(event_kind::task_failed, id, job, opts.label, true, f.code, f.message);
    } else {
      events.emit(event_kind::task_finished, id, job, opts.label, true);
    }
  }
  auto complete = [&](auto&&... args) {
    if constexpr (Dispatch)
      dispatch_completion(std::forward<Handler>(h), fallback,
                          std::forward<decltype(args)>(args)...);
    else
      post_completion(std::forward<Handler>(h), fallback, std::forward<decltype(args)>(args)...);
  };
  if constexpr (std::is_void_v<R>)
    complete(ep);
  else
    complete(ep, std::move(value));
}

}  // namespace crew::detail
