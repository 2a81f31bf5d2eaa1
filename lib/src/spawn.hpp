// Private: starting a worker process. See spawn.cpp for why this is posix_spawn and not
// one of Boost.Process v2's fork-based launchers.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace crew::detail {

/// A file descriptor closed on destruction.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  ~unique_fd();
  int get() const noexcept { return fd_; }
  int release() noexcept {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

/// A command as it is started: the executable and its arguments.
struct command_line {
  std::filesystem::path exe;
  std::vector<std::string> args;
};

/// Both ends of a pipe, each O_CLOEXEC.
struct pipe_pair {
  unique_fd read;
  unique_fd write;
};
boost::system::error_code make_pipe(pipe_pair& p);

/// Bytes held against a process-wide budget (an atomic count of the bytes in use), given
/// back on destruction; move-only. The request files of shm segments and enlarged pipes are
/// budgeted so.
class budget_charge {
 public:
  budget_charge() = default;
  /// `bytes` already added to `in_use` by the caller.
  budget_charge(std::atomic<std::size_t>& in_use, std::size_t bytes) noexcept
      : in_use_(&in_use), bytes_(bytes) {}
  budget_charge(budget_charge&& o) noexcept
      : in_use_(o.in_use_), bytes_(std::exchange(o.bytes_, 0)) {}
  budget_charge& operator=(budget_charge&& o) noexcept {
    if (this != &o) {
      release();
      in_use_ = o.in_use_;
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  ~budget_charge() { release(); }

 private:
  void release() noexcept {
    if (bytes_ != 0) in_use_->fetch_sub(bytes_);
  }
  std::atomic<std::size_t>* in_use_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Pipe capacity granted beyond Linux's default 64 KiB, against this process's budget.
using pipe_room = budget_charge;

/// Bytes each channel pipe of a local worker is enlarged to (F_SETPIPE_SZ): a 1 MiB map
/// batch then goes in one write instead of sixteen wake-ups of the other side.
inline constexpr std::size_t channel_pipe_bytes = std::size_t{1} << 20;
/// The most pipe capacity this process enlarges its pipes by, all pools together: 16 MiB
/// (8 workers), a quarter of Linux's default per-user soft limit (fs.pipe-user-pages-soft,
/// 64 MiB), past which every new pipe of the same user gets only 8 KiB.
inline constexpr std::size_t channel_pipe_budget = std::size_t{16} << 20;
/// Enlarges a worker's two channel pipes (given by one end each) to channel_pipe_bytes
/// while the budget lasts; best effort (a refusal leaves the default size, which works).
pipe_room enlarge_channel_pipes(int to_worker, int from_worker) noexcept;

/// What the child gets as its descriptors 1, 2, 3 and 4 (stdin is /dev/null); or, with
/// `on_stdio`, as 0, 1 and 2.
struct child_fds {
  int out = -1;           ///< becomes fd 1
  int err = -1;           ///< becomes fd 2
  int channel_in = -1;    ///< becomes fd 3 (the worker reads frames)
  int channel_out = -1;   ///< becomes fd 4 (the worker writes frames)
  int shm = -1;           ///< becomes fd 5 if not -1 (the request file, read-only)
  int shm_response = -1;  ///< becomes fd 6 with shm (the response file)
  /// A launcher (docs/protocol.md §10): channel_in becomes fd 0, channel_out fd 1, err fd 2;
  /// `out` and the shared-memory descriptors are not used.
  bool on_stdio = false;
};

/// Resource limits set on a started worker (prlimit); 0: not set.
struct child_limits {
  std::size_t address_space = 0;  ///< RLIMIT_AS, bytes
  long cpu_seconds = 0;           ///< RLIMIT_CPU soft limit (hard: one second more)
};

/// How a worker is started, besides its descriptors.
struct child_setup {
  std::vector<std::string> env;             ///< `NAME=value` entries, over the inherited ones
  bool inherit_env = true;                  ///< start from this process's environment ...
  std::vector<std::string> env_allow{"*"};  ///< ... its variables matching one of these
  std::filesystem::path cwd;                ///< empty: this process's working directory
  /// Sets `CREW_COORDINATOR_PID` (the worker runtime checks its parent against it); off for
  /// a worker in a pid namespace of its own, where this pid means nothing.
  bool announce_coordinator = true;
};

/// Whether the variable `entry` (`NAME=value`) matches one of `allow`: a name, or a prefix
/// ending in `*`.
bool env_allowed(std::string_view entry, const std::vector<std::string>& allow) noexcept;

/// Starts `exe args...`, with the environment and working directory of `setup`, in its own
/// process group with exactly the descriptors in `fds`,
/// default signal dispositions and an empty signal mask; returns it as a Boost.Process
/// v2 process on `ex` (pidfd-backed on Linux), with `limits` applied. The spawn itself runs
/// on a library thread that never exits (see spawn.cpp). `CREW_COORDINATOR_PID` is set
/// for the worker runtime unless `setup` says otherwise. On failure `ec` names the errno and the
/// returned process is empty.
boost::process::v2::process spawn_worker(const boost::asio::any_io_executor& ex,
                                         const std::filesystem::path& exe,
                                         const std::vector<std::string>& args,
                                         const child_setup& setup, const child_fds& fds,
                                         const child_limits& limits, boost::system::error_code& ec);

/// write(2) that reports EPIPE as an error instead of raising SIGPIPE in the process
/// (the library must not depend on the host's SIGPIPE disposition). Returns bytes written
/// or -1 with errno set.
long write_no_sigpipe(int fd, const void* data, std::size_t n) noexcept;

}  // namespace crew::detail
