// crew/error.hpp — crew's error codes and the exception that carries a failed task.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <string>
#include <type_traits>

namespace crew {

/// Why a task, a pool or a worker failed. Values are stable: they appear in JSON output.
enum class errc {
  /// The job ran and threw; the error's message is the exception's `what()`.
  job_failed = 1,
  /// The worker does not serve a job of that name.
  unknown_job,
  /// The worker serves the job, but with another signature (mismatched headers).
  signature_mismatch,
  /// The worker process died (signal or exit) while the task was in flight.
  worker_crashed,
  /// A worker could not be started, or died or misbehaved before its handshake.
  worker_boot_failed,
  /// The peer sent bytes that break the protocol; that worker is killed.
  protocol_error,
  /// An argument or result did not decode as its declared type.
  decode_error,
  /// A payload is larger than the configured maximum frame size.
  payload_too_large,
  /// The pool is closed or shutting down and takes no more work.
  shutting_down,
  /// The pool's bounded queue is full.
  queue_full,
  /// The task ran past its deadline.
  task_timeout,
  /// The task was cancelled.
  cancelled,
};

/// The `"crew"` error category.
const boost::system::error_category& crew_category() noexcept;

/// Makes `errc` usable as a `boost::system::error_code` (found by ADL).
inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), crew_category()};
}

/// Short stable name of an error (`"worker_crashed"`), for logs and JSON.
const char* to_string(errc e) noexcept;

/// A task that did not produce a value: its code says why, `what()` says what happened
/// (the job's own exception message, the worker's signal and stderr tail, ...).
class task_error : public boost::system::system_error {
 public:
  task_error(boost::system::error_code ec, const std::string& message)
      : boost::system::system_error(ec, message), message_(message) {}
  /// The detail without the category text, e.g. the job's exception message.
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

/// Builds the exception that a task failing with `e` and `message` delivers.
inline std::exception_ptr make_task_error(errc e, const std::string& message) {
  return std::make_exception_ptr(task_error(make_error_code(e), message));
}

/// The error code carried by `ep`: the code of a boost::system::system_error (a
/// task_error's crew::errc included), `job_failed` for any other exception, and an empty
/// code for a null pointer.
boost::system::error_code error_of(const std::exception_ptr& ep) noexcept;

}  // namespace crew

template <>
struct boost::system::is_error_code_enum<crew::errc> : std::true_type {};
