// Private: where a pool's completions wait to run their handlers on the pool's executor.
//
// A task whose handler has no executor of its own completes on the pool's strand by keeping
// its outcome in its body (task_body::complete returns true); the body then comes here. The
// first body to arrive in an empty queue posts one function to the pool's executor, which
// runs the handlers of every body queued by then, in order, outside the strand. So a burst
// of replies costs one post, not one allocation per task (Asio allocates a posted function
// when its thread's two cached blocks are in use, which a burst always finds). A handler that
// throws lets the exception out of the executor's run() as a posted handler's would; the
// bodies after it are posted again first, so none is lost.
// Thread safety: push from any thread.
#pragma once

#include <crew/detail/raw_task.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <mutex>
#include <vector>

namespace crew::detail {

class completion_queue : public std::enable_shared_from_this<completion_queue> {
 public:
  explicit completion_queue(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  /// Queues `body` to finish on the executor; posts a run if none is pending.
  void push(std::unique_ptr<task_body> body);

 private:
  void run();
  void again();

  boost::asio::any_io_executor ex_;
  std::mutex mutex_;  // for the two below
  std::vector<std::unique_ptr<task_body>> ready_;
  bool posted_ = false;
  std::vector<std::unique_ptr<task_body>> running_;  // the one run()'s, on the executor
};

}  // namespace crew::detail
