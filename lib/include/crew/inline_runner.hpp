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
/// no cancellation (a cancellation slot is ignored).
/// Thread safety: every member may be called from any thread; concurrent submissions run
/// their jobs concurrently, each in its own caller's thread.
class inline_runner : public basic_runner<inline_runner> {
 public:
  /// The executor type of get_executor().
  using executor_type = boost::asio::any_io_executor;

  /// Serves the jobs of `jobs` (which must outlive the runner and get no more `add` calls);
  /// completions default to `ex` (by default Asio's system executor, whose threads then run
  /// the handlers).
  explicit inline_runner(const registry& jobs, executor_type ex = boost::asio::system_executor())
      : jobs_(&jobs), ex_(std::move(ex)) {}

  /// The executor completions default to.
  executor_type get_executor() const noexcept { return ex_; }

  /// Runs `inv` now, in this thread: returns only after the job has run. Completion
  /// signature: `task_signature_t<R>`; the handler is posted to its associated executor
  /// (default: the runner's), never invoked from within this call. Errors as
  /// thread_pool::async_submit (`job_failed`, `unknown_job`, `signature_mismatch`), never
  /// thrown. The token is required (the default token type is void in Boost 1.81).
  template <class R, class... A,
            class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_submit(invocation<R, A...> inv, CompletionToken&& token = {}) {
    return boost::asio::async_initiate<CompletionToken, task_signature_t<R>>(
        [this](auto handler, invocation<R, A...> call) {
          thread_pool::run_and_complete(*jobs_, std::move(call), std::move(handler), ex_);
        },
        token, std::move(inv));
  }

 private:
  const registry* jobs_;
  executor_type ex_;
};

}  // namespace crew
