// Workers' output lines, from the strand to their sink through a bounded queue. Contract in
// output_queue.hpp.
#include "output_queue.hpp"

#include "../spawn.hpp"

#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include <pthread.h>
#include <unistd.h>

namespace crew {

std::string escape_controls(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    // C1 controls arrive as UTF-8 C2 80..C2 9F; a lone C2 is left as it is.
    const bool c1 = c == 0xc2 && i + 1 < text.size() &&
                    static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9f;
    if ((c < 0x20 && c != '\t') || c == 0x7f || c1) {
      const auto v = c1 ? static_cast<unsigned char>(text[++i]) : c;
      out += "\\x";
      out += hex[v >> 4];
      out += hex[v & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

namespace detail {

namespace {

struct queued_line {
  std::size_t worker;
  int pid;
  output_line::stream which;
  std::string text;
};

// What a queued line of `n` bytes counts against the queue's bound: its text and its entry,
// so that a flood of empty lines is bounded too.
constexpr std::size_t cost(std::size_t n) noexcept {
  return n + sizeof(queued_line);
}

void write_fully(int fd, const std::string& s) {
  for (std::size_t off = 0; off < s.size();) {
    const long n = write_no_sigpipe(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a closed stdout (`app | head`) must not kill the host
    off += static_cast<std::size_t>(n);
  }
}

void default_sink(const output_line& l) {
  std::string out = l.worker == event::no_worker
                        ? "[launcher pid " + std::to_string(l.pid) + "] "
                        : "[worker " + std::to_string(l.worker) + " pid " +
                              std::to_string(l.pid) + "] ";
  out += escape_controls(l.text);
  out += '\n';
  write_fully(l.source == output_line::stream::out ? STDOUT_FILENO : STDERR_FILENO, out);
}

}  // namespace

struct output_queue::state {
  sink deliver;
  bool is_default = false;
  std::size_t max_bytes;
  std::mutex m;
  std::condition_variable cv, done_cv;
  std::deque<queued_line> lines;
  std::size_t bytes = 0;
  std::atomic<std::uint64_t> dropped{0};
  std::uint64_t noticed = 0;  // drops already announced (the thread's)
  bool started = false, stopping = false, finished = false;
  std::thread::id thread;  // the output thread's, once started

  void run() {
    std::unique_lock lock(m);
    thread = std::this_thread::get_id();
    for (;;) {
      cv.wait(lock, [&] { return stopping || !lines.empty(); });
      if (lines.empty()) break;  // stopping, and all delivered
      queued_line l = std::move(lines.front());
      lines.pop_front();
      bytes -= cost(l.text.size());
      const std::uint64_t d = dropped.load();
      lock.unlock();
      if (is_default && d > noticed) {
        write_fully(STDERR_FILENO, "[crew] " + std::to_string(d - noticed) +
                                       " lines of worker output dropped: their reader was "
                                       "too slow\n");
        noticed = d;
      }
      try {
        deliver(output_line{l.worker, l.pid, l.which, l.text});
      } catch (...) {
        // A throwing sink must not end the thread; the line is lost.
      }
      lock.lock();
    }
    finished = true;
    done_cv.notify_all();
  }
};

output_queue::output_queue(sink s, std::size_t max_bytes) : s_(std::make_shared<state>()) {
  s_->is_default = !s;
  s_->deliver = s ? std::move(s) : sink(default_sink);
  s_->max_bytes = max_bytes;
}

output_queue::~output_queue() {
  // The pool stops it first (pool_core::terminate); this is for a core never terminated.
  if (s_->is_default)
    stop(std::chrono::milliseconds(0));
  else
    stop(std::nullopt);
}

void output_queue::push(std::size_t worker, int pid, output_line::stream which,
                        std::string_view text) {
  std::lock_guard lock(s_->m);
  if (s_->stopping) return;
  // A line is kept whole or dropped whole; one line always fits an empty queue.
  if (s_->bytes + cost(text.size()) > s_->max_bytes && !s_->lines.empty()) {
    s_->dropped.fetch_add(1);
    return;
  }
  if (!s_->started) {
    // The thread takes none of the host's signals.
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      std::thread t([s = s_] { s->run(); });
      s_->thread = t.get_id();
      t.detach();
      s_->started = true;
    } catch (...) {  // no thread to be had: the line is dropped
      ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
      s_->dropped.fetch_add(1);
      return;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  s_->lines.push_back({worker, pid, which, std::string(text)});
  s_->bytes += cost(text.size());
  s_->cv.notify_one();
}

std::uint64_t output_queue::dropped() const noexcept {
  return s_->dropped.load();
}

void output_queue::stop(std::optional<std::chrono::milliseconds> bound) {
  std::unique_lock lock(s_->m);
  s_->stopping = true;
  s_->cv.notify_all();
  if (!s_->started) return;
  // The sink itself ending the pool (it dropped the last reference): the thread finishes
  // after this line returns; waiting for it here would wait forever.
  if (std::this_thread::get_id() == s_->thread) return;
  if (bound)
    s_->done_cv.wait_for(lock, *bound, [&] { return s_->finished; });
  else
    s_->done_cv.wait(lock, [&] { return s_->finished; });
  // The user's sink, and what it holds, is destroyed here, on the caller's thread, before
  // the pool's destructor returns; the thread no longer touches it once finished.
  if (s_->finished) {
    sink gone = std::move(s_->deliver);
    lock.unlock();
  }
}

}  // namespace detail
}  // namespace crew
