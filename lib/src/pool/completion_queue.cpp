// Running the handlers of completed tasks in batches. Contract in completion_queue.hpp.
#include "completion_queue.hpp"

#include <boost/asio/post.hpp>

#include <exception>
#include <utility>

namespace crew::detail {

void defer_finish(completion_queue* queue, std::unique_ptr<task_body> body) {
  if (queue)
    queue->push(std::move(body));
  else
    body->finish();
}

void completion_queue::push(std::unique_ptr<task_body> body) {
  {
    std::lock_guard lock(mutex_);
    ready_.push_back(std::move(body));
    if (posted_) return;
    posted_ = true;
  }
  boost::asio::post(ex_, [self = shared_from_this()] { self->run(); });
}

// One run at a time: posted_ stays true until a run finds nothing left. After one batch a
// run posts itself again rather than looping, so that other work on the executor gets its
// turn under a steady stream of completions.
void completion_queue::run() {
  {
    std::lock_guard lock(mutex_);
    std::swap(ready_, running_);  // both keep their capacity: no allocation in steady state
  }
  std::size_t i = 0;
  try {
    for (; i < running_.size(); ++i) {
      auto body = std::move(running_[i]);
      body->finish();
    }
  } catch (...) {
    // The handler of body i threw: the ones after it go first in line again.
    {
      std::lock_guard lock(mutex_);
      ready_.insert(ready_.begin(), std::make_move_iterator(running_.begin() + i + 1),
                    std::make_move_iterator(running_.end()));
    }
    running_.clear();
    again();
    throw;
  }
  running_.clear();
  again();
}

void completion_queue::again() {
  {
    std::lock_guard lock(mutex_);
    if (ready_.empty()) {
      posted_ = false;
      return;
    }
  }
  boost::asio::post(ex_, [self = shared_from_this()] { self->run(); });
}

}  // namespace crew::detail
