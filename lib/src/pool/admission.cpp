#include "admission.hpp"

#include "pool_strand.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/query.hpp>

namespace crew::detail {

namespace asio = boost::asio;

bool admission::admit(std::string& why) {
  std::unique_lock lock(mutex_);
  if (queued_ < max_) {
    ++queued_;
    return true;
  }
  const std::string full =
      "the pool's queue holds its limit of " + std::to_string(max_) + " tasks (max_queue)";
  if (when_full_ == queue_policy::fail) {
    why = full;
    return false;
  }
  if (running_in(strand_) || on_executor_thread()) {
    why = full + "; waiting on a thread that runs the pool's executor would deadlock";
    return false;
  }
  cv_.wait(lock, [&] { return queued_ < max_ || closed_.load(); });
  ++queued_;  // a closed pool fails it on the strand, which releases the place
  return true;
}

// Whether this thread runs the execution context under the pool's executor (an io_context
// or a thread_pool, however wrapped: strand, properties).
bool admission::on_executor_thread() const {
  // Both contexts run on Asio's scheduler service (Boost 1.81), whose can_dispatch() says
  // whether this thread is inside one of its run() calls.
  auto& ctx = asio::query(ex_, asio::execution::context);
  if (!asio::has_service<asio::detail::scheduler>(ctx)) return false;
  return asio::use_service<asio::detail::scheduler>(ctx).can_dispatch();
}

void admission::release(pending_task& p) {
  if (!p.admitted) return;
  p.admitted = false;
  {
    std::lock_guard lock(mutex_);
    --queued_;
  }
  cv_.notify_one();
}

void admission::close() {
  closed_ = true;
  cv_.notify_all();
}

}  // namespace crew::detail
