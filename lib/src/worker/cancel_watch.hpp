// Private: the machinery behind crew::cancel_requested() and crew::current_task_id(). While
// a job runs, nobody else reads the channel; cancel_requested() looks at it itself: at the
// frames already read but not yet handled, and at the bytes it reads while the job runs,
// which it keeps and hands back to the serve loop afterwards, in stream order, so that no
// frame is lost or reordered. One watch per process (serve runs once per process); the job
// polls it from the thread running serve.
#pragma once

#include <crew/protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace crew::detail {

/// Marks the task the calling thread runs, for current_task_id() and cancel_requested(),
/// for its lifetime.
class running_task_guard {
 public:
  explicit running_task_guard(std::uint64_t id) noexcept;
  ~running_task_guard();
  running_task_guard(const running_task_guard&) = delete;
  running_task_guard& operator=(const running_task_guard&) = delete;
};

/// Whether `bytes`, starting at a frame boundary, hold a cancel frame for `task` (checked
/// before a task starts, for a coordinator that sends tasks ahead).
bool cancel_buffered(std::span<const std::byte> bytes, std::uint64_t task, std::size_t max_payload);

/// Whether cancel_requested() has said true for the task being watched: a job's exception
/// then reads as `cancelled` rather than `job_failed`.
bool cancel_seen() noexcept;

/// The channel as cancel_requested() sees it. Constructing one makes it the process's
/// watch; destroying it ends that.
class cancel_watch {
 public:
  /// Watches `in_fd`, behind the frames buffered in `reader` (which must outlive it).
  cancel_watch(int in_fd, std::size_t max_payload, protocol::frame_reader& reader) noexcept;
  ~cancel_watch();
  cancel_watch(const cancel_watch&) = delete;
  cancel_watch& operator=(const cancel_watch&) = delete;

  /// A task starts: cancel_requested() answers for `task`, not cancelled so far.
  void start(std::uint64_t task) noexcept;
  /// The task has ended: cancel_requested() says false again.
  void stop() noexcept;
  /// Puts the bytes read from the channel during the task into the reader, after those
  /// it already holds.
  void return_read_ahead();

  /// The work of cancel_requested() for `task` (the task the calling thread runs): true
  /// once a cancel of it, a shutdown, a malformed frame or the end of input is seen.
  bool poll(std::uint64_t task) noexcept;
  /// Whether poll has said true for the task started last.
  bool cancelled() const noexcept { return cancelled_; }

 private:
  bool says_stop();

  int in_fd_;
  std::size_t max_payload_;
  protocol::frame_reader& reader_;
  std::uint64_t task_ = 0;
  std::vector<std::byte> ahead_;  // read from in_fd_ during the task, not yet in reader_
  std::size_t scan_ = 0;  // where the next frame not yet looked at starts, in buffered ++ ahead_
  bool cancelled_ = false;
};

}  // namespace crew::detail
