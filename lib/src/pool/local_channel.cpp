#include "local_channel.hpp"

#include <boost/asio/bind_executor.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

namespace crew::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::size_t stderr_tail_lines = 12;
constexpr std::chrono::milliseconds exit_linger{300};
constexpr std::chrono::milliseconds launcher_kill_grace{2000};

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

std::string describe_status(int status, bool killed_by_crew, bool sandboxed,
                            const std::string& launcher) {
  if (!launcher.empty()) {
    // The launcher's status: srun passes its task's exit code on, ssh its command's (255:
    // ssh's own failure, or a command killed by a signal).
    std::string s = "ended; its launcher '" + launcher + "' ";
    if (WIFEXITED(status)) return s + "exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
      const int sig = WTERMSIG(status);
      const char* abbrev = sigabbrev_np(sig);
      s += "was killed by signal " + std::to_string(sig);
      if (abbrev) s += std::string(" (SIG") + abbrev + ")";
      if (sig == SIGKILL && !killed_by_crew) s += "; crew did not send it";
      return s;
    }
    return s + "ended with status " + std::to_string(status);
  }
  // bubblewrap exits with 128 + N when its worker was killed by signal N.
  const bool by_signal =
      WIFSIGNALED(status) || (sandboxed && WIFEXITED(status) && WEXITSTATUS(status) > 128 &&
                              WEXITSTATUS(status) < 128 + 65);
  if (!by_signal) {
    if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
    return "ended with status " + std::to_string(status);
  }
  {
    const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status) - 128;
    const char* abbrev = sigabbrev_np(sig);
    std::string s = "was killed by signal " + std::to_string(sig);
    if (abbrev) s += std::string(" (SIG") + abbrev + ")";
    if (sig == SIGKILL && !killed_by_crew)
      s += "; crew did not send it: the OOM killer or another process did";
    if (sig == SIGXCPU) s += ": it used up its CPU time limit (limit_cpu)";
    if (!WIFSIGNALED(status))
      s += " (in the sandbox: bwrap exited with code " + std::to_string(WEXITSTATUS(status)) + ")";
    return s;
  }
}

// Resident bytes of `pid` (from /proc/PID/statm), 0 if unknown.
std::size_t resident_of(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/statm", pid);
  std::FILE* f = std::fopen(path, "re");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

// Resident bytes of `pid` and its descendants, `depth` levels down (from the children lists
// of /proc/PID/task/TID/children).
std::size_t tree_resident(int pid, int depth) {
  std::size_t total = resident_of(pid);
  if (depth == 0) return total;
  std::error_code ec;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
    std::FILE* f = std::fopen((t.path() / "children").c_str(), "re");
    if (!f) continue;
    int child = 0;
    while (std::fscanf(f, "%d", &child) == 1)
      total += tree_resident(child, depth - 1);
    std::fclose(f);
  }
  return total;
}

std::optional<std::size_t> bytes_in_pipe(const asio::posix::stream_descriptor& d) {
  int n = 0;
  // native_handle() is not const in Asio, though it only reads the descriptor.
  auto& desc = const_cast<asio::posix::stream_descriptor&>(d);
  if (!d.is_open() || ::ioctl(desc.native_handle(), FIONREAD, &n) != 0 || n < 0) return {};
  return static_cast<std::size_t>(n);
}

}  // namespace

// --- local_registry ---------------------------------------------------------------------

void local_registry::add(int pid) {
  std::lock_guard lock(mutex_);
  live_.push_back(pid);
}

void local_registry::remove(int pid) {
  {
    std::lock_guard lock(mutex_);
    std::erase(live_, pid);
  }
  cv_.notify_all();
}

std::vector<int> local_registry::pids() const {
  std::lock_guard lock(mutex_);
  return live_;
}

void local_registry::wait_empty(std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mutex_);
  cv_.wait_until(lock, until, [&] { return live_.empty(); });
}

void local_registry::reap_now(std::chrono::milliseconds grace) {
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
  std::lock_guard lock(mutex_);
  live_.clear();
}

// --- local_channel ----------------------------------------------------------------------

struct local_channel::hold {
  std::shared_ptr<local_channel> self;
  std::shared_ptr<channel_listener> listener;
  std::shared_ptr<void> owner;
};

local_channel::hold local_channel::holding() {
  auto l = listener_.lock();
  auto owner = l ? l->keep_alive() : nullptr;
  return {shared_from_this(), std::move(l), std::move(owner)};
}

local_channel::local_channel(const asio::any_io_executor& strand, boost::process::v2::process proc,
                             local_fds fds, shm_segment seg,
                             std::shared_ptr<local_registry> registry, process_role role)
    : registry_(std::move(registry)),
      proc_(std::move(proc)),
      pid_(proc_->id()),
      seg_(std::move(seg)),
      fds_(std::move(fds)),
      to_(strand),
      from_(strand),
      out_(strand),
      err_(strand),
      linger_(strand),
      kill_timer_(strand),
      role_(std::move(role)) {
  // Only our end of the task pipe: O_NONBLOCK belongs to the open file description, so
  // setting it on the other pipes' write ends would make the worker's own writes to fd 1,
  // 2 and 4 non-blocking too.
  ::fcntl(fds_.to.get(), F_SETFL, O_NONBLOCK);
}

std::string local_channel::start(std::weak_ptr<channel_listener> listener) {
  listener_ = std::move(listener);
  wait_exit();  // first: whatever happens below, the process gets reaped
  try {
    // Ownership moves to Asio only once it has accepted the descriptor.
    auto adopt = [](asio::posix::stream_descriptor& d, unique_fd& fd) {
      d.assign(fd.get());
      fd.release();
    };
    adopt(to_, fds_.to);
    adopt(from_, fds_.from);
    if (fds_.out) adopt(out_, fds_.out);
    adopt(err_, fds_.err);
  } catch (const boost::system::system_error& e) {  // the reactor refused a descriptor
    frames_done_ = out_done_ = err_done_ = true;
    return e.what();
  }
  read_frames();
  if (out_.is_open())
    read_output(output_line::stream::out);
  else
    out_done_ = true;  // a launcher: its stdout is the frames
  read_output(output_line::stream::err);
  return {};
}

void local_channel::read_frames() {
  auto h = holding();
  if (!h.listener) return;
  // The handler holds the listener: the bytes land in its buffer.
  auto space = h.listener->read_buffer();
  from_.async_read_some(asio::buffer(space.data(), space.size()),
                        [h = std::move(h)](error_code ec, std::size_t n) {
                          auto& self = h.self;
                          if (self->frames_done_) return;
                          if (ec) {
                            self->frames_done_ = true;
                            h.listener->on_input_end();
                            return self->maybe_end();
                          }
                          if (h.listener->on_read(n)) self->read_frames();
                        });
}

void local_channel::read_output(output_line::stream which) {
  const bool is_out = which == output_line::stream::out;
  auto& pipe = is_out ? out_ : err_;
  auto& buf = is_out ? out_buf_ : err_buf_;
  pipe.async_read_some(
      asio::buffer(buf), [h = holding(), which, is_out](error_code ec, std::size_t n) {
        auto& self = h.self;
        auto& splitter = is_out ? self->out_lines_ : self->err_lines_;
        auto emit = [&](std::string_view line) { self->on_line(which, line); };
        if (ec) {
          splitter.finish(emit);
          (is_out ? self->out_done_ : self->err_done_) = true;
          return self->maybe_end();
        }
        splitter.feed(std::string_view((is_out ? self->out_buf_ : self->err_buf_).data(), n), emit);
        self->read_output(which);
      });
}

void local_channel::on_line(output_line::stream which, std::string_view text) {
  if (which == output_line::stream::err) {
    err_tail_.emplace_back(text.substr(0, 512));
    if (err_tail_.size() > stderr_tail_lines) err_tail_.pop_front();
  }
  if (auto l = listener_.lock()) l->on_output(which, text);
}

void local_channel::wait_exit() {
  proc_->handle().async_wait(
      asio::bind_executor(to_.get_executor(), [h = holding()](error_code ec, int status) {
        auto self = h.self;
        self->exited_ = true;
        self->status_ = ec ? -1 : status;
        // Reaped: drop the pidfd, so that ~basic_process (which kills a pid it finds
        // running) can never signal a recycled pid.
        self->proc_->detach();
        // Its children die with it: the worker led its own process group. (The group id
        // cannot be reused while any member is alive, so this reaches only them.)
        if (!self->registry_->reaped_by_destructor()) ::kill(-self->pid_, SIGKILL);
        self->registry_->remove(self->pid_);
        // Give the pipes a moment to drain, but never wait on them for long.
        self->linger_.expires_after(exit_linger);
        self->linger_.async_wait([h](error_code e) {
          if (e) return;
          h.self->frames_done_ = h.self->out_done_ = h.self->err_done_ = true;
          h.self->maybe_end();
        });
        self->maybe_end();
      }));
}

long local_channel::write_some(std::span<const std::byte> bytes, int& error) {
  const long n = write_no_sigpipe(to_.native_handle(), bytes.data(), bytes.size());
  if (n < 0) error = errno;
  return n;
}

void local_channel::wait_writable() {
  to_.async_wait(asio::posix::stream_descriptor::wait_write, [h = holding()](error_code ec) {
    if (h.listener) h.listener->on_writable(!ec);
  });
}

void local_channel::stop_reading() {
  frames_done_ = true;
  error_code ignored;
  from_.close(ignored);
  maybe_end();
}

void local_channel::stop(policy::stop_step step) {
  switch (step) {
    case policy::stop_step::close_input: {
      error_code ignored;
      to_.close(ignored);
      return;
    }
    case policy::stop_step::terminate:
      if (!role_.launcher.empty()) {
        // SIGTERM reaches only the launcher: the worker beyond it learns from its input.
        error_code ignored;
        to_.close(ignored);
      }
      return signal_group(SIGTERM);
    case policy::stop_step::kill:
      if (!role_.launcher.empty()) return kill_launcher();
      return signal_group(SIGKILL);
  }
}

// A launcher is asked to end before it is killed: srun turns SIGTERM into killing its step
// (Slurm then kills the worker, stopped or not), while a SIGKILLed srun leaves a step inside
// an allocation running with its input open; ssh ends its session either way. SIGKILL
// follows after launcher_kill_grace if the launcher is still there.
void local_channel::kill_launcher() {
  if (exited_ || kill_armed_) return;
  kill_armed_ = true;
  error_code ignored;
  to_.close(ignored);
  signal_group(SIGTERM);
  kill_timer_.expires_after(launcher_kill_grace);
  kill_timer_.async_wait([h = holding()](error_code ec) {
    if (!ec) h.self->signal_group(SIGKILL);
  });
}

void local_channel::signal_group(int sig) {
  // After the destructor's fallback reaped the workers itself, their pids may be reused.
  if (exited_ || pid_ <= 0 || registry_->reaped_by_destructor()) return;
  if (sig == SIGKILL) killed_by_crew_ = true;
  ::kill(-pid_, sig);  // the worker leads its own process group: its children too
  ::kill(pid_, sig);
}

std::optional<std::size_t> local_channel::resident_bytes() const {
  if (exited_ || !role_.launcher.empty()) return {};
  // In the sandbox: bwrap, its init, the worker and what the worker started.
  const std::size_t bytes = role_.sandboxed ? tree_resident(pid_, 4) : resident_of(pid_);
  if (bytes == 0) return {};
  return bytes;
}

std::optional<std::size_t> local_channel::unread_by_peer() const {
  // A launcher reads our bytes into buffers of its own: what the worker read is unknown.
  if (!role_.launcher.empty()) return {};
  return bytes_in_pipe(to_);
}

std::optional<std::size_t> local_channel::unread_by_us() const {
  return bytes_in_pipe(from_);
}

void local_channel::maybe_end() {
  if (ended_ || !exited_) return;
  if (!(frames_done_ && out_done_ && err_done_)) return;
  ended_ = true;
  linger_.cancel();
  kill_timer_.cancel();
  channel_end end;
  end.status = status_;
  end.how = status_ >= 0
                ? describe_status(status_, killed_by_crew_, role_.sandboxed, role_.launcher)
                : lost_status_reason();
  for (const auto& l : err_tail_)
    end.stderr_tail += (end.stderr_tail.empty() ? "" : " | ") + l;
  // The listener asks unread_by_peer() now: the descriptors close only after it is told.
  if (auto l = listener_.lock()) l->on_ended(std::move(end));
  error_code ignored;
  for (auto* d : {&to_, &from_, &out_, &err_})
    d->close(ignored);
}

}  // namespace crew::detail
