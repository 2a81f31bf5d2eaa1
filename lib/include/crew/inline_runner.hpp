// crew/inline_runner.hpp — the same jobs, run in the calling thread.
//
// For tests and measurements: no threads, no processes. Read next: process_pool.hpp.
#pragma once

#include <crew/detail/in_process.hpp>
#include <crew/detail/inproc_events.hpp>
#include <crew/events.hpp>
#include <crew/job.hpp>
#include <crew/registry.hpp>
#include <crew/runner.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/system_executor.hpp>

#include <cstdint>
#include <utility>

namespace crew {

/// Runs each task immediately, in the thread that submits it, then posts the completion
/// to the handler's executor (default: the runner's). The baseline for measuring what
/// threads and processes add. Same submit/map API as the pools; no close, no deadlines,
/// no cancellation slot (a stop requested on task_options::stop before the call is honoured).
/// Thread safety: every member may be called from any thread; concurrent submissions run
/// their jobs concurrently, each in its own caller's thread.
class inline_runner : public basic_runner<inline_runner> {
 public:
  /// The executor type of get_executor().
  using executor_type = boost::asio::any_io_executor;

  /// Serves the jobs of `jobs` (which must outlive the runner and get no more `add` calls);
  /// completions default to `ex` (by default Asio's system executor, whose threads then run
  /// the handlers). `on_event` receives the tasks' events (crew/events.hpp).
  explicit inline_runner(const registry& jobs, executor_type ex = boost::asio::system_executor(),
                         event_handler on_event = {})
      : jobs_(&jobs), ex_(std::move(ex)), events_(std::move(on_event)) {}

  /// The executor completions default to.
  executor_type get_executor() const noexcept { return ex_; }

  /// `async_submit(inv, token)`: as below, with default task_options.
  using basic_runner<inline_runner>::async_submit;
  /// Runs `inv` now, in this thread, with a label for the task's events and a stop token
  /// (see task_options): returns only after the job has run. Completion signature:
  /// `task_signature_t<R>`; the handler is posted to its associated executor (default: the
  /// runner's), never invoked from within this call. Errors as thread_pool::async_submit
  /// (`job_failed`, `unknown_job`, `signature_mismatch`), never thrown. The token is
  /// required (the default token type is void in Boost 1.81). Throws std::invalid_argument
  /// for a timeout or retries (see task_options).
  template <class R, class... A,
            class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_submit(invocation<R, A...> inv, task_options options, CompletionToken&& token = {}) {
    detail::check_in_process(options, "inline_runner");
    return boost::asio::async_initiate<CompletionToken, task_signature_t<R>>(
        [this](auto handler, invocation<R, A...> call, task_options opts) {
          const std::uint64_t id = events_ ? events_.next_id() : 0;
          events_.emit(event_kind::task_queued, id, call.target->name(), opts.label, false);
          detail::run_and_complete(*jobs_, std::move(call), std::move(handler), ex_, events_, id,
                                   opts);
        },
        token, std::move(inv), std::move(options));
  }

 private:
  const registry* jobs_;
  executor_type ex_;
  detail::inproc_events events_;
};

}  // namespace crew
