// crew/thread_pool.hpp — the same jobs, run in-process on an asio::thread_pool.
//
// For jobs that need no isolation (IO-bound, or trusted and quick), and as a baseline.
// Read next: inline_runner.hpp; process_pool.hpp for the isolated version.
#pragma once

#include <crew/detail/completion.hpp>
#include <crew/detail/in_process.hpp>
#include <crew/detail/inproc_events.hpp>
#include <crew/error.hpp>
#include <crew/events.hpp>
#include <crew/job.hpp>
#include <crew/registry.hpp>
#include <crew/runner.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace crew {

/// Runs registered jobs on its own threads (an `asio::thread_pool`), with the same
/// submit/map API as process_pool. No isolation: a job that crashes takes the process
/// with it; no IPC: arguments are moved, not encoded. No deadlines, retries or queue bound;
/// a cancellation slot on the handler is ignored; task_options::stop is checked when a
/// thread takes the task up.
/// Thread safety: every member may be called from any thread, except the destructor,
/// which must not run concurrently with other members nor on a pool thread.
class thread_pool : public basic_runner<thread_pool> {
 public:
  /// The executor type of get_executor().
  using executor_type = boost::asio::any_io_executor;

  /// `threads` threads (0: one per hardware thread, at least 1) serving the jobs of `jobs`,
  /// which must outlive the pool and get no more `add` calls. The threads start here; throws
  /// boost::system::system_error if they cannot be created. `on_event` receives the tasks'
  /// events (crew/events.hpp; `worker` is the thread's index), one at a time, on the thread
  /// where they happen.
  explicit thread_pool(const registry& jobs, std::size_t threads = 0, event_handler on_event = {})
      : jobs_(&jobs), pool_(threads ? threads : default_threads()), events_(std::move(on_event)) {}

  /// join(): waits for queued work to finish, then stops the threads. Do not run it on a
  /// pool thread.
  ~thread_pool() { join(); }

  /// The pool's executor (its threads); completions default to it.
  executor_type get_executor() noexcept { return pool_.get_executor(); }

  /// `async_submit(inv, token)`: as below, with default task_options.
  using basic_runner<thread_pool>::async_submit;
  /// Runs `inv` on a pool thread, with a label for the task's events and a stop token (a
  /// stop requested before a thread takes the task up fails it with `cancelled`; see
  /// task_options). Completion signature: `task_signature_t<R>`. Errors: a task_error the
  /// job throws arrives as thrown; any other exception becomes a task_error with
  /// `job_failed` and its `what()` (`"unknown exception"` if not a std::exception);
  /// `unknown_job` or `signature_mismatch` if the registry lacks the job; `shutting_down`
  /// once the pool is closed. Never completes inside this call. The handler runs on its
  /// associated executor (default: the pool's), dispatched right after the job when that is
  /// the pool's; after close, on its associated executor or else Asio's system executor.
  /// The token is required (the default token type is void in Boost 1.81). Throws
  /// std::invalid_argument if `options` sets a timeout or retries, which need a
  /// process_pool.
  template <class R, class... A,
            class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_submit(invocation<R, A...> inv, task_options options, CompletionToken&& token = {}) {
    detail::check_in_process(options, "thread_pool");
    return boost::asio::async_initiate<CompletionToken, task_signature_t<R>>(
        [this](auto handler, invocation<R, A...> call, task_options opts) {
          // Work is tracked before `closed_` is read: a join() racing this submission then
          // waits for the task instead of stopping the threads under it.
          auto work = boost::asio::prefer(pool_.get_executor(),
                                          boost::asio::execution::outstanding_work.tracked);
          if (closed_.load()) {
            // The pool's threads may be gone: complete on the handler's own executor, or
            // the system executor, never on the pool.
            // A handler bound to the pool itself (map's are) goes to the system executor too.
            const boost::asio::system_executor elsewhere;
            auto error = make_task_error(errc::shutting_down, "the pool is closed");
            const executor_type own = boost::asio::get_associated_executor(handler, elsewhere);
            auto h = detail::rebind_to(own == get_executor() ? executor_type(elsewhere) : own,
                                       std::move(handler));
            if constexpr (std::is_void_v<R>)
              detail::post_completion(std::move(h), elsewhere, error);
            else
              detail::post_completion(std::move(h), elsewhere, error, R{});
            return;
          }
          const std::uint64_t id = events_ ? events_.next_id() : 0;
          const std::string& job = call.target->name();
          events_.emit(event_kind::task_queued, id, job, opts.label, false);
          // The handler's executor has outstanding work until the task completes.
          detail::handler_work<decltype(handler)> busy(handler, get_executor());
          boost::asio::post(work, [this, h = std::move(handler), c = std::move(call),
                                   o = std::move(opts), id, busy = std::move(busy)]() mutable {
            // Completed with dispatch: a handler bound to the pool, or a future's promise,
            // is completed right here instead of by another hop through a queue.
            detail::run_and_complete<true>(*jobs_, std::move(c), std::move(h), get_executor(),
                                           events_, id, o);
          });
        },
        token, std::move(inv), std::move(options));
  }

  /// Stops taking work; later submissions fail with `shutting_down`. Tasks already
  /// submitted still run. The threads keep running until join().
  void close() noexcept { closed_ = true; }

  /// Closes the pool, waits for every queued task to finish and stops the threads.
  /// Do not call it from a pool thread. After it, do not call map or async_map: their
  /// per-task completions are bound to the pool's executor, which no longer runs, so they
  /// never complete (submit and async_submit do fail with `shutting_down`).
  void join() {
    close();
    pool_.join();
  }

 private:
  static std::size_t default_threads() {
    const auto n = std::thread::hardware_concurrency();
    return n ? n : 1;
  }

  const registry* jobs_;
  boost::asio::thread_pool pool_;
  detail::inproc_events events_;
  std::atomic<bool> closed_{false};
};

}  // namespace crew
