// Private: the gate of a pool's bounded queue (process_pool_options::max_queue). A
// submission takes a place before it is queued and gives it back when its task leaves the
// queue (sent to a worker, or resolved while queued). When the queue is full it fails at
// once (queue_policy::fail) or waits for a place (queue_policy::wait) — except on a thread
// that runs the pool's executor or its strand, where waiting could deadlock: there it
// fails. Closing the pool wakes every waiter (its task then fails on the strand). Any thread.
#pragma once

#include "task.hpp"

#include <crew/process_pool.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>

namespace crew::detail {

class admission {
 public:
  admission(std::size_t max_queue, queue_policy when_full, boost::asio::any_io_executor ex,
            const boost::asio::any_io_executor& strand)
      : max_(max_queue), when_full_(when_full), ex_(std::move(ex)), strand_(strand) {}

  /// Whether submissions take places at all (max_queue > 0).
  bool bounded() const noexcept { return max_ > 0; }
  /// Takes a place for a new task; false with `why` set if it cannot.
  bool admit(std::string& why);
  /// Gives back the place `p` holds, if it holds one.
  void release(pending_task& p);
  /// The pool takes no more work: waiters wake up. Idempotent.
  void close();
  bool closed() const noexcept { return closed_.load(); }

 private:
  bool on_executor_thread() const;

  const std::size_t max_;
  const queue_policy when_full_;
  const boost::asio::any_io_executor ex_;
  const boost::asio::any_io_executor& strand_;  // make_pool_strand's
  std::mutex mutex_;
  std::condition_variable cv_;
  std::size_t queued_ = 0;  // admitted tasks not yet sent to a worker
  std::atomic<bool> closed_{false};
};

}  // namespace crew::detail
