#include <crew/process_pool.hpp>

#include "line_splitter.hpp"
#include "shm_segment.hpp"
#include "spawn.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/process/v2/process.hpp>

#include <array>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace crew {

namespace asio = boost::asio;
namespace bp = boost::process::v2;
using boost::system::error_code;

namespace {
// `name` found on PATH as an executable file, or empty.
std::filesystem::path find_on_path(const std::filesystem::path& name) {
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest(path);
    while (!rest.empty()) {
      auto colon = rest.find(':');
      std::filesystem::path candidate = std::filesystem::path(rest.substr(0, colon)) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  return {};
}

// The executable as the pool will start it: a bare name is looked up on PATH (as a shell
// would), a relative path is made absolute now (a worker's working directory may differ).
std::filesystem::path resolve_executable(const std::filesystem::path& exe) {
  if (exe.empty() || exe.is_absolute()) return exe;
  if (!exe.has_parent_path()) {
    auto found = find_on_path(exe);
    return found.empty() ? exe : found;
  }
  std::error_code ec;
  auto abs = std::filesystem::absolute(exe, ec);
  return ec ? exe : abs;
}
}  // namespace

std::filesystem::path default_worker_executable() {
  if (const char* env = std::getenv("CREW_WORKER"); env && *env) return env;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto sibling = self.parent_path() / "crew-worker";
    if (std::filesystem::exists(sibling, ec)) return sibling;
  }
  auto found = find_on_path("crew-worker");
  return found.empty() ? "crew-worker" : found;
}

namespace detail {
namespace {

constexpr std::size_t stderr_tail_lines = 12;
constexpr std::chrono::milliseconds exit_linger{300};

// Why a worker's exit status could not be read (waitid failed with ECHILD).
std::string lost_status_reason() {
  struct sigaction sa {};
  ::sigaction(SIGCHLD, nullptr, &sa);
  if (sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT))
    return "ended; its exit status is unknown because this process ignores SIGCHLD "
           "(SIG_IGN or SA_NOCLDWAIT), so the kernel discarded it";
  return "ended; its exit status is unknown: something else in this process reaped it "
         "(a SIGCHLD handler calling waitpid(-1)?)";
}

// Resident memory of a process in bytes, or 0 if unknown.
std::size_t resident_bytes(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/statm", pid);
  std::FILE* f = std::fopen(path, "re");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

std::string ms_text(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

std::string describe_status(int status, bool killed_by_crew) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    std::string s = "was killed by signal " + std::to_string(sig);
    if (abbrev) s += std::string(" (SIG") + abbrev + ")";
    if (sig == SIGKILL && !killed_by_crew)
      s += "; crew did not send it: the OOM killer or another process did";
    if (sig == SIGXCPU) s += ": it used up its CPU time limit (limit_cpu)";
    return s;
  }
  return "ended with status " + std::to_string(status);
}

struct pending_task {
  std::uint64_t id = 0;
  raw_task task;
  std::chrono::milliseconds timeout{0};   // 0: none
  unsigned retries = 0;                   // allowed after a worker death
  unsigned attempts = 0;                  // runs so far that ended in a worker death
  bool admitted = false;                  // holds a place of max_queue
  bool discarded = false;                 // cancelled while sent: its reply is dropped
  std::size_t worker = event::no_worker;  // the slot it was sent to, and that worker's pid
  int pid = 0;
  std::uint64_t stream_start = 0;  // where its frame lies in all bytes sent to the worker
  std::uint64_t stream_end = 0;
  // Explicit cancellation (task_options::stop); destroyed with the task, on the strand.
  std::unique_ptr<std::stop_callback<std::function<void()>>> on_stop;
};

struct worker {
  enum class state { booting, idle, busy, stopping };

  worker(const asio::any_io_executor& ex, std::size_t slot_, std::size_t max_payload)
      : slot(slot_),
        to(ex),
        from(ex),
        out(ex),
        err(ex),
        reader(max_payload),
        linger(ex),
        stop_timer(ex),
        deadline(ex),
        frame_timer(ex) {}

  std::size_t slot;
  int pid = -1;
  std::optional<bp::process> proc;
  bool booted = false;
  shm_segment seg;                    // empty with the pipe transport
  bool shm_ok = false;                // the worker mapped the segment (flag on its hello)
  bool batch_ok = false;              // the worker takes batch frames (flag on its hello)
  std::vector<std::byte> result_buf;  // results read out of the segment, reused
  asio::posix::stream_descriptor to, from, out, err;
  protocol::frame_reader reader;
  std::vector<std::byte> wbuf;
  std::size_t woff = 0;
  std::uint64_t appended = 0;  // bytes ever put in wbuf
  std::uint64_t written = 0;   // bytes ever written to the worker
  bool writing = false;        // a wait for the pipe to take more is pending
  state st = state::booting;
  std::unordered_map<std::string, std::pair<std::uint32_t, std::string>> jobs;
  std::string job_list;
  // Tasks sent, in order. The worker runs them one after another, so front() is the one
  // running; the others wait in its pipe (pipeline_depth > 1). A discarded entry is a
  // cancelled task whose reply is still due and will be dropped.
  std::deque<pending_task> inflight;
  bool retire_due = false;  // recycle once its in-flight tasks are done
  std::size_t tasks_done = 0;
  bool frame_armed = false;
  bool exited = false, channel_done = false, out_done = false, err_done = false;
  bool finalized = false;
  bool cut_frame = false;       // its channel ended in the middle of a frame
  bool killed_by_crew = false;  // crew sent it SIGKILL
  int status = 0;
  std::optional<std::pair<errc, std::string>> failure;
  line_splitter out_lines, err_lines;
  std::array<char, 4096> out_buf{}, err_buf{};
  std::deque<std::string> err_tail;
  asio::steady_timer linger, stop_timer;
  asio::steady_timer deadline;     // the handshake's, then each task's (or cancel grace)
  asio::steady_timer frame_timer;  // a begun frame must end in time

  /// False once the worker is known to be ending: it must get no new task.
  bool alive() const { return !exited && !channel_done && !failure && to.is_open(); }
};

}  // namespace

class pool_core : public std::enable_shared_from_this<pool_core> {
 public:
  pool_core(asio::any_io_executor ex, process_pool_options o)
      : ex_(ex), strand_(asio::make_strand(ex)), opts_(std::move(o)), respawn_timers_() {
    if (opts_.workers == 0) opts_.workers = std::max(1u, std::thread::hardware_concurrency());
    // One request and one response area per worker: shared-memory tasks cannot overlap.
    depth_ = opts_.transport == transport::shm ? 1 : std::max<std::size_t>(1, opts_.pipeline_depth);
    if (opts_.executable.empty()) opts_.executable = default_worker_executable();
    opts_.executable = resolve_executable(opts_.executable);
    slots_.resize(opts_.workers);
    for (std::size_t i = 0; i < opts_.workers; ++i)
      respawn_timers_.push_back(std::make_unique<asio::steady_timer>(strand_));
  }

  void start() {
    asio::post(strand_, [self = shared_from_this()] {
      for (std::size_t i = 0; i < self->slots_.size(); ++i)
        self->spawn(i);
    });
  }

  std::size_t size() const noexcept { return opts_.workers; }

  std::vector<int> pids() const {
    std::lock_guard lock(pid_mutex_);
    return live_pids_;
  }

  std::uint64_t next_task_id() noexcept { return ++next_id_; }

  std::string broken_reason() const {
    std::lock_guard lock(pid_mutex_);
    return broken_reason_copy_;
  }

  void submit(raw_task t) {
    if (closed_flag_.load()) {
      fail_now(std::move(t), errc::shutting_down, "the pool is closed");
      return;
    }
    const bool fits_pipe = t.args_size + 4 <= opts_.max_payload;
    const bool fits_shm = opts_.transport == transport::shm && t.batch_items == 0 &&
                          t.args_size <= opts_.shm_area_bytes;
    if (!fits_pipe && !fits_shm) {
      fail_now(std::move(t), errc::payload_too_large,
               "arguments of " + t.job + " take " + std::to_string(t.args_size) +
                   " bytes; the limit is " + std::to_string(opts_.max_payload));
      return;
    }
    const bool admitted = opts_.max_queue > 0;
    if (admitted) {
      std::string why;
      if (!admit(why)) {
        fail_now(std::move(t), errc::queue_full, std::move(why));
        return;
      }
    }
    asio::post(strand_, [self = shared_from_this(), t = std::move(t), admitted]() mutable {
      pending_task p;
      p.id = t.id;
      p.admitted = admitted;
      p.timeout = t.options.timeout.value_or(self->opts_.task_timeout);
      if (t.batch_items > 1 && p.timeout.count() > 0)  // per item; saturating
        p.timeout = p.timeout.count() > std::chrono::milliseconds::max().count() / t.batch_items
                        ? std::chrono::milliseconds::max()
                        : p.timeout * t.batch_items;
      p.retries = self->opts_.retries;
      if (auto it = self->opts_.job_retries.find(t.job); it != self->opts_.job_retries.end())
        p.retries = it->second;
      if (t.options.retries) p.retries = *t.options.retries;
      p.task = std::move(t);
      if (self->closed_) return self->fail(p, errc::shutting_down, "the pool is closed");
      if (self->broken_) return self->fail(p, self->broken_code_, self->broken_reason_);
      if (p.task.options.stop.stop_requested() || (p.task.cancelled && p.task.cancelled->load()))
        return self->fail(p, errc::cancelled, "cancelled before it was queued");
      if (p.task.options.stop.stop_possible())
        p.on_stop = std::make_unique<std::stop_callback<std::function<void()>>>(
            p.task.options.stop, std::function<void()>([core = std::weak_ptr<pool_core>(self),
                                                        id = p.id] { cancel_task(core, id); }));
      if (self->opts_.on_event) self->emit(self->task_event(event_kind::task_queued, p));
      self->queue_.push_back(std::move(p));
      self->dispatch();
    });
  }

  // Cancels a queued or running task (on any thread; the work happens on the strand).
  void cancel(std::uint64_t id) {
    asio::post(strand_, [self = shared_from_this(), id] { self->cancel_on_strand(id); });
  }

  // Graceful shutdown: see process_pool::async_shutdown.
  void shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
    closed_flag_ = true;
    admit_cv_.notify_all();
    asio::post(strand_, [self = shared_from_this(), grace, done = std::move(done)]() mutable {
      self->closed_ = true;
      self->joiners_.push_back(std::move(done));
      // Tasks not started yet are dropped now; running ones get the grace period.
      while (!self->queue_.empty()) {
        pending_task p = std::move(self->queue_.front());
        self->queue_.pop_front();
        self->fail(p, errc::cancelled, "the pool shut down before the task started");
      }
      if (!self->shutdown_armed_) {
        self->shutdown_armed_ = true;
        self->shutdown_timer_.expires_after(grace);
        self->shutdown_timer_.async_wait([self](error_code ec) {
          if (!ec) self->cancel_everything("the pool shut down before the task finished");
        });
      }
      self->check_join();
    });
  }

  void close() {
    closed_flag_ = true;
    admit_cv_.notify_all();
    asio::post(strand_, [self = shared_from_this()] {
      self->closed_ = true;
      self->check_join();
    });
  }

  void join(std::function<void()> done) {
    closed_flag_ = true;
    admit_cv_.notify_all();
    asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
      self->closed_ = true;
      self->joiners_.push_back(std::move(done));
      self->check_join();
    });
  }

  // The destructor's path: see ~process_pool.
  void terminate() {
    closed_flag_ = true;
    terminated_ = true;
    admit_cv_.notify_all();
    const auto grace = opts_.shutdown_grace;
    // The strand can do the orderly shutdown (fail tasks, end of input, TERM, KILL, reap)
    // unless the executor is a stopped io_context, or we are on the strand ourselves.
    const auto* ioc_ex = ex_.target<asio::io_context::executor_type>();
    const bool on_strand = strand_.running_in_this_thread();
    if (on_strand) {
      terminate_on_strand();
    } else if (ioc_ex == nullptr || !ioc_ex->context().stopped()) {
      asio::post(strand_, [self = shared_from_this()] { self->terminate_on_strand(); });
      std::unique_lock lock(pid_mutex_);
      pids_cv_.wait_until(
          lock, std::chrono::steady_clock::now() + 2 * grace + std::chrono::milliseconds(500),
          [&] { return live_pids_.empty(); });
    }
    // Whatever is still alive belongs to an executor that is not running (or to the
    // strand we are blocking): stop and reap it here, so that no child outlives the pool.
    reap_now(on_strand ? grace : std::chrono::milliseconds(0));
  }

  // SIGTERM, up to `grace` to exit, then SIGKILL; reaps every worker still listed.
  // A pid is only signalled while waitpid says it is our unreaped child, so it cannot
  // have been recycled.
  void reap_now(std::chrono::milliseconds grace) {
    std::vector<int> left = pids();
    if (left.empty()) return;
    reaped_by_destructor_ = true;
    // With SIGCHLD ignored the kernel reaps for us (ECHILD): then "alive" is all we can ask.
    auto running = [](int pid) {
      const int r = ::waitpid(pid, nullptr, WNOHANG);
      return r == 0 || (r < 0 && errno == ECHILD && ::kill(pid, 0) == 0);
    };
    for (int pid : left)
      if (running(pid)) ::kill(-pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
      std::erase_if(left, [&](int pid) { return !running(pid); });
      if (!left.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (int pid : left) {
      if (!running(pid)) continue;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    std::lock_guard lock(pid_mutex_);
    live_pids_.clear();
  }

 private:
  using strand_type = asio::strand<asio::any_io_executor>;

  // --- completing tasks -------------------------------------------------------------

  // --- events -------------------------------------------------------------------------

  event make_event(event_kind kind) const {
    event e;
    e.kind = kind;
    e.time = std::chrono::system_clock::now();
    e.steady = std::chrono::steady_clock::now();
    return e;
  }
  event task_event(event_kind kind, const pending_task& p) const {
    event e = make_event(kind);
    e.task = p.id;
    e.job = p.task.job;
    e.label = p.task.options.label;
    e.items = p.task.batch_items ? p.task.batch_items : 1;
    e.worker = p.worker;
    e.pid = p.pid;
    e.bytes_in = p.task.args_size;
    return e;
  }
  void emit(const event& e) const {
    if (!opts_.on_event) return;
    try {
      opts_.on_event(e);
    } catch (...) {  // a handler's exception must not break the pool
    }
  }

  void fail_now(raw_task t, errc code, std::string message) {
    if (opts_.on_event) {
      event e = make_event(event_kind::task_failed);
      e.task = t.id;
      e.job = t.job;
      e.label = t.options.label;
      e.items = t.batch_items ? t.batch_items : 1;
      e.error = code;
      e.message = message;
      emit(e);
    }
    t.done(make_task_error(code, message), {});
  }
  void fail(pending_task& p, errc code, std::string message) {
    p.on_stop.reset();
    release(p);
    if (opts_.on_event) {
      event e = task_event(event_kind::task_failed, p);
      e.error = code;
      e.message = message;
      emit(e);
    }
    p.task.done(make_task_error(code, message), {});
  }
  void succeed(pending_task& p, std::span<const std::byte> bytes) {
    p.on_stop.reset();
    release(p);
    if (opts_.on_event) {
      event e = task_event(event_kind::task_finished, p);
      e.bytes_out = bytes.size();
      emit(e);
    }
    p.task.done(nullptr, bytes);
  }

  // --- the bounded queue --------------------------------------------------------------

  // Takes a place in the queue for a new task, waiting for one under queue_policy::wait.
  bool admit(std::string& why) {
    std::unique_lock lock(admit_mutex_);
    if (queued_ < opts_.max_queue) {
      ++queued_;
      return true;
    }
    const std::string full = "the pool's queue holds its limit of " +
                             std::to_string(opts_.max_queue) + " tasks (max_queue)";
    if (opts_.when_full == queue_policy::fail) {
      why = full;
      return false;
    }
    if (strand_.running_in_this_thread() || on_executor_thread()) {
      why = full + "; waiting on a thread that runs the pool's executor would deadlock";
      return false;
    }
    admit_cv_.wait(lock, [&] { return queued_ < opts_.max_queue || closed_flag_.load(); });
    ++queued_;  // a closed pool fails it on the strand, which releases the place
    return true;
  }
  // Whether this thread runs the execution context under the pool's executor (an
  // io_context or a thread_pool, however wrapped: strand, properties).
  bool on_executor_thread() const {
    // Both contexts run on Asio's scheduler service (Boost 1.81), whose can_dispatch() says
    // whether this thread is inside one of its run() calls.
    auto& ctx = asio::query(ex_, asio::execution::context);
    if (!asio::has_service<asio::detail::scheduler>(ctx)) return false;
    return asio::use_service<asio::detail::scheduler>(ctx).can_dispatch();
  }

  // A task left the queue (sent to a worker, or resolved while queued).
  void release(pending_task& p) {
    if (!p.admitted) return;
    p.admitted = false;
    {
      std::lock_guard lock(admit_mutex_);
      --queued_;
    }
    admit_cv_.notify_one();
  }

  // --- spawning ---------------------------------------------------------------------

  void spawn(std::size_t slot) {
    if (terminated_.load()) return;  // the pool's destructor has run
    auto w = std::make_shared<worker>(strand_, slot, opts_.max_payload);
    slots_[slot] = w;
    if (::access(opts_.executable.c_str(), X_OK) != 0) {
      const int e = errno;
      return boot_failed(
          slot, "cannot start worker '" + opts_.executable.string() + "': " + std::strerror(e));
    }
    if (opts_.transport == transport::shm) {
      static std::once_flag swept;  // once per process: stale segments only come from the past
      std::call_once(swept, sweep_stale_segments);
      error_code seg_ec;
      std::string why;
      w->seg = shm_segment::create(opts_.shm_area_bytes, opts_.shm_area_bytes, seg_ec, why);
      if (!w->seg) return boot_failed(slot, why);
    }
    pipe_pair to, from, out, err;
    for (auto* p : {&to, &from, &out, &err})
      if (auto ec = make_pipe(*p))
        return boot_failed(slot, "cannot create pipes for a worker: " + ec.message());
    error_code ec;
    child_fds fds{out.write.get(),
                  err.write.get(),
                  to.read.get(),
                  from.write.get(),
                  w->seg ? w->seg.worker_request_fd() : -1,
                  w->seg ? w->seg.response_fd() : -1};
    child_setup setup{opts_.env, opts_.inherit_env, opts_.working_directory};
    setup.env.push_back("CREW_MAX_PAYLOAD=" + std::to_string(opts_.max_payload));
    if (w->seg)
      for (std::string e :
           {std::string("CREW_SHM_REQUEST_FD=5"), std::string("CREW_SHM_RESPONSE_FD=6"),
            "CREW_SHM_INLINE=" + std::to_string(opts_.shm_inline_max)})
        setup.env.push_back(std::move(e));
    const child_limits limits{opts_.limit_address_space,
                              static_cast<long>(opts_.limit_cpu.count())};
    auto proc = spawn_worker(ex_, opts_.executable, opts_.args, setup, fds, limits, ec);
    if (ec) {
      std::string why = "cannot start worker '" + opts_.executable.string() + "'";
      if (!opts_.working_directory.empty()) {
        std::error_code dir_ec;
        if (!std::filesystem::is_directory(opts_.working_directory, dir_ec))
          why += " in working directory '" + opts_.working_directory.string() +
                 "', which is not a directory";
        else
          why += " in working directory '" + opts_.working_directory.string() + "'";
      }
      return boot_failed(slot, why + ": " + ec.message());
    }
    w->proc.emplace(std::move(proc));
    w->pid = w->proc->id();
    if (opts_.on_event) {
      event e = make_event(event_kind::worker_spawned);
      e.worker = slot;
      e.pid = w->pid;
      emit(e);
    }
    {
      std::lock_guard lock(pid_mutex_);
      live_pids_.push_back(w->pid);
    }
    // Only our end of the task pipe: O_NONBLOCK belongs to the open file description,
    // so setting it on the other pipes' write ends would make the worker's own writes
    // to fd 1, 2 and 4 non-blocking too.
    ::fcntl(to.write.get(), F_SETFL, O_NONBLOCK);
    wait_exit(w);  // first: whatever happens below, the process gets reaped
    try {
      // Ownership moves to Asio only once it has accepted the descriptor.
      auto adopt = [](asio::posix::stream_descriptor& d, unique_fd& fd) {
        d.assign(fd.get());
        fd.release();
      };
      adopt(w->to, to.write);
      adopt(w->from, from.read);
      adopt(w->out, out.read);
      adopt(w->err, err.read);
    } catch (const boost::system::system_error& e) {  // the reactor refused a descriptor
      w->failure = {errc::worker_boot_failed, std::string("cannot watch its pipes: ") + e.what()};
      w->channel_done = w->out_done = w->err_done = true;
      return kill_group(w, SIGKILL);
    }
    read_channel(w);
    read_output(w, output_line::stream::out);
    read_output(w, output_line::stream::err);
    arm_deadline(w, opts_.handshake_timeout, [this, w] {
      if (w->booted) return;
      w->failure = {errc::worker_boot_failed, "it sent no handshake within " +
                                                  std::to_string(opts_.handshake_timeout.count()) +
                                                  " ms; crew killed it"};
      kill_group(w, SIGKILL);
    });
  }

  void boot_failed(std::size_t slot, std::string reason) {
    slots_[slot].reset();
    ++boot_failures_;
    if (closed_ && queue_.empty()) return check_join();
    if (boot_failures_ >= opts_.max_boot_failures) {
      return trip(errc::worker_boot_failed, "workers failed to start " +
                                                std::to_string(boot_failures_) +
                                                " times in a row; last: " + reason);
    }
    // Back off before trying again, so that a broken worker cannot cause a fork storm.
    auto& timer = *respawn_timers_[slot];
    timer.expires_after(std::chrono::milliseconds(100) * (1 << std::min(boot_failures_, 6u)));
    timer.async_wait([self = shared_from_this(), slot](error_code ec) {
      if (ec || self->slots_[slot] || self->broken_) return;
      if (self->closed_ && self->queue_.empty()) return self->check_join();
      self->spawn(slot);
    });
  }

  // The pool stops serving: no respawn; queued and later tasks fail with `code` and `why`.
  void trip(errc code, std::string why) {
    broken_ = true;
    broken_code_ = code;
    broken_reason_ = std::move(why);
    {
      std::lock_guard lock(pid_mutex_);
      broken_reason_copy_ = broken_reason_;
    }
    while (!queue_.empty()) {
      pending_task p = std::move(queue_.front());
      queue_.pop_front();
      fail(p, broken_code_, broken_reason_);
    }
    check_join();
  }

  // --- reading ------------------------------------------------------------------------

  void read_channel(const std::shared_ptr<worker>& w) {
    auto space = w->reader.prepare();
    w->from.async_read_some(asio::buffer(space.data(), space.size()),
                            [self = shared_from_this(), w](error_code ec, std::size_t n) {
                              self->on_channel(w, ec, n);
                            });
  }

  void on_channel(const std::shared_ptr<worker>& w, error_code ec, std::size_t n) {
    if (w->channel_done) return;
    if (ec) {
      w->channel_done = true;
      // A cut frame is discarded. If the worker exits on its own it crashed while writing;
      // if it lives on (below), it broke the protocol.
      w->cut_frame = w->reader.mid_frame();
      if (!w->exited) {
        // Usually the process is exiting and its pidfd fires next. If it lives on without
        // a reply channel it is useless: kill it.
        w->linger.expires_after(exit_linger);
        w->linger.async_wait([self = shared_from_this(), w](error_code e) {
          if (e || w->exited) return;
          if (!w->failure)
            w->failure = w->cut_frame
                             ? std::pair{errc::protocol_error,
                                         std::string("its reply channel ended in the middle of a "
                                                     "frame and it did not exit; crew killed it")}
                             : std::pair{errc::worker_crashed,
                                         std::string("it closed its reply channel without "
                                                     "exiting; crew killed it")};
          self->kill_group(w, SIGKILL);
        });
      }
      return maybe_finalize(w);
    }
    w->reader.commit(n);
    protocol::frame_view f;
    struct batch {
      pool_core& core;
      explicit batch(pool_core& c) : core(c) { core.reading_batch_ = true; }
      ~batch() {
        core.reading_batch_ = false;
        core.flush_writes();
      }
    } replies(*this);
    while (w->reader.next(f, ec)) {
      if (!on_frame(w, f)) return;
    }
    if (ec) return violation(w, "bad frame header: " + ec.message());
    watch_frame(w);
    read_channel(w);
  }

  // A frame begun must be finished within frame_timeout: a worker that sends part of one
  // and then goes silent would otherwise hold its task forever.
  void watch_frame(const std::shared_ptr<worker>& w) {
    if (!w->reader.mid_frame()) {
      if (w->frame_armed) w->frame_timer.cancel();
      w->frame_armed = false;
      return;
    }
    // Re-armed whenever bytes arrive: what counts is silence in the middle of a frame.
    w->frame_armed = true;
    w->frame_timer.expires_after(opts_.frame_timeout);
    w->frame_timer.async_wait([self = shared_from_this(), w](error_code e) {
      if (e || w->exited || w->channel_done || !w->reader.mid_frame()) return;
      // Bytes waiting in the pipe mean we were slow, not the worker: look again later.
      int pending = 0;
      if (::ioctl(w->from.native_handle(), FIONREAD, &pending) == 0 && pending > 0)
        return self->watch_frame(w);
      self->violation(w, "it began a frame and sent nothing more of it for " +
                             ms_text(self->opts_.frame_timeout) + " (frame_timeout)");
    });
  }

  bool on_frame(const std::shared_ptr<worker>& w, const protocol::frame_view& f) {
    using protocol::frame_type;
    switch (f.header.type) {
      case frame_type::hello: {
        if (w->booted) return violation(w, "a second hello"), false;
        try {
          auto h = protocol::decode_hello(f.payload);
          // A worker that mapped its segment says so with flag_shm on its hello; any
          // other worker (one written from the pipe-only protocol) gets inline frames.
          w->shm_ok = w->seg && (f.header.flags & protocol::flag_shm);
          w->batch_ok = (f.header.flags & protocol::flag_batch) != 0;
          for (std::uint32_t i = 0; i < h.jobs.size(); ++i) {
            w->jobs[h.jobs[i].name] = {i, h.jobs[i].signature};
            w->job_list += (i ? ", " : "") + h.jobs[i].name;
          }
        } catch (const decode_error& e) {
          return violation(w, std::string("bad hello: ") + e.what()), false;
        }
        w->booted = true;
        w->deadline.cancel();
        if (w->st == worker::state::booting) w->st = worker::state::idle;
        boot_failures_ = 0;
        dispatch();
        check_join();
        return true;
      }
      case frame_type::result:
      case frame_type::batch_result:
      case frame_type::error: {
        // Being stopped (deadline, cancel grace): a reply now is too late and changes nothing;
        // the task fails with the recorded cause once the worker is gone.
        if (w->failure) return true;
        if (w->inflight.empty() || w->inflight.front().id != f.header.task_id)
          return violation(w, "a reply for task " + std::to_string(f.header.task_id) +
                                  ", which is not the task it runs"),
                 false;
        if (w->written < w->inflight.front().stream_end)
          return violation(w, "a reply before it read its whole task"), false;
        const bool batch = w->inflight.front().task.batch_items > 0;
        if (f.header.type != frame_type::error &&
            batch != (f.header.type == frame_type::batch_result))
          return violation(w, batch ? "a result frame for a batch task"
                                    : "a batch_result frame for a single task"),
                 false;
        w->deadline.cancel();
        if (w->inflight.front().discarded) {
          // The late reply of a cancelled task: its caller was answered already.
          w->inflight.pop_front();
          after_task(w);
          return true;
        }
        auto p = std::move(w->inflight.front());
        w->inflight.pop_front();
        consecutive_crashes_ = 0;
        if (f.header.type == frame_type::result && (f.header.flags & protocol::flag_shm)) {
          // The worker's descriptor is checked against our own copy of the layout and
          // the task's generation before a single byte of the area is read.
          // The bytes are then copied out (pread) before decoding: the worker can neither
          // change them while they are decoded nor, by shrinking the file, fault us.
          protocol::shm_descriptor d;
          if (!w->seg || protocol::check_descriptor(f.payload, w->seg.response_size(), p.id, d) ||
              w->seg.read_response(d.offset, d.length, w->result_buf)) {
            w->inflight.push_front(std::move(p));  // failed by finalize, as protocol_error
            return violation(w, "a bad shared-memory descriptor in its result"), false;
          }
          succeed(p, w->result_buf);
        } else if (f.header.type == frame_type::batch_result) {
          try {
            protocol::check_batch_result(f.payload, p.task.batch_items);
          } catch (const decode_error& e) {
            w->inflight.push_front(std::move(p));  // failed by finalize, as protocol_error
            return violation(w, std::string("a bad batch result: ") + e.what()), false;
          }
          succeed(p, f.payload);
        } else if (f.header.type == frame_type::result) {
          succeed(p, f.payload);
        } else {
          try {
            auto e = protocol::decode_error_payload(f.payload);
            fail(p, e.code, e.message);
          } catch (const decode_error& e) {
            fail(p, errc::protocol_error, std::string("bad error frame: ") + e.what());
            return violation(w, std::string("bad error frame: ") + e.what()), false;
          }
        }
        after_task(w);
        return true;
      }
      default:
        return violation(w, "an unexpected frame type " +
                                std::to_string(static_cast<int>(f.header.type))),
               false;
    }
  }

  // A worker has answered its task: it serves the next one, unless it is due for recycling.
  void after_task(const std::shared_ptr<worker>& w) {
    ++w->tasks_done;
    if (!w->inflight.empty()) {
      start_head(w);
    } else {
      w->st = worker::state::idle;
    }
    std::string why;
    if (opts_.max_tasks_per_worker > 0 && w->tasks_done >= opts_.max_tasks_per_worker)
      why = "it ran " + std::to_string(w->tasks_done) + " tasks (max_tasks_per_worker)";
    if (opts_.max_worker_rss > 0 && !w->exited) {
      const std::size_t rss = resident_bytes(w->pid);
      if (rss > opts_.max_worker_rss)
        why = "its resident memory is " + std::to_string(rss >> 10) + " KiB, over the limit of " +
              std::to_string(opts_.max_worker_rss >> 10) + " KiB (max_worker_rss)";
    }
    if (!why.empty()) w->retire_due = true;  // it takes no new task from now on
    if (w->retire_due && w->inflight.empty() && !closed_ && !broken_ && !terminated_.load()) {
      // Recycled between tasks: it is asked to exit, and a fresh worker takes its slot now.
      retiring_.push_back(w);
      if (slots_[w->slot] == w) slots_[w->slot].reset();
      stop(w);
      spawn(w->slot);
    }
    dispatch();
    check_join();
  }

  // The worker broke the protocol: it is killed, and its task fails with protocol_error.
  void violation(const std::shared_ptr<worker>& w, std::string what) {
    if (!w->failure) w->failure = {errc::protocol_error, "protocol violation: " + what};
    w->channel_done = true;
    error_code ignored;
    w->from.close(ignored);
    kill_group(w, SIGKILL);
    maybe_finalize(w);
  }

  void read_output(const std::shared_ptr<worker>& w, output_line::stream which) {
    const bool is_out = which == output_line::stream::out;
    auto& pipe = is_out ? w->out : w->err;
    auto& buf = is_out ? w->out_buf : w->err_buf;
    pipe.async_read_some(asio::buffer(buf), [self = shared_from_this(), w, which, is_out](
                                                error_code ec, std::size_t n) {
      auto& splitter = is_out ? w->out_lines : w->err_lines;
      auto emit = [&](std::string_view line) { self->emit_line(*w, which, line); };
      if (ec) {
        splitter.finish(emit);
        (is_out ? w->out_done : w->err_done) = true;
        return self->maybe_finalize(w);
      }
      splitter.feed(std::string_view((is_out ? w->out_buf : w->err_buf).data(), n), emit);
      self->read_output(w, which);
    });
  }

  void emit_line(worker& w, output_line::stream which, std::string_view text) {
    if (which == output_line::stream::err) {
      w.err_tail.emplace_back(text.substr(0, 512));
      if (w.err_tail.size() > stderr_tail_lines) w.err_tail.pop_front();
    }
    const output_line line{w.slot, w.pid, which, text};
    if (opts_.on_output) {
      try {
        opts_.on_output(line);
      } catch (...) {
        // A throwing log sink must not break the pool; the line is dropped.
      }
      return;
    }
    std::string s = "[worker " + std::to_string(w.slot) + " pid " + std::to_string(w.pid) + "] ";
    s.append(text);
    s += '\n';
    const int fd = which == output_line::stream::out ? STDOUT_FILENO : STDERR_FILENO;
    // A closed stdout (`app | head`) must not kill the host; a failing write drops the line.
    for (std::size_t off = 0; off < s.size();) {
      const long n = write_no_sigpipe(fd, s.data() + off, s.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
  }

  // --- process exit -------------------------------------------------------------------

  void wait_exit(const std::shared_ptr<worker>& w) {
    w->proc->handle().async_wait(
        asio::bind_executor(strand_, [self = shared_from_this(), w](error_code ec, int status) {
          w->exited = true;
          w->status = ec ? -1 : status;
          // Reaped: drop the pidfd, so that ~basic_process (which kills a pid it finds
          // running) can never signal a recycled pid.
          w->proc->detach();
          // Its children die with it: the worker led its own process group. (The group
          // id cannot be reused while any member is alive, so this reaches only them.)
          if (!self->reaped_by_destructor_.load()) ::kill(-w->pid, SIGKILL);
          {
            std::lock_guard lock(self->pid_mutex_);
            std::erase(self->live_pids_, w->pid);
          }
          self->pids_cv_.notify_all();
          // Give the pipes a moment to drain (a reply written just before exiting is
          // still delivered), but never wait on them for long: a grandchild may hold them.
          w->linger.expires_after(exit_linger);
          w->linger.async_wait([self, w](error_code e) {
            if (e) return;
            w->channel_done = w->out_done = w->err_done = true;
            self->maybe_finalize(w);
          });
          self->maybe_finalize(w);
        }));
  }

  // Runs `expired` on the strand after `after`, unless the worker's deadline is re-armed
  // or cancelled first, or the worker has exited.
  template <class Expired>
  void arm_deadline(const std::shared_ptr<worker>& w, std::chrono::milliseconds after,
                    Expired expired) {
    w->deadline.expires_after(after);
    w->deadline.async_wait([self = shared_from_this(), w, expired](error_code ec) mutable {
      if (!ec && !w->exited) expired();
    });
  }

  // A task past its deadline: SIGTERM to the worker's group, SIGKILL after the grace.
  void arm_task_deadline(const std::shared_ptr<worker>& w, std::uint64_t id,
                         std::chrono::milliseconds timeout) {
    arm_deadline(w, timeout, [this, w, id, timeout] {
      if (w->inflight.empty() || w->inflight.front().id != id) return;
      w->failure = {errc::task_timeout, "the task ran past its deadline of " + ms_text(timeout) +
                                            "; crew stopped the worker"};
      kill_group(w, SIGTERM);
      arm_deadline(w, opts_.shutdown_grace, [this, w] { kill_group(w, SIGKILL); });
    });
  }

  void kill_group(const std::shared_ptr<worker>& w, int sig) {
    // After the destructor's fallback reaped the workers itself, their pids may be reused.
    if (w->exited || w->pid <= 0 || reaped_by_destructor_.load()) return;
    if (sig == SIGKILL) w->killed_by_crew = true;
    ::kill(-w->pid, sig);  // the worker leads its own process group: its children too
    ::kill(w->pid, sig);
  }

  void maybe_finalize(const std::shared_ptr<worker>& w) {
    if (w->finalized || !w->exited) return;
    if (!(w->channel_done && w->out_done && w->err_done)) return;
    w->finalized = true;
    error_code ignored;
    w->linger.cancel();
    w->stop_timer.cancel();
    w->deadline.cancel();
    w->frame_timer.cancel();
    // Did the worker read any of its task? A worker that exits right after a reply may have
    // been handed the next task before its exit was seen; if every byte written is still in
    // the pipe, that task never started and goes back to the queue as it was.
    int unread = -1;
    if (w->to.is_open() && ::ioctl(w->to.native_handle(), FIONREAD, &unread) != 0) unread = -1;
    const std::uint64_t consumed =
        unread >= 0 ? w->written - static_cast<std::uint64_t>(unread) : 0;
    const bool head_untouched =
        !w->inflight.empty() && unread >= 0 && consumed <= w->inflight.front().stream_start;
    for (auto* d : {&w->to, &w->from, &w->out, &w->err})
      d->close(ignored);
    if (slots_[w->slot] == w) slots_[w->slot].reset();
    std::erase(retiring_, w);

    std::string who = "worker " + std::to_string(w->slot) + " (pid " + std::to_string(w->pid) + ")";
    std::string how =
        w->status >= 0 ? describe_status(w->status, w->killed_by_crew) : lost_status_reason();
    if (w->cut_frame && !w->failure)
      how += "; its channel ended in the middle of a frame (discarded)";
    if (opts_.on_event) {
      event e = make_event(event_kind::worker_exited);
      e.worker = w->slot;
      e.pid = w->pid;
      e.exit_status = w->status;
      const std::string what = who + " " + how;
      e.message = what;
      emit(e);
    }
    std::string tail;
    for (const auto& l : w->err_tail)
      tail += (tail.empty() ? "" : " | ") + l;
    auto detail = [&](std::string head) {
      if (!tail.empty()) head += "; stderr: " + tail;
      return head;
    };
    // The tasks behind the running one never started (the worker is sequential): they go
    // back to the front of the queue in their order, as they were. So does the running one
    // if the worker never read a byte of it.
    while (w->inflight.size() > 1 || (head_untouched && !w->inflight.empty())) {
      pending_task p = std::move(w->inflight.back());
      w->inflight.pop_back();
      if (p.discarded) continue;
      if (terminated_.load())
        fail(p, errc::shutting_down, "the pool was destroyed");
      else
        queue_.push_front(std::move(p));
    }
    if (!w->inflight.empty() && w->inflight.front().discarded) w->inflight.clear();
    if (w->st == worker::state::stopping && w->inflight.empty())
      return check_join();  // asked to go
    if (!w->booted && !w->failure)
      return boot_failed(w->slot, detail(who + " " + how + " before its handshake"));
    if (!w->booted)
      return boot_failed(w->slot, detail(who + ": " + w->failure->second + "; it " + how));
    std::optional<std::string> crash;  // set when the task killed its worker
    if (!w->inflight.empty()) {
      pending_task p = std::move(w->inflight.front());
      w->inflight.clear();
      const errc code = w->failure ? w->failure->first : errc::worker_crashed;
      std::string msg =
          detail(w->failure ? who + ": " + w->failure->second + "; it " + how : who + " " + how);
      if (code == errc::worker_crashed || code == errc::protocol_error) crash = msg;
      if (code == errc::worker_crashed && p.attempts < p.retries && !broken_ &&
          !terminated_.load()) {
        ++p.attempts;  // run it again, first in line, on a fresh worker
        if (opts_.on_event) {
          event e = task_event(event_kind::task_retried, p);
          e.error = code;
          e.message = msg;
          e.attempt = p.attempts + 1;
          emit(e);
        }
        queue_.push_front(std::move(p));
      } else {
        if (p.attempts > 0)
          msg +=
              " (after " + std::to_string(p.attempts + 1) + " attempts, each killing its worker)";
        fail(p, code, msg);
      }
    }
    if (crash && opts_.crash_loop_limit > 0 && ++consecutive_crashes_ >= opts_.crash_loop_limit)
      return trip(errc::worker_crashed,
                  "crash loop: the last " + std::to_string(consecutive_crashes_) +
                      " tasks each killed their worker, so the pool stopped respawning "
                      "(crash_loop_limit); last: " +
                      *crash);
    if ((!closed_ || !queue_.empty()) && !broken_ && !terminated_.load())
      spawn(w->slot);  // replace it and go on serving
    dispatch();        // tasks put back may go to the other workers now
    check_join();
  }

  // --- dispatch -----------------------------------------------------------------------

  void dispatch() {
    dispatch_frames();
    if (!reading_batch_) flush_writes();
  }

  // The frames of all tasks just dispatched go out together: one write per worker. While a
  // batch of replies is being handled, the writes wait for its end.
  void flush_writes() {
    for (auto& w : slots_)
      if (w && !w->writing && w->woff < w->wbuf.size()) write_some(w);
  }

  void dispatch_frames() {
    while (!queue_.empty()) {
      // The worker with the fewest tasks in flight, within the pipeline depth.
      std::shared_ptr<worker> idle;
      for (auto& w : slots_)
        if (w && (w->st == worker::state::idle || w->st == worker::state::busy) && w->alive() &&
            !w->retire_due && w->inflight.size() < depth_ &&
            (w->inflight.empty() || !w->inflight.front().discarded) &&
            (!idle || w->inflight.size() < idle->inflight.size()))
          idle = w;
      if (!idle) return;
      pending_task p = std::move(queue_.front());
      queue_.pop_front();
      if (p.task.batch_items > 0 && !idle->batch_ok) {
        expand_batch(std::move(p));
        continue;
      }
      auto it = idle->jobs.find(p.task.job);
      if (it == idle->jobs.end()) {
        fail(p, errc::unknown_job,
             "worker " + opts_.executable.filename().string() + " does not serve job '" +
                 p.task.job + "'; it serves: " + idle->job_list);
        continue;
      }
      if (it->second.second != p.task.signature) {
        fail(p, errc::signature_mismatch,
             "job '" + p.task.job + "' is " + it->second.second + " in the worker but " +
                 p.task.signature + " in the caller: rebuild both from the same header");
        continue;
      }
      const std::size_t before = idle->wbuf.size();
      try {
        write_task(*idle, p, it->second.first);
      } catch (const capacity_exceeded& e) {
        idle->wbuf.resize(before);
        fail(p, errc::payload_too_large, e.message());
        continue;
      } catch (const std::exception& e) {  // bad_alloc, or the segment refusing a write
        idle->wbuf.resize(before);
        fail(p, errc::payload_too_large, std::string("cannot place the arguments: ") + e.what());
        continue;
      }
      release(p);  // on its way to a worker: its place in the queue is free
      p.worker = idle->slot;
      p.pid = idle->pid;
      p.stream_start = idle->appended;
      idle->appended += idle->wbuf.size() - before;
      p.stream_end = idle->appended;
      idle->inflight.push_back(std::move(p));
      if (idle->inflight.size() == 1) {
        idle->st = worker::state::busy;
        start_head(idle);
      }
    }
  }

  // The task at the head of a worker's pipeline has started: its deadline runs from now
  // (or, for a cancelled one, the grace before the worker is killed).
  void start_head(const std::shared_ptr<worker>& w) {
    pending_task& h = w->inflight.front();
    if (h.discarded) return arm_cancel_grace(w, h.id);
    if (opts_.on_event) emit(task_event(event_kind::task_started, h));
    if (h.timeout.count() > 0) arm_task_deadline(w, h.id, h.timeout);
  }

  // Encodes a task's arguments straight into the shared request area (large payloads with
  // the shm transport) or straight into the frame buffer after the header.
  void write_task(worker& w, pending_task& p, std::uint32_t job_index) {
    const std::size_t n = p.task.args_size;
    const bool batch = p.task.batch_items > 0;
    if (!batch && w.shm_ok && n > opts_.shm_inline_max && n <= w.seg.request_size()) {
      std::vector<std::byte> payload(4);
      std::memcpy(payload.data(), &job_index, 4);
      // Straight from the caller's values into the request area: one copy.
      encoder e(w.seg.request(), n);
      p.task.encode_args(e);
      protocol::append_descriptor(payload, {0, n, p.id});
      protocol::append_frame(w.wbuf, protocol::frame_type::task, p.id, payload, protocol::flag_shm);
      return;
    }
    if (n + 4 > opts_.max_payload)
      throw capacity_exceeded("arguments of " + std::to_string(n) +
                              " bytes exceed the frame limit and do not fit the shared area");
    std::byte* at = protocol::append_frame_for(
        w.wbuf, batch ? protocol::frame_type::batch : protocol::frame_type::task, p.id, 4 + n);
    std::memcpy(at, &job_index, 4);
    encoder e(at + 4, n);
    p.task.encode_args(e);
  }

  // A worker that did not say it takes batch frames (one written from sections 1-8 of the
  // protocol alone) gets a batch's items as tasks of their own, first in line; their outcomes
  // are gathered into the batch_result payload the batch's caller decodes.
  void expand_batch(pending_task p) {
    release(p);
    p.on_stop.reset();
    std::vector<std::byte> body(p.task.args_size);
    encoder e(body.data(), body.size());
    p.task.encode_args(e);
    std::vector<std::span<const std::byte>> items;  // our own encoding: it reads back
    protocol::batch_reader reader(body);
    for (std::uint32_t i = 0; i < reader.count(); ++i)
      items.push_back(reader.next());
    if (items.empty()) {
      const std::vector<std::byte> none(4);
      return p.task.done(nullptr, none);
    }
    struct gathered {
      std::vector<std::byte> payload;  // the batch_result being built, item by item
      std::vector<std::vector<std::byte>> items;
      std::vector<bool> is_error;
      std::size_t left = 0;
      std::function<void(std::exception_ptr, std::span<const std::byte>)> done;
    };
    auto g = std::make_shared<gathered>();
    g->items.resize(items.size());
    g->is_error.resize(items.size());
    g->left = items.size();
    g->done = std::move(p.task.done);
    const auto per_item = p.task.options.timeout.value_or(opts_.task_timeout);
    for (std::size_t i = items.size(); i-- > 0;) {
      pending_task s;
      s.id = next_task_id();
      s.timeout = per_item;
      s.retries = p.retries;
      s.task.job = p.task.job;
      s.task.signature = p.task.signature;
      s.task.id = s.id;
      s.task.args_size = items[i].size();
      s.task.encode_args = [bytes = std::vector<std::byte>(items[i].begin(), items[i].end())](
                               encoder& out) { out.write(bytes.data(), bytes.size()); };
      s.task.done = [g, i](std::exception_ptr ep, std::span<const std::byte> bytes) {
        if (ep) {
          errc code = errc::job_failed;
          std::string message = "unknown error";
          try {
            std::rethrow_exception(ep);
          } catch (const task_error& te) {
            code = static_cast<errc>(te.code().value());
            message = te.message();
          } catch (const std::exception& ex) {
            message = ex.what();
          } catch (...) {
          }
          g->items[i] = protocol::encode_error({code, message});
          g->is_error[i] = true;
        } else {
          g->items[i].assign(bytes.begin(), bytes.end());
        }
        if (--g->left > 0) return;
        std::vector<std::byte> out(4);
        const auto count = static_cast<std::uint32_t>(g->items.size());
        std::memcpy(out.data(), &count, 4);
        for (std::size_t k = 0; k < g->items.size(); ++k) {
          std::byte* to = protocol::append_batch_item(
              out, g->items[k].size(),
              g->is_error[k] ? protocol::frame_type::error : protocol::frame_type::result);
          if (!g->items[k].empty()) std::memcpy(to, g->items[k].data(), g->items[k].size());
        }
        g->done(nullptr, out);
      };
      queue_.push_front(std::move(s));
    }
  }

  void write_some(const std::shared_ptr<worker>& w) {
    w->writing = false;
    while (w->woff < w->wbuf.size()) {
      if (w->exited || !w->to.is_open()) return;
      const long n = write_no_sigpipe(w->to.native_handle(), w->wbuf.data() + w->woff,
                                      w->wbuf.size() - w->woff);
      if (n >= 0) {
        w->woff += static_cast<std::size_t>(n);
        w->written += static_cast<std::size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        w->writing = true;
        w->to.async_wait(asio::posix::stream_descriptor::wait_write,
                         [self = shared_from_this(), w](error_code ec) {
                           w->writing = false;
                           if (!ec) self->write_some(w);
                         });
        return;
      }
      // EPIPE: the worker closed its input or died; its exit explains the task's fate.
      kill_group(w, SIGKILL);
      return;
    }
    w->wbuf.clear();
    w->woff = 0;
  }

  // --- shutdown -----------------------------------------------------------------------

  bool busy() const {
    if (!queue_.empty()) return true;
    for (auto& w : slots_)
      if (w && (!w->inflight.empty() || w->st == worker::state::busy)) return true;
    return false;
  }

  void check_join() {
    if (!closed_) return;
    if (busy() && !broken_) return;
    bool any_alive = false;
    for (auto& w : slots_) {
      if (!w) continue;
      any_alive = true;
      if (w->st == worker::state::idle || w->st == worker::state::booting) stop(w);
    }
    if (any_alive || !retiring_.empty()) return;
    for (auto& t : respawn_timers_)
      t->cancel();
    shutdown_timer_.cancel();
    auto joiners = std::move(joiners_);
    joiners_.clear();
    for (auto& j : joiners)
      j();
  }

  // --- cancellation -------------------------------------------------------------------

  void cancel_on_strand(std::uint64_t id) {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->id != id) continue;
      pending_task p = std::move(*it);
      queue_.erase(it);
      fail(p, errc::cancelled, "cancelled before it started");
      return check_join();
    }
    for (auto w : slots_) {  // a copy: cancelling may end the worker
      if (!w) continue;
      for (auto& t : w->inflight)
        if (t.id == id && !t.discarded)
          return cancel_sent(w, t,
                             "cancelled on worker " + std::to_string(w->slot) + " (pid " +
                                 std::to_string(w->pid) + ")");
    }
  }

  // The task fails with `cancelled` now. Its worker gets a cancel frame; the entry stays in
  // flight, discarded, until the worker answers it (a task not started yet is answered at
  // once by crew's runtime). The running one gets cancel_grace to answer, or its worker is
  // killed; nothing it sends for it reaches anyone.
  void cancel_sent(const std::shared_ptr<worker>& w, pending_task& t, const std::string& why) {
    const bool running = &t == &w->inflight.front();
    t.discarded = true;
    fail(t, errc::cancelled, why);
    if (w->exited || w->failure) return maybe_finalize(w);  // already going
    if (w->to.is_open()) {
      const std::size_t before = w->wbuf.size();
      protocol::append_frame(w->wbuf, protocol::frame_type::cancel, t.id, {});
      w->appended += w->wbuf.size() - before;
      if (!w->writing) write_some(w);
    }
    if (running) arm_cancel_grace(w, t.id);
  }

  void arm_cancel_grace(const std::shared_ptr<worker>& w, std::uint64_t id) {
    arm_deadline(w, opts_.cancel_grace, [this, w, id] {
      if (w->inflight.empty() || w->inflight.front().id != id) return;
      w->failure = {errc::cancelled, "it did not stop a cancelled task within " +
                                         ms_text(opts_.cancel_grace) + "; crew killed it"};
      kill_group(w, SIGKILL);
    });
  }

  // Shutdown's grace has run out: every queued and running task is cancelled.
  void cancel_everything(const std::string& why) {
    while (!queue_.empty()) {
      pending_task p = std::move(queue_.front());
      queue_.pop_front();
      fail(p, errc::cancelled, why);
    }
    for (auto w : slots_) {  // a copy: cancelling may end the worker
      if (!w) continue;
      for (std::size_t i = w->inflight.size(); i-- > 0;)  // the running one last
        if (i < w->inflight.size() && !w->inflight[i].discarded)
          cancel_sent(w, w->inflight[i], why);
    }
    check_join();
  }

  // End of input asks the worker to exit; SIGTERM and SIGKILL follow if it does not.
  void stop(const std::shared_ptr<worker>& w) {
    if (w->st == worker::state::stopping) return;
    w->st = worker::state::stopping;
    error_code ignored;
    w->to.close(ignored);
    w->stop_timer.expires_after(opts_.shutdown_grace);
    w->stop_timer.async_wait([self = shared_from_this(), w](error_code ec) {
      if (ec || w->exited) return;
      self->kill_group(w, SIGTERM);
      w->stop_timer.expires_after(self->opts_.shutdown_grace);
      w->stop_timer.async_wait([self, w](error_code e) {
        if (!e) self->kill_group(w, SIGKILL);
      });
    });
  }

  void terminate_on_strand() {
    closed_ = true;
    while (!queue_.empty()) {
      fail(queue_.front(), errc::shutting_down, "the pool was destroyed");
      queue_.pop_front();
    }
    for (auto& w : slots_) {
      if (!w) continue;
      for (auto& t : w->inflight)
        if (!t.discarded) fail(t, errc::shutting_down, "the pool was destroyed while the task ran");
      w->inflight.clear();
      w->st = worker::state::idle;
      stop(w);
      kill_group(w, SIGTERM);
    }
    for (auto& w : retiring_)
      kill_group(w, SIGTERM);
    for (auto& t : respawn_timers_)
      t->cancel();
    shutdown_timer_.cancel();
  }

  asio::any_io_executor ex_;
  strand_type strand_;
  process_pool_options opts_;
  std::vector<std::shared_ptr<worker>> slots_;
  std::vector<std::unique_ptr<asio::steady_timer>> respawn_timers_;
  std::deque<pending_task> queue_;
  std::atomic<std::uint64_t> next_id_{0};
  std::size_t depth_ = 1;       // tasks in flight per worker
  bool reading_batch_ = false;  // handling the replies of one read: writes wait for its end
  std::vector<std::shared_ptr<worker>> retiring_;  // recycled workers on their way out
  asio::steady_timer shutdown_timer_{strand_};
  bool shutdown_armed_ = false;
  unsigned consecutive_crashes_ = 0;
  errc broken_code_ = errc::worker_boot_failed;
  std::string broken_reason_copy_;  // for broken_reason(), under pid_mutex_
  std::mutex admit_mutex_;
  std::condition_variable admit_cv_;
  std::size_t queued_ = 0;  // admitted tasks not yet sent to a worker
  bool closed_ = false;
  std::atomic<bool> closed_flag_{false};
  std::atomic<bool> terminated_{false};
  std::atomic<bool> reaped_by_destructor_{false};
  bool broken_ = false;
  std::string broken_reason_;
  unsigned boot_failures_ = 0;
  std::vector<std::function<void()>> joiners_;

  mutable std::mutex pid_mutex_;
  std::condition_variable pids_cv_;
  std::vector<int> live_pids_;
};

void cancel_task(const std::weak_ptr<pool_core>& core, std::uint64_t id) {
  if (auto c = core.lock()) c->cancel(id);
}

}  // namespace detail

process_pool::process_pool(executor_type ex, process_pool_options options)
    : executor_(ex),
      map_chunk_(options.map_chunk),
      core_(std::make_shared<detail::pool_core>(ex, std::move(options))) {
  core_->start();
}

process_pool::~process_pool() {
  core_->terminate();
}

void process_pool::submit_raw(detail::raw_task t) {
  core_->submit(std::move(t));
}
void process_pool::join_raw(std::function<void()> done) {
  core_->join(std::move(done));
}
void process_pool::close() {
  core_->close();
}
void process_pool::join() {
  async_join(asio::bind_executor(executor_, asio::use_future)).get();
}
void process_pool::shutdown_raw(std::chrono::milliseconds grace, std::function<void()> done) {
  core_->shutdown(grace, std::move(done));
}
void process_pool::shutdown(std::chrono::milliseconds grace) {
  async_shutdown(grace, asio::bind_executor(executor_, asio::use_future)).get();
}
std::string process_pool::broken_reason() const {
  return core_->broken_reason();
}
std::uint64_t process_pool::next_task_id() noexcept {
  return core_->next_task_id();
}
std::size_t process_pool::size() const noexcept {
  return core_->size();
}
std::vector<int> process_pool::pids() const {
  return core_->pids();
}

}  // namespace crew
