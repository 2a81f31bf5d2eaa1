// Physical-limit baselines; see baselines.hpp.
#include "baselines.hpp"
#include "bench_common.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

extern char** environ;

namespace crew::bench::raw {
namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t KiB = 1024, MiB = 1024 * KiB;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("crew::bench::raw: ") + what);
}

/// Median and nearest-rank p99 of samples in microseconds.
latency summarize(std::vector<double> us) {
  latency out;
  out.samples = us.size();
  if (us.empty()) return out;
  std::sort(us.begin(), us.end());
  const std::size_t n = us.size();
  out.median_us = n % 2 ? us[n / 2] : (us[n / 2 - 1] + us[n / 2]) / 2;
  const auto rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(n)));
  out.p99_us = us[std::clamp<std::size_t>(rank, 1, n) - 1];
  return out;
}

double median(std::vector<double> v) {
  return summarize(std::move(v)).median_us;
}

/// Owns a file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

/// A pipe whose two ends are close-on-exec (so that programs spawned meanwhile by other threads
/// of this process do not keep them open).
std::pair<unique_fd, unique_fd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  return {unique_fd(fds[0]), unique_fd(fds[1])};
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno("fcntl(O_NONBLOCK)");
}

void write_all(int fd, const unsigned char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("write to child");
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void read_all(int fd, unsigned char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("read from child");
    }
    if (r == 0) throw std::runtime_error("read from child: the child closed the pipe");
    p += r;
    n -= static_cast<std::size_t>(r);
  }
}

cpu_set_t single_cpu(int cpu) {
  require(cpu >= 0 && cpu < CPU_SETSIZE, "cpu number out of range");
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return set;
}

/// Pins the calling thread to one CPU while alive; restores its previous mask afterwards.
class pin_this_thread {
 public:
  explicit pin_this_thread(int cpu) {
    const cpu_set_t set = single_cpu(cpu);
    if (::sched_getaffinity(0, sizeof old_, &old_) != 0) throw_errno("sched_getaffinity");
    if (::sched_setaffinity(0, sizeof set, &set) != 0)
      throw_errno("sched_setaffinity(cpu " + std::to_string(cpu) + ")");
  }
  ~pin_this_thread() { ::sched_setaffinity(0, sizeof old_, &old_); }
  pin_this_thread(const pin_this_thread&) = delete;
  pin_this_thread& operator=(const pin_this_thread&) = delete;

 private:
  cpu_set_t old_{};
};

/// Waits for `pid`; after `patience` kills it with SIGKILL. Returns the wait status.
int reap(pid_t pid, std::chrono::milliseconds patience) {
  const auto deadline = clock_type::now() + patience;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) throw_errno("waitpid");
    if (clock_type::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid");
  }
  return status;
}

/// Blocking wait for a spawned program; throws unless it exited with status 0.
void wait_success(pid_t pid, const std::string& exe) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid(" + exe + ")");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(exe + " did not exit with status 0 (wait status " +
                             std::to_string(status) + ")");
}

/// The child's loop: read what the pipe has (up to `cap` bytes, or up to one message if
/// per_message), write back every complete message received, keep the remainder; exit at end of
/// input. Only read/write/memmove/_exit: it runs in a child forked from a possibly multi-threaded
/// process. `cap` is a multiple of `msg`.
[[noreturn]] void echo_loop(int in, int out, std::size_t msg, unsigned char* buf, std::size_t cap,
                            bool per_message) noexcept {
  const std::size_t limit = per_message ? msg : cap;
  std::size_t have = 0;
  for (;;) {
    const ssize_t r = ::read(in, buf + have, limit - have);
    if (r < 0) {
      if (errno == EINTR) continue;
      ::_exit(1);
    }
    if (r == 0) ::_exit(have == 0 ? 0 : 2);  // EOF; a partial message left is an error
    have += static_cast<std::size_t>(r);
    const std::size_t whole = have - have % msg;
    for (std::size_t done = 0; done < whole;) {
      const ssize_t w = ::write(out, buf + done, whole - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        ::_exit(1);  // EPIPE included: the parent is gone
      }
      done += static_cast<std::size_t>(w);
    }
    if (whole > 0) std::memmove(buf, buf + whole, have - whole);
    have -= whole;
  }
}

/// A forked child echoing messages of a fixed size through two pipes. The destructor always
/// closes the pipes and reaps the child (killing it if it does not exit by itself).
class echo_child {
 public:
  echo_child(std::size_t msg, std::optional<int> cpu, echo_mode mode = echo_mode::batched) {
    // Everything the child needs is allocated before fork().
    const std::size_t cap = msg * std::max<std::size_t>(1, 256 * KiB / msg);
    std::vector<unsigned char> buf(cap);
    auto [req_r, req_w] = make_pipe();
    auto [resp_r, resp_w] = make_pipe();
    std::optional<cpu_set_t> child_set;
    if (cpu) child_set = single_cpu(*cpu);

    pid_ = ::fork();
    if (pid_ < 0) throw_errno("fork");
    if (pid_ == 0) {
      ::close(req_w.get());
      ::close(resp_r.get());
      echo_loop(req_r.get(), resp_w.get(), msg, buf.data(), cap, mode == echo_mode::per_message);
    }
    to_child_ = std::move(req_w);
    from_child_ = std::move(resp_r);
    if (child_set && ::sched_setaffinity(pid_, sizeof *child_set, &*child_set) != 0) {
      const int err = errno;
      stop(std::chrono::milliseconds(0));
      throw_errno("sched_setaffinity(child, cpu " + std::to_string(*cpu) + ")", err);
    }
  }
  ~echo_child() {
    if (pid_ > 0) {
      try {
        stop(std::chrono::milliseconds(2000));
      } catch (...) {
      }
    }
  }
  echo_child(const echo_child&) = delete;
  echo_child& operator=(const echo_child&) = delete;

  int to_child() const noexcept { return to_child_.get(); }
  int from_child() const noexcept { return from_child_.get(); }

  /// Normal end: end of input lets the child exit; throws if it did not exit cleanly.
  void finish() {
    const int status = stop(std::chrono::milliseconds(5000));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("echo child failed (wait status " + std::to_string(status) + ")");
  }

 private:
  // Closing both ends makes the child see EOF (or EPIPE) and exit; then reap it.
  int stop(std::chrono::milliseconds patience) {
    to_child_.reset();
    from_child_.reset();
    const pid_t pid = std::exchange(pid_, -1);
    return reap(pid, patience);
  }

  pid_t pid_ = -1;
  unique_fd to_child_, from_child_;
};

/// argv for exec: exe followed by args, null-terminated (pointers into the given strings).
std::vector<char*> make_argv(const std::string& exe, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 2);
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

/// Keeps the compiler from dropping or merging memcpy calls whose result is never read.
inline void clobber(void* p) {
  asm volatile("" : : "r"(p) : "memory");
}

/// Sends `n` messages of `bytes` bytes on `to` and receives their echoes from `from` (both
/// non-blocking; they may be one socket), with at most `in_flight` outstanding, in one
/// thread: each turn writes as much of the window as `to` takes (in one write() from `out`,
/// which holds whole messages and is written cyclically) and reads what has come back into
/// `in`; poll() when neither moves. `who` names the caller in errors.
void pipelined_run(int to, int from, std::size_t bytes, std::size_t in_flight, std::size_t n,
                   const std::vector<unsigned char>& out, std::vector<unsigned char>& in,
                   const char* who) {
  const std::uint64_t total = std::uint64_t{n} * bytes;
  std::uint64_t sent = 0, got = 0;
  while (got < total) {
    bool progress = false;
    const std::uint64_t limit = std::min<std::uint64_t>(total, (got / bytes + in_flight) * bytes);
    if (sent < limit) {
      const std::size_t off = sent % out.size();
      const std::size_t len = std::min<std::uint64_t>(limit - sent, out.size() - off);
      const ssize_t w = ::write(to, out.data() + off, len);
      if (w > 0) {
        sent += static_cast<std::uint64_t>(w);
        progress = true;
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        throw_errno(std::string(who) + ": write to child");
      }
    }
    const std::size_t want = std::min<std::uint64_t>(total - got, in.size());
    const ssize_t r = ::read(from, in.data(), want);
    if (r > 0) {
      got += static_cast<std::uint64_t>(r);
      progress = true;
    } else if (r == 0) {
      throw std::runtime_error(std::string(who) + ": read from child: the child closed its end");
    } else if (errno != EAGAIN && errno != EINTR) {
      throw_errno(std::string(who) + ": read from child");
    }
    if (progress) continue;
    // Neither end is ready: wait for a reply or (if the window allows) room to write.
    pollfd fds[2] = {{from, POLLIN, 0}, {to, POLLOUT, 0}};
    const int rc = ::poll(fds, sent < limit ? 2 : 1, 10'000);
    if (rc == 0) throw std::runtime_error(std::string(who) + ": the child stopped answering");
    if (rc < 0 && errno != EINTR) throw_errno("poll");
  }
}

}  // namespace

latency pipe_pingpong(std::size_t bytes, std::size_t rounds,
                      std::optional<std::pair<int, int>> pin) {
  require(bytes > 0, "pipe_pingpong: bytes must be > 0");
  require(rounds > 0, "pipe_pingpong: rounds must be > 0");
  sigpipe_blocker no_sigpipe;  // declared first: outlives the child and the pinning
  echo_child child(bytes, pin ? std::optional<int>(pin->second) : std::nullopt);
  std::optional<pin_this_thread> pinned;
  if (pin) pinned.emplace(pin->first);

  std::vector<unsigned char> request(bytes, 0x5a), reply(bytes);
  const std::size_t stamp = std::min<std::size_t>(bytes, sizeof(std::uint64_t));
  const std::size_t warmup = std::clamp<std::size_t>(rounds / 10, 10, 1000);
  std::vector<double> us;
  us.reserve(rounds);
  for (std::uint64_t i = 0; i < warmup + rounds; ++i) {
    std::memcpy(request.data(), &i, stamp);  // a per-round stamp checks the echo
    const auto t0 = clock_type::now();
    write_all(child.to_child(), request.data(), bytes);
    read_all(child.from_child(), reply.data(), bytes);
    const double elapsed = seconds_since(t0);
    if (std::memcmp(request.data(), reply.data(), stamp) != 0)
      throw std::runtime_error("pipe_pingpong: the echo does not match the request");
    if (i >= warmup) us.push_back(elapsed * 1e6);
  }
  child.finish();
  return summarize(std::move(us));
}

double pipe_pipelined_per_s(std::size_t bytes, std::size_t in_flight, std::size_t messages) {
  return pipe_pipelined_per_s(bytes, in_flight, messages, echo_mode::batched);
}

double pipe_pipelined_per_s(std::size_t bytes, std::size_t in_flight, std::size_t messages,
                            echo_mode mode) {
  require(bytes > 0 && in_flight > 0 && messages > 0,
          "pipe_pipelined_per_s: bytes, in_flight and messages must be > 0");
  sigpipe_blocker no_sigpipe;
  echo_child child(bytes, std::nullopt, mode);
  const int to = child.to_child(), from = child.from_child();
  set_nonblocking(to);
  set_nonblocking(from);

  // The requests are written cyclically from one block of up to `in_flight` messages (at most
  // 1 MiB, at least one message); replies are read into a block of the same size.
  const std::size_t per_block = std::min(in_flight, std::max<std::size_t>(1, MiB / bytes));
  std::vector<unsigned char> out(per_block * bytes, 0xa5), in(per_block * bytes);
  auto run = [&](std::size_t n) {
    pipelined_run(to, from, bytes, in_flight, n, out, in, "pipe_pipelined_per_s");
  };

  run(std::clamp<std::size_t>(messages / 10, 1, 10'000));  // warm-up
  const auto t0 = clock_type::now();
  run(messages);
  const double elapsed = seconds_since(t0);
  child.finish();
  return static_cast<double>(messages) / elapsed;
}

// Runs `once` `reps` times: milliseconds of each.
template <class F>
std::vector<double> samples_ms(std::size_t reps, F& once) {
  std::vector<double> ms;
  ms.reserve(reps);
  for (std::size_t i = 0; i < reps; ++i) {
    const auto t0 = clock_type::now();
    once();
    ms.push_back(seconds_since(t0) * 1e3);
  }
  return ms;
}

std::vector<double> spawn_wait_samples_ms(const std::string& exe,
                                          const std::vector<std::string>& args, std::size_t reps,
                                          bool warm_up) {
  require(reps > 0, "spawn_wait_ms: reps must be > 0");
  std::vector<char*> argv = make_argv(exe, args);

  posix_spawn_file_actions_t actions;
  if (const int rc = ::posix_spawn_file_actions_init(&actions); rc != 0)
    throw_errno("posix_spawn_file_actions_init", rc);
  struct actions_guard {
    posix_spawn_file_actions_t* a;
    ~actions_guard() { ::posix_spawn_file_actions_destroy(a); }
  } guard{&actions};
  if (const int rc = ::posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
      rc != 0)
    throw_errno("posix_spawn_file_actions_addopen", rc);
  if (const int rc = ::posix_spawn_file_actions_adddup2(&actions, 1, 2); rc != 0)
    throw_errno("posix_spawn_file_actions_adddup2", rc);

  auto once = [&] {
    pid_t pid = -1;
    if (const int rc = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
        rc != 0)
      throw_errno("posix_spawn(" + exe + ")", rc);
    wait_success(pid, exe);
  };
  if (warm_up) once();  // page cache, dynamic loader
  return samples_ms(reps, once);
}

std::vector<double> fork_exec_wait_samples_ms(const std::string& exe,
                                              const std::vector<std::string>& args,
                                              std::size_t reps, bool warm_up) {
  require(reps > 0, "fork_exec_wait_ms: reps must be > 0");
  std::vector<char*> argv = make_argv(exe, args);
  unique_fd devnull(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (devnull.get() < 0) throw_errno("open(/dev/null)");

  // Like Boost.Process's fork launcher: a close-on-exec pipe reports an exec failure (errno) to
  // the parent, and its EOF tells that the exec succeeded.
  auto once = [&] {
    auto [err_r, err_w] = make_pipe();
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {  // only async-signal-safe calls from here on
      if (::dup2(devnull.get(), 1) >= 0 && ::dup2(devnull.get(), 2) >= 0)
        ::execve(exe.c_str(), argv.data(), environ);
      const int err = errno;
      [[maybe_unused]] const ssize_t ignored = ::write(err_w.get(), &err, sizeof err);
      ::_exit(127);
    }
    err_w.reset();
    int child_errno = 0;
    ssize_t r;
    while ((r = ::read(err_r.get(), &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
    }
    if (r > 0) {
      reap(pid, std::chrono::milliseconds(5000));
      throw_errno("execve(" + exe + ")", child_errno);
    }
    wait_success(pid, exe);
  };
  if (warm_up) once();
  return samples_ms(reps, once);
}

double spawn_wait_ms(const std::string& exe, const std::vector<std::string>& args,
                     std::size_t reps) {
  return median(spawn_wait_samples_ms(exe, args, reps, true));
}

double fork_exec_wait_ms(const std::string& exe, const std::vector<std::string>& args,
                         std::size_t reps) {
  return median(fork_exec_wait_samples_ms(exe, args, reps, true));
}

double memcpy_gb_per_s(std::size_t bytes, int reps) {
  require(bytes > 0 && reps > 0, "memcpy_gb_per_s: bytes and reps must be > 0");
  std::vector<unsigned char> src(bytes, 1), dst(bytes, 0);  // both touched: resident and warm
  // At least 64 MiB copied per timed rep, so that small sizes are not lost in clock overhead.
  const std::size_t iters = std::max<std::size_t>(1, 64 * MiB / bytes);
  std::memcpy(dst.data(), src.data(), bytes);
  clobber(dst.data());
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = clock_type::now();
    for (std::size_t i = 0; i < iters; ++i) {
      std::memcpy(dst.data(), src.data(), bytes);
      clobber(dst.data());
    }
    const double elapsed = seconds_since(t0);
    best = std::max(best, static_cast<double>(bytes) * static_cast<double>(iters) / elapsed / 1e9);
  }
  return best;
}

struct asio_pool::impl {
  explicit impl(std::size_t threads) : pool(threads) {}
  // The latches of batched_per_s, kept until the pool has joined: a task may still be inside
  // count_down() when the waiter wakes up.
  std::vector<std::unique_ptr<std::latch>> latches;
  boost::asio::thread_pool pool;  // declared last: joined (by ~asio_pool) before the latches go
};

asio_pool::asio_pool(std::size_t threads) {
  require(threads > 0, "asio_pool: threads must be > 0");
  impl_ = std::make_unique<impl>(threads);
}

asio_pool::~asio_pool() {
  impl_->pool.join();
}

std::vector<double> asio_pool::round_trips(std::size_t n) {
  std::vector<double> s;
  s.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto t0 = clock_type::now();
    // The task owns the promise, so it is not destroyed under set_value.
    std::promise<void> done;
    std::future<void> f = done.get_future();
    boost::asio::post(impl_->pool, [p = std::move(done)]() mutable { p.set_value(); });
    f.get();
    s.push_back(seconds_since(t0));
  }
  return s;
}

double asio_pool::batched_per_s(std::size_t n) {
  require(n > 0, "asio_pool::batched_per_s: n must be > 0");
  auto& all_done =
      *impl_->latches.emplace_back(std::make_unique<std::latch>(static_cast<std::ptrdiff_t>(n)));
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < n; ++i)
    boost::asio::post(impl_->pool, [&all_done] { all_done.count_down(); });
  all_done.wait();
  return static_cast<double>(n) / seconds_since(t0);
}

thread_pool_baseline asio_thread_pool(std::size_t threads, std::size_t tasks) {
  require(threads > 0 && tasks > 0, "asio_thread_pool: threads and tasks must be > 0");
  thread_pool_baseline out;
  asio_pool pool(threads);
  // (a) One task at a time, after a warm-up.
  const std::size_t warmup = std::clamp<std::size_t>(tasks / 10, 10, 1000);
  pool.round_trips(warmup);
  auto s = pool.round_trips(tasks);
  for (auto& x : s)
    x *= 1e6;
  out.round_trip_median_us = median(std::move(s));
  // (b) All tasks posted at once, then one wait for the last.
  out.batched_per_s = pool.batched_per_s(tasks);
  return out;
}

// --- through a launcher --------------------------------------------------------------------

namespace {

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv)
    out += (out.empty() ? "" : " ") + a;
  return out;
}

/// posix_spawnp attributes for a launcher: no signal blocked, SIGPIPE at its default (this
/// thread may have it blocked or ignored).
struct launcher_attr {
  posix_spawnattr_t a;
  launcher_attr() {
    if (const int rc = ::posix_spawnattr_init(&a); rc != 0) throw_errno("posix_spawnattr_init", rc);
    sigset_t none, pipe;
    sigemptyset(&none);
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    ::posix_spawnattr_setsigmask(&a, &none);
    ::posix_spawnattr_setsigdefault(&a, &pipe);
    ::posix_spawnattr_setflags(&a, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ~launcher_attr() { ::posix_spawnattr_destroy(&a); }
  launcher_attr(const launcher_attr&) = delete;
  launcher_attr& operator=(const launcher_attr&) = delete;
};

pid_t spawnp(const std::vector<std::string>& argv, const file_actions& fa) {
  require(!argv.empty(), "a launcher command is not empty");
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  launcher_attr attr;
  pid_t pid = -1;
  if (const int rc = ::posix_spawnp(&pid, args[0], &fa.a, &attr.a, args.data(), environ); rc != 0)
    throw_errno("posix_spawnp(" + argv[0] + ")", rc);
  return pid;
}

/// Waits for `pid` (through a pidfd: no polling) at most `patience`; then SIGKILL and reap.
/// Returns the wait status, and whether it exited in time.
std::pair<int, bool> wait_bounded(pid_t pid, std::chrono::milliseconds patience) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  bool in_time = true;
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    const auto deadline = clock_type::now() + patience;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      const int rc = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
      if (rc > 0) break;
      if (rc == 0) {
        in_time = false;
        break;
      }
      if (errno != EINTR) break;
    }
    ::close(pidfd);
    if (!in_time) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
      if (errno != EINTR) throw_errno("waitpid");
    return {status, in_time};
  }
  const int status = reap(pid, patience);  // no pidfd: polls
  return {status, !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)};
}

/// Message `i` of `bytes` bytes: frame-shaped (magic, version, type task, id i, length), then
/// a pattern with 0x00 and 0xff in it.
void fill_message(unsigned char* m, std::size_t bytes, std::uint64_t i) {
  for (std::size_t k = 0; k < bytes; ++k)
    m[k] = static_cast<unsigned char>(i * 131 + k * 37);
  if (bytes < 20) return;
  const unsigned char head[8] = {'C', 'R', 'E', 'W', 1, 2, 0, 0};
  std::memcpy(m, head, 8);
  std::memcpy(m + 8, &i, 8);
  const auto length = static_cast<std::uint32_t>(bytes - 20);
  std::memcpy(m + 16, &length, 4);
}

/// Waits (10 s at most) until `fd` can be read, then reads up to `n` bytes.
std::size_t read_some(int fd, unsigned char* p, std::size_t n, const std::string& who) {
  for (;;) {
    pollfd pf{fd, POLLIN, 0};
    const int rc = ::poll(&pf, 1, 10'000);
    if (rc == 0) throw std::runtime_error(who + ": stopped answering (10 s)");
    if (rc < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    const ssize_t r = ::read(fd, p, n);
    if (r > 0) return static_cast<std::size_t>(r);
    if (r == 0) throw std::runtime_error(who + ": closed its output (see its stderr above)");
    if (errno != EINTR && errno != EAGAIN) throw_errno("read from " + who);
  }
}

}  // namespace

launched_echo::launched_echo(const std::vector<std::string>& argv) : name_(joined(argv)) {
  auto [in_r, in_w] = make_pipe();
  auto [out_r, out_w] = make_pipe();
  file_actions fa;
  fa.check(::posix_spawn_file_actions_adddup2(&fa.a, in_r.get(), 0));
  fa.check(::posix_spawn_file_actions_adddup2(&fa.a, out_w.get(), 1));
  pid_ = spawnp(argv, fa);
  to_ = in_w.release();
  from_ = out_r.release();
}

launched_echo::~launched_echo() {
  if (pid_ > 0) {
    try {
      stop(std::chrono::milliseconds(5000));
    } catch (...) {
    }
  }
}

int launched_echo::stop(std::chrono::milliseconds patience) {
  if (to_ >= 0) ::close(std::exchange(to_, -1));
  const pid_t pid = std::exchange(pid_, -1);
  const auto [status, in_time] = wait_bounded(pid, patience);
  if (from_ >= 0) ::close(std::exchange(from_, -1));
  return in_time ? status : -1;
}

void launched_echo::finish() {
  const int status = stop(std::chrono::milliseconds(5000));
  if (status < 0) throw std::runtime_error(name_ + ": did not exit within 5 s of end of input");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(name_ + ": did not exit with status 0 (wait status " +
                             std::to_string(status) + ")");
}

std::vector<double> launched_echo::round_trips(std::size_t bytes, std::size_t count) {
  require(bytes > 0 && count > 0, "round_trips: bytes and count must be > 0");
  require(pid_ > 0, "round_trips: the launcher has ended");
  sigpipe_blocker no_sigpipe;
  std::vector<unsigned char> request(bytes), reply(bytes);
  std::vector<double> seconds;
  seconds.reserve(count);
  static std::uint64_t serial = 0;
  for (std::size_t i = 0; i < count; ++i) {
    fill_message(request.data(), bytes, ++serial);
    const auto t0 = clock_type::now();
    const ssize_t w = ::write(to_, request.data(), bytes);  // one write: one frame
    if (w < 0) throw_errno("write to " + name_);
    if (static_cast<std::size_t>(w) != bytes) {  // not for small messages; complete it anyway
      write_all(to_, request.data() + w, bytes - static_cast<std::size_t>(w));
    }
    for (std::size_t got = 0; got < bytes;)
      got += read_some(from_, reply.data() + got, bytes - got, name_);
    seconds.push_back(seconds_since(t0));
    if (request != reply) throw std::runtime_error(name_ + ": the echo differs from the message");
  }
  return seconds;
}

double launched_echo::pipelined_per_s(std::size_t bytes, std::size_t messages) {
  require(bytes > 0 && messages > 0, "pipelined_per_s: bytes and messages must be > 0");
  require(messages <= (std::size_t{256} << 20) / bytes, "pipelined_per_s: at most 256 MiB");
  require(pid_ > 0, "pipelined_per_s: the launcher has ended");
  const std::size_t total = bytes * messages;
  static std::uint64_t serial = 1u << 30;
  std::vector<unsigned char> out(total), in(total);
  for (std::size_t i = 0; i < messages; ++i)
    fill_message(out.data() + i * bytes, bytes, ++serial);
  std::exception_ptr write_error;
  const int to = to_;
  const auto t0 = clock_type::now();
  std::thread writer([&] {
    try {
      sigpipe_blocker no_sigpipe;
      for (std::size_t i = 0; i < messages; ++i)
        write_all(to, out.data() + i * bytes, bytes);  // one write() per message
    } catch (...) {
      write_error = std::current_exception();
    }
  });
  double elapsed = 0;
  try {
    for (std::size_t got = 0; got < total;)
      got += read_some(from_, in.data() + got, total - got, name_);
    elapsed = seconds_since(t0);
  } catch (...) {
    ::kill(pid_, SIGKILL);  // the writer's next write fails (EPIPE): it ends
    writer.join();
    throw;
  }
  writer.join();
  if (write_error) std::rethrow_exception(write_error);
  if (in != out) throw std::runtime_error(name_ + ": the pipelined echo differs from the messages");
  return static_cast<double>(messages) / elapsed;
}

double launch_wait_ms(const std::vector<std::string>& argv) {
  file_actions fa;
  fa.check(::posix_spawn_file_actions_addopen(&fa.a, 0, "/dev/null", O_RDONLY, 0));
  fa.check(::posix_spawn_file_actions_addopen(&fa.a, 1, "/dev/null", O_WRONLY, 0));
  fa.check(::posix_spawn_file_actions_adddup2(&fa.a, 1, 2));
  const auto t0 = clock_type::now();
  const pid_t pid = spawnp(argv, fa);
  const auto [status, in_time] = wait_bounded(pid, std::chrono::milliseconds(30'000));
  const double ms = seconds_since(t0) * 1e3;
  if (!in_time) throw std::runtime_error(joined(argv) + ": still running after 30 s (killed)");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(joined(argv) + " did not exit with status 0 (wait status " +
                             std::to_string(status) + ")");
  return ms;
}

// --- over TCP on loopback (connect-back's baseline) ---------------------------------------

namespace {

void set_blocking(int fd, bool blocking) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK) < 0)
    throw_errno("fcntl(O_NONBLOCK)");
}

void no_delay(int fd) {
  const int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    throw_errno("setsockopt(TCP_NODELAY)");
}

}  // namespace

tcp_echo::tcp_echo(const std::vector<std::string>& program, std::size_t bytes, echo_mode mode,
                   bool relayed)
    : bytes_(bytes) {
  require(bytes > 0 && !program.empty(), "tcp_echo: a program and bytes > 0");
  unique_fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) throw_errno("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw_errno("bind");
  if (::listen(listener.get(), 1) != 0) throw_errno("listen");
  if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw_errno("getsockname");
  std::vector<std::string> argv = program;
  argv.push_back("127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
  argv.push_back(std::to_string(bytes));
  argv.push_back(mode == echo_mode::batched ? "batched" : "per-message");
  if (relayed) argv.push_back("relayed");
  file_actions fa;
  fa.check(::posix_spawn_file_actions_addopen(&fa.a, 0, "/dev/null", O_RDONLY, 0));
  fa.check(::posix_spawn_file_actions_addopen(&fa.a, 1, "/dev/null", O_WRONLY, 0));
  pid_ = spawnp(argv, fa);
  try {
    // The echo connects back within 10 s, or has died (its stderr says why).
    const auto deadline = clock_type::now() + std::chrono::seconds(10);
    for (;;) {
      pollfd p{listener.get(), POLLIN, 0};
      const int rc = ::poll(&p, 1, 100);
      if (rc < 0 && errno != EINTR) throw_errno("poll");
      if (rc > 0) {
        fd_ = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd_ < 0) throw_errno("accept4");
        break;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error(
            "tcp_echo: the echo process ended before connecting (wait status " +
            std::to_string(status) + ")");
      }
      if (clock_type::now() > deadline)
        throw std::runtime_error("tcp_echo: the echo process did not connect within 10 s");
    }
    no_delay(fd_);
  } catch (...) {
    stop(std::chrono::milliseconds(0));
    throw;
  }
}

tcp_echo::~tcp_echo() {
  try {
    stop(std::chrono::milliseconds(5000));
  } catch (...) {
  }
}

int tcp_echo::stop(std::chrono::milliseconds patience) {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  if (pid_ <= 0) return -1;
  const auto [status, in_time] = wait_bounded(std::exchange(pid_, -1), patience);
  return in_time ? status : -1;
}

void tcp_echo::finish() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);  // end of input: the echo exits 0
  const int status = stop(std::chrono::milliseconds(5000));
  if (status < 0) throw std::runtime_error("tcp_echo: the echo did not exit within 5 s");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("tcp_echo: the echo did not exit with status 0 (wait status " +
                             std::to_string(status) + ")");
}

std::vector<double> tcp_echo::round_trips(std::size_t count) {
  require(count > 0, "tcp_echo::round_trips: count must be > 0");
  require(fd_ >= 0, "tcp_echo::round_trips: the echo has ended");
  sigpipe_blocker no_sigpipe;
  std::vector<unsigned char> request(bytes_, 0x5a), reply(bytes_);
  const std::size_t stamp = std::min<std::size_t>(bytes_, sizeof serial_);
  std::vector<double> seconds;
  seconds.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    ++serial_;
    std::memcpy(request.data(), &serial_, stamp);  // a per-round stamp checks the echo
    const auto t0 = clock_type::now();
    write_all(fd_, request.data(), bytes_);
    for (std::size_t got = 0; got < bytes_;)
      got += read_some(fd_, reply.data() + got, bytes_ - got, "tcp_echo");
    seconds.push_back(seconds_since(t0));
    if (std::memcmp(request.data(), reply.data(), stamp) != 0)
      throw std::runtime_error("tcp_echo: the echo does not match the request");
  }
  return seconds;
}

double tcp_echo::pipelined_per_s(std::size_t in_flight, std::size_t messages) {
  require(in_flight > 0 && messages > 0, "tcp_echo::pipelined_per_s: in_flight, messages > 0");
  require(fd_ >= 0, "tcp_echo::pipelined_per_s: the echo has ended");
  sigpipe_blocker no_sigpipe;
  const std::size_t per_block = std::min(in_flight, std::max<std::size_t>(1, MiB / bytes_));
  std::vector<unsigned char> out(per_block * bytes_, 0xa5), in(per_block * bytes_);
  set_blocking(fd_, false);
  double elapsed = 0;
  try {
    const auto t0 = clock_type::now();
    pipelined_run(fd_, fd_, bytes_, in_flight, messages, out, in, "tcp_echo");
    elapsed = seconds_since(t0);
  } catch (...) {
    set_blocking(fd_, true);
    throw;
  }
  set_blocking(fd_, true);
  return static_cast<double>(messages) / elapsed;
}

int tcp_echo_main(const std::string& address, std::size_t bytes, echo_mode mode, bool relayed) {
  const auto colon = address.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (bytes == 0 || colon == std::string::npos ||
      ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "tcp_echo: bad address %s or size %zu\n", address.c_str(), bytes);
    return 2;
  }
  a.sin_port =
      htons(static_cast<std::uint16_t>(std::strtoul(address.c_str() + colon + 1, nullptr, 10)));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("tcp_echo: connect");
    return 1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const std::size_t cap = bytes * std::max<std::size_t>(1, 256 * KiB / bytes);
  std::vector<unsigned char> buf(cap);
  int in = fd;
  if (relayed) {
    // A connected crew worker's shape: a thread waits on the socket (poll, then a read of
    // up to 64 KiB) and forwards the bytes to a pipe; the echo reads the pipe.
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      std::perror("tcp_echo: pipe2");
      return 1;
    }
    in = fds[0];
    std::thread([fd, to = fds[1]] {
      std::vector<unsigned char> b(64 * KiB);
      for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, -1) < 0) {
          if (errno == EINTR) continue;
          break;
        }
        const ssize_t r = ::read(fd, b.data(), b.size());
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        try {
          write_all(to, b.data(), static_cast<std::size_t>(r));
        } catch (...) {
          break;
        }
      }
      ::close(to);  // the echo sees the end of input
    }).detach();
  }
  echo_loop(in, fd, bytes, buf.data(), cap, mode == echo_mode::per_message);
}

hold_heap::hold_heap(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  data_ = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data_ == MAP_FAILED) {
    data_ = nullptr;
    throw_errno("mmap(" + std::to_string(bytes) + " bytes)");
  }
  // One write per page makes it resident (a read would only map the shared zero page).
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  auto* p = static_cast<volatile unsigned char*>(data_);
  for (std::size_t off = 0; off < bytes; off += page)
    p[off] = 1;
}

hold_heap::~hold_heap() {
  if (data_) ::munmap(data_, bytes_);
}

}  // namespace crew::bench::raw
