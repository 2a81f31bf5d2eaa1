// Private: the thread that keeps a worker on stdio listening (docs/protocol.md §10). A
// remote worker must read its input at all times, even while a job runs on the main
// thread: to answer the coordinator's pings, and to see the end of its input, the only news
// it gets that the coordinator (or ssh, or srun) has gone. The relay reads the real input,
// follows the frame headers as the bytes stream by, answers each ping (no payload) with a
// pong on the frames-out descriptor at once, and forwards every other byte, in order, to a
// pipe that the serve loop and cancel_watch read instead: they work as they do on fd 3.
// At end of input (or a read error), or after `silence` with no byte from the coordinator
// (a coordinator that pings keeps the link busy; one that went away without closing it —
// srun SIGKILLed inside an allocation leaves its step's stdin open — does not), it kills
// the rest of the process group and _exit(0)s,
// whatever the main thread is doing (the same with exit code 4, io_error, if writing a pong
// or to the pipe fails). It never blocks on that pipe (what does not fit waits in its own
// buffer) and never on the frames-out lock (a pong waits its turn), so it always reads on.
// Its thread blocks every signal: they stay with the thread running the jobs. One relay per
// process; it runs until the process ends.
#pragma once

#include <crew/protocol.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace crew::detail {

/// Writes all `n` bytes to `fd` (a blocking descriptor), retrying after EINTR and short
/// writes; false on any other error. One call per gathered run of frames: the frames-out
/// writes of the serve loop and of the relay's pongs.
bool write_all(int fd, const std::byte* p, std::size_t n) noexcept;

class stdio_relay {
 public:
  /// Starts relaying frames from `frames_in` (the real input) and answering pings on
  /// `frames_out`, for frames whose payload is at most `max_payload` (a header that does
  /// not parse is the serve loop's business: from there on every byte is forwarded raw).
  /// The relay takes both descriptors for good. Returns nullptr, after a message on stderr,
  /// if the pipe or the thread cannot be made. The relay is never destroyed: its thread,
  /// detached, may outlive serve and runs until the process exits.
  static stdio_relay* start(int frames_in, int frames_out, std::size_t max_payload,
                            std::chrono::milliseconds silence) noexcept;

  /// What the serve loop reads frames from (the pipe's read end; blocking).
  int serve_in_fd() const noexcept { return serve_in_; }
  /// Where the serve loop writes frames (`frames_out`).
  int frames_out_fd() const noexcept { return out_; }
  /// Held by whoever writes to frames_out_fd, for the whole of one write: no pong lands
  /// inside a frame.
  std::mutex& out_mutex() noexcept { return out_mutex_; }

  /// Replies held back (docs/protocol.md §10, "Gathered replies"): the serve loop, with more
  /// tasks waiting in its buffer, appends a reply here (under out_mutex) instead of writing
  /// it, so that a run of quick tasks answers in one write; its next write sends what is
  /// held first (write_held). Should a long task start meanwhile, the relay thread sends
  /// what is held once it has waited `gather_limit`: no reply waits longer than that for
  /// the next. Call with out_mutex held.
  void hold(const std::byte* p, std::size_t n);
  /// Writes what is held followed by `n` bytes at `p` (nothing held: just those), in one
  /// write; false if frames out is broken. Call with out_mutex held.
  bool write_held(const std::byte* p, std::size_t n);
  /// How long a held reply may wait.
  static constexpr std::chrono::milliseconds gather_limit{1};

  /// serve is returning: from now on end of input no longer ends the process (serve's exit
  /// code stands); the relay stops at its next wake-up. If the relay has already begun to
  /// end the process, this never returns.
  void finish() noexcept;

  stdio_relay(const stdio_relay&) = delete;
  stdio_relay& operator=(const stdio_relay&) = delete;

 private:
  stdio_relay(int frames_in, int frames_out, int pipe_read, int pipe_write, std::size_t max_payload,
              std::chrono::milliseconds silence);

  void run() noexcept;
  int relay();
  void take(const std::byte* p, std::size_t n);
  void forward(const std::byte* p, std::size_t n);
  bool drain();
  bool send_pongs();

  // Who ends the process: nobody yet, the relay (end of input), or serve (it returned).
  enum class state : int { serving, relay_ends, serve_ends };

  const int in_;        // the real input
  const int out_;       // the real output, shared with serve under out_mutex_
  const int serve_in_;  // the pipe's read end, serve's input
  const int pipe_out_;  // the pipe's write end, non-blocking
  const std::size_t max_payload_;
  const std::chrono::milliseconds silence_;  // 0: none
  std::mutex out_mutex_;
  std::atomic<state> state_{state::serving};

  // Following the frames: a header being gathered, or the payload bytes still to come, or
  // (after a header that did not parse) raw bytes for good.
  std::byte header_[protocol::header_size] = {};
  std::size_t header_have_ = 0;
  std::size_t payload_left_ = 0;
  bool raw_ = false;

  std::vector<std::byte> pending_;    // forwarded bytes the pipe has not taken yet
  std::size_t pending_at_ = 0;        // where they start in pending_
  std::vector<std::uint64_t> pongs_;  // pings answered but not yet written
  std::vector<std::byte> pong_frames_;

  // Replies held back (under out_mutex_), since when, and the eventfd that tells the relay
  // thread a hold began.
  std::vector<std::byte> held_;
  std::chrono::steady_clock::time_point held_since_;
  int wake_ = -1;
  bool send_held_if_due();
};

}  // namespace crew::detail
