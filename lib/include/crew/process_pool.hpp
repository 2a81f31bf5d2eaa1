// crew/process_pool.hpp — jobs run in a pool of persistent worker processes.
//
// The coordinator's side: options, per-task options, the pool. Workers are built on
// worker_runtime.hpp. Read next: runner.hpp (submit, map and the completion signature),
// error.hpp (what a failed task carries); docs/architecture.md for supervision in depth.
#pragma once

#include <crew/codec.hpp>
#include <crew/detail/completion.hpp>
#include <crew/detail/map_chunks.hpp>
#include <crew/detail/map_operation.hpp>
#include <crew/detail/raw_task.hpp>
#include <crew/error.hpp>
#include <crew/events.hpp>
#include <crew/job.hpp>
#include <crew/protocol.hpp>
#include <crew/runner.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace crew {

/// One line a worker wrote to its stdout or stderr (without the newline). A line longer
/// than 64 KiB arrives in 64 KiB pieces; a last line without a newline arrives at the end.
struct output_line {
  /// Which of a worker's streams: its stdout or its stderr.
  enum class stream { out, err };
  std::size_t worker;     ///< the worker's slot in the pool, 0..workers-1; event::no_worker
                          ///< for the lines of listen_options::launch_once (its pid then)
  int pid;                ///< the worker's process id
  stream source;          ///< which of its streams
  std::string_view text;  ///< the line; valid only during the callback
};

/// `text` with every control character but tab — C0, DEL, and C1 as UTF-8 — written as
/// `\xNN`: a worker's escape sequences shown, not obeyed, by the terminal. What the default
/// output sink and `crew run` print.
std::string escape_controls(std::string_view text);

/// How arguments and results travel between the pool and its workers.
enum class transport {
  /// Everything through the pipes (fd 3 / fd 4).
  pipe,
  /// Control frames through the pipes; payloads above `shm_inline_max` through a
  /// per-worker shared-memory segment (Boost.Interprocess), whose two files the worker
  /// gets as fd 5 (requests, read-only) and fd 6 (responses). A payload larger than its
  /// area, a map batch, and any payload for a worker that did not map the segment (one not
  /// built on crew's runtime) go through the pipe instead. Forces `pipeline_depth` 1.
  shm,
};

/// What `async_submit` does when the pool's queue holds `max_queue` tasks.
enum class queue_policy {
  /// Block the submitting thread until a queued task has been sent to a worker (or has
  /// resolved while queued), or the pool closes (the task then fails with `shutting_down`,
  /// unless it reaches the pool's strand before the close does).
  /// On a thread that runs the pool's executor or its strand (where waiting could deadlock)
  /// the task fails with `queue_full` instead.
  wait,
  /// Fail the new task at once with `queue_full`.
  fail,
};

/// Isolation of workers from the coordinator, from each other and from the machine
/// (docs/architecture.md, "The sandbox"). Each worker runs inside bubblewrap (`bwrap`,
/// Debian's `bubblewrap`), which sets up Linux namespaces: its own user (in which it cannot
/// make more), pid, mount, IPC, UTS and cgroup namespaces, and a network namespace unless
/// `network`; so it sees only itself and its own children in its own `/proc`, cannot signal
/// or trace the coordinator or its siblings, cannot read their environment or descriptors; a
/// new session (no controlling terminal: no keystrokes injected into the user's terminal);
/// no capabilities and `no_new_privs` (setuid programs gain nothing); the file system
/// read-only, with a private, empty `/tmp`, `/run` (no D-Bus or systemd socket to ask for
/// something outside) and `/dev` (null, zero, random, urandom, tty, a private `/dev/shm`),
/// and the `writable` paths; `hidden` paths replaced by empty ones. It can still READ every
/// file this user can (hide `~/.ssh` and the like with `hidden`). The worker's executable and
/// working directory are bound back read-only where /tmp, /run or a hidden path would hide
/// them. The sandbox, its worker and everything the worker started die with the worker's
/// pid namespace: a child that calls `setsid` no longer escapes. Needs user namespaces
/// (unprivileged ones, unless the coordinator runs as root). Costs a few milliseconds per
/// worker start (crew-bench, section `startup`). Local workers only.
///
/// Inside the sandbox SIGTERM is not forwarded (bubblewrap ends its worker with SIGKILL),
/// a worker killed by a signal is reported from bubblewrap's exit code (128 + the signal; a
/// worker's own exit code of 129..192 reads the same), `limit_address_space`/`limit_cpu`
/// are applied by `prlimit(1)` run inside it, and `max_worker_rss` is the sum over the
/// sandbox's processes (pages they share are counted in each).
struct sandbox_options {
  /// Off by default: workers run as this user, unconfined (docs/reliability.md says what
  /// such a worker can do).
  bool enabled = false;
  /// Paths (files or directories, which must exist) bound read-write at the same place.
  /// Paths are mounted shallowest first, so a hidden path inside a writable one stays
  /// hidden, and the other way round.
  std::vector<std::filesystem::path> writable;
  /// Paths replaced by an empty directory (a directory) or an empty file (a file), e.g. the
  /// user's `~/.ssh`; each must exist.
  std::vector<std::filesystem::path> hidden;
  /// Whether workers keep the machine's network (and its abstract sockets, such as X11's);
  /// false (the default): a network namespace of their own with only a loopback device
  /// (nothing reaches the host's ports, 127.0.0.1 included).
  bool network = false;
  /// The bubblewrap executable; empty: `bwrap` found on PATH. A missing one is a boot
  /// failure saying so.
  std::filesystem::path bwrap;
};

/// Why this machine cannot set up the sandbox `options` describes — bubblewrap missing, a
/// writable or hidden path that does not exist, namespaces the kernel refuses (bubblewrap's
/// own message) — or empty when it can. Starts `true` in such a sandbox once and waits for
/// it (a few milliseconds): for a program to check its settings before it starts a pool,
/// whose workers would otherwise fail to boot with the same message. It does not check the
/// worker itself.
std::string sandbox_unavailable(const sandbox_options& options);

/// The environment variables a worker inherits by default (process_pool_options::env_allow):
/// what programs need to find their tools, libraries, locale, home and temporary directory
/// — `PATH`, `HOME`, `USER`, `LOGNAME`, `SHELL`, `LANG`, `LANGUAGE`, `LC_*`, `TZ`, `TERM`,
/// `TMPDIR`, `LD_LIBRARY_PATH`, `PYTHONPATH`, `PYTHONHOME`, `VIRTUAL_ENV` and the
/// sanitizers' `*SAN_OPTIONS` — and nothing else: tokens, keys and passwords in the
/// coordinator's environment stay there.
std::vector<std::string> default_env_allow();

/// A command that runs a worker somewhere else: another machine through `ssh`, a Slurm
/// allocation through `srun`, a container through `docker exec -i` (docs/remote.md). The
/// pool runs `command` here, followed by the worker's command line; the worker speaks the
/// protocol on that command's stdin and stdout (docs/protocol.md §10: crew's runtime does
/// when `CREW_STDIO=1`, which the pool puts on the command line) and its stderr is the
/// worker's output. crew adds no listener and no credentials of its own: who may run what
/// where, and the encryption of the link, are the launcher's (ssh's keys, Slurm's munge).
struct launcher {
  /// The prefix, run locally, its first word looked up on PATH: `{"ssh", "-T", "host"}`,
  /// `{"srun", "-n1", "-u", "--jobid=J", "--overlap", "-w", "node1"}`. For srun, `-u` is
  /// required (without it srun holds binary frames back until a newline; docs/remote.md).
  std::vector<std::string> command;
  /// How this launcher's workers are named in messages ("worker 2 on node1 ..."); empty:
  /// derived from the command (ssh: its destination; srun: its `-w`/`--nodelist`; else the
  /// whole command).
  std::string name;
  /// How the worker's command line follows the prefix.
  enum class passing {
    automatic,  ///< `shell` when a word of the command is `ssh` or `autossh` (any
                ///< directory: `sshpass -e ssh`, `timeout 1h ssh`), else `exec`
    shell,      ///< quoted into one word for the remote shell (what ssh runs)
    exec,       ///< as separate arguments (srun, env, docker exec)
  };
  /// See passing.
  passing pass = passing::automatic;
};

/// A pool whose workers connect to it (docs/remote.md, "Connect-back"): for engines that
/// start many copies of one command at once (`srun -n 64`, a Kubernetes Job, a shell loop),
/// which cannot give each copy a private stdin. The pool listens on `address`:`port`; each
/// worker (`crew-worker --connect HOST:PORT`, or any worker built on crew::serve with
/// `CREW_CONNECT`) connects, and both sides prove that they hold the pool's secret
/// (HMAC-SHA256 challenge-response: the secret never crosses the wire, a recorded handshake
/// cannot be replayed; docs/protocol.md §11). An authenticated worker takes a free slot;
/// one that finds every slot taken is told so and exits 0. A peer that fails the handshake,
/// or does not finish it within `auth_timeout`, is closed and reported (a `peer_refused`
/// event); it never touches a task or a slot.
struct listen_options {
  /// The address to listen on: "127.0.0.1", "::1", "0.0.0.0" (every interface), a host
  /// name. Empty (the default): the pool does not listen.
  std::string address;
  /// The port; 0: any free one (process_pool::listen_port() tells which).
  std::uint16_t port = 0;
  /// The shared secret (at least 16 bytes). Empty: the pool makes one (64 hex digits from
  /// the system's random source; process_pool::secret()). Workers read it from
  /// `CREW_SECRET` or a file (`CREW_SECRET_FILE`, `--secret-file`), never from their command
  /// line.
  std::string secret;
  /// TLS 1.3 (OpenSSL, through Asio) on every connection, for networks that must not see
  /// the tasks: the pool makes a throw-away key and certificate; a worker proves the secret
  /// over the TLS session (channel binding), so nobody between them can relay the handshake.
  /// Workers follow the pool's choice.
  bool tls = false;
  /// A peer must complete the handshake (TLS included) within this long.
  std::chrono::milliseconds auth_timeout{3000};
  /// Handshakes in progress at once; connections beyond are closed at once (and reported).
  std::size_t max_pending = 64;
  /// The start-up deadline: a pool that has had no worker for this long — none has
  /// connected since it started, or every one has gone and none came back — stops serving
  /// (broken_reason(); queued and later tasks fail with `worker_boot_failed`). Tasks wait
  /// in the queue until then.
  std::chrono::milliseconds connect_timeout{60000};
  /// A command run once, when the pool starts, to bring the workers (`{"srun", "-N2",
  /// "-n8", "--input=none"}`), followed by the worker's command line (remote_executable,
  /// args); its environment carries `CREW_CONNECT=HOST:PORT` and `CREW_SECRET` (srun passes
  /// both on to its tasks; ssh does not). Its output is the pool's output (worker
  /// `event::no_worker`); if it fails before any worker has connected, the pool stops
  /// serving with its exit status and last lines. It is stopped with the pool (SIGTERM,
  /// then SIGKILL). Empty: the workers are started by someone else.
  std::vector<std::string> launch_once;
};

/// A secret for listen_options::secret from a file only its owner can read (as ssh wants
/// of keys): the content without one trailing newline. Throws std::runtime_error naming
/// the file and why for a file that cannot be read, is not a regular file, is readable or
/// writable by group or others, is over 4 KiB, or holds a secret under 16 bytes.
std::string read_secret_file(const std::filesystem::path& path);

/// How a process_pool is set up. Read once, when the pool is made.
struct process_pool_options {
  /// Number of worker processes; 0 means one per hardware thread (with `launchers`: one
  /// per launcher).
  std::size_t workers = 0;
  /// The worker executable; empty means `default_worker_executable()`. A bare name
  /// (`"python3"`) is looked up on PATH; a relative path is taken from this process's working
  /// directory when the pool is made. One that is missing or not executable is a boot
  /// failure, reported with its path.
  std::filesystem::path executable;
  /// Arguments passed to every worker (after the executable name).
  std::vector<std::string> args;
  /// Environment entries (`NAME=value`) for every worker, over the inherited ones: the way
  /// to give workers a secret they need.
  std::vector<std::string> env;
  /// Which variables of this process's environment workers inherit: names, or prefixes
  /// ending in `*` (`"LC_*"`; `"*"` alone: all of them). The default is
  /// default_env_allow(): nothing a worker was not given explicitly reaches it.
  std::vector<std::string> env_allow = default_env_allow();
  /// Whether workers inherit from this process's environment at all (false: only `env`).
  /// Either way crew adds its own `CREW_*` variables.
  bool inherit_env = true;
  /// The workers' working directory; empty: this process's.
  std::filesystem::path working_directory;
  /// Largest frame payload accepted from a worker or sent to one. Arguments larger than
  /// this (less 4 bytes) fail with `payload_too_large` unless they go by shared memory.
  /// Workers get it as `$CREW_MAX_PAYLOAD` (crew's runtime then fails a larger result with
  /// `payload_too_large` and lives on); a result frame over it from a worker that ignores it
  /// is a protocol violation (`protocol_error`, the worker is killed).
  std::size_t max_payload = protocol::default_max_payload;
  /// Most memory, in bytes, a task's result may take once decoded here (by async_submit and
  /// async_map): its vectors' elements at their size in memory and its strings' bytes,
  /// counted as the result is decoded, before each allocation. On the wire an element can
  /// be far smaller (an empty string: 8 bytes there, 32 in a std::string), so a result
  /// within max_payload could otherwise take several times it. A result that would take
  /// more fails with `decode_error` ("... would take N bytes in memory, more than the limit
  /// M") before it is allocated. 0 (the default): twice `max_payload` (512 MiB), which holds
  /// any result of numbers and any vector of strings of 16 bytes or more up to max_payload.
  /// A coordinator out of memory while decoding a result fails that task with
  /// `decode_error` too. Bytes a user codec allocates itself are not counted.
  std::size_t max_result_memory = 0;
  /// Receives every line workers write to stdout/stderr, in order, on a thread of the pool's
  /// own (started with the first line; never the pool's executor, never concurrently with
  /// itself). Lines reach it through a queue of 1 MiB: while it is slower than the
  /// workers, lines that do not fit are dropped and counted (output_lines_dropped()), and
  /// the pool goes on unhindered. An exception it throws is swallowed and the line dropped.
  /// The pool's destructor waits for it to take what is queued, destroys it, and never
  /// calls it afterwards: it must not wait for anything the pool's executor has to do.
  /// Empty: lines go to this process's stdout/stderr as `[worker N pid P] text`, control
  /// characters escaped (escape_controls), with a notice on stderr after dropped lines (a
  /// failing write drops the line; SIGPIPE is never raised).
  std::function<void(const output_line&)> on_output;
  /// Receives the pool's events (crew/events.hpp): tasks queued, started, finished, failed,
  /// retried; workers spawned and exited; slots whose worker cannot start while others
  /// serve (worker_unavailable). Called on the pool's strand, one at a time.
  event_handler on_event;
  /// How long a stopping worker gets after end of input before SIGTERM, and again
  /// after SIGTERM before SIGKILL. Also the time from a timed-out task's SIGTERM to SIGKILL,
  /// and the unit of the destructor's bound.
  std::chrono::milliseconds shutdown_grace{2000};
  /// A worker that has not sent its handshake this long after it was started is killed
  /// and counts as a boot failure.
  std::chrono::milliseconds handshake_timeout{10000};
  /// Every task's deadline, from the moment it starts on a worker; zero means none. A task
  /// past it fails with `task_timeout`; its worker gets SIGTERM, then SIGKILL after
  /// `shutdown_grace`, and is replaced.
  std::chrono::milliseconds task_timeout{0};
  /// Boot failures (a worker that cannot be spawned, exits before its handshake or sends a
  /// bad one) are counted per slot, "in a row" meaning since the slot's last handshake; a
  /// slot's respawns back off from 200 ms, doubling up to 6.4 s. A slot that fails this
  /// many times in a row while other workers serve is reported (a worker_unavailable
  /// event) and tries again every 6.4 s; the pool serves with the workers it has. The pool
  /// stops respawning, and fails its queued and future tasks with `worker_boot_failed` and
  /// the reason (broken_reason()), only when no worker can start: with no worker alive,
  /// either this many starts failed before any handshake with no other slot still
  /// starting, or every slot failed this many times in a row. 0 counts as 1.
  unsigned max_boot_failures = 3;
  /// Isolation of the workers (see sandbox_options); off by default.
  sandbox_options sandbox;

  // --- workers elsewhere (docs/remote.md) ------------------------------------------------

  /// Empty (the default): workers are local child processes. Otherwise worker slot i runs
  /// through `launchers[i % launchers.size()]`, one launcher process per worker; supervision
  /// is the same (deadlines, cancel, retries, recycling by task count, breakers — a slot of
  /// a dead host fails its boots and is reported while the others serve), a worker is
  /// stopped by closing its input, then by signals to the launcher process (never to a pid
  /// on another host), and one that stops answering is lost after `heartbeat_timeout`.
  /// What is local-only is refused at construction (std::invalid_argument):
  /// `transport::shm`, `max_worker_rss`, `limit_address_space`, `limit_cpu`, `sandbox`.
  /// The environment: the launcher process inherits what `env_allow` lets through plus
  /// what launchers need (`SSH_AUTH_SOCK`, `SSH_AGENT_PID`, `KRB5CCNAME`, `SLURM_*`); the
  /// worker gets what its launcher gives it (ssh: the remote login's; srun: srun's own,
  /// unless its `--export` says otherwise), and `env` and crew's `CREW_*` variables through
  /// `env NAME=value ...` on its command line — visible to `ps` on both machines, so never
  /// a secret there. `working_directory` becomes `env -C DIR` on the remote side.
  std::vector<launcher> launchers;
  /// The worker executable as the remote side sees it; empty: `executable` as given (a
  /// bare name is then looked up on the remote PATH), or default_worker_executable() (the
  /// same path as here: right on a shared file system).
  std::filesystem::path remote_executable;
  /// Heartbeats, for workers that answer pings (flag_heartbeat on their hello: crew's
  /// runtime on stdio, so every worker started through a launcher): a ping is sent after
  /// this long without hearing from the worker or sending to it (checked twice per interval;
  /// 0: no heartbeats) ...
  std::chrono::milliseconds heartbeat_interval{1000};
  /// ... and a worker from which nothing at all (no frame byte, no pong) has arrived for
  /// this long, a ping unanswered for half of it, is lost: crew stops it through its
  /// launcher, its task fails with `worker_lost` (retried like a crash, per `retries`; not
  /// counted by the crash-loop breaker) and the slot is filled again. The worker, told this
  /// deadline (`CREW_HEARTBEAT_TIMEOUT_MS`), ends itself after as long without a byte from
  /// the pool: so the pool's executor must never be blocked that long. Must exceed the time
  /// the largest task's arguments take to cross the link, and be at least 3 x
  /// heartbeat_interval (std::invalid_argument otherwise). 0: never lost.
  std::chrono::milliseconds heartbeat_timeout{10000};
  /// Workers that connect back (see listen_options): with `listen.address` set, `workers`
  /// is how many the pool expects (it must be > 0), and they are not started by the pool
  /// but by `listen.launch_once` or by someone else. Heartbeats and `heartbeat_timeout`
  /// apply as for launchers, and the local-only options are refused likewise.
  listen_options listen;
  /// The channel for payloads.
  crew::transport transport = crew::transport::pipe;
  /// With `transport::shm`: bytes of each of a worker's two areas (request, response),
  /// rounded up to a multiple of 4 KiB. Every worker's segment is allocated in full at
  /// start-up (about twice this, plus a 4 KiB header page). A payload larger than the area
  /// goes through the pipe instead. 0 with `transport::shm` is refused at construction
  /// (std::invalid_argument).
  std::size_t shm_area_bytes = std::size_t{16} << 20;
  /// With `transport::shm`: payloads up to this size stay inline in the pipe frame,
  /// where one small copy costs less than the descriptor round trip.
  std::size_t shm_inline_max = std::size_t{16} << 10;
  /// Tasks sent ahead to each worker (pipe transport only; shm uses 1): with more than one,
  /// the next tasks wait in the worker's pipe while it runs one, and several frames travel
  /// per system call both ways, which is what makes small tasks cheap. A worker that dies
  /// fails only the task it was running; the ones behind it go back to the queue unharmed.
  /// The price: a task waits behind the one running on its worker even when another worker
  /// becomes free (head-of-line blocking), so keep 1 for tasks of very uneven length.
  std::size_t pipeline_depth = 1;
  /// Items per batch frame in `map` (many calls of the job in one frame and one reply, see
  /// docs/protocol.md §9). 0: about a quarter of the items per worker (as Python's Pool.map),
  /// at most 1 MiB of encoded arguments per batch. 1: one task per item.
  std::size_t map_chunk = 0;

  // --- supervision (docs/architecture.md, "Supervision") ---------------------------------

  /// A worker that has begun a frame must finish it within this time, counted from the
  /// frame's first byte (not from the last one: a frame trickled in a byte at a time does not
  /// keep its deadline away), or it is killed and its task fails with `protocol_error`.
  /// Only the worker's slowness counts: while bytes it sent wait unread on the coordinator's
  /// side, the deadline is looked at again one frame_timeout later. Large results must
  /// therefore be written at frame_timeout's pace: 256 MiB within 10 s is 26 MB/s.
  std::chrono::milliseconds frame_timeout{10000};
  /// After a running task is cancelled its worker gets a cancel frame; if it has not
  /// answered (the job may poll `crew::cancel_requested()`) within this time it is killed.
  std::chrono::milliseconds cancel_grace{1000};
  /// How many times a task is run again (first in line, on the next free worker, maybe one
  /// already running) after its worker died under it
  /// (`worker_crashed`). Errors thrown by the job, timeouts and protocol violations are
  /// never retried. Per job: `job_retries`; per task: `task_options::retries`.
  unsigned retries = 0;
  /// Retry counts by job name, overriding `retries` for those jobs.
  std::map<std::string, unsigned, std::less<>> job_retries;
  /// Recycling: a worker is replaced, between tasks (once its pipelined tasks are done),
  /// after this many tasks (0: never) ...
  std::size_t max_tasks_per_worker = 0;
  /// ... or once its resident memory exceeds this many bytes after a task (0: no limit;
  /// read from /proc after each task).
  std::size_t max_worker_rss = 0;
  /// Hard limits set on each worker (prlimit): address space in bytes (RLIMIT_AS) and CPU
  /// seconds (RLIMIT_CPU: SIGXCPU, then SIGKILL a second later). 0: not set.
  std::size_t limit_address_space = 0;
  /// See limit_address_space. A worker that cannot be limited is a boot failure.
  std::chrono::seconds limit_cpu{0};
  /// Crash-loop breaker: after this many tasks in a row killed their worker (with no task
  /// completing in between), the pool stops respawning and fails queued and new tasks
  /// with `worker_crashed` and the reason. 0: off. Counted: `worker_crashed` and
  /// `protocol_error` endings, retried attempts included (not `worker_lost`); any reply (but a
  /// cancelled task's) resets it. With launchers it counts per launcher, and the pool stops
  /// only once every launcher's count has reached the limit: one host whose workers all die
  /// does not stop the others.
  unsigned crash_loop_limit = 10;
  /// Most tasks waiting for a worker (0: unbounded); a map chunk counts as one task.
  std::size_t max_queue = 0;
  /// What a submission meets when `max_queue` tasks are waiting.
  queue_policy when_full = queue_policy::wait;
};

/// The worker used when options name none: `$CREW_WORKER` if set and not empty, else
/// `crew-worker` next to the running executable, else `crew-worker` found on PATH, else the
/// bare name `"crew-worker"` (which then fails to start). Reads the environment and the
/// file system at each call.
std::filesystem::path default_worker_executable();

/// A pool of persistent worker processes (`crew-worker` or your own executable built on
/// crew/worker_runtime.hpp). Tasks are queued and sent to idle workers over pipes (fd 3
/// and fd 4 of the worker); results come back in the same frames. Workers' stdout and
/// stderr are captured and passed to `options.on_output` line by line.
///
/// A worker that dies fails only its own in-flight task (`worker_crashed`, with the
/// signal or exit code, pid and stderr tail) and is replaced.
///
/// The pool runs on the executor it is given: that executor must be run (e.g.
/// `io_context::run` on some thread) for tasks to progress. Its state lives on a strand of
/// that executor. It owns one thread, for workers' output (started with the first line,
/// see on_output), so that a slow reader of that output never holds the strand. (Processes
/// are spawned from one helper thread per process, shared by all pools, so that a worker's
/// parent-death signal is not tied to a thread of yours.)
///
/// Thread safety: every member function may be called from any thread concurrently,
/// except the destructor. join(), shutdown(), map() and a future's get() block: never call
/// them on a thread that must run the pool's executor.
class process_pool : public basic_runner<process_pool> {
 public:
  /// The executor type the pool runs on.
  using executor_type = boost::asio::any_io_executor;
  /// `submit` and `map` complete their futures on the pool's executor (see basic_runner).
  static constexpr bool futures_on_own_executor = true;

  /// Starts `options.workers` workers. Start-up failures do not throw: they surface as
  /// `worker_boot_failed` on the tasks (a missing executable is reported with its path).
  /// The workers are spawned on the executor, so nothing starts until it runs; tasks
  /// submitted meanwhile wait in the queue. Throws std::invalid_argument for options that
  /// cannot work (`shm_area_bytes` 0 with `transport::shm`), else only std::bad_alloc.
  explicit process_pool(executor_type ex, process_pool_options options = {});

  /// Bounded and leaves no child behind: on the strand, queued and running tasks fail with
  /// `shutting_down` and every worker gets end of input and SIGTERM at once (SIGKILL after
  /// 2 x `shutdown_grace`). The destructor blocks until all are reaped, for at most
  /// 2 x `shutdown_grace` + 0.5 s, then SIGKILLs and reaps what is left itself.
  /// That needs the executor to run on another thread. Run from a thread that runs it (a
  /// handler on a one-thread io_context) or with nobody running it, the wait lasts its
  /// full bound and the tasks fail only if the executor runs later; with a stopped
  /// io_context it does not wait, and the tasks fail (`shutting_down`) if that io_context
  /// is restarted and run, else their handlers never run.
  /// For a graceful end call `close()` and `join()`, or `shutdown()`, first.
  ~process_pool();

  process_pool(const process_pool&) = delete;
  process_pool& operator=(const process_pool&) = delete;

  /// The executor the pool runs on; completions default to it. Any thread.
  executor_type get_executor() const noexcept { return executor_; }

  /// `async_submit(inv, token)`: as below, with default task_options.
  using basic_runner<process_pool>::async_submit;
  /// Runs `inv` on a worker, with a deadline, a retry count, a label or a stop token for
  /// this task (see task_options). Completion signature: `task_signature_t<R>`, i.e.
  /// `void(std::exception_ptr, R)`: the exception is a task_error whose code says why
  /// (`job_failed` with the job's message, `worker_crashed`, `unknown_job`,
  /// `payload_too_large`, `shutting_down`, `decode_error`, ...).
  /// The handler is never invoked from within this function; it runs on its associated
  /// executor (default: the pool's), which is kept busy (outstanding work) until then.
  /// The token is required (the default token type is void in Boost 1.81); `R` must be
  /// default-constructible.
  ///
  /// Errors, by where they arise:
  /// - at submission (still delivered through the handler): `shutting_down` (closed),
  ///   `payload_too_large` (encoded arguments over `max_payload` - 4 bytes that cannot go by
  ///   shared memory), `queue_full` (see queue_policy);
  /// - while queued: `worker_boot_failed` or `worker_crashed` once the pool has stopped
  ///   serving (see broken_reason());
  /// - when sent: `unknown_job` or `signature_mismatch` (against the worker's hello),
  ///   `payload_too_large` (the arguments fit neither the frame nor this worker's segment);
  /// - on the worker: `job_failed`, `decode_error` (arguments), `worker_crashed` (after
  ///   `retries`), `task_timeout`, `protocol_error`;
  /// - back here: `decode_error` if the result does not decode as `R`;
  /// - at any point until it resolves: `cancelled` (see below, and async_shutdown),
  ///   `shutting_down` (the pool is destroyed).
  /// Throws only what sizing the arguments throws (a user codec's exception,
  /// std::bad_alloc). The arguments are kept in the task and encoded when it is sent (again
  /// on a retry): an array_view argument must stay valid until the task completes.
  ///
  /// Cancellation: the handler's associated cancellation slot (any cancellation type) and
  /// `task_options::stop` cancel the task: a queued task is dropped, a running one gets a
  /// cancel frame and, after `cancel_grace`, its worker is killed. The task completes at
  /// once with `cancelled`; whatever the worker still sends for it is discarded.
  ///
  /// With `max_queue` set and `queue_policy::wait`, this may block the calling thread
  /// until the queue has room (see queue_policy).
  template <class R, class... A,
            class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_submit(invocation<R, A...> inv, task_options options, CompletionToken&& token = {});

  /// As basic_runner::async_map, in batches: the items are cut into chunks (`map_chunk`),
  /// each chunk travels as one batch frame and comes back as one reply, so that small tasks
  /// cost a few nanoseconds of framing each instead of a pipe round trip. A chunk is one task
  /// as far as supervision goes: the pool's `task_timeout` applies per item (the chunk gets
  /// it times its item count); a worker dying under a chunk fails (or, with retries, reruns)
  /// the whole chunk. Completion signature: `void(std::exception_ptr, std::vector<R>)`; on
  /// failure the exception is the first error observed and the vector is empty. A token
  /// that defers the initiation (use_awaitable, deferred) first copies an lvalue range into
  /// the operation.
  ///
  /// The completion is posted to the handler's associated executor (default: the pool's)
  /// once every chunk has resolved. A chunk fails as a task would (see async_submit); a
  /// chunk whose reply holds item errors fails with its first one (the other items did
  /// run). With an explicit `map_chunk` a chunk over `max_payload` fails with
  /// `payload_too_large`: chunks of several items never go by shared memory.
  /// The items are encoded in the calling thread as the range is read, and each chunk is
  /// submitted once full, so this may block under `queue_policy::wait`; a range that is not
  /// sized is first copied into a vector. `j` must outlive the initiation. Unlike
  /// async_submit, `R` need not be default-constructible. Throws what encoding an item
  /// throws (capacity_exceeded for one over 4 GiB - 1); chunks already submitted then
  /// still run and the handler is never called.
  template <class R, class... A, std::ranges::input_range Range,
            class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_map(const job<R(A...)>& j, Range&& inputs, CompletionToken&& token = {});

  /// A call known only at run time (a command line, a language binding): the job by name
  /// and wire signature, its arguments already encoded (codec.hpp; one after the other, as
  /// a tuple). With `batch` = n >= 2, `args` is a batch of n calls as
  /// protocol::batch_builder::finish() returns it, and the result is a batch_result's
  /// payload (read it with protocol::batch_result_reader: one result or error per item).
  struct encoded_call {
    std::string job;
    std::string signature;  ///< as the worker announces it (async_jobs), e.g. "f64(i32)"
    std::vector<std::byte> args;
    std::uint32_t batch = 0;  ///< 0: one call; else the batch's item count (>= 2)
  };
  /// Runs `call` as async_submit runs a typed task (same options, errors, cancellation,
  /// supervision; a batch is one task as in async_map: the timeout applies per item).
  /// Completion signature: `void(std::exception_ptr, std::vector<std::byte>)`: the encoded
  /// result (for a batch: the batch_result payload, already checked to hold `batch` items).
  /// Throws std::invalid_argument for `batch` == 1.
  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_submit_encoded(encoded_call call, task_options options, CompletionToken&& token = {});

  /// The jobs the pool's workers serve, in the order of a worker's hello (the first worker
  /// to say hello). Completion signature: `void(std::exception_ptr, std::vector<job_info>)`,
  /// posted to the handler's associated executor; completes as soon as a worker has said
  /// hello, or with an error (`worker_boot_failed`, ...) once the pool has stopped serving
  /// or is closed and joined without any worker having started.
  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_jobs(CompletionToken&& token = {});

  /// Stops taking work: later submissions fail with `shutting_down`. Queued and running
  /// tasks go on; once none is left, the workers are stopped (end of input, then SIGTERM and
  /// SIGKILL after `shutdown_grace` each), as by join. Like Python's `Pool.close()`.
  /// Returns at once; idempotent.
  void close();

  /// Completes when the pool is closed (this closes it), every task has resolved and
  /// every worker has exited and been reaped. Completion signature: `void()`, posted to the
  /// handler's associated executor (default: the pool's). May be called more than once;
  /// each completes. No error: a pool that stopped serving completes once its workers are
  /// gone, its tasks having failed.
  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_join(CompletionToken&& token = {});

  /// Blocking `async_join`, like Python's `Pool.join()`. Do not call it from a thread
  /// that must run the pool's executor: it waits on a future completed there.
  void join();

  /// Graceful shutdown, as a service does on SIGTERM: stops taking work (as `close`), fails
  /// the tasks still queued with `cancelled`, lets running tasks go on for up to `grace`,
  /// then cancels those left (cancel frame, then a kill after `cancel_grace`), stops the
  /// workers (end of input, SIGTERM, SIGKILL, each after `shutdown_grace`) and completes
  /// once every task has resolved and every worker is reaped. (`close` + `join` instead
  /// runs every queued task to its end.) Completion signature: `void()`, posted to the
  /// handler's associated executor (default: the pool's). May be called from a completion
  /// handler. "Running" includes tasks already sent ahead to a worker (`pipeline_depth`).
  /// The first call's `grace` counts; later calls only wait.
  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_shutdown(std::chrono::milliseconds grace, CompletionToken&& token = {});
  /// Blocking `async_shutdown`. Do not call it from a thread that must run the pool's executor.
  void shutdown(std::chrono::milliseconds grace);

  /// Why the pool has stopped serving (boot failures or the crash-loop breaker), or empty.
  /// It does not come back. Any thread.
  std::string broken_reason() const;

  /// Lines of workers' output dropped so far because their sink (on_output, or this
  /// process's stdout/stderr) fell 1 MiB behind. Any thread.
  std::uint64_t output_lines_dropped() const noexcept;

  /// Number of worker slots (`workers`, or the hardware thread count if that was 0).
  std::size_t size() const noexcept;

  /// With `listen` set: the port the pool listens on (the one chosen when `listen.port`
  /// was 0), known once the pool is constructed; else 0. Any thread.
  std::uint16_t listen_port() const noexcept;
  /// With `listen` set: the secret workers must prove (the one given, or the one the pool
  /// made); else empty. Any thread.
  const std::string& secret() const noexcept;
  /// With `listen` set: connections refused so far (failed or unfinished handshakes,
  /// handshakes over `max_pending`, workers beyond `workers`). Any thread.
  std::uint64_t peers_refused() const noexcept;

  /// Process ids of the workers alive now (started and not yet reaped), booting and
  /// retiring ones included; empty before the executor has run. With launchers: the local
  /// launcher processes (ssh, srun). Any thread.
  std::vector<int> pids() const;

 private:
  using jobs_callback = std::function<void(std::exception_ptr, std::vector<job_info>)>;
  void jobs_raw(jobs_callback done);
  void submit_raw(detail::raw_task t);
  void join_raw(std::function<void()> done);
  void shutdown_raw(std::chrono::milliseconds grace, std::function<void()> done);
  std::uint64_t next_task_id() noexcept;
  /// A task with its id and options, which the handler's cancellation `slot` (if connected)
  /// cancels. The slot is cleared just before the handler runs, on the handler's executor
  /// (post_completion_clearing), as Asio asks of an operation.
  template <class Slot>
  detail::raw_task new_task(task_options options, Slot& slot) {
    detail::raw_task t;
    t.id = next_task_id();
    t.options = std::move(options);
    if (slot.is_connected()) {
      t.cancelled = std::make_shared<std::atomic<bool>>(false);
      slot.assign([core = std::weak_ptr<detail::pool_core>(core_), id = t.id,
                   flag = t.cancelled](boost::asio::cancellation_type) {
        flag->store(true);
        detail::cancel_task(core, id);
      });
    }
    return t;
  }

  executor_type executor_;
  std::size_t map_chunk_ = 0;
  std::shared_ptr<detail::pool_core> core_;
};

template <class R, class... A, class CompletionToken>
auto process_pool::async_submit(invocation<R, A...> inv, task_options options,
                                CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, task_signature_t<R>>(
      [this](auto handler, invocation<R, A...> call, task_options opts) {
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        detail::raw_task t = new_task(std::move(opts), slot);
        t.job = call.target->name();
        t.signature = call.target->signature();
        auto counter = encoder::counter();
        counter.put(call.args);
        t.args_size = counter.size();
        // The handler's executor has outstanding work until the task completes, as Asio
        // asks of an operation: its run() does not return under a pending task. Handler,
        // work guard, executor and arguments share one allocation.
        detail::handler_work<decltype(handler)> work(handler, executor_);
        auto complete = [h = std::move(handler), slot, work = std::move(work), ex = executor_](
                            std::exception_ptr ep, std::span<const std::byte> bytes,
                            std::size_t result_memory) mutable {
          if constexpr (std::is_void_v<R>) {
            detail::post_completion_clearing(slot, std::move(h), ex, ep);
          } else {
            R value{};
            if (!ep) {
              try {
                value = detail::decode_result<R>(bytes, result_memory);
              } catch (...) {
                ep = detail::result_failure();
              }
            }
            detail::post_completion_clearing(slot, std::move(h), ex, ep, std::move(value));
          }
          work.reset();  // the posted completion holds the executor busy from here
        };
        t.body = detail::make_task_body([args = std::move(call.args)](encoder& e) { e.put(args); },
                                        std::move(complete));
        submit_raw(std::move(t));
      },
      token, std::move(inv), std::move(options));
}

template <class R, class... A, std::ranges::input_range Range, class CompletionToken>
auto process_pool::async_map(const job<R(A...)>& j, Range&& inputs, CompletionToken&& token) {
  static_assert(!std::is_void_v<R>, "map needs a job with a result");
  using signature = void(std::exception_ptr, std::vector<R>);
  if constexpr (!std::ranges::sized_range<Range>) {
    // The chunk size depends on the count: take the items once.
    std::vector<std::ranges::range_value_t<Range>> items;
    for (auto&& x : inputs)
      items.push_back(std::forward<decltype(x)>(x));
    return async_map(j, std::move(items), std::forward<CompletionToken>(token));
  } else {
    // `in` is `inputs` itself for a callback or use_future, or, for a token that defers
    // the initiation (use_awaitable, deferred), Asio's stored copy, passed as an rvalue.
    return boost::asio::async_initiate<CompletionToken, signature>(
        [this, &j](auto handler, auto&& in) {
          const std::size_t n = std::ranges::size(in);
          const std::size_t chunk = detail::map_chunk_size(n, size(), map_chunk_);
          // The handler's executor is kept busy until the map completes.
          auto op = detail::make_map_operation<R>(std::move(handler), executor_, n);
          // Each chunk goes to the pool as soon as it is encoded, so that workers start while
          // the rest is encoded. A chunk of one item is sent as a plain task (a large argument
          // can then still take the shared-memory path).
          protocol::batch_builder body;
          std::size_t first = 0;
          auto send = [&] {
            const std::size_t count = body.count();
            const bool batch = count > 1;
            auto bytes = body.finish();
            std::size_t skip = 0, length = bytes.size();
            if (!batch) {  // a plain task: the item's bytes alone
              const auto item = protocol::batch_reader(bytes).next();
              skip = static_cast<std::size_t>(item.data() - bytes.data());
              length = item.size();
            }
            detail::raw_task t;
            t.id = next_task_id();
            t.job = j.name();
            t.signature = j.signature();
            if (batch) t.batch_items = static_cast<std::uint32_t>(count);
            t.args_size = length;
            t.body = detail::make_task_body(
                [bytes = std::move(bytes), skip, length](encoder& e) {
                  e.write(bytes.data() + skip, length);
                },
                [op, first, count, batch](std::exception_ptr ep, std::span<const std::byte> reply,
                                          std::size_t result_memory) {
                  if (!ep) {
                    try {
                      detail::decode_chunk<R>(reply, batch, op->slots(first, count), result_memory);
                    } catch (...) {
                      ep = detail::result_failure();
                    }
                  }
                  op->settle(std::move(ep));
                });
            op->expect();
            submit_raw(std::move(t));
            first += count;
          };
          for (auto&& x : in) {
            auto call = make_call(j, std::forward<decltype(x)>(x));
            if (body.count() == 0)
              body.reserve(std::min(chunk * 16 + 4, detail::map_batch_bytes + 4096));
            auto counter = encoder::counter();
            counter.put(call.args);
            encoder e(body.add(counter.size()), counter.size());
            e.put(call.args);
            if (body.count() == chunk ||
                (map_chunk_ == 0 && body.size() >= detail::map_batch_bytes))
              send();
          }
          if (body.count() > 0) send();
          op->settle(nullptr);  // the guard: every chunk is submitted
        },
        token, std::forward<Range>(inputs));
  }
}

template <class CompletionToken>
auto process_pool::async_submit_encoded(encoded_call call, task_options options,
                                        CompletionToken&& token) {
  if (call.batch == 1)
    throw std::invalid_argument(
        "process_pool::async_submit_encoded: a batch holds 2 or more calls");
  using signature = void(std::exception_ptr, std::vector<std::byte>);
  return boost::asio::async_initiate<CompletionToken, signature>(
      [this](auto handler, encoded_call c, task_options opts) {
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        detail::raw_task t = new_task(std::move(opts), slot);
        t.job = std::move(c.job);
        t.signature = std::move(c.signature);
        t.batch_items = c.batch;
        t.args_size = c.args.size();
        detail::handler_work<decltype(handler)> work(handler, executor_);
        auto complete = [h = std::move(handler), slot, work = std::move(work), ex = executor_](
                            std::exception_ptr ep, std::span<const std::byte> bytes) mutable {
          std::vector<std::byte> result;
          if (!ep) {
            try {
              result.assign(bytes.begin(), bytes.end());
            } catch (...) {
              ep = detail::result_failure();
            }
          }
          detail::post_completion_clearing(slot, std::move(h), ex, ep, std::move(result));
          work.reset();
        };
        t.body = detail::make_task_body(
            [args = std::move(c.args)](encoder& e) { e.write(args.data(), args.size()); },
            std::move(complete));
        submit_raw(std::move(t));
      },
      token, std::move(call), std::move(options));
}

template <class CompletionToken>
auto process_pool::async_jobs(CompletionToken&& token) {
  using signature = void(std::exception_ptr, std::vector<job_info>);
  return boost::asio::async_initiate<CompletionToken, signature>(
      [this](auto handler) {
        detail::shared_handler<decltype(handler)> h(std::move(handler));
        jobs_raw([h, ex = executor_](std::exception_ptr ep, std::vector<job_info> jobs) mutable {
          detail::post_completion(h.take(), ex, std::move(ep), std::move(jobs));
        });
      },
      token);
}

template <class CompletionToken>
auto process_pool::async_join(CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void()>(
      [this](auto handler) {
        detail::shared_handler<decltype(handler)> h(std::move(handler));
        join_raw([h, ex = executor_]() mutable { detail::post_completion(h.take(), ex); });
      },
      token);
}

template <class CompletionToken>
auto process_pool::async_shutdown(std::chrono::milliseconds grace, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void()>(
      [this, grace](auto handler) {
        detail::shared_handler<decltype(handler)> h(std::move(handler));
        shutdown_raw(grace,
                     [h, ex = executor_]() mutable { detail::post_completion(h.take(), ex); });
      },
      token);
}

}  // namespace crew
