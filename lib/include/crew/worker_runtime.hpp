// crew/worker_runtime.hpp — the inside of a worker process: handshake, read a task, run
// the job, reply. `crew-worker` is a main() around `serve`; so is any user's own worker:
// @code
// int main() { crew::registry jobs; jobs.add(long_comp, compute); return crew::serve(jobs); }
// @endcode
// Read next: process_pool.hpp (the coordinator that starts such a worker).
#pragma once

#include <crew/protocol.hpp>
#include <crew/registry.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace crew {

/// How a worker talks to its coordinator. The defaults are what a process_pool sets up.
struct worker_options {
  /// Descriptor the coordinator writes frames to (the worker reads). Ignored on stdio.
  int in_fd = 3;
  /// Descriptor the worker writes frames to. Ignored on stdio.
  int out_fd = 4;
  /// Speak the protocol on stdio: frames in on fd 0, out on fd 1, log lines on fd 2
  /// (docs/protocol.md §10), for a worker reached through a launcher such as `ssh -T host`
  /// or `srun -u`; fd 3 and fd 4 are not used. Empty (the default): on if `$CREW_STDIO` is
  /// "1" (`crew-worker --stdio` sets it true). See serve for what the mode changes.
  std::optional<bool> stdio;
  /// Connect back to a pool that listens (process_pool_options::listen; docs/remote.md,
  /// "Connect-back") at "HOST:PORT" ("[::1]:PORT") instead: connect, retrying with back-off
  /// for up to `$CREW_CONNECT_TIMEOUT_MS` (default 60 s) while nobody listens there yet,
  /// prove the pool's secret and check the pool's proof (docs/protocol.md §11), then serve
  /// on that connection as on stdio (below: pings answered, the end when the pool goes
  /// silent or away, the job's children cleaned up), except that fd 0, 1 and 2 are left as
  /// they are. fd 3 and fd 4 are not used. Empty (the default): `$CREW_CONNECT`, if set
  /// (`crew-worker --connect` sets this; a pool's launch_once command gets the variable).
  std::optional<std::string> connect;
  /// The secret for `connect`. Empty (the default): `$CREW_SECRET`, else the content of the
  /// file `secret_file`, else of `$CREW_SECRET_FILE` (a file only its owner can read; one
  /// trailing newline ignored). Never put it on a command line: `ps` shows those to every
  /// user. The variables are unset once read.
  std::optional<std::string> secret;
  /// See secret.
  std::optional<std::string> secret_file;
  /// Largest frame payload accepted from the coordinator, and the bound on a result (a
  /// larger one fails its task with `payload_too_large`; the worker goes on). Empty (the
  /// default): `$CREW_MAX_PAYLOAD`, which a process_pool sets to its own `max_payload`, else
  /// protocol::default_max_payload.
  std::optional<std::size_t> max_payload;
  /// The shared-memory request file (read-only) and response file, or -1 for none.
  /// Empty (the default): `$CREW_SHM_REQUEST_FD` and `$CREW_SHM_RESPONSE_FD`, which a
  /// coordinator using the shm transport sets (to 5 and 6); none if unset. Both are closed,
  /// and the variables unset, once mapped.
  std::optional<int> shm_request_fd;
  /// The response file; see shm_request_fd.
  std::optional<int> shm_response_fd;
  /// Results up to this many bytes go inline in the frame even with a segment. Empty (the
  /// default): `$CREW_SHM_INLINE`, else 0. Results larger than the response area also go
  /// inline.
  std::optional<std::size_t> shm_inline_max;
  /// Accept batch frames (many calls of one job in one frame, what `map` sends) and say so
  /// in the hello. Off: the coordinator sends such a worker one task frame per item.
  bool batch = true;
  /// Marks the process non-dumpable (`PR_SET_DUMPABLE` 0) before the first frame, so that
  /// another process of the same user — a compromised sibling worker — can neither read nor
  /// write its memory and descriptors through /proc or ptrace, and so cannot read its tasks
  /// or forge its results. The price: no core dump of a crashing worker (set false, or
  /// `CREW_WORKER_DUMPABLE=1` in its environment, to debug one: give it in the pool's
  /// `env`, the default allow-list does not pass it through).
  bool non_dumpable = true;
};

/// Exit codes of `serve`, which a worker's main() returns. `io_error` also covers an
/// unexpected exception caught by serve (e.g. std::bad_alloc, written to stderr). A worker
/// whose coordinator died ends by SIGKILL to its process group instead (on stdio: by
/// `_exit(0)` at the end of its input, see serve).
enum class worker_exit : int {
  ok = 0,                   ///< shutdown frame or end of input: the coordinator is done
  not_started_by_crew = 2,  ///< fd 3 / fd 4 are not open (on stdio: fd 0 / fd 1)
  protocol_error = 3,       ///< the coordinator sent bytes that break the protocol
  io_error = 4,             ///< reading or writing a channel failed
  bad_segment = 5,          ///< the shared-memory segment could not be mapped or is malformed
  connect_failed = 6,       ///< connect: no pool reached in time, no secret, or the
                            ///< handshake failed (a wrong secret; the message says which)
};

/// The id of the task the calling thread is running inside `serve`, or 0 outside a task
/// (and on any other thread). For logs, and for tests that speak the protocol by hand.
std::uint64_t current_task_id() noexcept;

/// For a job inside `serve`: true once the coordinator has asked to cancel the running task,
/// or has gone away (end of input, a shutdown frame, or a malformed frame). A long job that
/// polls it can stop early, by throwing anything (the reply is then an error with
/// `cancelled`); the coordinator has already failed the task (with `cancelled`, or with
/// `shutting_down` if the pool is being destroyed) and discards the reply. A job that never
/// polls is killed after the pool's `cancel_grace`. Costs one poll(2) when nothing is
/// pending (what is pending is read and kept for serve); call it every few ms at most.
/// Stays true for the rest of the task. False outside a task, and on any thread but the one
/// running serve. A batch (map) polls it itself every 256 items.
bool cancel_requested() noexcept;

/// Serves the jobs of `jobs` until the coordinator closes the channel or sends shutdown.
/// Runs one task at a time on the calling thread. Arranges to die with the coordinator:
/// when the thread that started it exits (`PR_SET_PDEATHSIG`, see docs/architecture.md),
/// the worker kills its own process group, its children included. (A pool starts workers
/// from a thread that never exits: in effect, when the coordinator process ends.) Jobs'
/// exceptions become error frames; stdout is flushed after each task so that what a job
/// prints shows up promptly. Returns the process exit code (see worker_exit); never throws.
///
/// The parent-death arrangement applies only when `$CREW_COORDINATOR_PID` is set (a pool
/// sets it); it installs a SIGHUP handler. serve also makes stdout line-buffered and unsets
/// the `CREW_*` variables it reads, so that a pool started by a job does not see them.
///
/// On stdio (`worker_options::stdio`, `$CREW_STDIO=1`; docs/protocol.md §10), before the
/// hello, serve keeps private copies of fd 0 and fd 1 for the frames (close-on-exec, numbered
/// 10 or more), points fd 1 at fd 2, so that whatever a job or its children print becomes log
/// lines on stderr and cannot corrupt the frames, and fd 0 at /dev/null; makes the worker
/// the leader of a process group of its own (unless it leads a session already, and so its
/// group), so that the job's children are in it; and catches SIGPIPE (if its disposition
/// was the default) with a handler that does nothing, so that a write to a vanished
/// coordinator fails (EPIPE) instead of killing the worker. A thread of its own (signals
/// blocked, detached) then reads the input at all times, even while a job runs: it answers
/// each ping at once with a pong (the hello says so with `flag_heartbeat`), passes every
/// other frame on to the serve loop, and at the end of the input (or a read error) kills
/// the other processes of the worker's process group — the job's children — and ends the
/// process with `_exit(0)` at once, in the middle of a job too: through ssh nothing else
/// would end it. Frames go out with one write each (or one for a run gathered together).
/// When serve returns on stdio (shutdown frame, protocol error), it first kills the other
/// processes of its group the same way.
/// Error frames carry `job_failed` (the exception's `what()`), `decode_error` (arguments
/// that do not decode), `unknown_job` (a job index out of range), `cancelled` (a job that
/// throws after cancel_requested() said true, a task cancelled before it started, a batch
/// stopped midway), or
/// `payload_too_large` (a batch whose results exceed `max_payload`).
/// Thread safety: call it once per process, from one thread; `jobs` must not change while
/// it runs. Jobs run on that thread.
int serve(const registry& jobs, const worker_options& options = {}) noexcept;

}  // namespace crew
