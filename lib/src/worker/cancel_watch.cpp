// cancel_requested() and current_task_id(), and the watch behind them. Contract in
// cancel_watch.hpp.
#include "cancel_watch.hpp"

#include <crew/worker_runtime.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include <poll.h>
#include <unistd.h>

namespace crew {
namespace {

thread_local std::uint64_t running_task = 0;
detail::cancel_watch* watch = nullptr;  // set while serve() runs; one serve() per process

}  // namespace

namespace detail {

running_task_guard::running_task_guard(std::uint64_t id) noexcept {
  running_task = id;
}

running_task_guard::~running_task_guard() {
  running_task = 0;
}

bool cancel_buffered(std::span<const std::byte> bytes, std::uint64_t task,
                     std::size_t max_payload) {
  while (bytes.size() >= protocol::header_size) {
    protocol::frame_header h;
    if (protocol::parse_header(bytes.data(), max_payload, h)) return false;
    if (h.type == protocol::frame_type::cancel && h.task_id == task) return true;
    if (bytes.size() - protocol::header_size < h.length) return false;
    bytes = bytes.subspan(protocol::header_size + h.length);
  }
  return false;
}

bool cancel_seen() noexcept {
  return watch && watch->cancelled();
}

cancel_watch::cancel_watch(int in_fd, std::size_t max_payload,
                           protocol::frame_reader& reader) noexcept
    : in_fd_(in_fd), max_payload_(max_payload), reader_(reader) {
  watch = this;
}

cancel_watch::~cancel_watch() {
  watch = nullptr;
}

void cancel_watch::start(std::uint64_t task) noexcept {
  task_ = task;
  cancelled_ = false;
  scan_ = 0;
}

void cancel_watch::stop() noexcept {
  task_ = 0;
}

void cancel_watch::return_read_ahead() {
  if (ahead_.empty()) return;
  auto space = reader_.prepare(ahead_.size());
  std::memcpy(space.data(), ahead_.data(), ahead_.size());
  reader_.commit(ahead_.size());
  ahead_.clear();
}

bool cancel_watch::poll(std::uint64_t task) noexcept {
  if (task == 0 || task_ != task) return false;
  if (cancelled_) return true;
  try {
    for (;;) {
      pollfd p{in_fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      std::byte buf[4096];
      const ssize_t n = ::read(in_fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // end of input (or a broken channel): the coordinator is done with us
        cancelled_ = true;
        break;
      }
      ahead_.insert(ahead_.end(), buf, buf + n);
    }
    if (!cancelled_) cancelled_ = says_stop();
  } catch (const std::bad_alloc&) {
    return false;
  }
  return cancelled_;
}

// Looks at the frames waiting behind the running task (the reader's buffered bytes, then
// those read since) for a cancel of it, a shutdown, or a broken stream. Each frame header is
// looked at once: a task polling often does not rescan megabytes of pipelined work.
bool cancel_watch::says_stop() {
  const auto first = reader_.buffered();
  const std::size_t total = first.size() + ahead_.size();
  while (total - std::min(scan_, total) >= protocol::header_size) {
    std::byte raw[protocol::header_size];
    for (std::size_t k = 0; k < protocol::header_size; ++k) {
      const std::size_t at = scan_ + k;
      raw[k] = at < first.size() ? first[at] : ahead_[at - first.size()];
    }
    protocol::frame_header h;
    if (protocol::parse_header(raw, max_payload_, h)) return true;  // broken: stop
    if (h.type == protocol::frame_type::shutdown) return true;
    if (h.type == protocol::frame_type::cancel && h.task_id == task_) return true;
    scan_ += protocol::header_size + h.length;
  }
  return false;
}

}  // namespace detail

std::uint64_t current_task_id() noexcept {
  return running_task;
}

bool cancel_requested() noexcept {
  return watch && watch->poll(running_task);
}

}  // namespace crew
