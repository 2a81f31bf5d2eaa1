// crew/runner.hpp — what every crew pool offers on top of its `async_submit`:
// `submit` returning a std::future, and `async_map` / `map` over a range, results in order.
//
// Also the completion signature every task has (task_signature_t). Read next: error.hpp
// (what a failed task carries), then thread_pool.hpp and inline_runner.hpp.
#pragma once

#include <crew/job.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <stop_token>
#include <string>
#include <type_traits>
#include <vector>

namespace crew {

/// The completion signature of a task whose job returns `R`:
/// `void(std::exception_ptr, R)`, or `void(std::exception_ptr)` when `R` is void.
/// The exception, when set, is a `crew::task_error` (see error.hpp), unless decoding a
/// process_pool result throws something else (a user codec's own exception type,
/// std::bad_alloc): that is delivered as thrown. On failure the `R` passed is
/// value-initialized, so `R` must be default-constructible to be submitted.
template <class R>
struct task_signature {
  /// `void(std::exception_ptr, R)`.
  using type = void(std::exception_ptr, R);
};
/// For a void job: `void(std::exception_ptr)`.
template <>
struct task_signature<void> {
  /// `void(std::exception_ptr)`.
  using type = void(std::exception_ptr);
};
/// task_signature<R>::type.
template <class R>
using task_signature_t = typename task_signature<R>::type;

/// Per-task settings for `async_submit(inv, options, token)` and `submit(inv, options)`.
/// The in-process pools (thread_pool, inline_runner) take `label` and `stop` (a stop
/// requested before the task starts cancels it); `timeout` and `retries` need a
/// process_pool (a thread cannot be stopped) and make their submissions throw
/// std::invalid_argument.
struct task_options {
  /// This task's deadline from the moment it starts on a worker; overrides the pool's
  /// `task_timeout` (zero: none).
  std::optional<std::chrono::milliseconds> timeout;
  /// Overrides the pool's and the job's retry count (see process_pool_options::retries).
  std::optional<unsigned> retries;
  /// A name for the task in its events (event::label), e.g. its arguments as text.
  std::string label;
  /// Explicit cancellation: when stop is requested, the task is cancelled as by its
  /// completion handler's cancellation slot (a queued task is dropped, a running one gets a
  /// cancel frame and then its worker is killed) and fails with `cancelled`.
  std::stop_token stop;
};

namespace detail {

/// Internal. Invokes `handler(args...)` through the handler's associated executor (falling
/// back to `fallback`), never from inside the caller's frame, keeping that executor busy
/// meanwhile.
template <class Handler, class Fallback, class... Args>
void post_completion(Handler&& handler, const Fallback& fallback, Args&&... args) {
  auto ex = boost::asio::prefer(boost::asio::get_associated_executor(handler, fallback),
                                boost::asio::execution::outstanding_work.tracked);
  boost::asio::post(std::move(ex),
                    [h = std::move(handler), ... a = std::forward<Args>(args)]() mutable {
                      std::move(h)(std::move(a)...);
                    });
}

/// Internal. Invokes `handler(args...)` through its associated executor (falling back to
/// `fallback`) with `dispatch`: inline when the calling thread already runs that executor
/// (a pool thread completing a handler bound to the pool, or use_future's promise), posted
/// otherwise. For a caller that is itself a posted function, never the initiating call.
template <class Handler, class Fallback, class... Args>
void dispatch_completion(Handler&& handler, const Fallback& fallback, Args&&... args) {
  auto ex = boost::asio::get_associated_executor(handler, fallback);
  boost::asio::dispatch(std::move(ex),
                        [h = std::move(handler), ... a = std::forward<Args>(args)]() mutable {
                          std::move(h)(std::move(a)...);
                        });
}

/// Internal. As post_completion, and first clears `slot` (the handler's cancellation slot),
/// on the handler's executor, where its owner may also emit on it.
template <class Slot, class Handler, class Fallback, class... Args>
void post_completion_clearing(Slot slot, Handler&& handler, const Fallback& fallback,
                              Args&&... args) {
  auto ex = boost::asio::prefer(boost::asio::get_associated_executor(handler, fallback),
                                boost::asio::execution::outstanding_work.tracked);
  boost::asio::post(std::move(ex),
                    [slot, h = std::move(handler), ... a = std::forward<Args>(args)]() mutable {
                      if (slot.is_connected()) slot.clear();
                      std::move(h)(std::move(a)...);
                    });
}

/// Internal. `handler` bound to `ex` (type-erased), whatever it was associated with before.
template <class Executor, class Handler>
auto rebind_to(const Executor& ex, Handler&& handler) {
  // Wrapped first: Asio's executor_binder, given another binder, would rebind that one.
  return boost::asio::bind_executor(boost::asio::any_io_executor(ex),
                                    [h = std::forward<Handler>(handler)](auto&&... args) mutable {
                                      std::move(h)(std::forward<decltype(args)>(args)...);
                                    });
}

/// Internal. Outstanding work on a handler's associated executor (else `fallback`) while its
/// operation is pending, as Asio asks of an asynchronous operation; `reset()` ends it.
template <class Handler>
class handler_work {
 public:
  template <class Fallback>
  handler_work(const Handler& h, const Fallback& fallback)
      : ex_(boost::asio::prefer(boost::asio::get_associated_executor(h, fallback),
                                boost::asio::execution::outstanding_work.tracked)) {}
  void reset() noexcept { ex_.reset(); }

 private:
  using executor = std::decay_t<decltype(boost::asio::prefer(
      std::declval<boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>>(),
      boost::asio::execution::outstanding_work.tracked))>;
  std::optional<executor> ex_;
};

/// Internal. A move-only handler stored in a copyable callable, for type-erased storage.
template <class Handler>
class shared_handler {
 public:
  explicit shared_handler(Handler h) : h_(std::make_shared<std::optional<Handler>>(std::move(h))) {}
  /// Takes the handler out; valid once.
  Handler take() {
    Handler h = std::move(**h_);
    h_->reset();
    return h;
  }

 private:
  std::shared_ptr<std::optional<Handler>> h_;
};

/// Internal: what basic_runner::async_map gathers.
template <class R>
struct map_state {
  std::mutex mutex;
  std::vector<std::optional<R>> results;
  std::exception_ptr first_error;
  std::size_t pending = 0;
};

}  // namespace detail

/// Mix-in giving a pool `submit`, `async_map` and `map` from its `async_submit`.
/// `Derived` provides `async_submit(invocation, token)` and `get_executor()`.
/// Thread safety: as the derived pool's async_submit (every pool here: any thread).
template <class Derived>
class basic_runner {
 public:
  /// Submits one task; the future holds its result, or throws its task_error from `get()`.
  /// process_pool sets the future from its own executor, so `get()` must not be waited on
  /// from a thread that has to run that executor.
  /// Thread safety: as the derived pool's async_submit.
  template <class R, class... A>
  std::future<R> submit(invocation<R, A...> inv) {
    return self().async_submit(std::move(inv), future_token());
  }

  /// Runs `j` once per element of `inputs` (each element is the job's single argument,
  /// or a tuple of its arguments) and completes with all results, in input order.
  /// Completion signature: `void(std::exception_ptr, std::vector<R>)`; on failure the
  /// exception is the first task error observed (in completion order, not input order) and
  /// the vector is empty. Every task still runs to its end before the completion.
  /// The inputs are read and every task submitted when the operation is initiated (within
  /// this call for a callback or use_future); the per-task completions run on the pool's
  /// executor and the final one is posted to the handler's associated executor (default:
  /// the pool's). An empty range completes with an empty vector. `j` must outlive the tasks (see
  /// invocation). The token is required: the default
  /// (`default_completion_token_t<any_io_executor>`) is void in Boost 1.81.
  template <
      class R, class... A, std::ranges::input_range Range,
      class CompletionToken = boost::asio::default_completion_token_t<boost::asio::any_io_executor>>
  auto async_map(const job<R(A...)>& j, Range&& inputs, CompletionToken&& token = {}) {
    static_assert(!std::is_void_v<R>, "map needs a job with a result");
    using signature = void(std::exception_ptr, std::vector<R>);
    return boost::asio::async_initiate<CompletionToken, signature>(
        [this, &j](auto handler, Range&& in) {
          // Only the executor is kept: the pool itself may be gone when the last task ends.
          auto ex = self().get_executor();
          auto state = std::make_shared<detail::map_state<R>>();
          std::vector<invocation<R, A...>> calls;
          for (auto&& x : in)
            calls.push_back(make_call(j, std::forward<decltype(x)>(x)));
          state->results.resize(calls.size());
          state->pending = calls.size();
          auto busy = std::make_shared<detail::handler_work<decltype(handler)>>(handler, ex);
          detail::shared_handler<decltype(handler)> h(std::move(handler));
          auto finish = [ex, state, h, busy]() mutable {
            std::vector<R> out;
            if (!state->first_error) {
              out.reserve(state->results.size());
              for (auto& r : state->results)
                out.push_back(std::move(*r));
            }
            detail::post_completion(h.take(), ex, state->first_error, std::move(out));
            busy->reset();
          };
          if (calls.empty()) return finish();
          for (std::size_t i = 0; i < calls.size(); ++i) {
            self().async_submit(std::move(calls[i]),
                                boost::asio::bind_executor(
                                    ex, [state, i, finish](std::exception_ptr ep, R value) mutable {
                                      bool last;
                                      {
                                        std::lock_guard lock(state->mutex);
                                        if (ep && !state->first_error) state->first_error = ep;
                                        if (!ep) state->results[i].emplace(std::move(value));
                                        last = --state->pending == 0;
                                      }
                                      if (last) finish();
                                    }));
          }
        },
        token, std::forward<Range>(inputs));
  }

  /// Blocking `async_map`: returns the results in order or throws the first task error.
  /// Do not call it from a thread that must run the pool's executor for it to finish.
  /// (The derived pool's own async_map is used: process_pool's, in batches.)
  template <class R, class... A, std::ranges::input_range Range>
  std::vector<R> map(const job<R(A...)>& j, Range&& inputs) {
    return self().async_map(j, std::forward<Range>(inputs), future_token()).get();
  }

 protected:
  /// The token `submit` and `map` use. A pool whose executor is the caller's (process_pool
  /// says so with `futures_on_own_executor`) completes futures there: no extra thread hop,
  /// and no dependence on Asio's system thread pool, which a forked child does not have.
  /// The in-process pools keep use_future's default, so that a joined thread_pool still
  /// completes its refusals.
  auto future_token() {
    if constexpr (requires { Derived::futures_on_own_executor; })
      return boost::asio::bind_executor(self().get_executor(), boost::asio::use_future);
    else
      return boost::asio::use_future;
  }

  /// One element of a map's input as a call of `j`: the argument itself for a one-argument
  /// job, else a tuple (or anything std::apply takes) of the arguments.
  template <class R, class... A, class X>
  static invocation<R, A...> make_call(const job<R(A...)>& j, X&& x) {
    if constexpr (sizeof...(A) == 1)
      return j(std::forward<X>(x));
    else
      return std::apply(j, std::forward<X>(x));
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

}  // namespace crew
