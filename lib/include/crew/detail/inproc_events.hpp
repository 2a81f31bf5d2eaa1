// crew/detail/inproc_events.hpp — internal: the event stream of an in-process pool
// (thread_pool, inline_runner). Not part of the API: it changes without notice.
//
// Contract: events reach the handler one at a time (under a mutex), on the thread where
// they happen, with this process's id and, for an event on a running thread, that thread's
// index (in the order of the threads' first event). An exception the handler throws is
// swallowed. Without a handler nothing is built. Thread safety: any thread.
#pragma once

#include <crew/error.hpp>
#include <crew/events.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace crew::detail {

/// This process's id (lib/src/error.cpp).
int this_process_id() noexcept;

/// The events of an in-process pool (see the contract above).
class inproc_events {
 public:
  explicit inproc_events(event_handler h) : handler_(std::move(h)) {}
  explicit operator bool() const noexcept { return static_cast<bool>(handler_); }
  std::uint64_t next_id() noexcept { return ++last_id_; }
  /// `on_thread`: the event happens on the thread that runs the task (not for task_queued).
  void emit(event_kind kind, std::uint64_t task, std::string_view job, std::string_view label,
            bool on_thread, errc error = {}, std::string_view message = {}) {
    if (!handler_) return;
    std::lock_guard lock(mutex_);
    event e;
    e.kind = kind;
    e.time = std::chrono::system_clock::now();
    e.steady = std::chrono::steady_clock::now();
    e.task = task;
    e.job = job;
    e.label = label;
    e.pid = this_process_id();
    e.error = error;
    e.message = message;
    if (on_thread) e.worker = thread_index();
    try {
      handler_(e);
    } catch (...) {
    }
  }

 private:
  std::size_t thread_index() {
    const auto me = std::this_thread::get_id();
    for (std::size_t i = 0; i < threads_.size(); ++i)
      if (threads_[i] == me) return i;
    threads_.push_back(me);
    return threads_.size() - 1;
  }

  event_handler handler_;
  std::atomic<std::uint64_t> last_id_{0};
  std::mutex mutex_;
  std::vector<std::thread::id> threads_;
};

}  // namespace crew::detail
