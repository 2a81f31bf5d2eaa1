// crew/detail/completion.hpp — internal: how crew's asynchronous operations complete their
// handlers. Not part of the API: names and signatures here change without notice.
//
// Contract: a handler is invoked through its associated executor (falling back to the
// operation's, `fallback`), never from inside the frame that initiated the operation, and
// that executor has outstanding work from initiation until the handler has been handed to
// it, as Asio asks of an asynchronous operation. Every helper moves its handler and its
// arguments; none throws except what moving them or posting (std::bad_alloc) throws.
// Used by runner.hpp, thread_pool.hpp, inline_runner.hpp and process_pool.hpp.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace crew::detail {

/// Invokes `handler(args...)` through the handler's associated executor (falling back to
/// `fallback`), never from inside the caller's frame, keeping that executor busy meanwhile.
template <class Handler, class Fallback, class... Args>
void post_completion(Handler&& handler, const Fallback& fallback, Args&&... args) {
  auto ex = boost::asio::prefer(boost::asio::get_associated_executor(handler, fallback),
                                boost::asio::execution::outstanding_work.tracked);
  boost::asio::post(std::move(ex),
                    [h = std::move(handler), ... a = std::forward<Args>(args)]() mutable {
                      std::move(h)(std::move(a)...);
                    });
}

/// Invokes `handler(args...)` through its associated executor (falling back to `fallback`)
/// with `dispatch`: inline when the calling thread already runs that executor (a pool thread
/// completing a handler bound to the pool, or use_future's promise), posted otherwise. For a
/// caller that is itself a posted function, never the initiating call.
template <class Handler, class Fallback, class... Args>
void dispatch_completion(Handler&& handler, const Fallback& fallback, Args&&... args) {
  auto ex = boost::asio::get_associated_executor(handler, fallback);
  boost::asio::dispatch(std::move(ex),
                        [h = std::move(handler), ... a = std::forward<Args>(args)]() mutable {
                          std::move(h)(std::move(a)...);
                        });
}

/// As post_completion, and first clears `slot` (the handler's cancellation slot), on the
/// handler's executor, where its owner may also emit on it.
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

/// `handler` bound to `ex` (type-erased), whatever it was associated with before.
template <class Executor, class Handler>
auto rebind_to(const Executor& ex, Handler&& handler) {
  // Wrapped first: Asio's executor_binder, given another binder, would rebind that one.
  return boost::asio::bind_executor(boost::asio::any_io_executor(ex),
                                    [h = std::forward<Handler>(handler)](auto&&... args) mutable {
                                      std::move(h)(std::forward<decltype(args)>(args)...);
                                    });
}

/// Outstanding work on a handler's associated executor (else `fallback`) while its
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

/// A move-only handler stored in a copyable callable, for type-erased storage
/// (std::function).
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

}  // namespace crew::detail
