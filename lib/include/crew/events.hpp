// crew/events.hpp — what happens in a pool, as one stream of events: tasks queued, started,
// finished, failed and retried; workers spawned and exited, and slots whose worker cannot
// start while the others serve. The pools deliver them to an `event_handler` given in their
// options (process_pool_options::on_event, the thread_pool and inline_runner constructors). crew's
// CLI builds its progress line, job log and timeline from them; a service can feed its metrics or
// logs the same way.
#pragma once

#include <crew/error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string_view>

namespace crew {

/// What an event reports.
enum class event_kind {
  task_queued,     ///< accepted by the pool, waiting for a worker or thread
  task_started,    ///< began running: on a worker (reached the head of its pipeline) or a thread
  task_finished,   ///< completed with a value
  task_failed,     ///< completed with an error (`error`, `message`); also a task never started
  task_retried,    ///< its worker died under it; it goes back to the queue (`attempt`)
  worker_spawned,  ///< a worker process was started (`worker`, `pid`)
  worker_exited,   ///< a worker process ended and was reaped (`exit_status`, `message`)
  /// process_pool: a slot cannot start its worker while other workers serve: its last
  /// `max_boot_failures` starts in a row failed (`worker` = the slot, `error` =
  /// `worker_boot_failed`, `message` = the last failure's text, `pid` = 0). The pool goes on
  /// with the workers it has; the slot tries again every 6.4 s (the longest boot back-off)
  /// and serves again once a start succeeds. Once per run of failures: a slot is reported
  /// again only after one of its workers has said hello. Emitted when the slot reaches the
  /// limit, or, if no worker was alive then, when one first says hello. When no worker can
  /// start at all the pool breaks instead (tasks fail with `worker_boot_failed`).
  worker_unavailable,
  /// process_pool listening for workers (listen_options): a connection was refused — a
  /// failed or unfinished handshake, too many at once, or a worker beyond `workers`
  /// (`message`: the peer's address and why, `items`: how many refused so far).
  peer_refused,
};

/// Stable short name of a kind (`"task_started"`), for logs and JSON.
const char* to_string(event_kind k) noexcept;

/// One event. The string views are valid only during the handler's call.
struct event {
  static constexpr std::size_t no_worker = std::numeric_limits<std::size_t>::max();

  event_kind kind{};
  std::chrono::system_clock::time_point time;    ///< when, by the wall clock (for logs)
  std::chrono::steady_clock::time_point steady;  ///< when, by the steady clock (for durations)
  std::uint64_t task = 0;  ///< the pool's id of the task (0 for worker events)
  std::string_view job;    ///< the job's name (task events)
  std::string_view label;  ///< the caller's label for the task (task_options::label), or empty
  std::size_t items = 1;   ///< calls in the task: more than 1 for a batch of `map`
  std::size_t worker = no_worker;  ///< the worker's slot (process_pool) or the thread's index
  int pid = 0;                     ///< the worker's process id (this process's, in-process)
  errc error{};                    ///< task_failed, task_retried: why; worker_unavailable:
                                   ///< worker_boot_failed
  std::string_view message;        ///< task_failed: the error's text; worker_exited: how it
                                   ///< ended; worker_unavailable: the last boot failure
  std::size_t bytes_in = 0;        ///< task_started/finished: encoded arguments (0 in-process)
  std::size_t bytes_out = 0;       ///< task_finished: encoded result (0 in-process)
  int exit_status = -1;            ///< worker_exited: the wait status (as waitpid's), -1 if unknown
  unsigned attempt = 0;            ///< task_retried: the run about to start (2 = the first retry)
  /// worker_spawned, worker_exited, task_started: where the worker runs when it is not a
  /// local child: the Slurm node (`SLURMD_NODENAME`), else the Kubernetes pod, else the
  /// host name it reported in its hello (a worker through a launcher: the launcher's name
  /// until then); empty for a local worker.
  std::string_view host;
};

/// Receives events. Called serially (never two calls at once for one pool), on the pool's
/// strand for process_pool and on the running thread for the in-process pools. It must be
/// quick and must not block or call back into the pool's blocking members; an exception it
/// throws is swallowed.
using event_handler = std::function<void(const event&)>;

}  // namespace crew
