// Private: runs one task or one batch frame in a worker, and leaves its whole reply frame
// (result, batch_result or error) appended to a buffer the serve loop writes out. Decodes
// the job index and the arguments (inline, or through the shared-memory request area),
// calls the job, and encodes the result straight into the reply frame or, when large and a
// segment is there, into the response area. Every failure becomes an error frame with its
// errc (see serve's contract in crew/worker_runtime.hpp); nothing here reads or writes the
// channel, except that a batch polls cancel_requested().
#pragma once

#include "environment.hpp"

#include <crew/codec.hpp>
#include <crew/error.hpp>
#include <crew/protocol.hpp>
#include <crew/registry.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace crew::detail {

class task_runner {
 public:
  /// `index` lists the jobs in hello order (a task names its job by its index in the
  /// hello); it and `segment` must outlive the runner. Results over `max_payload` fail
  /// their task; with a segment, results over `inline_max` that fit the response area go
  /// through it.
  task_runner(const std::vector<const registry::entry*>& index, const worker_segment& segment,
              std::size_t inline_max, std::size_t max_payload)
      : index_(index), seg_(segment), inline_max_(inline_max), max_payload_(max_payload) {}

  /// Runs the task frame `f` on the calling thread and appends its reply frame to `reply`
  /// (which may hold earlier replies not yet written).
  void run(const protocol::frame_view& f, std::vector<std::byte>& reply);

  /// A batch: each item runs as its own task would, its outcome (result or error) appended
  /// to one batch_result frame. A cancel (polled every 256 items) answers the whole batch
  /// with `cancelled`; results too large for one frame answer it with `payload_too_large`.
  void run_batch(const protocol::frame_view& f, std::vector<std::byte>& reply);

  /// Appends the reply to task `id` cancelled before it started: it is not run at all.
  void refuse(std::uint64_t id, std::vector<std::byte>& reply);

 private:
  bool begin(const protocol::frame_view& f, std::vector<std::byte>& reply,
             std::uint32_t& job_index);
  void item_failed(std::size_t item_at, const std::exception_ptr& error);
  void item_error(std::size_t item_at, errc code, const std::string& message);
  encoder sink(std::size_t size);
  void finish_result();
  void fail(errc code, std::string message);

  const std::vector<const registry::entry*>& index_;
  const worker_segment& seg_;
  std::size_t inline_max_;
  std::size_t max_payload_;
  // The task being run:
  std::vector<std::byte>* reply_ = nullptr;
  std::size_t base_ = 0;  // where its reply frame starts in *reply_
  std::uint64_t id_ = 0;
  std::optional<std::uint64_t> generation_;       // set when its result may go through the segment
  bool in_shm_ = false;                           // its result went through the segment
  std::size_t size_ = 0;                          // the size of its encoded result
  const registry::entry* batch_entry_ = nullptr;  // the job of the batch being run
};

}  // namespace crew::detail
