// Private: a task as the pool's core tracks it, from the queue to its worker and back. The
// caller's part (job, arguments, completion) is the raw_task; the rest is the pool's
// bookkeeping. Owned by exactly one place at a time: the dispatcher's queue, or one worker
// session's in-flight list. Lives on the pool's strand.
#pragma once

#include <crew/events.hpp>
#include <crew/process_pool.hpp>

#include <boost/container/devector.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>

namespace crew::detail {

struct pending_task {
  std::uint64_t id = 0;
  raw_task task;
  std::chrono::milliseconds timeout{0};   // 0: none
  unsigned retries = 0;                   // allowed after a worker death
  unsigned attempts = 0;                  // runs so far that ended in a worker death
  unsigned unread_deaths = 0;             // workers that died with it next, before reading it
  bool admitted = false;                  // holds a place of max_queue
  bool discarded = false;                 // cancelled while sent: its reply is dropped
  std::size_t worker = event::no_worker;  // the slot it was sent to, and that worker's pid
  int pid = 0;
  std::uint64_t stream_start = 0;  // where its frame lies in all bytes sent to the worker
  std::uint64_t stream_end = 0;
  // Explicit cancellation (task_options::stop); destroyed with the task, on the strand.
  std::unique_ptr<std::stop_callback<std::function<void()>>> on_stop;
};

/// Tasks in order, taken from and put back at both ends. A devector: its storage is reused
/// as tasks come and go, where std::deque (a node per task of this size) allocated twice
/// per task.
using task_list = boost::container::devector<pending_task>;

}  // namespace crew::detail
