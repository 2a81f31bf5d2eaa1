// Private: the seam between a worker session (the protocol conversation) and however the
// worker is reached. A local child process with pipes is one channel (local_channel.hpp);
// an in-memory peer is another (the session's unit test); a launcher command or a socket
// can be more. The session never signals or reaps anything itself: it asks its channel.
//
// Contract:
//  - `start(listener)` begins delivering: frame bytes, read into `listener.read_buffer()`
//    and announced by `on_read(n)` (reading continues while it returns true); the peer's
//    output lines (`on_output`); `on_input_end` once when the frame stream ends or fails;
//    `on_writable` after `wait_writable`; and last, exactly once, `on_ended` when the peer
//    is gone and every stream has been drained (or has had its moment). Callbacks run on
//    the executor the channel was made with (the pool's strand), never from inside the
//    call that asked for them, except `on_ended`, which may run inside `stop_reading` when
//    that completes the end. `stop` never calls back: a caller may stop workers while it
//    walks a list of them.
//  - The listener is held weakly between operations; while an operation of the channel is
//    pending, its handler holds the listener and what `keep_alive()` returns (the pool's
//    core), so that a read never lands in freed memory and a worker's end always reaches
//    the pool, even after the pool object itself is gone.
//  - `write_some` never blocks; `stop` steps are no-ops once the peer is gone.
//  - Capabilities a channel may lack answer empty: payload area (shared memory), resident
//    memory, bytes the peer has not read yet, bytes waiting for us to read.
#pragma once

#include "policy.hpp"

#include <crew/process_pool.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace crew::detail {

class shm_segment;

/// How a channel ended.
struct channel_end {
  int status = -1;          ///< the wait status where there was a process; -1: unknown
  std::string how;          ///< "exited with code 0", "was killed by signal 9 (SIGKILL)", ...
  std::string stderr_tail;  ///< the peer's last diagnostic lines, " | "-joined, or empty
};

/// What a channel reports to (a worker session).
class channel_listener {
 public:
  /// Where the next frame bytes are to be read.
  virtual std::span<std::byte> read_buffer() = 0;
  /// `n` bytes were read into read_buffer(); false: stop reading (the session gave up).
  virtual bool on_read(std::size_t n) = 0;
  /// The frame stream ended (end of file or an error) while reading.
  virtual void on_input_end() = 0;
  /// The peer can take more bytes (after wait_writable); false: it never will.
  virtual void on_writable(bool ok) = 0;
  /// One line of the peer's output (valid during the call).
  virtual void on_output(output_line::stream which, std::string_view text) = 0;
  /// The peer is gone and its streams are drained. The channel closes itself after this.
  virtual void on_ended(channel_end end) = 0;
  /// What must outlive every pending operation of the channel besides the listener.
  virtual std::shared_ptr<void> keep_alive() = 0;

 protected:
  ~channel_listener() = default;
};

/// One way of reaching one worker.
class worker_channel {
 public:
  virtual ~worker_channel() = default;

  /// Begins delivering to `listener` (see the contract above). Called once. Returns why the
  /// channel cannot watch its streams, or empty; the peer is then killed and ends as usual.
  virtual std::string start(std::weak_ptr<channel_listener> listener) = 0;

  /// The process id of the local process behind the channel (the worker, or its launcher),
  /// else 0 (for messages and events).
  virtual int pid() const noexcept = 0;
  /// Where the worker runs when not here ("node1"), for messages; empty: a local worker.
  virtual std::string where() const { return {}; }
  /// The address of a worker that connected ("127.0.0.1:45678"), for messages; else empty.
  virtual std::string peer_address() const { return {}; }

  /// Writes what it can without blocking: bytes written, or -1 with `error` set (EAGAIN:
  /// call wait_writable; anything else: the peer cannot be written to any more).
  virtual long write_some(std::span<const std::byte> bytes, int& error) = 0;
  /// Calls on_writable once the peer can take more.
  virtual void wait_writable() = 0;
  /// Whether bytes can still be written (input not closed).
  virtual bool input_open() const noexcept = 0;

  /// The session wants no more frames (it gave up on the peer); reading stops.
  virtual void stop_reading() = 0;
  /// Whether frames are still being read.
  virtual bool reading() const noexcept = 0;

  /// Asks the peer to stop, by one step of a stop ladder (policy.hpp). No-op once gone.
  virtual void stop(policy::stop_step step) = 0;
  /// Whether the peer is known to be gone (a process: exited), streams drained or not.
  virtual bool peer_gone() const noexcept = 0;

  // --- optional capabilities --------------------------------------------------------------
  /// The shared-memory areas of this worker, if it has them.
  virtual shm_segment* payload_area() noexcept { return nullptr; }
  /// The peer's resident memory in bytes, if known.
  virtual std::optional<std::size_t> resident_bytes() const { return {}; }
  /// Bytes written to the peer that it has not read yet, if known.
  virtual std::optional<std::size_t> unread_by_peer() const { return {}; }
  /// Bytes the peer sent that we have not read yet, if known.
  virtual std::optional<std::size_t> unread_by_us() const { return {}; }
};

}  // namespace crew::detail
