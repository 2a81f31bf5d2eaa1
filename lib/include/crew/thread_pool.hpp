// crew/thread_pool.hpp — the same jobs, run in-process on an asio::thread_pool.
//
// For jobs that need no isolation (IO-bound, or trusted and quick), and as a baseline.
// Read next: inline_runner.hpp; process_pool.hpp for the isolated version.
#pragma once

#include <crew/error.hpp>
#include <crew/events.hpp>
#include <crew/job.hpp>
#include <crew/registry.hpp>
#include <crew/runner.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <thread>

namespace crew {

/// Runs registered jobs on its own threads (an `asio::thread_pool`), with the same
/// submit/map API as process_pool. No isolation: a job that crashes takes the process
/// with it; no IPC: arguments are moved, not encoded. No deadlines, retries or queue bound;
/// a cancellation slot on the handler is ignored, task_options::stop is honoured until the
/// task starts.
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

  /// Runs `inv` on a pool thread. Completion signature: `task_signature_t<R>`. Errors: a
  /// task_error the job throws arrives as thrown; any other exception becomes a task_error
  /// with `job_failed` and its `what()` (`"unknown exception"` if not a std::exception);
  /// `unknown_job` or `signature_mismatch` if the registry lacks the job; `shutting_down`
  /// once the pool is closed. Never completes inside this call. The handler runs on its
  /// associated executor (default: the pool's), dispatched right after the job when that is
  /// the pool's; after close, on its associated executor or else Asio's system executor.
  /// The token is required (the default token type is void in Boost 1.81).
  template <class R, class... A,
            class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  requires(!std::is_same_v<std::remove_cvref_t<CompletionToken>, task_options>) auto async_submit(
      invocation<R, A...> inv, CompletionToken&& token = {}) {
    return async_submit(std::move(inv), task_options{}, std::forward<CompletionToken>(token));
  }
  /// As above, with a label for the task's events and a stop token (a stop requested before
  /// the task starts fails it with `cancelled`). Throws std::invalid_argument if `options`
  /// sets a timeout or retries, which need a process_pool.
  template <class R, class... A,
            class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_submit(invocation<R, A...> inv, task_options options, CompletionToken&& token = {}) {
    check_in_process(options, "thread_pool");
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
            run_and_complete<true>(*jobs_, std::move(c), std::move(h), get_executor(), events_, id,
                                   o);
          });
        },
        token, std::move(inv), std::move(options));
  }

  using basic_runner<thread_pool>::submit;
  /// `submit` with a label or a stop token (see the async_submit above).
  template <class R, class... A>
  std::future<R> submit(invocation<R, A...> inv, task_options options) {
    return async_submit(std::move(inv), std::move(options), future_token());
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

  /// Runs a job in this thread, reporting it to `events`, and posts (or, with `Dispatch`,
  /// dispatches) its completion to the handler's associated executor, else `fallback`: what
  /// thread_pool and inline_runner share. A stop requested on `opts.stop` before the job
  /// starts fails it with `cancelled` instead. Exceptions are delivered as async_submit says,
  /// never thrown.
  template <bool Dispatch = false, class R, class... A, class Handler, class Executor>
  static void run_and_complete(const registry& jobs, invocation<R, A...> call, Handler&& h,
                               const Executor& fallback, detail::inproc_events& events,
                               std::uint64_t id, const task_options& opts) {
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
        const auto ec = error_of(ep);
        std::string message;
        try {
          std::rethrow_exception(ep);
        } catch (const task_error& e) {
          message = e.message();
        } catch (...) {
        }
        events.emit(event_kind::task_failed, id, job, opts.label, true,
                    static_cast<errc>(ec.value()), message);
      } else {
        events.emit(event_kind::task_finished, id, job, opts.label, true);
      }
    }
    if constexpr (std::is_void_v<R>)
      complete<Dispatch>(std::forward<Handler>(h), fallback, ep);
    else
      complete<Dispatch>(std::forward<Handler>(h), fallback, ep, std::move(value));
  }

  /// Throws std::invalid_argument for options only a process_pool honours.
  static void check_in_process(const task_options& o, const char* pool) {
    if (o.timeout || o.retries)
      throw std::invalid_argument(std::string(pool) +
                                  ": task_options::timeout and ::retries need a process_pool "
                                  "(a thread cannot be stopped or replaced)");
  }

 private:
  template <bool Dispatch, class Handler, class Executor, class... Args>
  static void complete(Handler&& h, const Executor& fallback, Args&&... args) {
    if constexpr (Dispatch)
      detail::dispatch_completion(std::forward<Handler>(h), fallback, std::forward<Args>(args)...);
    else
      detail::post_completion(std::forward<Handler>(h), fallback, std::forward<Args>(args)...);
  }

  static std::size_t default_threads() {
    const auto n = std::thread::hardware_concurrency();
    return n ? n : 1;
  }
  // Gives in-process failures the same shape as a worker's: a task_error whose code is
  // job_failed and whose message is the job's what().
  static std::exception_ptr wrap_current() {
    try {
      throw;
    } catch (const task_error&) {
      return std::current_exception();
    } catch (const std::exception& e) {
      return make_task_error(errc::job_failed, e.what());
    } catch (...) {
      return make_task_error(errc::job_failed, "unknown exception");
    }
  }

  const registry* jobs_;
  boost::asio::thread_pool pool_;
  detail::inproc_events events_;
  std::atomic<bool> closed_{false};
};

}  // namespace crew
