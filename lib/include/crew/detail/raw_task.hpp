// crew/detail/raw_task.hpp — internal: a task as process_pool's core sees it, and the
// handle a cancellation slot uses to reach that core. Not part of the API: it changes
// without notice.
//
// Contract: process_pool's templates (process_pool.hpp) turn a typed invocation, or a
// chunk of a map, into a raw_task and hand it to the core (lib/src/process_pool.cpp); the
// core never sees a C++ type. The core calls `done` exactly once: on its strand, or, for a
// task refused at submission, on the submitting thread.
#pragma once

#include <crew/codec.hpp>
#include <crew/runner.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace crew::detail {

/// The pool's state, on its strand (lib/src/process_pool.cpp).
class pool_core;

/// Internal: result_failure's decode_error for an allocation failure `e` (bad_alloc if
/// even that cannot be made).
inline std::exception_ptr result_out_of_memory(const std::exception& e) noexcept {
  try {
    return std::make_exception_ptr(decode_error(
        std::string("the coordinator could not allocate the decoded result (") + e.what() + ")"));
  } catch (...) {
    return std::current_exception();
  }
}

/// Cancels task `id` of `core`, if both still exist; any thread.
void cancel_task(const std::weak_ptr<pool_core>& core, std::uint64_t id);

/// What a task carries of its caller: how to encode its arguments, and how to complete it
/// (exactly once, with an error or the result bytes). Both live in one object, made in one
/// allocation (make_task_body), with the handler, its work guard and its executor.
class task_body {
 public:
  virtual ~task_body() = default;
  virtual void encode(encoder& e) = 0;
  virtual void complete(std::exception_ptr ep, std::span<const std::byte> result) = 0;
  /// The most memory the decoded result may take (decoder's memory limit): set by the
  /// pool at submission from process_pool_options::max_result_memory.
  std::size_t result_memory = decoder::unlimited;
};

/// A task_body from two callables: `encode(encoder&)` and `complete(exception_ptr, bytes)`
/// or `complete(exception_ptr, bytes, result_memory)`.
template <class Encode, class Complete>
class task_body_of final : public task_body {
 public:
  task_body_of(Encode e, Complete c) : encode_(std::move(e)), complete_(std::move(c)) {}
  void encode(encoder& e) override { encode_(e); }
  void complete(std::exception_ptr ep, std::span<const std::byte> result) override {
    if constexpr (std::is_invocable_v<Complete&, std::exception_ptr, std::span<const std::byte>,
                                      std::size_t>)
      complete_(std::move(ep), result, result_memory);
    else
      complete_(std::move(ep), result);
  }

 private:
  Encode encode_;
  Complete complete_;
};

/// The exception a task fails with for the one being handled (call it in a catch block)
/// while its result is decoded: an allocation failure (std::bad_alloc, std::length_error)
/// becomes a decode_error saying so, for the caller to see which task could not be held;
/// anything else is passed on as it is.
inline std::exception_ptr result_failure() noexcept {
  try {
    throw;
  } catch (const std::bad_alloc& e) {
    return result_out_of_memory(e);
  } catch (const std::length_error& e) {
    return result_out_of_memory(e);
  } catch (...) {
    return std::current_exception();
  }
}

/// Decodes a task's result bytes as `R`, within `memory_limit` bytes in memory. Throws
/// decode_error, or what a user codec throws.
template <class R>
R decode_result(std::span<const std::byte> bytes, std::size_t memory_limit) {
  decoder d(bytes.data(), bytes.size(), memory_limit);
  R value = d.get<R>();
  d.expect_end();
  return value;
}

template <class Encode, class Complete>
std::unique_ptr<task_body> make_task_body(Encode encode, Complete complete) {
  return std::make_unique<task_body_of<Encode, Complete>>(std::move(encode), std::move(complete));
}

/// A task as the pool's core sees it: the job by name, encoded arguments, and a completion
/// called exactly once with an error or the result bytes. Move-only.
struct raw_task {
  std::string job;
  std::string signature;
  /// Encoded size of the arguments, and how to encode them: the pool writes them only
  /// when it knows where (a frame buffer or a shared-memory area), straight there.
  std::size_t args_size = 0;
  /// Encodes the arguments (exactly args_size bytes) into `e`.
  void encode_args(encoder& e) const { body->encode(e); }
  /// Completes the task; exactly once. `done` gets the result bytes, or a batch_result's
  /// payload for a batch (see batch_items).
  void done(std::exception_ptr ep, std::span<const std::byte> result) {
    body->complete(std::move(ep), result);
  }
  std::unique_ptr<task_body> body;
  /// Non-zero: a batch of this many calls of the job (what `map` sends). The encoded
  /// arguments are then a batch's items (docs/protocol.md §9) and `done` gets the payload of
  /// a batch_result, already checked to hold exactly this many items. The timeout applies
  /// per item: the batch's deadline is the timeout times this count.
  std::uint32_t batch_items = 0;
  /// Assigned by the pool at submission; what a cancellation names.
  std::uint64_t id = 0;
  /// Set by a cancellation slot, for a cancel that comes before the task reaches the pool.
  std::shared_ptr<std::atomic<bool>> cancelled;
  task_options options;
};

}  // namespace crew::detail
