// crew/worker_runtime.hpp — the inside of a worker process: handshake, read a task, run
// the job, reply. `crew-worker` is a main() around `serve`; so is any user's own worker.
#pragma once

#include <crew/protocol.hpp>
#include <crew/registry.hpp>

#include <cstddef>

namespace crew {

/// How a worker talks to its coordinator.
struct worker_options {
  /// Descriptor the coordinator writes frames to (the worker reads).
  int in_fd = 3;
  /// Descriptor the worker writes frames to.
  int out_fd = 4;
  /// Largest frame payload accepted from the coordinator.
  std::size_t max_payload = protocol::default_max_payload;
  /// The shared-memory request file (read-only) and response file, or -1 for none.
  /// Default: `$CREW_SHM_REQUEST_FD` and `$CREW_SHM_RESPONSE_FD`, which a coordinator
  /// using the shm transport sets (to 5 and 6).
  int shm_request_fd = -2;
  int shm_response_fd = -2;
  /// Results up to this many bytes go inline in the frame even with a segment. Default:
  /// `$CREW_SHM_INLINE`, else 0.
  std::size_t shm_inline_max = static_cast<std::size_t>(-1);
  /// Accept batch frames (many calls of one job in one frame, what `map` sends) and say so
  /// in the hello. Off: the coordinator sends such a worker one task frame per item.
  bool batch = true;
};

/// Exit codes of `serve`, which a worker's main() returns.
enum class worker_exit : int {
  ok = 0,                   ///< shutdown frame or end of input: the coordinator is done
  not_started_by_crew = 2,  ///< fd 3 / fd 4 are not open
  protocol_error = 3,       ///< the coordinator sent bytes that break the protocol
  io_error = 4,             ///< reading or writing a channel failed
  bad_segment = 5,          ///< the shared-memory segment could not be mapped or is malformed
};

/// The id of the task the calling thread is running inside `serve`, or 0 outside a task.
/// For logs, and for tests that speak the protocol by hand.
std::uint64_t current_task_id() noexcept;

/// For a job inside `serve`: true once the coordinator has asked to cancel the running task,
/// or has gone away (end of input, or a shutdown frame). A long job that polls it can stop
/// early, by throwing anything; the coordinator has already failed the task with
/// `cancelled` and discards the reply. A job that never polls is killed after the pool's
/// `cancel_grace`. Costs one poll(2) when nothing is pending; call it every few ms at most.
/// False outside a task.
bool cancel_requested() noexcept;

/// Serves the jobs of `jobs` until the coordinator closes the channel or sends shutdown.
/// Runs one task at a time on the calling thread. Arranges to die with the coordinator:
/// when the thread that started it exits (`PR_SET_PDEATHSIG`, see docs/architecture.md),
/// the worker kills its own process group, its children included. Jobs' exceptions become error
/// frames; stdout is flushed after each task so that what a job prints shows up promptly. Returns
/// the process exit code (see worker_exit); never throws.
int serve(const registry& jobs, const worker_options& options = {}) noexcept;

}  // namespace crew
