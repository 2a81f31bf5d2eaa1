// crew/inline_runner.hpp — the same jobs, run in the calling thread.
//
// For tests and measurements: no threads, no processes. Read next: process_pool.hpp.
#pragma once

#include <crew/registry.hpp>
#include <crew/runner.hpp>
#include <crew/thread_pool.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/system_executor.hpp>

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

  /// Runs `inv` now, in this thread: returns only after the job has run. Completion
  /// signature: `task_signature_t<R>`; the handler is posted to its associated executor
  /// (default: the runner's), never invoked from within this call. Errors as
  /// thread_pool::async_submit (`job_failed`, `unknown_job`, `signature_mismatch`), never
  /// thrown. The token is required (the default token type is void in Boost 1.81).
  template <class R, class... A,
            class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  requires(!std::is_same_v<std::remove_cvref_t<CompletionToken>, task_options>) auto async_submit(
      invocation<R, A...> inv, CompletionToken&& token = {}) {
    return async_submit(std::move(inv), task_options{}, std::forward<CompletionToken>(token));
  }
  /// As above, with a label for the task's events and a stop token; throws
  /// std::invalid_argument for a timeout or retries (see task_options).
  template <class R, class... A,
            class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_submit(invocation<R, A...> inv, task_options options, CompletionToken&& token = {}) {
    thread_pool::check_in_process(options, "inline_runner");
    return boost::asio::async_initiate<CompletionToken, task_signature_t<R>>(
        [this](auto handler, invocation<R, A...> call, task_options opts) {
          const std::uint64_t id = events_ ? events_.next_id() : 0;
          events_.emit(event_kind::task_queued, id, call.target->name(), opts.label, false);
          thread_pool::run_and_complete(*jobs_, std::move(call), std::move(handler), ex_, events_,
                                        id, opts);
        },
        token, std::move(inv), std::move(options));
  }

  using basic_runner<inline_runner>::submit;
  /// `submit` with a label or a stop token.
  template <class R, class... A>
  std::future<R> submit(invocation<R, A...> inv, task_options options) {
    return async_submit(std::move(inv), std::move(options), future_token());
  }

 private:
  const registry* jobs_;
  executor_type ex_;
  detail::inproc_events events_;
};

}  // namespace crew
