// Private: which task goes where, and how each one ends. It owns the queue of tasks waiting
// for a worker and:
//  - sends the front task to the least-loaded worker that accepts one (within
//    pipeline_depth), after checking the worker serves the job with the same signature;
//    the frames of one pass go out together, one write per worker, and while the replies of
//    one read are being handled writes wait for its end;
//  - expands a batch into single tasks for a worker that does not take batches, gathering
//    their outcomes into the batch_result the caller expects;
//  - puts tasks back (first in line) after a worker's death, fails the queue (close,
//    breaker, shutdown, destruction), drops a cancelled queued task;
//  - completes tasks — `succeed`, `fail`, `fail_now` (refused before queueing) — with their
//    events, releasing their place in the bounded queue.
// On the pool's strand, except fail_now (also the submitting thread).
#pragma once

#include "admission.hpp"
#include "event_emitter.hpp"
#include "task.hpp"
#include "worker_session.hpp"

#include <memory>
#include <span>
#include <string>
#include <vector>

namespace crew::detail {

class dispatcher {
 public:
  dispatcher(const process_pool_options& opts, std::size_t depth, const event_emitter& events,
             admission& gate)
      : opts_(opts), depth_(depth), events_(events), gate_(gate) {}

  std::uint64_t next_task_id() noexcept { return ++next_id_; }

  /// A new task joins the back of the queue (task_queued).
  void enqueue(pending_task&& p);
  /// A task goes back to the front of the queue, as it was.
  void requeue_front(pending_task&& p) { queue_.push_front(std::move(p)); }
  bool idle() const noexcept { return queue_.empty(); }
  /// Fails every queued task with `code` and `why`, in order.
  void fail_queued(errc code, const std::string& why);
  /// Fails queued task `id` with `cancelled`; false if it is not queued.
  bool cancel_queued(std::uint64_t id);

  /// Sends queued tasks to the workers in `slots` that take them, then writes their frames
  /// (unless replies are being handled).
  void dispatch(const std::vector<std::shared_ptr<worker_session>>& slots);
  /// Around the replies of one read (see the header comment).
  void replies_begin() noexcept { reading_batch_ = true; }
  void replies_end(const std::vector<std::shared_ptr<worker_session>>& slots);

  void succeed(pending_task& p, std::span<const std::byte> bytes);
  void fail(pending_task& p, errc code, std::string message);
  /// Fails a task refused before it was queued (no place, closed pool, too large).
  void fail_now(raw_task t, errc code, std::string message);

 private:
  void expand_batch(pending_task p);
  bool send(worker_session& w, pending_task& p);

  const process_pool_options& opts_;
  const std::size_t depth_;
  const event_emitter& events_;
  admission& gate_;
  task_list queue_;
  std::atomic<std::uint64_t> next_id_{0};
  bool reading_batch_ = false;  // handling the replies of one read: writes wait for its end
};

}  // namespace crew::detail
