// crew run: any job of a worker (crew's demo worker by default) over JSON-lines input or a
// range of integers, on worker processes, threads or inline; results streamed as they come.
//
// The run is three threads of control around one lock:
// - the reader (this function's thread) reads the input, encodes each task by the job's
//   signature and submits tasks in chunks, waiting while the run holds as many as it may
//   (so memory does not grow with the input);
// - completions (the backend's threads) turn results into output text and job-log records
//   and queue them, in input order with --keep-order;
// - the writer thread writes the job log, then stdout, with checked writes; only then is a
//   task's room given back to the reader. A failed write stops the run.
// A signal (INT, TERM, HUP) stops the reader and drains the backend; a second one exits.
#include "backends.hpp"
#include "common.hpp"
#include "joblog.hpp"
#include "output.hpp"
#include "recorder.hpp"
#include "run_options.hpp"
#include "timeline.hpp"
#include "value_json.hpp"

#include <crew/error.hpp>
#include <crew/protocol.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace crew::cli {
namespace json = boost::json;
namespace {

// --- the tasks ---------------------------------------------------------------------------

struct item {
  std::uint64_t seq = 0;  // position among the tasks this run reports
  std::int64_t line = 0;  // input line (from 1); 0 for --range
  bool is_range = false;  // --range: `arg` is the integer
  std::int64_t arg = 0;
  std::string args;              // the arguments as given (JSON); empty for --range (`arg`)
  std::size_t at = 0, size = 0;  // its encoded arguments: where in its chunk's buffer
  std::string error;             // set: the task fails at once (an input line that does not fit)
  std::unique_ptr<logged_task> logged;  // --resume: done in the log
};

/// The task's arguments without their brackets ("5", or "1, \"a\"" as given).
void append_args_inner(std::string& out, const item& it) {
  if (it.is_range) {
    char b[24];
    const auto r = std::to_chars(b, b + sizeof b, it.arg);
    out.append(b, r.ptr);
  } else if (it.args.size() >= 2 && it.args.front() == '[') {  // else null: not an array
    out.append(it.args, 1, it.args.size() - 2);
  }
}

/// The task's arguments as JSON.
void append_args_json(std::string& out, const item& it) {
  if (!it.is_range) {
    out += it.args;
    return;
  }
  out += '[';
  append_args_inner(out, it);
  out += ']';
}

/// Tasks that travel together, their encoded arguments in one buffer (no allocation per
/// task).
struct task_chunk {
  std::vector<item> items;
  std::vector<std::byte> buf;

  std::size_t size() const noexcept { return items.size(); }
  bool empty() const noexcept { return items.empty(); }
  item& front() { return items.front(); }
  auto begin() { return items.begin(); }
  auto end() { return items.end(); }
  auto begin() const { return items.begin(); }
  auto end() const { return items.end(); }
  void reserve(std::size_t n) { items.reserve(n); }
  void push_back(item&& i) { items.push_back(std::move(i)); }
  std::span<const std::byte> args_of(const item& i) const { return {buf.data() + i.at, i.size}; }
};

/// Lines of a file descriptor, read in large blocks; `ready()` says whether a line can be
/// had without waiting.
class line_reader {
 public:
  /// `wake`: readable when the run stops; the reader then sees the end of its input at
  /// once rather than waiting for a line that may never come.
  line_reader(int fd, int wake) : fd_(fd), wake_(wake) {}
  /// The next line (without its newline), or false at the end. Throws cannot_run_error on a
  /// read error.
  bool next(std::string& line) {
    for (;;) {
      if (const auto nl = buf_.find('\n', at_); nl != std::string::npos) {
        line.assign(buf_, at_, nl - at_);
        at_ = nl + 1;
        return true;
      }
      if (eof_) {
        if (at_ >= buf_.size()) return false;
        line.assign(buf_, at_, std::string::npos);  // a last line without its newline
        at_ = buf_.size();
        return true;
      }
      fill();
    }
  }
  /// Whether next() would return without blocking.
  bool ready() const {
    if (eof_ || buf_.find('\n', at_) != std::string::npos) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

 private:
  void fill() {
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
    for (;;) {
      const int n = ::poll(p, wake_ >= 0 ? 2 : 1, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw cannot_run_error(std::string("waiting for input: ") + std::strerror(errno));
      if (wake_ >= 0 && (p[1].revents & POLLIN)) {  // the run stops: no more input
        eof_ = true;
        return;
      }
      break;
    }
    buf_.erase(0, at_);
    at_ = 0;
    const std::size_t old = buf_.size();
    buf_.resize(old + (1 << 16));
    ssize_t n;
    do
      n = ::read(fd_, buf_.data() + old, 1 << 16);
    while (n < 0 && errno == EINTR);
    if (n < 0) throw cannot_run_error(std::string("reading the input: ") + std::strerror(errno));
    buf_.resize(old + static_cast<std::size_t>(n));
    if (n == 0) eof_ = true;
  }
  int fd_, wake_;
  std::string buf_;
  std::size_t at_ = 0;
  bool eof_ = false;
};

/// The tasks of a run, in order: a range, JSON lines, or the failed tasks of a job log;
/// less what --resume's log has done (given back as `logged`), or only what --retry-failed's
/// log says failed.
class task_reader {
 public:
  task_reader(const run_options& o, const job_signature& sig, job_log* resume, job_log* retry,
              int wake)
      : o_(o), sig_(sig), resume_(resume), retry_(retry), next_(o.first) {
    if (o.has_range) return;
    if (retry_ && o.input.empty()) {  // the log's failed tasks themselves
      for (auto& [key, t] : retry_->tasks)
        if (!t.ok) failed_.push_back(&t);
      std::sort(failed_.begin(), failed_.end(),
                [](const logged_task* a, const logged_task* b) { return a->order < b->order; });
      return;
    }
    if (o.input.empty() || o.input == "-") {
      fd_ = STDIN_FILENO;
    } else {
      fd_ = ::open(o.input.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0)
        throw cannot_run_error("cannot open --input '" + o.input + "': " + std::strerror(errno));
      own_fd_ = true;
    }
    lines_.emplace(fd_, wake);
  }
  ~task_reader() {
    if (own_fd_) ::close(fd_);
  }
  task_reader(const task_reader&) = delete;
  task_reader& operator=(const task_reader&) = delete;

  /// The total, when known before reading (a range, a log's failed tasks); else 0.
  std::size_t known_total() const {
    if (o_.has_range) return static_cast<std::size_t>(o_.last - o_.first);
    return lines_ ? 0 : failed_.size();
  }
  /// Whether next() would not wait for input.
  bool ready() const { return !lines_ || lines_->ready(); }

  /// The next task, or false at the end; its encoded arguments are appended to `buf`.
  bool next(item& it, std::vector<std::byte>& buf) {
    for (;;) {
      it = item{};
      buf_ = &buf;
      if (!produce(it)) return false;
      if (!retry_ && !resume_) return true;
      // Its key in a log: the arguments serialized again (the same text for the same
      // values however they were spaced), or as made for --range.
      if (it.is_range) {
        canon_.clear();
        append_args_json(canon_, it);
      }
      const auto key = task_key(it.line, canon_);
      if (retry_ && !(o_.input.empty() && !o_.has_range && !lines_)) {
        auto f = retry_->tasks.find(key);
        if (f == retry_->tasks.end() || f->second.ok) continue;  // not a failed task
      }
      if (resume_) {
        if (auto f = resume_->tasks.find(key); f != resume_->tasks.end() && f->second.ok) {
          it.logged = std::make_unique<logged_task>(std::move(f->second));
          resume_->tasks.erase(f);
        }
      }
      return true;
    }
  }

 private:
  bool produce(item& it) {
    if (o_.has_range) {
      if (next_ >= o_.last) return false;
      it.is_range = true;
      it.arg = next_++;
      try {
        it.at = buf_->size();
        append_int_arg(sig_, it.arg, *buf_);
        it.size = buf_->size() - it.at;
      } catch (const value_error& e) {
        it.error = e.what();
      }
      return true;
    }
    if (!lines_) {  // --retry-failed's log
      if (failed_at_ >= failed_.size()) return false;
      const logged_task& t = *failed_[failed_at_++];
      it.line = t.line;
      convert(it, t.args);
      if (t.line == 0 && it.error.empty() && sig_.args.size() == 1) {  // a --range task
        boost::system::error_code ec;
        const auto v = parse_json(t.args, ec);
        if (!ec && v.is_array() && v.as_array().size() == 1 && v.as_array()[0].is_int64()) {
          it.is_range = true;
          it.arg = v.as_array()[0].as_int64();
        }
      }
      return true;
    }
    for (;;) {
      if (!lines_->next(line_)) return false;
      ++line_no_;
      if (line_.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank
      it.line = line_no_;
      return convert(it, line_);
    }
  }

  // Parses and encodes one task's arguments; a failure is the task's own.
  bool convert(item& it, const std::string& text) {
    boost::system::error_code ec;
    const json::value v = parse_json(text, ec);
    auto where = [&] { return it.line ? "line " + std::to_string(it.line) + ": " : std::string(); };
    if (ec) {  // its record says `"args": null`; the message quotes the line
      it.args = canon_ = "null";
      it.error =
          where() + "not JSON (" + ec.message() + "): " + escape_invalid_utf8(text.substr(0, 200));
      return true;
    }
    // The arguments as given (trimmed): valid JSON, and the same text on every run over
    // this input, which is what a job log's key needs.
    const auto first = text.find_first_not_of(" \t\r"), last = text.find_last_not_of(" \t\r");
    it.args = text.substr(first, last - first + 1);
    canon_ = json::serialize(v);
    if (!v.is_array()) {
      it.error =
          where() + "expected a JSON array of the job's arguments, not " + it.args.substr(0, 200);
      it.args = canon_ = "null";
      return true;
    }
    try {
      it.at = buf_->size();
      append_args(sig_, v, *buf_);
      it.size = buf_->size() - it.at;
    } catch (const value_error& e) {
      it.error = where() + e.what();
    }
    return true;
  }

  const run_options& o_;
  const job_signature& sig_;
  job_log* resume_;
  job_log* retry_;
  std::int64_t next_;
  int fd_ = -1;
  bool own_fd_ = false;
  std::optional<line_reader> lines_;
  std::string line_;
  std::int64_t line_no_ = 0;
  std::vector<const logged_task*> failed_;
  std::size_t failed_at_ = 0;
  std::vector<std::byte>* buf_ = nullptr;  // where next() encodes
  std::string canon_;                      // the last task's arguments, serialized again
};

// --- output ----------------------------------------------------------------------------

/// A task's outcome, as the run reports it.
struct outcome {
  bool ok = false;
  std::span<const std::byte> value;  // ok: the encoded result
  std::string error, message;        // failed: errc name, text
  int exit_code = -1, signal = -1;
};

void append_number(std::string& out, double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// What the pool says of a chunk, for the records of its items.
struct chunk_record {
  task_record r;
  bool known = false;
};

std::string lane_name(const std::string& mode, std::size_t worker) {
  if (worker == event::no_worker) return "not started";
  if (mode == "inline") return "main thread";
  return (mode == "threads" ? "thread " : "worker ") + std::to_string(worker);
}

// One run of `crew run`: the state the three threads share.
class run {
 public:
  run(const run_options& o, const job_signature& sig, std::string signature, console& con,
      backend& be, std::size_t total)
      : o_(o), sig_(sig), signature_(std::move(signature)), con_(con), be_(be), total_(total) {
    const std::size_t batch = be.takes_batches() ? 4096 : 1;
    // Processes: one chunk running and one waiting per worker. In this process a task is
    // a handoff between threads: more of them queued keeps the threads busy (a drain
    // cancels those not taken up yet).
    max_chunks_ = o.mode == "processes" ? 2 * o.workers : std::max<std::size_t>(256, 4 * o.workers);
    window_ = std::max<std::size_t>(65536, 4 * o.workers * std::max(batch, o.chunk));
  }

  int log_fd = -1;
  std::string log_name;
  /// Written once the run stops (a signal, a failed write): the reader waiting for input
  /// polls the pipe's other end.
  int wake_write = -1;

  // The pool's record of a chunk (events arrive before the chunk's completion).
  void record_arrived(const task_record& r) {
    std::lock_guard lock(m_);
    records_[r.label] = r;
  }

  void writer_loop() {
    for (;;) {
      std::vector<std::string> out, log;
      std::size_t n = 0;
      {
        std::unique_lock lock(m_);
        const auto work = [&] { return out_q_items_ != 0 || !log_q_.empty(); };
        writer_cv_.wait(lock, [&] { return work() || writer_done_; });
        if (!work() && writer_done_) return;
        out.swap(out_q_);
        log.swap(log_q_);
        n = out_q_items_;
        out_q_items_ = 0;
      }
      if (!output_failed_) {
        try {
          // The log first: a result seen on stdout is in the log.
          for (const auto& piece : log)
            write_all(log_fd, piece, "job log '" + log_name + "'");
          for (const auto& piece : out)
            if (!piece.empty()) con_.out(piece);
        } catch (const output_error& e) {
          fail_output(e.what());
        }
      }
      std::size_t written, total, failed;
      {
        std::lock_guard lock(m_);
        pending_ -= n;
        written_ += n;
        written = written_, total = total_, failed = failed_;
      }
      wake_reader();
      con_.progress(written, total, failed, written == total);
    }
  }

  // The reader's loop: tasks in, chunk by chunk.
  void feed(task_reader& reader) {
    task_chunk chunk;
    std::size_t target = 1;
    item it;
    for (;;) {
      if (stop_.load(std::memory_order_relaxed)) break;
      if (!chunk.empty() && !reader.ready()) {  // do not hold tasks back while input waits
        submit(std::move(chunk));
        chunk = fresh_chunk();
      }
      try {
        if (!reader.next(it, chunk.buf)) break;
      } catch (const cannot_run_error& e) {  // the input cannot be read: stop
        std::lock_guard lock(m_);
        input_error_ = e.what();
        stop_ = true;
        break;
      }
      it.seq = next_seq_++;
      if (it.logged || !it.error.empty()) {
        // The tasks before it go first: with --keep-order they would otherwise hold it (and
        // the window) back while they wait here unsubmitted.
        if (!chunk.empty()) {
          submit(std::move(chunk));
          chunk = fresh_chunk();
        }
        chunk.buf.clear();  // its own encoded arguments, which nothing will send
        wait_room(1);
        if (it.logged) {
          std::lock_guard lock(m_);
          ++skipped_;
        }
        task_chunk one;
        one.push_back(std::move(it));
        report(std::move(one), nullptr, {}, nullptr);
        continue;
      }
      if (chunk.empty()) {
        target = chunk_target();
        chunk.reserve(target);
      }
      chunk.push_back(std::move(it));
      if (chunk.size() >= target || chunk.buf.size() >= (1u << 20)) {
        submit(std::move(chunk));
        chunk = fresh_chunk();
      }
    }
    if (!chunk.empty() && !stopping() && input_error_.empty()) submit(std::move(chunk));
    {
      std::unique_lock lock(m_);
      input_done_ = true;
      if (total_ == 0) total_ = next_seq_;
      reader_waiting_ = true;
      reader_cv_.wait(lock, [&] { return chunks_ == 0; });
      reader_waiting_ = false;
      writer_done_ = true;
    }
    writer_cv_.notify_one();
  }

  // A signal: stop reading, drain.
  void interrupt(int sig) {
    {
      std::lock_guard lock(m_);
      if (signal_ == 0) signal_ = sig;
      stop_ = true;
    }
    reader_cv_.notify_all();
    wake_input();
    be_.drain(std::chrono::milliseconds(o_.grace_ms));
  }

  // --- the summary ---
  std::size_t tasks() const { return ran_; }
  std::size_t failed() const { return failed_; }
  std::size_t skipped() const { return skipped_; }
  int signal() const { return signal_.load(); }
  const std::string& failure() const { return failure_; }          // after the run
  const std::string& input_error() const { return input_error_; }  // after the run
  const std::map<std::string, std::size_t>& by_cause() const { return by_cause_; }
  /// --json's records: in input order with --keep-order, else as they finished.
  std::vector<std::string> documents() {
    if (o_.keep_order)
      std::sort(records_doc_.begin(), records_doc_.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    out.reserve(records_doc_.size());
    for (auto& [seq, text] : records_doc_)
      out.push_back(std::move(text));
    return out;
  }
  /// The bars on one lane per (host, worker): local workers first, then those of each host
  /// under its name (timeline_section::lane_groups).
  timeline_section section(std::string title) const {
    timeline_section s;
    s.title = std::move(title);
    std::map<std::pair<std::string, std::size_t>, std::size_t> lane_of;
    for (const auto& key : lane_keys_)
      lane_of[key] = 0;
    const bool hosts = std::any_of(lane_keys_.begin(), lane_keys_.end(),
                                   [](const auto& k) { return !k.first.empty(); });
    for (auto& [key, lane] : lane_of) {
      lane = s.lanes.size();
      s.lanes.push_back(lane_name(o_.mode, key.second));
      if (hosts) s.lane_groups.push_back(key.first);
    }
    for (auto b : bars_) {
      b.lane = lane_of[lane_keys_[b.lane]];
      s.bars.push_back(std::move(b));
    }
    return s;
  }

 private:
  // An empty chunk, with the memory of one already done when there is one: a chunk of
  // thousands of tasks is larger than malloc keeps, and fresh pages cost more than the tasks.
  task_chunk fresh_chunk() {
    std::lock_guard lock(m_);
    if (spare_.empty()) return {};
    task_chunk c = std::move(spare_.back());
    spare_.pop_back();
    return c;
  }
  void recycle(task_chunk c) {
    c.items.clear();
    c.buf.clear();
    std::lock_guard lock(m_);
    if (spare_.size() < 4) spare_.push_back(std::move(c));
  }

  // Wakes the reader if it waits (for room, or for the last chunk).
  void wake_reader() {
    bool waiting;
    {
      std::lock_guard lock(m_);
      waiting = reader_waiting_;
    }
    if (waiting) reader_cv_.notify_one();
  }

  bool stopping() {
    std::lock_guard lock(m_);
    return signal_ != 0 || !failure_.empty() || !input_error_.empty();
  }

  void fail_output(const std::string& why) {
    {
      std::lock_guard lock(m_);
      if (!failure_.empty()) return;
      failure_ = why;
      output_failed_ = true;
      stop_ = true;
    }
    con_.err("crew run: " + why + "; stopping\n");
    reader_cv_.notify_all();
    wake_input();
    be_.drain(std::chrono::milliseconds(0));
  }

  std::size_t chunk_target() {
    if (o_.chunk) return o_.chunk;
    if (o_.timeout_ms || !be_.takes_batches()) return 1;
    // About 2 ms of work a chunk: long enough to hide a round trip, short enough to keep
    // every worker busy to the end (see completed()).
    std::lock_guard lock(m_);
    return chunk_target_;
  }

  void wait_room(std::size_t items) {
    std::unique_lock lock(m_);
    reader_waiting_ = true;
    reader_cv_.wait(lock, [&] {
      return (chunks_ < max_chunks_ && pending_ + items <= window_) || signal_ != 0 ||
             !failure_.empty();
    });
    reader_waiting_ = false;
    pending_ += items;
  }

  void submit(task_chunk chunk) {
    wait_room(chunk.size());
    {
      std::lock_guard lock(m_);
      if (signal_ != 0 || !failure_.empty()) {  // never submitted: not reported
        pending_ -= chunk.size();
        return;
      }
      ++chunks_;
    }
    send(std::move(chunk));
  }

  // Hands a chunk (counted in chunks_) to the backend.
  void send(task_chunk chunk) {
    const std::string label = "#" + std::to_string(next_label_++);
    std::vector<std::byte> args;
    std::uint32_t batch = 0;
    if (chunk.size() == 1) {
      const auto a = chunk.args_of(chunk.front());
      args.assign(a.begin(), a.end());
    } else {
      protocol::batch_builder b;
      std::size_t size = 4;
      for (const auto& i : chunk)
        size += 4 + i.size;
      b.reserve(size);
      for (const auto& i : chunk)
        b.add(chunk.args_of(i));
      args = b.finish();
      batch = static_cast<std::uint32_t>(chunk.size());
    }
    auto shared = std::make_shared<task_chunk>(std::move(chunk));
    be_.submit(o_.job, signature_, std::move(args), batch, label,
               [this, shared, label](std::exception_ptr ep, std::span<const std::byte> bytes) {
                 chunk_record rec;
                 {
                   std::lock_guard lock(m_);
                   if (auto f = records_.find(label); f != records_.end()) {
                     rec.r = std::move(f->second);
                     rec.known = true;
                     records_.erase(f);
                   }
                 }
                 completed(std::move(*shared), std::move(ep), bytes, rec);
               });
  }

  static bool worth_splitting(errc code) {
    return code == errc::worker_crashed || code == errc::task_timeout ||
           code == errc::protocol_error || code == errc::payload_too_large;
  }

  void completed(task_chunk chunk, std::exception_ptr ep, std::span<const std::byte> bytes,
                 const chunk_record& rec) {
    if (rec.known && !rec.r.failed && chunk.size() > 0) {
      // The next chunk: as many tasks as this one ran in about 2 ms. Its time includes a
      // round trip, so a chunk of 1 under-counts the tasks that fit; the rule still reaches
      // the right size in two or three chunks, for short tasks and long ones.
      const double seconds = std::max(rec.r.end - rec.r.start, 1e-6);
      const double fit = static_cast<double>(chunk.size()) * 0.002 / seconds;
      std::lock_guard lock(m_);
      chunk_target_ = static_cast<std::size_t>(std::clamp(fit, 1.0, 4096.0));
    }
    // A chunk whose worker died or ran out of time: each item again on its own, so that
    // only the one that caused it fails.
    if (ep && chunk.size() > 1 && worth_splitting(static_cast<errc>(error_of(ep).value())) &&
        error_of(ep).category() == crew_category()) {
      bool stop;
      {
        std::lock_guard lock(m_);
        stop = signal_ != 0 || !failure_.empty();
        if (!stop) chunks_ += chunk.size();
      }
      if (!stop) {
        for (auto& i : chunk) {
          task_chunk one;
          const auto a = chunk.args_of(i);
          one.buf.assign(a.begin(), a.end());
          i.at = 0;
          one.push_back(std::move(i));
          send(std::move(one));
        }
        finish_chunk();
        return;
      }
    }
    report(std::move(chunk), ep, bytes, &rec);
    finish_chunk();
  }

  void finish_chunk() {
    {
      std::lock_guard lock(m_);
      --chunks_;
    }
    wake_reader();
  }

  // Formats each item's outcome and queues it for the writer.
  void report(task_chunk chunk, std::exception_ptr ep, std::span<const std::byte> bytes,
              const chunk_record* rec) {
    std::optional<protocol::batch_result_reader> items;
    outcome whole;
    if (ep) {
      const auto f = describe_failure(ep);
      whole.error = error_name(ep);
      whole.message = f.message;
      if (rec && rec->known) whole.exit_code = rec->r.exit_code, whole.signal = rec->r.signal;
    } else if (chunk.size() > 1) {
      items.emplace(bytes, chunk.size());
    }
    // The chunk's output in item order (its items have consecutive seqs), its log records,
    // and scratch strings reused from item to item.
    std::string out, log, value_json, record;
    out.reserve(chunk.size() * (o_.job.size() + 24));
    const bool want_record = log_fd >= 0 || o_.output != run_options::format::text;
    const bool text = o_.output == run_options::format::text;
    std::size_t failed = 0;
    std::map<std::string, std::size_t> causes;
    bool wake_writer = false;
    for (auto& it : chunk) {
      outcome oc;
      if (it.logged) {
        oc.ok = true;
      } else if (!it.error.empty()) {
        oc.error = "decode_error";
        oc.message = it.error;
      } else if (ep) {
        oc = whole;
      } else if (items) {
        const auto b = items->next();
        if (b.kind == protocol::frame_type::result) {
          oc.ok = true;
          oc.value = b.bytes;
        } else {
          const auto e = protocol::decode_error_payload(b.bytes);
          oc.error = to_string(static_cast<errc>(e.code));
          oc.message = e.message;
        }
      } else {
        oc.ok = true;
        oc.value = bytes;
      }
      // Text: `job(args) = value`, written straight into the chunk's output.
      const std::size_t line_at = out.size();
      if (text) {
        (out += o_.job) += '(';
        append_args_inner(out, it);
        out += ')';
      }
      value_json.clear();
      if (oc.ok && !it.logged) {
        try {
          if (want_record) append_result_json(sig_, oc.value, value_json);
          if (text) append_result_text(sig_, oc.value, out.append(" = "));
        } catch (const std::exception& e) {
          oc = outcome{};
          oc.error = "decode_error";
          oc.message =
              std::string("the result does not decode as ") + sig_.result.name() + ": " + e.what();
          if (text) {
            out.resize(line_at);
            (out += o_.job) += '(';
            append_args_inner(out, it);
            out += ')';
          }
        }
      } else if (it.logged) {
        value_json = it.logged->value;
        if (text) (out += " = ") += logged_text(it.logged->value);
      }
      if (!oc.ok) {
        ++failed;
        ++causes[oc.error];
        // A worker's words (its error text, its stderr tail) reach a terminal: escaped.
        if (text)
          ((out += " failed: ") += oc.error + ": ") +=
              escape_controls(escape_invalid_utf8(oc.message));
      }
      if (text) out += '\n';
      if (!want_record) continue;
      record.clear();
      if (it.logged)
        record = it.logged->record;
      else
        make_record(record, it, oc, value_json, rec, chunk.size());
      if (!it.logged && log_fd >= 0) (log += record) += '\n';
      if (o_.output == run_options::format::jsonl) (out += record) += '\n';
      if (o_.output == run_options::format::json) {
        std::lock_guard lock(m_);
        records_doc_.emplace_back(it.seq, record);
      }
    }
    if (rec && rec->known && !o_.timeline.empty()) {
      timeline_bar b;
      b.start = std::max(0.0, rec->r.start);
      b.end = std::max(b.start, rec->r.end);
      std::string first;
      append_args_inner(first, chunk.front());
      b.label = o_.job + "(" + first + ")" +
                (chunk.size() > 1 ? " +" + std::to_string(chunk.size() - 1) : "");
      b.failed = ep != nullptr || failed > 0;
      b.detail = "pid " + std::to_string(rec->r.pid) +
                 (rec->r.host.empty() ? "" : " on " + escape_invalid_utf8(rec->r.host)) +
                 (ep ? "; " + whole.error + ": " + escape_invalid_utf8(whole.message) : "");
      std::lock_guard lock(m_);
      auto key = std::make_pair(rec->r.host, rec->r.worker);
      auto [at, added] = lane_index_.try_emplace(key, lane_keys_.size());
      if (added) lane_keys_.push_back(std::move(key));
      b.lane = at->second;  // an index into lane_keys_ until section()
      bars_.push_back(std::move(b));
    }
    {
      std::lock_guard lock(m_);
      std::size_t run_now = 0;
      for (const auto& it : chunk)
        run_now += it.logged ? 0 : 1;
      ran_ += run_now;
      failed_ += failed;
      for (const auto& [c, n] : causes)
        by_cause_[c] += n;
      wake_writer = out_q_items_ == 0 && log_q_.empty();
      if (!log.empty()) log_q_.push_back(std::move(log));
      if (!o_.keep_order) {
        out_q_.push_back(std::move(out));
        out_q_items_ += chunk.size();
      } else {
        reorder_.emplace(chunk.front().seq, std::make_pair(chunk.size(), std::move(out)));
        while (!reorder_.empty() && reorder_.begin()->first == next_out_) {
          auto& [n, text_of] = reorder_.begin()->second;
          out_q_.push_back(std::move(text_of));
          out_q_items_ += n;
          next_out_ += n;
          reorder_.erase(reorder_.begin());
        }
      }
    }
    if (wake_writer) writer_cv_.notify_one();
    recycle(std::move(chunk));
  }

  // The text of a value from the log (JSON): encoded again by the result's type.
  std::string logged_text(const std::string& value) const {
    if (sig_.result.k == wire_type::kind::void_) return "None";
    try {
      job_signature as_args;
      as_args.result = sig_.result;
      as_args.args = {sig_.result};
      std::vector<std::byte> bytes;
      append_args(as_args, json::array{parse_json(value)}, bytes);
      std::string text;
      append_result_text(sig_, bytes, text);
      return text;
    } catch (const std::exception&) {
      return value;
    }
  }

  // Appends the task's record (docs/cli.md) to `s`.
  void make_record(std::string& s, const item& it, const outcome& oc, const std::string& value_json,
                   const chunk_record* rec, std::size_t chunk_size) const {
    const task_record* r = rec && rec->known ? &rec->r : nullptr;
    s += "{\"id\":";
    s += r ? std::to_string(r->id) : "null";
    s += ",\"job\":";
    append_json_string(o_.job, s);
    s += ",\"input\":";
    s += it.line ? std::to_string(it.line) : "null";
    s += ",\"args\":";
    append_args_json(s, it);
    if (it.is_range) (s += ",\"arg\":") += std::to_string(it.arg);
    s += ",\"worker\":";
    s += r && r->worker != event::no_worker ? std::to_string(r->worker) : "null";
    s += ",\"pid\":";
    s += std::to_string(r ? r->pid : 0);
    if (r && !r->host.empty()) {
      s += ",\"host\":";
      append_json_string(r->host, s);
    }
    s += ",\"start\":";
    append_number(s, r ? r->start_epoch : 0);
    s += ",\"duration\":";
    append_number(s, r ? r->end - r->start : 0);
    s += ",\"outcome\":";
    s += oc.ok ? "\"ok\"" : "\"failed\"";
    s += ",\"attempts\":";
    s += std::to_string(r ? r->attempts : 0);
    s += ",\"bytes_in\":";
    s += std::to_string(it.size);
    s += ",\"bytes_out\":";
    s += std::to_string(oc.value.size());
    if (chunk_size > 1) (s += ",\"chunk\":") += std::to_string(chunk_size);
    if (oc.ok) {
      s += ",\"value\":";
      s += value_json;
    } else {
      s += ",\"error\":";
      append_json_string(oc.error, s);
      s += ",\"message\":";
      append_json_string(oc.message, s);
      s += ",\"exit_code\":";
      s += oc.exit_code >= 0 ? std::to_string(oc.exit_code) : "null";
      s += ",\"signal\":";
      s += oc.signal >= 0 ? std::to_string(oc.signal) : "null";
    }
    s += '}';
  }

  const run_options& o_;
  const job_signature& sig_;
  std::string signature_;
  console& con_;
  backend& be_;

  std::mutex m_;
  std::condition_variable reader_cv_, writer_cv_;
  bool reader_waiting_ = false;  // the reader waits on reader_cv_
  std::size_t total_;
  std::size_t max_chunks_, window_;
  std::size_t chunks_ = 0;   // chunks with the backend
  std::size_t pending_ = 0;  // tasks taken in and not yet written
  std::size_t written_ = 0;
  std::uint64_t next_seq_ = 0, next_out_ = 0;
  std::atomic<std::uint64_t> next_label_{0};  // the reader and completions (a split) send
  bool input_done_ = false, writer_done_ = false;
  std::atomic<int> signal_{0};
  std::string failure_, input_error_;
  std::atomic<bool> output_failed_{false};
  std::atomic<bool> stop_{false};
  void wake_input() {
    if (wake_write >= 0) [[maybe_unused]]
      auto n = ::write(wake_write, "x", 1);
  }  // any of the three above: the reader stops
  std::size_t chunk_target_ = 1;
  std::vector<task_chunk>
      spare_;  // chunks done, kept for their memory  // adaptive chunks: the next chunk's size
  std::unordered_map<std::string, task_record> records_;
  std::map<std::uint64_t, std::pair<std::size_t, std::string>>
      reorder_;                             // first seq -> (tasks, text)
  std::vector<std::string> out_q_, log_q_;  // for the writer, whole lines each
  std::size_t out_q_items_ = 0;
  std::size_t ran_ = 0, failed_ = 0, skipped_ = 0;
  std::map<std::string, std::size_t> by_cause_;
  std::vector<std::pair<std::uint64_t, std::string>> records_doc_;
  std::vector<timeline_bar> bars_;
  // The (host, worker) pairs the bars ran on, in the order first seen.
  std::vector<std::pair<std::string, std::size_t>> lane_keys_;
  std::map<std::pair<std::string, std::size_t>, std::size_t> lane_index_;
};

/// In threads and inline modes, what jobs print on stdout goes through a pipe to `sink`,
/// line by line, so that it neither mixes into the results mid-line nor draws over the
/// progress line.
class stdout_relay {
 public:
  explicit stdout_relay(std::function<void(std::string_view)> sink) : sink_(std::move(sink)) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return;
    std::fflush(stdout);
    saved_ = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    ::dup2(p[1], STDOUT_FILENO);
    ::close(p[1]);
    read_ = p[0];
    thread_ = std::thread([this] { relay(); });
  }
  ~stdout_relay() {
    if (saved_ < 0) return;
    std::fflush(stdout);
    ::dup2(saved_, STDOUT_FILENO);  // the pipe's last write end closes: the relay ends
    ::close(saved_);
    thread_.join();
    ::close(read_);
  }

 private:
  void relay() {
    std::string buf;
    char chunk[4096];
    for (;;) {
      const ssize_t n = ::read(read_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buf.append(chunk, static_cast<std::size_t>(n));
      if (const auto nl = buf.rfind('\n'); nl != std::string::npos) {
        sink_(std::string_view(buf).substr(0, nl + 1));
        buf.erase(0, nl + 1);
      }
    }
    if (!buf.empty()) sink_(buf + "\n");
  }
  std::function<void(std::string_view)> sink_;
  int saved_ = -1, read_ = -1;
  std::thread thread_;
};

// SIGPIPE: a closed stdout is an EPIPE error, reported. A handler, not SIG_IGN, so that
// worker processes do not inherit the disposition.
void on_sigpipe(int) {
}

}  // namespace

int run_main(const std::vector<std::string>& args) {
  auto parsed = parse_run_options(args);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  const run_options o = std::move(std::get<run_options>(parsed));

  struct sigaction sa {};
  sa.sa_handler = on_sigpipe;
  ::sigaction(SIGPIPE, &sa, nullptr);

  if (o.sandbox) {  // fail now, with bubblewrap's reason, not with every worker's boot
    if (auto why = sandbox_unavailable(sandbox_of(o)); !why.empty()) {
      std::cerr << "crew run: --sandbox: " << why << "\n";
      return cannot_run;
    }
  }

  // The job logs: read before anything starts.
  std::optional<job_log> resume_log, retry_log;
  for (const auto* path : {&o.resume, &o.retry_failed}) {
    if (path->empty()) continue;
    std::string why;
    std::error_code exists_ec;
    // --resume on a first run: nothing done yet, the log is made.
    auto log = path == &o.resume && !std::filesystem::exists(*path, exists_ec)
                   ? std::optional<job_log>(job_log{})
                   : read_job_log(*path, why);
    if (!log) {
      std::cerr << "crew run: " << why << "\n";
      return cannot_run;
    }
    if (!log->job.empty() && log->job != o.job) {
      std::cerr << "crew run: job log '" << *path << "' is of job '" << log->job << "', not '"
                << o.job << "'\n";
      return usage;
    }
    if (log->unreadable)
      std::cerr << "crew run: " << log->unreadable << " line(s) of '" << *path
                << "' are not task records (a run killed while writing?); ignored\n";
    (path == &o.resume ? resume_log : retry_log) = std::move(log);
  }
  const std::string joblog = !o.joblog.empty() ? o.joblog : o.resume;
  int log_fd = -1;
  if (!joblog.empty()) {
    try {
      log_fd = open_append_log(joblog);
    } catch (const output_error& e) {
      std::cerr << "crew run: " << e.what() << "\n";
      return cannot_run;
    }
  }
  struct fd_closer {
    int fd;
    ~fd_closer() {
      if (fd >= 0) ::close(fd);
    }
  } close_log{log_fd};
  if (!o.timeline.empty()) {  // fail now, not after the run
    std::ofstream probe(o.timeline, std::ios::app);
    if (!probe) {
      std::cerr << "crew run: cannot write the timeline to '" << o.timeline
                << "': " << std::strerror(errno) << "\n";
      return cannot_run;
    }
  }

  const int out_fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (out_fd < 0) {
    std::cerr << "crew run: no standard output: " << std::strerror(errno) << "\n";
    return cannot_run;
  }
  struct out_closer {
    int fd;
    ~out_closer() { ::close(fd); }
  } close_out{out_fd};
  console con(out_fd, o.progress);
  const bool data_on_stdout = o.output != run_options::format::text;

  // Workers' lines: above the progress line; never into a JSON stdout. Those of
  // --launcher-once's command come without a worker.
  auto on_output = [&con, data_on_stdout](const output_line& l) {
    std::string s =
        (l.worker == event::no_worker ? "[launcher-once" : "[worker " + std::to_string(l.worker)) +
        " pid " + std::to_string(l.pid) + "] ";
    s += escape_controls(l.text);  // a worker's escape sequences must not drive the terminal
    s += '\n';
    if (l.source == output_line::stream::out && !data_on_stdout) {
      try {
        con.out(s);
      } catch (const output_error&) {
        // The results' own write reports it.
      }
    } else {
      con.err(s);
    }
  };
  std::optional<stdout_relay> relay;
  if (o.mode != "processes")
    relay.emplace([&con, data_on_stdout](std::string_view text) {
      if (data_on_stdout) return con.err(text);
      try {
        con.out(text);
      } catch (const output_error&) {
      }
    });

  io_thread io;
  recorder rec(o.mode == "processes" ? "worker" : "thread");
  rec.keep_finished = false;
  run* current = nullptr;
  std::mutex current_mutex;
  rec.on_finished = [&](const task_record& r) {
    std::lock_guard lock(current_mutex);
    if (current) current->record_arrived(r);
  };

  // --listen: connections refused (a wrong secret, a peer that did not finish its
  // handshake, a worker too many), for the summary.
  struct {
    std::mutex m;
    std::uint64_t count = 0;
    std::string last;
    std::string line() {  // "" when none
      std::lock_guard lock(m);
      if (count == 0) return {};
      return "crew: " + std::to_string(count) + (count == 1 ? " connection" : " connections") +
             " refused (the last: " + escape_controls(escape_invalid_utf8(last)) + ")\n";
    }
  } refused;

  std::unique_ptr<backend> be;
  std::string signature;
  std::optional<job_signature> sig;
  std::atomic<int> startup_signal{0};  // a signal while the first worker was awaited
  try {
    // A slot that cannot start while others serve: a warning; the run goes on.
    auto on_event = [&con, &refused, records = rec.handler()](const event& e) {
      if (e.kind == event_kind::worker_unavailable)
        con.err("crew run: warning: worker " + std::to_string(e.worker) +
                " cannot start; the others go on, it is tried again later: " +
                escape_controls(escape_invalid_utf8(e.message)) + "\n");
      if (e.kind == event_kind::peer_refused) {
        std::lock_guard lock(refused.m);
        ++refused.count;
        refused.last = e.message;
      }
      records(e);
    };
    try {
      be = make_backend(o, io, on_event, on_output);
    } catch (const std::invalid_argument& e) {  // options the pool refuses: a usage error
      std::string what = e.what();
      // The secret is checked by the pool; only $CREW_SECRET's can fail there (the file's
      // was checked when read).
      if (const std::string lib = "listen_options::secret: "; what.starts_with(lib))
        what = "CREW_SECRET: " + what.substr(lib.size());
      std::cerr << "crew run: " << what << "\n";
      return usage;
    } catch (const std::system_error& e) {  // --listen: the address cannot be listened on
      std::cerr << "crew run: " << e.what() << "\n";
      return cannot_run;
    }
    if (o.listening()) {
      // The port (chosen for port 0) before anything waits for a worker; never the secret.
      con.err("crew: listening on " +
              listen_address{o.listen_host, o.listen_port}.text(be->listen_port()) + " for " +
              std::to_string(o.workers) + (o.workers == 1 ? " worker" : " workers") + "\n");
    }
    {
      // A signal while the first worker is awaited (with --listen, up to --connect-timeout):
      // the pool is shut down, --launcher-once's command with it, and crew exits with 128 +
      // the signal (the run's own handling of signals starts with the run).
      boost::asio::signal_set waiting(io.context(), SIGINT, SIGTERM, SIGHUP);
      waiting.async_wait([&](boost::system::error_code ec, int sig_no) {
        if (ec) return;
        startup_signal = sig_no;
        be->drain(std::chrono::milliseconds(0));
      });
      struct release {  // on the io thread, which may be delivering a signal to it
        io_thread& io;
        boost::asio::signal_set& set;
        ~release() {
          std::promise<void> done;
          boost::asio::post(io.context(), [&] {
            set.cancel();
            set.clear();
            done.set_value();
          });
          done.get_future().wait();
        }
      } release_waiting{io, waiting};
      signature = be->signature_of(o.job);
    }
    if (startup_signal != 0) throw cannot_run_error("stopped");
    try {
      sig = job_signature::parse(signature);
    } catch (const std::invalid_argument& e) {
      throw cannot_run_error(std::string("job '") + o.job + "': " + e.what());
    }
    if (o.has_range && (sig->args.size() != 1 || sig->args[0].k == wire_type::kind::boolean ||
                        sig->args[0].k > wire_type::kind::u64))
      throw cannot_run_error("--range needs a job of one integer; " + o.job + " is " + signature +
                             ": give its arguments as JSON lines (--input)");
  } catch (const cannot_run_error& e) {  // may quote a worker's stderr: escaped
    if (const int sig_no = startup_signal; sig_no != 0) {
      std::cerr << "crew run: " << sigdescr_np(sig_no)
                << ": stopped while waiting for the first worker\n";
      return 128 + sig_no;
    }
    std::cerr << "crew run: " << escape_controls(escape_invalid_utf8(e.what())) << "\n";
    std::cerr << refused.line();  // why no worker got in, when one tried
    return cannot_run;
  }

  if (!o.has_range && (o.input.empty() || o.input == "-") && o.retry_failed.empty() &&
      ::isatty(STDIN_FILENO) == 1)
    std::cerr << "crew run: reading tasks from standard input, one JSON array of arguments per "
                 "line ("
              << o.job << " is " << signature << "; Ctrl-D ends)\n";
  int wake[2] = {-1, -1};  // the run's stop, for a reader waiting for input
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) wake[0] = wake[1] = -1;
  fd_closer close_wake_read{wake[0]}, close_wake_write{wake[1]};
  std::optional<task_reader> reader;
  try {
    reader.emplace(o, *sig, resume_log ? &*resume_log : nullptr, retry_log ? &*retry_log : nullptr,
                   wake[0]);
  } catch (const cannot_run_error& e) {
    std::cerr << "crew run: " << e.what() << "\n";
    return cannot_run;
  }

  run r(o, *sig, signature, con, *be, reader->known_total());
  r.log_fd = log_fd;
  r.wake_write = wake[1];
  r.log_name = joblog;
  {
    std::lock_guard lock(current_mutex);
    current = &r;
  }

  // Signals: the first drains, a second exits at once (workers die with crew: end of input
  // and the parent-death signal).
  boost::asio::signal_set signals(io.context(), SIGINT, SIGTERM, SIGHUP);
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig_no) {
    if (ec) return;
    if (r.signal() != 0) std::_Exit(128 + sig_no);
    con.err(std::string("crew run: ") + sigdescr_np(sig_no) +
            ": stopping; no new task is started, running ones get " + std::to_string(o.grace_ms) +
            " ms (a second signal exits now)\n");
    r.interrupt(sig_no);
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  stopwatch clock;
  std::thread writer([&] { r.writer_loop(); });
  r.feed(*reader);
  writer.join();
  be->finish();
  {
    std::promise<void> done;
    boost::asio::post(io.context(), [&] {
      signals.cancel();
      done.set_value();
    });
    done.get_future().wait();
  }
  {
    std::lock_guard lock(current_mutex);
    current = nullptr;
  }
  const double seconds = clock.seconds();
  con.finish();
  relay.reset();

  int code = r.failed() ? tasks_failed : ok;
  if (!o.timeline.empty()) {
    std::ofstream svg(o.timeline, std::ios::trunc);
    svg << render_timeline({r.section("crew run --job " + o.job + " (" + o.mode + ")")});
    svg.close();
    if (!svg) {
      std::cerr << "crew run: cannot write the timeline to '" << o.timeline << "'\n";
      code = output_failed;
    }
  }
  const std::string interrupted =
      r.signal() > 0 ? std::string(sigabbrev_np(r.signal())) : std::string();
  if (o.output == run_options::format::json) {
    std::string doc = "{\"job\":";
    append_json_string(o.job, doc);
    doc += ",\"signature\":";
    append_json_string(signature, doc);
    doc += ",\"mode\":\"" + o.mode + "\",\"transport\":\"" + o.transport + "\",\"range\":";
    doc += o.has_range ? "[" + std::to_string(o.first) + "," + std::to_string(o.last) + "]"
                       : std::string("null");
    doc += ",\"wall_seconds\":";
    append_number(doc, seconds);
    doc += ",\"tasks\":" + std::to_string(r.tasks()) +
           ",\"skipped\":" + std::to_string(r.skipped()) +
           ",\"failed\":" + std::to_string(r.failed()) +
           ",\"interrupted_by\":" + (interrupted.empty() ? "null" : "\"" + interrupted + "\"");
    if (o.listening()) {
      std::lock_guard lock(refused.m);
      doc += ",\"peers_refused\":" + std::to_string(refused.count);
    }
    doc += ",\"failures_by_cause\":{";
    bool first = true;
    for (const auto& [cause, n] : r.by_cause()) {
      if (!first) doc += ',';
      first = false;
      append_json_string(cause, doc);
      doc += ":" + std::to_string(n);
    }
    doc += "},\"results\":[";
    first = true;
    for (const auto& rec_text : r.documents()) {
      if (!first) doc += ',';
      first = false;
      doc += rec_text;
    }
    doc += "]}\n";
    if (r.failure().empty()) {
      try {
        con.out(doc);
      } catch (const output_error& e) {
        std::cerr << "crew run: " << e.what() << "\n";
        code = output_failed;
      }
    }
  }
  if (!o.quiet) {
    std::string s =
        std::to_string(r.tasks()) + " tasks, " + std::to_string(r.failed()) + " failed, ";
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f s", seconds);
    s += secs;
    s += " (" + o.mode + ")";
    if (r.skipped()) s += "; " + std::to_string(r.skipped()) + " done before, from " + o.resume;
    s += "\n";
    for (const auto& [cause, n] : r.by_cause())
      s += "  " + std::to_string(n) + " " + cause + "\n";
    if (!interrupted.empty()) s += "interrupted by SIG" + interrupted + "\n";
    s += refused.line();
    con.err(s);
  }
  if (!r.input_error().empty()) {
    std::cerr << "crew run: " << r.input_error() << "\n";
    return cannot_run;
  }
  if (!r.failure().empty()) return output_failed;
  if (r.signal() > 0) return 128 + r.signal();
  return code;
}

}  // namespace crew::cli
