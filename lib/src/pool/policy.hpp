// Private: the supervisor's decisions, as pure functions and data — no IO, no timers, no
// processes — so that each rule can be read in one place and unit-tested on its own
// (tests/unit/test_policy.cpp). The pool's core (pool_core, worker_session) asks these
// functions and carries out their answers:
//  - boot back-off per slot, unavailable slots, and the boot-failure breaker (workers that
//    cannot start);
//  - the crash-loop breaker (tasks that keep killing their workers);
//  - which tasks are retried, and how many runs a task gets;
//  - when a worker is recycled (task count, resident memory);
//  - deadline arithmetic (per-task timeout, a batch's deadline);
//  - the stop ladder: how a worker is asked to go, and what follows if it does not.
#pragma once

#include <crew/error.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace crew::detail::policy {

using std::chrono::milliseconds;

// --- starting workers -------------------------------------------------------------------
//
// Boot failures are counted per slot: a slot's failures "in a row" are its failed starts
// since its worker last answered a task. A failed start is a worker that could not be
// spawned, ended before its hello or sent a bad one, or ended after its hello without ever
// answering a task (and not under one it had read: that task's crash is judged instead). They set
// the slot's back-off and, at `max_boot_failures`, make the slot unavailable: it is reported
// (worker_unavailable) once another worker of the pool is alive, and keeps trying at the capped
// back-off, so that a limit lifted later (descriptors freed, /dev/shm emptied) heals it. The
// workers that did start serve every task meanwhile. The pool as a whole breaks only when no worker
// can start (see boot_breaker_reason). A `max_boot_failures` of 0 counts as 1.

/// The longest back-off between two starts of a slot; also how often an unavailable slot
/// tries again.
inline constexpr milliseconds max_boot_backoff{6400};

/// How long a slot waits before its next start after `failures_in_a_row` boot failures
/// (1, 2, ...): 200 ms, doubling, at most max_boot_backoff (6.4 s). A broken worker cannot
/// cause a fork storm.
milliseconds boot_backoff(unsigned failures_in_a_row) noexcept;

/// The wait before a slot's next start after its `failures_in_a_row`-th boot failure in a
/// row: boot_backoff below `max_boot_failures`; from there on (the slot is unavailable)
/// max_boot_backoff each time.
milliseconds boot_retry_delay(unsigned failures_in_a_row, unsigned max_boot_failures) noexcept;

/// Whether a slot with `failures_in_a_row` boot failures has reached `max_boot_failures`.
bool slot_at_limit(unsigned failures_in_a_row, unsigned max_boot_failures) noexcept;

/// The pool's workers as the boot breaker sees them, when a start has just failed.
struct boot_view {
  std::size_t slots = 0;     ///< the pool's size
  std::size_t alive = 0;     ///< workers that said hello and still run
  std::size_t starting = 0;  ///< other slots whose worker has not said hello yet, or that
                             ///< were never started
  std::size_t at_limit = 0;  ///< slots (the failing one included) at `max_boot_failures`
  bool ever_alive = false;   ///< a worker of this pool has said hello
  unsigned failures = 0;     ///< failed starts in the pool so far (this one included)
};

/// Why the pool stops respawning after a failed start, or empty if it goes on. It breaks
/// only when no worker is alive, and then either
///  - no worker has ever said hello, none is starting, and `failures` has reached
///    `max_boot_failures`: a worker that never starts trips after about
///    max(slots, max_boot_failures) starts (every slot is tried, so that a slot that could
///    start is not judged by another's failures; 3 for a pool of one, as before);
///  - or every slot has reached `max_boot_failures` in a row: nothing can start now. This
///    also bounds a pool whose slots keep failing in turn while another one is starting.
std::optional<std::string> boot_breaker_reason(const boot_view& v, unsigned max_boot_failures);

/// Whether a slot with `failures_in_a_row` boot failures is reported unavailable now
/// (worker_unavailable): it has reached `max_boot_failures`, another worker of the pool is
/// alive (else the pool is starting or broken, and says so otherwise), and it has not been
/// reported since its last hello.
bool reports_unavailable(unsigned failures_in_a_row, unsigned max_boot_failures, bool other_alive,
                         bool reported) noexcept;

// --- crashes and retries ----------------------------------------------------------------

/// Whether a task that ended with `code` killed its worker (what the crash-loop breaker
/// counts): `worker_crashed` and `protocol_error`. A lost worker (`worker_lost`: silent, a
/// hung host or a cut link) says nothing about its task.
bool killed_its_worker(errc code) noexcept;

/// Counts tasks in a row that killed their worker; trips at `limit` (0: never).
class crash_loop_breaker {
 public:
  explicit crash_loop_breaker(unsigned limit) noexcept : limit_(limit) {}
  /// A task killed its worker; true when the breaker trips with this one.
  bool on_worker_killed() noexcept { return limit_ > 0 && ++count_ >= limit_; }
  /// A reply came (any reply but a cancelled task's): the run of crashes is over.
  void on_reply() noexcept { count_ = 0; }
  unsigned count() const noexcept { return count_; }
  /// Whether the run of crashes has reached the limit (and no reply came since).
  bool tripped() const noexcept { return limit_ > 0 && count_ >= limit_; }

 private:
  unsigned limit_;
  unsigned count_ = 0;
};

/// How many workers may end with a task next in line before reading a byte of it (a worker
/// that dies as its task arrives, or one that never reads): the task goes back to the queue
/// each time, uncounted as a run, and fails with `worker_crashed` at this many.
inline constexpr unsigned max_unread_deaths = 3;

/// Runs allowed again after a worker death: the task's own count, else the job's, else the
/// pool's.
unsigned retries_for(std::string_view job, std::optional<unsigned> task_retries,
                     const std::map<std::string, unsigned, std::less<>>& job_retries,
                     unsigned pool_retries);

/// Whether a task whose run ended with `code` (after `attempts` earlier runs that killed
/// their worker) runs again: only worker deaths and lost workers are retried, within
/// `allowed`, and only while the pool serves.
bool should_retry(errc code, unsigned attempts, unsigned allowed, bool serving) noexcept;

// --- recycling --------------------------------------------------------------------------

/// Why a worker that has run `tasks_done` tasks and has `resident_bytes` of resident memory
/// (empty: unknown) is to be replaced between tasks, or empty. Limits of 0 are off.
std::optional<std::string> recycle_reason(std::size_t tasks_done, std::size_t max_tasks,
                                          std::optional<std::size_t> resident_bytes,
                                          std::size_t max_resident);

// --- deadlines --------------------------------------------------------------------------

/// A task's deadline from its start (0: none): its own timeout, else the pool's; a batch of
/// `batch_items` calls gets it once per item (saturating).
milliseconds task_deadline(std::optional<milliseconds> task_timeout, milliseconds pool_timeout,
                           std::uint32_t batch_items) noexcept;

// --- stopping a worker ------------------------------------------------------------------

/// What a worker's channel is asked to do, mildest first.
enum class stop_step {
  close_input,  ///< end of input: a well-behaved worker exits on its own
  terminate,    ///< SIGTERM to a local worker's process group
  kill,         ///< SIGKILL to it
};

/// One rung: do `step`, then wait `wait` before the next rung (if the worker is still there).
struct stop_rung {
  stop_step step;
  milliseconds wait;
};

/// A sequence of rungs, climbed until the worker is gone.
struct stop_ladder {
  std::array<stop_rung, 3> rungs{};
  std::size_t size = 0;
};

/// Asked to go (close, join, recycling): end of input, `grace`, SIGTERM, `grace`, SIGKILL.
stop_ladder graceful_stop(milliseconds grace) noexcept;
/// A task past its deadline: SIGTERM at once, SIGKILL after `grace`.
stop_ladder overdue_stop(milliseconds grace) noexcept;
/// A worker that broke the protocol, missed its handshake or ignored a cancel: SIGKILL.
stop_ladder kill_now() noexcept;

}  // namespace crew::detail::policy
