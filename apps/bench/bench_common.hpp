// What the crew benchmarks (crew-bench, crew-bench-transport) share: an io_context on a
// background thread, timing and formatting helpers, machine facts, and the large-payload
// round trips (byte_count / echo through a process_pool, memcpy of the same bytes).
#pragma once

#include <crew/process_pool.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <signal.h>
#include <spawn.h>

namespace crew::bench {

inline constexpr std::size_t KiB = 1024, MiB = 1024 * KiB;

/// Throws std::runtime_error "<what>: <strerror(err)>".
[[noreturn]] inline void throw_errno(const std::string& what, int err = errno) {
  throw std::runtime_error(what + ": " + std::strerror(err));
}

/// posix_spawn file actions, destroyed with the object; check() throws on a failed add.
struct file_actions {
  posix_spawn_file_actions_t a;
  file_actions() {
    if (const int rc = ::posix_spawn_file_actions_init(&a); rc != 0)
      throw_errno("posix_spawn_file_actions_init", rc);
  }
  ~file_actions() { ::posix_spawn_file_actions_destroy(&a); }
  file_actions(const file_actions&) = delete;
  file_actions& operator=(const file_actions&) = delete;
  void check(int rc) {
    if (rc != 0) throw_errno("posix_spawn_file_actions", rc);
  }
};

/// Blocks SIGPIPE in the calling thread while alive, so that writing to a pipe whose reader died
/// fails with EPIPE instead of killing the process; a SIGPIPE raised meanwhile is discarded.
class sigpipe_blocker {
 public:
  sigpipe_blocker() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    if (const int rc = ::pthread_sigmask(SIG_BLOCK, &set_, &old_); rc != 0)
      throw_errno("pthread_sigmask", rc);
    sigset_t pending;
    ::sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~sigpipe_blocker() {
    sigset_t pending;
    if (!was_pending_ && ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{};
      ::sigtimedwait(&set_, nullptr, &zero);
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_blocker(const sigpipe_blocker&) = delete;
  sigpipe_blocker& operator=(const sigpipe_blocker&) = delete;

 private:
  sigset_t set_{}, old_{};
  bool was_pending_ = false;
};

/// An io_context run by one background thread while the main thread waits on futures.
class io_thread {
 public:
  io_thread() : guard_(ioc_.get_executor()), thread_([this] { ioc_.run(); }) {}
  ~io_thread() {
    guard_.reset();
    ioc_.stop();
    thread_.join();
  }
  boost::asio::io_context& context() noexcept { return ioc_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

/// Seconds on the steady clock.
double now();

struct config {
  std::size_t min_iters;
  double target_s;
};

/// The statistics of one cell: seconds per round trip.
struct stats {
  double median = 0, min = 0;
  std::size_t iters = 0;
};

/// Runs `once` (which returns the seconds one round trip took) at least `min_iters` times
/// and until `target_s` seconds of wall-clock time have passed.
stats measure(const config& c, const std::function<double()>& once);

/// "4 KiB", "64 MiB".
std::string size_name(std::size_t b);
/// "812 ns", "25.3 us", "1.52 ms", "2.345 s".
std::string time_name(double s);
/// Megabytes (1e6) per second.
double mbps(std::size_t bytes, double s);

std::string cpu_model();
std::string loadavg();
/// CPUs this process may run on.
int cpu_count();

/// A pool of `workers` workers (shm areas big enough for 64 MiB), warmed up with a couple
/// of tasks so that start-up is not measured. Worker output goes to stderr. map_chunk: as
/// process_pool_options::map_chunk (0: the pool's default chunking).
std::unique_ptr<crew::process_pool> make_pool(io_thread& io, crew::transport tr,
                                              std::optional<std::size_t> inline_max = {},
                                              std::size_t workers = 1,
                                              std::size_t pipeline_depth = 1,
                                              std::size_t map_chunk = 0);
/// join() then destroy.
void close_pool(std::unique_ptr<crew::process_pool>& p);

/// `n` bytes of a fixed pattern.
std::vector<std::uint8_t> make_payload(std::size_t n);

/// byte_count over `payload`: the argument goes to the worker, 8 bytes come back.
/// Throws if the count is wrong.
stats bench_count(const config& c, crew::process_pool& pool,
                  const std::vector<std::uint8_t>& payload);

/// echo of `payload`: the same bytes there and back. Throws if other bytes come back.
stats bench_echo(const config& c, crew::process_pool& pool, const std::string& payload);

/// memcpy between two preallocated, touched buffers (at least `n` bytes each).
stats bench_memcpy(const config& c, std::vector<char>& dst, const std::vector<char>& src,
                   std::size_t n);

}  // namespace crew::bench
