#include "spawn.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace crew::detail {

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

unique_fd::~unique_fd() {
  if (fd_ >= 0) ::close(fd_);
}

boost::system::error_code make_pipe(pipe_pair& p) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {errno, boost::system::system_category()};
  p.read = unique_fd(fds[0]);
  p.write = unique_fd(fds[1]);
  return {};
}

namespace {
std::atomic<std::size_t> enlarged_pipe_bytes{0};
}  // namespace

pipe_room enlarge_channel_pipes(int to_worker, int from_worker) noexcept {
  constexpr std::size_t extra = 2 * (channel_pipe_bytes - (std::size_t{64} << 10));
  std::size_t used = enlarged_pipe_bytes.load();
  do {
    if (used + extra > channel_pipe_budget) return {};
  } while (!enlarged_pipe_bytes.compare_exchange_weak(used, used + extra));
  pipe_room room(enlarged_pipe_bytes, extra);
  // A refusal (EPERM past the user's soft limit) keeps 64 KiB; the room is held either
  // way until the worker goes, which errs on the side of enlarging fewer pipes.
  ::fcntl(to_worker, F_SETPIPE_SZ, static_cast<int>(channel_pipe_bytes));
  ::fcntl(from_worker, F_SETPIPE_SZ, static_cast<int>(channel_pipe_bytes));
  return room;
}

namespace {

// RAII for the posix_spawn attribute and file-action objects.
struct spawn_setup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  spawn_setup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~spawn_setup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

// Runs every posix_spawn of the process on one thread that lives as long as the process.
// A worker's parent-death signal (PR_SET_PDEATHSIG, set by the worker runtime) fires when
// the *thread* that created it exits, not the process: spawned from a caller's io thread,
// workers would die whenever the host stopped one of its thread pools. This thread is
// never joined (it is leaked on purpose), so the signal fires only when the process ends.
class spawner {
 public:
  static spawner& instance() {
    // Never destroyed: exit() must not join it. A forked child has the object but not its
    // thread: it gets a spawner of its own (the parent's copy is leaked, never touched).
    static std::mutex m;
    static spawner* s = nullptr;
    std::lock_guard lock(m);
    if (!s || s->owner_ != ::getpid()) s = new spawner;
    return *s;
  }

  void run(const std::function<void()>& f) {
    if (std::this_thread::get_id() == id_) return f();
    bool done = false;
    std::unique_lock lock(mutex_);
    work_.push_back({&f, &done});
    cv_.notify_all();
    cv_.wait(lock, [&] { return done; });
  }

 private:
  struct request {
    const std::function<void()>* f;
    bool* done;
  };

  spawner() {
    // No signal of the host's is ever delivered to this thread.
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    std::thread t([this] { loop(); });
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    id_ = t.get_id();
    t.detach();
  }

  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return !work_.empty(); });
      request r = work_.front();
      work_.pop_front();
      lock.unlock();
      (*r.f)();
      lock.lock();
      *r.done = true;
      cv_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<request> work_;
  std::thread::id id_;
  pid_t owner_ = ::getpid();
};

}  // namespace

// Why posix_spawn and not Boost.Process v2's launchers (Boost 1.81):
//  - default_launcher fork()s: its cost grows with the parent's memory (~37 ms from a
//    1 GiB heap against ~0.6 ms here), and it calls io_context::notify_fork in the
//    child, which takes Asio's reactor locks after fork in a multi-threaded parent;
//  - vfork_launcher calls notify_fork(fork_child) inside the vfork child, which shares
//    the parent's memory, and breaks the io_context for the next spawn.
// glibc's posix_spawn uses clone(CLONE_VM|CLONE_VFORK) and runs no user code in the
// child; its file actions give exact fd hygiene (closefrom) and it reports exec errors
// (ENOENT, EACCES) to the caller without leaving a zombie. The result is still a
// Boost.Process v2 process, adopted by pid, so waiting and signalling go through v2.
boost::process::v2::process spawn_worker(const boost::asio::any_io_executor& ex,
                                         const std::filesystem::path& exe,
                                         const std::vector<std::string>& args,
                                         const child_setup& setup, const child_fds& fds,
                                         const child_limits& limits,
                                         boost::system::error_code& ec) {
  namespace bp = boost::process::v2;
  ec.clear();
  // Which descriptor becomes which.
  std::array<int, 6> sources{fds.out,         fds.err, fds.channel_in,
                             fds.channel_out, fds.shm, fds.shm_response};
  int first = 1, count = fds.shm >= 0 ? 6 : 4;
  if (fds.on_stdio) {
    sources = {fds.channel_in, fds.channel_out, fds.err, -1, -1, -1};
    first = 0;
    count = 3;
  }
  // Move every source descriptor above the targets first, so that no dup2 below can
  // overwrite a source that happens to be numbered 0..6.
  std::array<unique_fd, 6> high;
  for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
    high[i] = unique_fd(::fcntl(sources[i], F_DUPFD_CLOEXEC, 10));
    if (!high[i]) {
      ec.assign(errno, boost::system::system_category());
      return bp::process(ex);
    }
  }
  spawn_setup s;
  int rc =
      fds.on_stdio ? 0 : posix_spawn_file_actions_addopen(&s.actions, 0, "/dev/null", O_RDONLY, 0);
  for (int i = 0; rc == 0 && i < count; ++i)
    rc = posix_spawn_file_actions_adddup2(&s.actions, high[static_cast<std::size_t>(i)].get(),
                                          first + i);
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&s.actions, first + count);
  if (rc == 0 && !setup.cwd.empty())
    rc = posix_spawn_file_actions_addchdir_np(&s.actions, setup.cwd.c_str());

  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM})
    sigaddset(&defaults, sig);
  if (rc == 0) rc = posix_spawnattr_setpgroup(&s.attr, 0);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&s.attr, &empty);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&s.attr, &defaults);
  if (rc == 0)
    rc = posix_spawnattr_setflags(
        &s.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (rc != 0) {
    ec.assign(rc, boost::system::system_category());
    return bp::process(ex);
  }

  std::vector<char*> argv;
  const std::string exe_str = exe.string();
  argv.push_back(const_cast<char*>(exe_str.c_str()));
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  // An entry of `setup.env` replaces an inherited one of the same name.
  auto overridden = [&](const char* entry) {
    const char* eq = std::strchr(entry, '=');
    const std::size_t n = eq ? static_cast<std::size_t>(eq - entry) : std::strlen(entry);
    for (const auto& e : setup.env)
      if (e.size() > n && e[n] == '=' && e.compare(0, n, entry, n) == 0) return true;
    return false;
  };
  // Ours only: variables a parent worker inherited must not describe this child.
  if (setup.inherit_env)
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "CREW_SHM_", 9) != 0 &&
          std::strncmp(*e, "CREW_COORDINATOR_PID=", 21) != 0 && !overridden(*e) &&
          env_allowed(*e, setup.env_allow))
        envp.push_back(*e);
  for (const auto& e : setup.env)
    envp.push_back(const_cast<char*>(e.c_str()));
  // The worker checks its parent against this after arming its parent-death signal.
  const std::string coordinator = "CREW_COORDINATOR_PID=" + std::to_string(::getpid());
  if (setup.announce_coordinator) envp.push_back(const_cast<char*>(coordinator.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  spawner::instance().run([&] {
    rc = ::posix_spawn(&pid, exe_str.c_str(), &s.actions, &s.attr, argv.data(), envp.data());
  });
  if (rc != 0) {
    ec.assign(rc, boost::system::system_category());
    return bp::process(ex);
  }
  // Open the pidfd here rather than letting Boost.Process do it: if that fails (EMFILE,
  // a seccomp filter, a pre-5.3 kernel) the child must not be left behind unreaped.
  auto give_up = [&](int err) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    ec.assign(err, boost::system::system_category());
    return bp::process(ex);
  };
  // Limits apply from here on; the worker has at most run its loader's first steps.
  auto limit = [&](int resource, rlim_t soft, rlim_t hard) {
    const rlimit l{soft, hard};
    return ::prlimit(pid, static_cast<__rlimit_resource>(resource), &l, nullptr) == 0;
  };
  if (limits.address_space > 0 && !limit(RLIMIT_AS, limits.address_space, limits.address_space))
    return give_up(errno);
  if (limits.cpu_seconds > 0 && !limit(RLIMIT_CPU, static_cast<rlim_t>(limits.cpu_seconds),
                                       static_cast<rlim_t>(limits.cpu_seconds) + 1))
    return give_up(errno);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return give_up(errno);
  try {
    return bp::process(ex, pid, pidfd);
  } catch (const boost::system::system_error& e) {
    ::close(pidfd);
    return give_up(e.code().value() ? e.code().value() : EIO);
  }
}

bool env_allowed(std::string_view entry, const std::vector<std::string>& allow) noexcept {
  const std::string_view name = entry.substr(0, entry.find('='));
  for (const auto& a : allow) {
    if (!a.empty() && a.back() == '*') {
      if (name.starts_with(std::string_view(a).substr(0, a.size() - 1))) return true;
    } else if (name == a) {
      return true;
    }
  }
  return false;
}

long write_no_sigpipe(int fd, const void* data, std::size_t n) noexcept {
  // Block SIGPIPE in this thread for the write, then consume a SIGPIPE the write raised,
  // leaving the thread's mask and the process's disposition as they were.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  ::sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t w = ::write(fd, data, n);
  const int saved = errno;
  if (w < 0 && saved == EPIPE && !was_pending) {
    const timespec zero{0, 0};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return w;
}

}  // namespace crew::detail
