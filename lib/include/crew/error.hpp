// crew/error.hpp — crew's error codes and the exception that carries a failed task.
//
// The pools deliver a failure as a `std::exception_ptr` holding a `task_error` whose
// `code()` is a `crew::errc` (see runner.hpp, task_signature); `error_of` reads the code
// without rethrowing.
// Read next: codec.hpp (what can travel), or back to process_pool.hpp.
//
// Thread safety: everything here is immutable or a value type; use it from any thread.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <string>
#include <type_traits>

namespace crew {

/// Why a task, a pool or a worker failed. Values are stable: they appear in JSON output
/// and in error frames on the wire (docs/protocol.md).
enum class errc {
  /// The job ran and threw; the error's message is the exception's `what()` (`"unknown
  /// exception"` for one not derived from std::exception).
  job_failed = 1,
  /// The worker (or, in-process, the registry) has no job of that name.
  unknown_job,
  /// The worker serves the job, but with another signature (mismatched headers); in-process,
  /// the registry holds it with other C++ types.
  signature_mismatch,
  /// The worker process died (signal or exit, exit 0 included) or closed its reply channel
  /// while the task was in flight. Also what queued and new tasks get once the crash-loop
  /// breaker (`crash_loop_limit`) has stopped the pool.
  worker_crashed,
  /// A worker could not be started, or died or misbehaved before its handshake. Tasks fail
  /// with it only once no worker of the pool can start (see `max_boot_failures`); a slot
  /// that cannot start while others serve is reported by a worker_unavailable event.
  worker_boot_failed,
  /// The peer sent bytes that break the protocol (a bad frame, a reply for another task, a
  /// frame begun and not finished within `frame_timeout`, a result frame over the pool's
  /// `max_payload`); that worker is killed.
  protocol_error,
  /// An argument or result did not decode as its declared type (malformed or trailing bytes).
  decode_error,
  /// A payload is larger than the configured maximum frame size, or than a fixed area being
  /// encoded into (capacity_exceeded). Results over the pool's limit are `protocol_error`.
  payload_too_large,
  /// The pool is closed or shutting down and takes no more work, or was destroyed while the
  /// task was queued or running.
  shutting_down,
  /// The pool's bounded queue is full (`max_queue`), or waiting for room would deadlock.
  queue_full,
  /// The task ran past its deadline.
  task_timeout,
  /// The task was cancelled: its cancellation slot, its stop token, or a graceful shutdown.
  cancelled,
  /// The worker stopped answering: nothing from it (not even a pong to a ping) within the
  /// pool's `heartbeat_timeout` — a stopped process, a hung host, a cut link. Only for
  /// workers that answer pings (those reached through a launcher). Crew stopped it; the
  /// task is retried like a crash (`retries`).
  worker_lost,
};

/// The `"crew"` error category. `message(ev)` is a short English text per errc value
/// (`"unknown crew error"` for any other value). A function-local static: any thread.
const boost::system::error_category& crew_category() noexcept;

/// Makes `errc` usable as a `boost::system::error_code` (found by ADL).
inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), crew_category()};
}

/// Short stable name of an error (`"worker_crashed"`), for logs and JSON; `"unknown"` for
/// a value outside the enum.
const char* to_string(errc e) noexcept;

/// A task that did not produce a value: its code says why, `what()` says what happened
/// (the job's own exception message, the worker's signal and stderr tail, ...).
/// `what()` reads `"<message>: <code's text> [crew:N]"`; `message()` is the message alone.
class task_error : public boost::system::system_error {
 public:
  /// A failure with code `ec` (normally a crew::errc) and the detail `message`.
  task_error(boost::system::error_code ec, const std::string& message)
      : boost::system::system_error(ec, message), message_(message) {}
  /// The detail without the category text, e.g. the job's exception message.
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

/// Builds the exception that a task failing with `e` and `message` delivers (a task_error).
inline std::exception_ptr make_task_error(errc e, const std::string& message) {
  return std::make_exception_ptr(task_error(make_error_code(e), message));
}

/// The error code carried by `ep`: the code of a boost::system::system_error (a
/// task_error's crew::errc included), `job_failed` for any other exception, and an empty
/// code for a null pointer. Rethrows `ep` internally; never throws.
boost::system::error_code error_of(const std::exception_ptr& ep) noexcept;

/// A failure as plain values: what an error frame carries (docs/protocol.md) and a
/// task_failed event reports.
struct failure {
  /// Why.
  errc code = errc::job_failed;
  /// The detail, e.g. the job's exception message.
  std::string message;
};

/// `ep` (not null) as a failure: an exception carrying a crew::errc (a task_error, or
/// another boost::system::system_error of crew_category()) gives that code and its
/// message() (a task_error's) or what(); any other exception gives `job_failed` and its
/// what() (`"unknown exception"` if it is not a std::exception), as a job's exception
/// becomes. Rethrows `ep` internally; throws only std::bad_alloc.
failure describe_failure(const std::exception_ptr& ep);

}  // namespace crew

/// Lets a crew::errc convert to, and compare with, a boost::system::error_code.
template <>
struct boost::system::is_error_code_enum<crew::errc> : std::true_type {};
