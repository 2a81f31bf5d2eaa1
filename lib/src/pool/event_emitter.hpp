// Private: builds a process pool's events (crew/events.hpp) and delivers them to the user's
// handler, on the strand; a handler that throws does not break the pool. Cheap when no
// handler is set: callers test `enabled()` before building an event.
#pragma once

#include "task.hpp"

#include <crew/events.hpp>

namespace crew::detail {

class event_emitter {
 public:
  explicit event_emitter(event_handler handler) : handler_(std::move(handler)) {}
  bool enabled() const noexcept { return static_cast<bool>(handler_); }

  /// An event of `kind`, stamped now.
  static event make(event_kind kind) {
    event e;
    e.kind = kind;
    e.time = std::chrono::system_clock::now();
    e.steady = std::chrono::steady_clock::now();
    return e;
  }
  /// A task event from what the pool knows of `t` and the task's caller side.
  static event about(event_kind kind, std::uint64_t id, const raw_task& t) {
    event e = make(kind);
    e.task = id;
    e.job = t.job;
    e.label = t.options.label;
    e.items = t.batch_items ? t.batch_items : 1;
    return e;
  }
  static event about(event_kind kind, const pending_task& p) {
    event e = about(kind, p.id, p.task);
    e.worker = p.worker;
    e.pid = p.pid;
    e.bytes_in = p.task.args_size;
    return e;
  }
  void emit(const event& e) const {
    if (!handler_) return;
    try {
      handler_(e);
    } catch (...) {  // a handler's exception must not break the pool
    }
  }

 private:
  event_handler handler_;
};

}  // namespace crew::detail
