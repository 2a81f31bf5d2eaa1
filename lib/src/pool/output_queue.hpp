// Private: the path of workers' output lines from the pool's strand to their sink (the
// user's on_output, or this process's stdout/stderr), through a bounded queue and a thread
// of the pool's own, so that a slow reader — a paused terminal, `| (sleep 60; cat)`, a
// stalled log collector — never blocks the strand: no deadline is missed and no reply is
// left unread because of output.
//
// Contract:
//  - push() never blocks (a short lock): it copies the line into the queue, or, when the
//    queue holds `max_bytes` already, drops it and counts it. The thread starts with the
//    first line.
//  - The sink runs on that thread, one line at a time, in the order pushed. An exception it
//    throws is swallowed (the line is lost).
//  - After lines were dropped, the next line delivered is preceded by a notice (for the
//    default sink only: a line on stderr; a user's sink sees the count in dropped()).
//  - stop(bound) refuses further lines and lets the thread deliver what is queued: it waits
//    for that without limit when `bound` is empty (a user's sink: it is never called after
//    stop returns; the sink is destroyed on the calling thread), else for at most `bound`,
//    after which it leaves the thread to finish on its own (the default sink, which holds
//    nothing of the pool's). Called from the output thread itself (a sink that destroyed
//    the pool), it does not wait. A sink must not wait for the pool's executor: the pool's
//    destructor waits for the sink.
#pragma once

#include <crew/process_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

namespace crew::detail {

class output_queue {
 public:
  using sink = std::function<void(const output_line&)>;

  /// `s` empty: the default sink (`[worker N pid P] text`, control characters escaped, to
  /// this process's stdout or stderr, a failing write dropping the line).
  explicit output_queue(sink s, std::size_t max_bytes = std::size_t{1} << 20);
  ~output_queue();
  output_queue(const output_queue&) = delete;
  output_queue& operator=(const output_queue&) = delete;

  /// Any thread; never blocks on the sink.
  void push(std::size_t worker, int pid, output_line::stream which, std::string_view text);
  /// Lines dropped so far because the queue was full.
  std::uint64_t dropped() const noexcept;
  /// See the contract. Idempotent.
  void stop(std::optional<std::chrono::milliseconds> bound);

 private:
  struct state;
  std::shared_ptr<state> s_;
};

}  // namespace crew::detail
