// crew/runner.hpp — what every crew pool offers on top of its `async_submit`:
// `submit` returning a std::future, and `async_map` / `map` over a range, results in order.
//
// Also the completion signature every task has (task_signature_t). Read next: error.hpp
// (what a failed task carries), then thread_pool.hpp and inline_runner.hpp.
#pragma once

#include <crew/detail/completion.hpp>
#include <crew/detail/map_operation.hpp>
#include <crew/job.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <future>
#include <optional>
#include <ranges>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
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
  /// Explicit cancellation; the task then fails with `cancelled`. What a stop does depends
  /// on the pool:
  /// - process_pool: as its completion handler's cancellation slot, at any time until the
  ///   task resolves, and the task completes at once: a queued task is dropped; a running
  ///   one gets a cancel frame, and its worker is killed if it has not answered within
  ///   `cancel_grace`.
  /// - thread_pool: checked only when a pool thread takes the task up: a task whose stop was
  ///   requested stays in the queue, behind the tasks before it, until a thread reaches it,
  ///   and then fails without running; once the job has started a stop has no effect (a
  ///   thread cannot be stopped).
  /// - inline_runner: the job runs inside the submitting call, so only a stop requested
  ///   before that call is honoured (the job does not run).
  std::stop_token stop;
};

/// Mix-in giving a pool `submit`, the option-less `async_submit`, `async_map` and `map`
/// from its `async_submit(invocation, task_options, token)`.
/// `Derived` provides that `async_submit` (and brings this one in with
/// `using basic_runner<Derived>::async_submit;`) and `get_executor()`.
/// Thread safety: as the derived pool's async_submit (every pool here: any thread).
template <class Derived>
class basic_runner {
 public:
  /// `async_submit(inv, task_options{}, token)`: runs `inv` with the pool's defaults. See
  /// the derived pool's async_submit for the completion, the errors and cancellation.
  /// Completion signature: `task_signature_t<R>`. The token is required (the default token
  /// type is void in Boost 1.81).
  template <class R, class... A,
            class CompletionToken =
                boost::asio::default_completion_token_t<boost::asio::any_io_executor>>
  requires(!std::is_same_v<std::remove_cvref_t<CompletionToken>, task_options>) auto async_submit(
      invocation<R, A...> inv, CompletionToken&& token = {}) {
    return self().async_submit(std::move(inv), task_options{},
                               std::forward<CompletionToken>(token));
  }

  /// Submits one task; the future holds its result, or throws its task_error from `get()`.
  /// process_pool sets the future from its own executor, so `get()` must not be waited on
  /// from a thread that has to run that executor.
  /// Thread safety: as the derived pool's async_submit.
  template <class R, class... A>
  std::future<R> submit(invocation<R, A...> inv) {
    return self().async_submit(std::move(inv), task_options{}, future_token());
  }

  /// `submit` with per-task options (see task_options: which ones a pool honours, and
  /// the std::invalid_argument an in-process pool throws for the others).
  template <class R, class... A>
  std::future<R> submit(invocation<R, A...> inv, task_options options) {
    return self().async_submit(std::move(inv), std::move(options), future_token());
  }

  /// Runs `j` once per element of `inputs` (each element is the job's single argument,
  /// or a tuple of its arguments) and completes with all results, in input order.
  /// Completion signature: `void(std::exception_ptr, std::vector<R>)`; on failure the
  /// exception is the first task error observed (in completion order, not input order) and
  /// the vector is empty. Every task still runs to its end before the completion.
  /// The inputs are read and every task submitted when the operation is initiated (within
  /// this call for a callback or use_future; a token that defers the initiation, such as
  /// use_awaitable or deferred, first copies an lvalue range into the operation); the per-task
  /// completions run on the pool's executor and the final one is posted to the handler's associated
  /// executor (default: the pool's). An empty range completes with an empty vector. `j` must
  /// outlive the tasks (see invocation). The token is required: the default
  /// (`default_completion_token_t<any_io_executor>`) is void in Boost 1.81.
  template <
      class R, class... A, std::ranges::input_range Range,
      class CompletionToken = boost::asio::default_completion_token_t<boost::asio::any_io_executor>>
  auto async_map(const job<R(A...)>& j, Range&& inputs, CompletionToken&& token = {}) {
    static_assert(!std::is_void_v<R>, "map needs a job with a result");
    using signature = void(std::exception_ptr, std::vector<R>);
    // `in` is `inputs` itself for a callback or use_future, or, for a token that defers
    // the initiation (use_awaitable, deferred), Asio's stored copy, passed as an rvalue.
    return boost::asio::async_initiate<CompletionToken, signature>(
        [this, &j](auto handler, auto&& in) {
          // Only the executor is kept: the pool itself may be gone when the last task ends.
          auto ex = self().get_executor();
          std::vector<invocation<R, A...>> calls;
          for (auto&& x : in)
            calls.push_back(make_call(j, std::forward<decltype(x)>(x)));
          auto op = detail::make_map_operation<R>(std::move(handler), ex, calls.size());
          op->expect(calls.size());
          for (std::size_t i = 0; i < calls.size(); ++i) {
            self().async_submit(
                std::move(calls[i]), task_options{},
                boost::asio::bind_executor(ex, [op, i](std::exception_ptr ep, R value) {
                  if (!ep) op->slot(i) = std::move(value);
                  op->settle(std::move(ep));
                }));
          }
          op->settle(nullptr);  // the guard: every task is submitted
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
