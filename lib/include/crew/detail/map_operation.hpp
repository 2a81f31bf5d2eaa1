// crew/detail/map_operation.hpp — internal: one `async_map` in flight, gathering its results
// and completing its handler. Not part of the API: it changes without notice.
//
// Contract: a map is cut into parts (one task each in basic_runner::async_map, one chunk
// each in process_pool::async_map). The initiator calls `expect` before submitting parts
// and `settle(nullptr)` once, after the last is submitted (the guard). Each part writes the
// slots of its items (disjoint ranges, possibly from several threads) and then calls
// `settle` exactly once, with its error or null. The last `settle` posts the handler (to its
// associated executor, else the fallback) with the first error observed and an empty
// vector, or with no error and every result in input order. The handler's executor has
// outstanding work until then. Thread safety: `expect` and `settle` from any thread; a slot
// from the one part that owns it.
#pragma once

#include <crew/detail/completion.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace crew::detail {

/// Where one item's result waits: the value itself when it has a default value, else (and
/// for bool, whose vector packs bits that two threads cannot write at once) an optional.
template <class R>
using map_slot = std::conditional_t<std::is_default_constructible_v<R> && !std::is_same_v<R, bool>,
                                    R, std::optional<R>>;

/// A map in flight (see the contract above). Shared by its parts' completions.
template <class R, class Handler, class Executor>
class map_operation {
 public:
  /// A map of `items` items completing `handler`; `fallback` is the executor used when the
  /// handler has none associated.
  map_operation(Handler handler, const Executor& fallback, std::size_t items)
      : results_(items),
        work_(handler, fallback),
        handler_(std::move(handler)),
        fallback_(fallback) {}

  /// The slot of item `i`, for the part that runs it.
  map_slot<R>& slot(std::size_t i) { return results_[i]; }
  /// The slots of items `first .. first + count - 1`, for the part that runs them.
  std::span<map_slot<R>> slots(std::size_t first, std::size_t count) {
    return std::span<map_slot<R>>(results_).subspan(first, count);
  }

  /// `parts` more parts will settle.
  void expect(std::size_t parts = 1) {
    std::lock_guard lock(mutex_);
    pending_ += parts;
  }

  /// One part (or the initiator's guard) has resolved: `ep` is its error, or null once its
  /// slots are written. The last one completes the handler.
  void settle(std::exception_ptr ep) {
    {
      std::lock_guard lock(mutex_);
      if (ep && !first_error_) first_error_ = std::move(ep);
      if (--pending_ > 0) return;
    }
    complete();
  }

 private:
  void complete() {
    std::vector<R> out;
    if (!first_error_) {
      if constexpr (std::is_same_v<map_slot<R>, R>) {
        out = std::move(results_);
      } else {
        out.reserve(results_.size());
        for (auto& r : results_)
          out.push_back(std::move(*r));
      }
    }
    post_completion(std::move(*handler_), fallback_, first_error_, std::move(out));
    handler_.reset();
    work_.reset();  // the posted completion holds the executor busy from here
  }

  std::vector<map_slot<R>> results_;
  std::mutex mutex_;  // for the two below
  std::exception_ptr first_error_;
  std::size_t pending_ = 1;  // parts in flight, plus the guard until the last is submitted
  handler_work<Handler> work_;
  std::optional<Handler> handler_;
  Executor fallback_;
};

/// A map_operation of `items` items for `handler`, shared.
template <class R, class Handler, class Executor>
auto make_map_operation(Handler handler, const Executor& fallback, std::size_t items) {
  return std::make_shared<map_operation<R, Handler, Executor>>(std::move(handler), fallback, items);
}

}  // namespace crew::detail
