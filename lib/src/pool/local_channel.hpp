// Private: a worker that is a local child process (what local_launcher starts). It owns
// the process (a pidfd, through Boost.Process v2) and our ends of its four pipes: frames to
// fd 3, frames from fd 4, its stdout and stderr, split into lines (64 KiB at most each), the
// last 12 stderr lines kept for error messages. Its shared-memory segment, if any, is its
// payload area. Stop steps are signals to the worker's process group (it leads one), never
// to a pid that might have been recycled: nothing is signalled once the process is reaped,
// nor after the pool's destructor reaped what was left itself.
//
// A sandboxed worker's process is bubblewrap (sandbox.hpp): its resident memory is that of
// the whole tree below it, and an exit code of 128 + N is read as signal N (how bubblewrap
// reports a worker killed by a signal).
//
// A launcher's process (ssh, srun: crew::launcher, remote_command.hpp) is not the worker:
// the worker runs wherever the launcher put it, speaking on the launcher's stdin (frames
// to it) and stdout (frames from it); its stderr is the output (there is no separate
// stdout). Its resident memory and how much of our input the worker has read are unknown
// (the launcher buffers). Its end is described as the launcher's ("launcher ssh exited
// with code 255"), the stderr tail carrying the launcher's own message. Stop steps reach
// the launcher: end of input, then SIGTERM (with the input closed too), then SIGKILL; and
// crew's own kill (a violation, a cancel ignored, a lost worker) is SIGTERM with SIGKILL 2 s
// later — the worker on the other side ends at the end of its input, or by its launcher
// (srun kills its step on SIGTERM, not on SIGKILL).
//
// The end: when the process exits (the pidfd fires) its group is killed (its children die
// with it), and the pipes get 300 ms to drain — a reply written just before exiting is still
// delivered, a grandchild holding a pipe cannot stall the pool — then on_ended, with the
// exit status described ("exited with code 1", "was killed by signal 9 (SIGKILL); crew did
// not send it ...") and the stderr tail.
#pragma once

#include "../line_splitter.hpp"
#include "../shm_segment.hpp"
#include "../spawn.hpp"
#include "channel.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/process/v2/process.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

namespace crew::detail {

/// The local workers of one pool that are alive (started, not yet reaped): for pids(), and
/// for the destructor, which waits for the list to empty and then reaps what is left.
class local_registry {
 public:
  void add(int pid);
  void remove(int pid);
  std::vector<int> pids() const;
  /// Waits until no worker is left or `until` passes.
  void wait_empty(std::chrono::steady_clock::time_point until);
  /// The destructor's fallback: SIGTERM, up to `grace` to exit, then SIGKILL; reaps every
  /// worker still listed. A pid is only signalled while waitpid says it is our unreaped
  /// child, so it cannot have been recycled. From then on no channel signals anything.
  void reap_now(std::chrono::milliseconds grace);
  bool reaped_by_destructor() const noexcept { return reaped_by_destructor_.load(); }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<int> live_;
  std::atomic<bool> reaped_by_destructor_{false};
};

/// Our ends of a started worker's descriptors.
struct local_fds {
  unique_fd to;    ///< its fd 3 (a launcher's stdin)
  unique_fd from;  ///< its fd 4 (a launcher's stdout)
  unique_fd out;   ///< its stdout (none for a launcher)
  unique_fd err;   ///< its stderr
  pipe_room room;  ///< what enlarging `to` and `from` took of the process's budget
};

/// What the local process is, besides a worker.
struct process_role {
  bool sandboxed = false;  ///< bubblewrap; the worker is its grandchild
  /// Not empty: a launcher, named so ("ssh -T host"); the worker is elsewhere.
  std::string launcher;
  /// Where its worker runs, for messages ("node1"); with a launcher.
  std::string where;
};

class local_channel final : public worker_channel,
                            public std::enable_shared_from_this<local_channel> {
 public:
  local_channel(const boost::asio::any_io_executor& strand, boost::process::v2::process proc,
                local_fds fds, shm_segment seg, std::shared_ptr<local_registry> registry,
                process_role role = {});

  std::string start(std::weak_ptr<channel_listener> listener) override;
  int pid() const noexcept override { return pid_; }
  std::string where() const override { return role_.where; }
  long write_some(std::span<const std::byte> bytes, int& error) override;
  void wait_writable() override;
  bool input_open() const noexcept override { return to_.is_open(); }
  void stop_reading() override;
  bool reading() const noexcept override { return !frames_done_; }
  void stop(policy::stop_step step) override;
  bool peer_gone() const noexcept override { return exited_; }
  shm_segment* payload_area() noexcept override { return seg_ ? &seg_ : nullptr; }
  std::optional<std::size_t> resident_bytes() const override;
  std::optional<std::size_t> unread_by_peer() const override;
  std::optional<std::size_t> unread_by_us() const override;

 private:
  void read_frames();
  void read_output(output_line::stream which);
  void on_line(output_line::stream which, std::string_view text);
  void wait_exit();
  void signal_group(int sig);
  void kill_launcher();
  void maybe_end();
  /// What a pending handler holds: this channel, its listener and the listener's owner.
  struct hold;
  hold holding();

  std::weak_ptr<channel_listener> listener_;
  std::shared_ptr<local_registry> registry_;
  std::optional<boost::process::v2::process> proc_;
  int pid_ = -1;
  shm_segment seg_;
  local_fds fds_;  // until start() hands them to the descriptors below
  boost::asio::posix::stream_descriptor to_, from_, out_, err_;
  line_splitter out_lines_, err_lines_;
  std::array<char, 4096> out_buf_{}, err_buf_{};
  std::deque<std::string> err_tail_;
  boost::asio::steady_timer linger_;
  boost::asio::steady_timer kill_timer_;  // a launcher's SIGKILL after its SIGTERM
  int status_ = 0;
  bool exited_ = false, frames_done_ = false, out_done_ = false, err_done_ = false;
  bool ended_ = false;
  bool killed_by_crew_ = false;  // crew sent it SIGKILL
  bool kill_armed_ = false;      // a launcher: SIGTERM sent, SIGKILL to follow
  process_role role_;
};

}  // namespace crew::detail
