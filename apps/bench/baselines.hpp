// Physical-limit baselines for the crew benchmarks: what the operating system (pipes, process
// creation, memcpy) and a bare Boost.Asio thread pool can do on this machine, measured without
// crew, so crew's own numbers can be read against them.
//
// Every function measures synchronously in the calling thread and throws std::runtime_error
// (with the errno text) when a system call fails, or std::invalid_argument on bad arguments.
// Child processes are always reaped, also when an exception is thrown.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace crew::bench::raw {

struct latency {
  double median_us = 0, p99_us = 0;
  std::size_t samples = 0;
};

/// Round trip of a message of `bytes` bytes between this process and a forked child through two
/// pipes (write request, child reads it fully and writes it back, parent reads it fully),
/// `rounds` times after a warm-up. pin: if set, {parent_cpu, child_cpu}: the calling thread is
/// pinned to parent_cpu for the measurement (its previous mask is restored afterwards) and the
/// child to child_cpu.
latency pipe_pingpong(std::size_t bytes, std::size_t rounds,
                      std::optional<std::pair<int, int>> pin);

/// How the echo child of pipe_pipelined_per_s reads. batched: one read() of up to 256 KiB, then
/// one write() of every complete message in it (the syscall limit). per_message: reads exactly
/// one message, writes it back, then the next (two syscalls per message at least, like a worker
/// that handles one request at a time).
enum class echo_mode { batched, per_message };

/// Pipelined throughput: the parent keeps up to `in_flight` messages of `bytes` bytes
/// outstanding (writes ahead, reads replies; one thread, non-blocking fds and poll()) to a forked
/// child echoing them (whole messages only); messages per second over `messages`, after a
/// warm-up. The three-argument form uses echo_mode::batched.
double pipe_pipelined_per_s(std::size_t bytes, std::size_t in_flight, std::size_t messages);
double pipe_pipelined_per_s(std::size_t bytes, std::size_t in_flight, std::size_t messages,
                            echo_mode mode);

/// posix_spawn of exe with args (stdout/stderr to /dev/null, environment inherited) + waitpid,
/// `reps` times, after one untimed run if `warm_up`: milliseconds of each. The caller may hold
/// a big heap at the time (see hold_heap). Throws if the program does not exit with status 0.
std::vector<double> spawn_wait_samples_ms(const std::string& exe,
                                          const std::vector<std::string>& args, std::size_t reps,
                                          bool warm_up);
/// Same through fork()+execve (what Boost.Process's default launcher does): fork copies the
/// page tables of the parent, so it slows down with the parent's resident size.
std::vector<double> fork_exec_wait_samples_ms(const std::string& exe,
                                              const std::vector<std::string>& args,
                                              std::size_t reps, bool warm_up);

/// posix_spawn of exe with args (stdout/stderr to /dev/null, environment inherited) + waitpid,
/// `reps` times after one untimed run; median milliseconds. The caller may hold a big heap at
/// the time (see hold_heap). Throws if the program does not exit with status 0.
double spawn_wait_ms(const std::string& exe, const std::vector<std::string>& args,
                     std::size_t reps);

/// Same through fork()+execve (what Boost.Process's default launcher does): fork copies the
/// page tables of the parent, so it slows down with the parent's resident size.
double fork_exec_wait_ms(const std::string& exe, const std::vector<std::string>& args,
                         std::size_t reps);

/// memcpy bandwidth for `bytes` (warm: both buffers touched first), best of `reps`, GB/s (1e9
/// bytes copied per second; read + write traffic is twice that). Small sizes are copied many
/// times per rep so that every timed interval is a few milliseconds long.
double memcpy_gb_per_s(std::size_t bytes, int reps);

/// A bare boost::asio::thread_pool(threads): (a) one post + std::future round trip at a time,
/// median microseconds over `tasks`; (b) `tasks` posts then wait for all (std::latch), tasks
/// per second.
struct thread_pool_baseline {
  double round_trip_median_us = 0;
  double batched_per_s = 0;
};
thread_pool_baseline asio_thread_pool(std::size_t threads, std::size_t tasks);

/// The same bare boost::asio::thread_pool(threads), kept alive between calls: its two
/// measurements one block at a time, for rounds interleaved with crew's thread_pool.
class asio_pool {
 public:
  explicit asio_pool(std::size_t threads);
  /// Joins the pool.
  ~asio_pool();
  asio_pool(const asio_pool&) = delete;
  asio_pool& operator=(const asio_pool&) = delete;

  /// `n` post + std::future round trips, one at a time (the posted task owns the promise and
  /// sets it): seconds of each.
  std::vector<double> round_trips(std::size_t n);
  /// `n` posts, then one wait for all (std::latch): tasks per second.
  double batched_per_s(std::size_t n);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A launcher command running a trivial echo program on the other side (`ssh -T host cat`,
/// `srun -n1 -u --jobid=J --overlap -w node cat`), started once: its stdin and stdout are ours
/// through two pipes, its stderr is inherited. The raw round trip through a launcher that
/// crew's remote workers are compared with (crew-bench, section `remote`). Every wait for its
/// output is bounded (10 s: "stopped answering"). The destructor closes its input and reaps it
/// (SIGKILL if it has not exited 5 s later).
class launched_echo {
 public:
  /// argv[0] is looked up on PATH (posix_spawnp); the environment is inherited.
  explicit launched_echo(const std::vector<std::string>& argv);
  ~launched_echo();
  launched_echo(const launched_echo&) = delete;
  launched_echo& operator=(const launched_echo&) = delete;

  /// `count` round trips of one message of `bytes` bytes: written with ONE write(), then the
  /// same number of bytes read back (and compared). Seconds of each.
  std::vector<double> round_trips(std::size_t bytes, std::size_t count);
  /// `messages` messages of `bytes` bytes: a writer thread writes them, one write() each,
  /// while this thread reads messages * bytes bytes back (and compares them). Messages per
  /// second, from the first write to the last byte read.
  double pipelined_per_s(std::size_t bytes, std::size_t messages);
  /// Normal end: closes its input; throws unless it exits with status 0 within 5 s.
  void finish();

 private:
  int stop(std::chrono::milliseconds patience);
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string name_;
};

/// The raw baseline of connect-back (crew-bench, section connect): one TCP connection on
/// loopback to an echo in another process. This process listens on 127.0.0.1 (port 0) and
/// starts the echo — posix_spawn of `program` (argv; its first word a path) followed by
/// "127.0.0.1:PORT", the message size and "batched" or "per-message", whose main is
/// tcp_echo_main — which connects back, as a connect-back worker does. Both ends set
/// TCP_NODELAY. The echo's stdin and stdout are /dev/null, its stderr ours. Every wait is
/// bounded (10 s: "stopped answering"). The destructor closes the connection and reaps the
/// echo (SIGKILL if it has not exited 5 s later).
class tcp_echo {
 public:
  /// relayed: the echo process reads the socket through a relay thread and a pipe, as a
  /// connected crew worker does (see tcp_echo_main); the word "relayed" follows the mode.
  tcp_echo(const std::vector<std::string>& program, std::size_t bytes, echo_mode mode,
           bool relayed = false);
  ~tcp_echo();
  tcp_echo(const tcp_echo&) = delete;
  tcp_echo& operator=(const tcp_echo&) = delete;

  /// `count` round trips of one message: written whole (blocking), then its echo read whole
  /// and its per-round stamp checked. Seconds of each.
  std::vector<double> round_trips(std::size_t count);
  /// `messages` messages with at most `in_flight` outstanding, as pipe_pipelined_per_s does
  /// on its pipes (one thread, the socket non-blocking meanwhile: each turn writes as much of
  /// the window as the socket takes, in one write, and reads what has come back). Messages
  /// per second, from the first write to the last byte read; no warm-up (the caller's).
  double pipelined_per_s(std::size_t in_flight, std::size_t messages);
  /// Normal end: shuts the connection down for writing; throws unless the echo exits with
  /// status 0 within 5 s.
  void finish();

 private:
  int stop(std::chrono::milliseconds patience);
  pid_t pid_ = -1;
  int fd_ = -1;
  std::size_t bytes_ = 0;
  std::uint64_t serial_ = 0;
};

/// The echo process of tcp_echo: connects to `address` ("127.0.0.1:PORT", IPv4), sets
/// TCP_NODELAY and echoes whole messages of `bytes` bytes as pipe_pipelined_per_s's child
/// does (batched: one read of up to 256 KiB, then one write of the complete messages in it;
/// per_message: one message read, then written back) until the connection ends. relayed: as
/// a connected crew worker reads its socket (lib/src/worker/stdio_relay.cpp), a thread
/// waits on the socket (poll, then a read of up to 64 KiB) and writes what came to a pipe,
/// and the echo reads that pipe instead of the socket (its replies go to the socket). Returns
/// the process's exit status on a failure to connect; at the end of the connection it
/// _exit()s (0 after a clean end, else non-zero).
int tcp_echo_main(const std::string& address, std::size_t bytes, echo_mode mode,
                  bool relayed = false);

/// posix_spawnp of argv (stdin, stdout and stderr /dev/null; environment inherited) and wait,
/// once: milliseconds. Throws unless it exits with status 0 (a run past 30 s is killed).
double launch_wait_ms(const std::vector<std::string>& argv);

/// Allocates `bytes` (anonymous mmap, as malloc does for big blocks) and touches every page so
/// that it is resident; released on destruction.
class hold_heap {
 public:
  explicit hold_heap(std::size_t bytes);
  ~hold_heap();
  hold_heap(const hold_heap&) = delete;
  hold_heap& operator=(const hold_heap&) = delete;

  std::size_t size() const noexcept { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace crew::bench::raw
