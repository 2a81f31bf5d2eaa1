#include <crew/worker_runtime.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <optional>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crew {
namespace {

thread_local std::uint64_t running_task = 0;

// What cancel_requested() needs: the channel, the frames already read but not yet handled,
// and the bytes it reads itself while a job runs (handed back to the main loop afterwards).
struct cancel_watch {
  int in_fd = -1;
  std::size_t max_payload = 0;
  const protocol::frame_reader* reader = nullptr;
  std::uint64_t task = 0;
  std::vector<std::byte> ahead;  // read from in_fd during the task, not yet in `reader`
  std::size_t scan = 0;  // where the next frame not yet looked at starts, in buffered ++ ahead
  bool cancelled = false;
  bool eof = false;
};
cancel_watch* watch = nullptr;  // set while serve() runs a task; one serve() per process

// Looks at the frames waiting behind the running task (the reader's buffered bytes, then
// those read since) for a cancel of it, a shutdown, or a broken stream. Each frame header is
// looked at once: a task polling often does not rescan megabytes of pipelined work.
bool says_stop(cancel_watch& w) {
  const auto first = w.reader->buffered();
  const std::size_t total = first.size() + w.ahead.size();
  while (total - std::min(w.scan, total) >= protocol::header_size) {
    std::byte raw[protocol::header_size];
    for (std::size_t k = 0; k < protocol::header_size; ++k) {
      const std::size_t at = w.scan + k;
      raw[k] = at < first.size() ? first[at] : w.ahead[at - first.size()];
    }
    protocol::frame_header h;
    if (protocol::parse_header(raw, w.max_payload, h)) return true;  // broken: stop
    if (h.type == protocol::frame_type::shutdown) return true;
    if (h.type == protocol::frame_type::cancel && h.task_id == w.task) return true;
    w.scan += protocol::header_size + h.length;
  }
  return false;
}

// Whether `bytes` (from a frame boundary) hold a cancel of `task`.
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

// The parent-death signal's handler: the coordinator (the thread that started us) is gone;
// take the whole process group down, the job's children with it. Async-signal-safe.
extern "C" void on_parent_death(int) {
  ::kill(0, SIGKILL);
  ::_exit(137);
}

// Die with the coordinator, even while a job runs and nobody reads the channel.
void arrange_parent_death() {
  const char* expected = std::getenv("CREW_COORDINATOR_PID");
  if (!expected) return;  // not started by a crew pool (e.g. a test speaking the protocol)
  struct sigaction sa {};
  sa.sa_handler = on_parent_death;
  sigemptyset(&sa.sa_mask);
  const int sig = ::sigaction(SIGHUP, &sa, nullptr) == 0 ? SIGHUP : SIGKILL;
  ::prctl(PR_SET_PDEATHSIG, sig);
  // The coordinator may have died before the call above. (Our parent need not be the
  // coordinator itself: a wrapper such as `timeout` or a shell script may sit between.)
  const auto coordinator = static_cast<pid_t>(std::strtol(expected, nullptr, 10));
  if (::getppid() != coordinator && ::kill(coordinator, 0) != 0 && errno == ESRCH)
    on_parent_death(0);
  ::unsetenv("CREW_COORDINATOR_PID");
}

bool write_all(int fd, const std::byte* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

void flush_stdio() {
  std::cout.flush();
  std::fflush(stdout);
}

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) : fallback;
}

// The worker's view of the shared memory the coordinator handed it: the request file
// (read-only, header + request area) and the response file (see docs/protocol.md).
struct segment {
  const std::byte* request_base = nullptr;
  std::byte* response_base = nullptr;
  protocol::shm_header layout;

  explicit operator bool() const noexcept { return request_base && response_base; }
  std::span<const std::byte> request() const {
    return {request_base + layout.request_offset, layout.request_size};
  }
  std::span<std::byte> response() const {
    return {response_base + layout.response_offset, layout.response_size};
  }
};

void* map_file(int fd, int prot, std::size_t& size) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) return nullptr;
  size = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}

bool map_segment(int request_fd, int response_fd, segment& s) {
  std::size_t request_size = 0, response_size = 0;
  void* req = map_file(request_fd, PROT_READ, request_size);
  void* resp = map_file(response_fd, PROT_READ | PROT_WRITE, response_size);
  if (!req || !resp || request_size < protocol::shm_header::size) return false;
  s.request_base = static_cast<const std::byte*>(req);
  s.response_base = static_cast<std::byte*>(resp);
  return !protocol::read_shm_header(s.request_base, request_size, response_size, s.layout);
}

// Marks the task the calling thread runs, for current_task_id() and cancel_requested().
struct running_guard {
  explicit running_guard(std::uint64_t id) { running_task = id; }
  ~running_guard() { running_task = 0; }
  running_guard(const running_guard&) = delete;
  running_guard& operator=(const running_guard&) = delete;
};

// One task: decodes, runs, and leaves the whole reply frame in `reply`.
class task_runner {
 public:
  task_runner(const std::vector<const registry::entry*>& index, const segment& seg,
              std::size_t inline_max, std::size_t max_payload)
      : index_(index), seg_(seg), inline_max_(inline_max), max_payload_(max_payload) {}

  // Appends the reply frame to `reply` (which may hold earlier replies not yet written).
  void run(const protocol::frame_view& f, std::vector<std::byte>& reply) {
    std::uint32_t job_index;
    if (!begin(f, reply, job_index)) return;
    std::span<const std::byte> args = f.payload.subspan(4);
    // With a segment, any task's result may come back through it; its generation is the
    // task id, which the coordinator checks.
    generation_.reset();
    if (seg_) generation_ = id_;
    if (f.header.flags & protocol::flag_shm) {
      protocol::shm_descriptor d;
      if (!seg_ || protocol::check_descriptor(args, seg_.layout.request_size, id_, d))
        return fail(errc::decode_error, "bad shared-memory descriptor in task");
      args = seg_.request().subspan(d.offset, d.length);
    }
    const registry::entry& e = *index_[job_index];
    decoder in(args.data(), args.size());
    running_guard guard(id_);
    try {
      e.call_encoded(in, [this](std::size_t size) { return sink(size); });
      finish_result();
    } catch (const decode_error& ex) {
      fail(errc::decode_error, e.info.name + ": " + ex.message());
    } catch (const capacity_exceeded& ex) {
      fail(errc::payload_too_large, e.info.name + ": " + ex.message());
    } catch (const std::exception& ex) {
      fail(watch && watch->cancelled ? errc::cancelled : errc::job_failed, ex.what());
    } catch (...) {
      fail(watch && watch->cancelled ? errc::cancelled : errc::job_failed, "unknown exception");
    }
  }

  // A batch: each item runs as its own task would, its outcome (result or error) appended
  // to one batch_result frame. A cancel (polled every 256 items) answers the whole batch
  // with `cancelled`; results too large for one frame answer it with `payload_too_large`.
  void run_batch(const protocol::frame_view& f, std::vector<std::byte>& reply,
                 std::size_t max_payload) {
    std::uint32_t job_index;
    if (!begin(f, reply, job_index)) return;
    generation_.reset();
    std::optional<protocol::batch_reader> items;
    try {
      items.emplace(f.payload.subspan(4));
    } catch (const decode_error& ex) {
      return fail(errc::decode_error, ex.message());
    }
    const registry::entry& e = *index_[job_index];
    running_guard guard(id_);
    const std::size_t frame_at =
        protocol::begin_frame(reply, protocol::frame_type::batch_result, id_);
    const std::uint32_t count = items->count();
    reply.resize(reply.size() + 4);
    std::memcpy(reply.data() + reply.size() - 4, &count, 4);
    for (std::size_t i = 0; i < count; ++i) {
      if (i % 256 == 255 && cancel_requested())
        return fail(errc::cancelled, "cancelled after " + std::to_string(i) + " of " +
                                         std::to_string(count) + " items");
      std::span<const std::byte> item;
      try {
        item = items->next();
      } catch (const decode_error& ex) {
        return fail(errc::decode_error, ex.message());
      }
      const std::size_t item_at = reply.size();
      decoder in(item.data(), item.size());
      try {
        e.call_encoded(in, [&](std::size_t size) {
          reply.resize(item_at);
          return encoder(protocol::append_batch_item(reply, size, protocol::frame_type::result),
                         size);
        });
      } catch (const decode_error& ex) {
        item_error(item_at, errc::decode_error, e.info.name + ": " + ex.message());
      } catch (const std::exception& ex) {
        item_error(item_at, watch && watch->cancelled ? errc::cancelled : errc::job_failed,
                   ex.what());
      } catch (...) {
        item_error(item_at, watch && watch->cancelled ? errc::cancelled : errc::job_failed,
                   "unknown exception");
      }
      if (reply.size() - frame_at - protocol::header_size > max_payload)
        return fail(errc::payload_too_large,
                    "the results of the first " + std::to_string(i + 1) + " of " +
                        std::to_string(count) + " items already exceed the frame limit of " +
                        std::to_string(max_payload) + " bytes: map with smaller chunks");
    }
    try {
      items->expect_end();
    } catch (const decode_error& ex) {
      return fail(errc::decode_error, ex.message());
    }
    protocol::finish_frame(reply, frame_at);
  }

 private:
  // Starts the reply to frame `f` and reads its job index; false (the error reply written)
  // if there is none or it is out of range.
  bool begin(const protocol::frame_view& f, std::vector<std::byte>& reply,
             std::uint32_t& job_index) {
    reply_ = &reply;
    base_ = reply.size();
    id_ = f.header.task_id;
    if (f.payload.size() < 4)
      return fail(errc::decode_error, "frame shorter than its job index"), false;
    std::memcpy(&job_index, f.payload.data(), 4);
    if (job_index >= index_.size())
      return fail(errc::unknown_job, "job index " + std::to_string(job_index) + " out of range"),
             false;
    return true;
  }

  void item_error(std::size_t item_at, errc code, const std::string& message) {
    reply_->resize(item_at);
    const auto payload = protocol::encode_error({code, message});
    std::byte* to =
        protocol::append_batch_item(*reply_, payload.size(), protocol::frame_type::error);
    std::memcpy(to, payload.data(), payload.size());
  }

  // Large results of shm tasks go straight into the response area; everything else is
  // written straight into the reply frame after its header.
  encoder sink(std::size_t size) {
    in_shm_ = generation_ && size > inline_max_ && size <= seg_.layout.response_size;
    size_ = size;
    if (in_shm_) return encoder(seg_.response().data(), size);
    // Too large for a frame the coordinator accepts: the task fails, the worker lives on.
    if (size > max_payload_)
      throw capacity_exceeded("the result is " + std::to_string(size) +
                              " bytes, over the frame limit of " + std::to_string(max_payload_) +
                              " bytes (max_payload)");
    reply_->resize(base_);
    return encoder(protocol::append_frame_for(*reply_, protocol::frame_type::result, id_, size),
                   size);
  }

  // An inline result is complete once encoded; a shared one still needs its descriptor.
  void finish_result() {
    if (!in_shm_) return;
    reply_->resize(base_);
    std::vector<std::byte> d;
    protocol::append_descriptor(d, {0, size_, *generation_});
    protocol::append_frame(*reply_, protocol::frame_type::result, id_, d, protocol::flag_shm);
  }

 public:
  // The reply to a task cancelled before it started: it is not run at all.
  void refuse(std::uint64_t id, std::vector<std::byte>& reply) {
    protocol::append_frame(
        reply, protocol::frame_type::error, id,
        protocol::encode_error({errc::cancelled, "cancelled before it started"}));
  }

 private:
  void fail(errc code, std::string message) {
    reply_->resize(base_);
    protocol::append_frame(*reply_, protocol::frame_type::error, id_,
                           protocol::encode_error({code, std::move(message)}));
  }

  const std::vector<const registry::entry*>& index_;
  const segment& seg_;
  std::size_t inline_max_;
  std::size_t max_payload_;
  std::vector<std::byte>* reply_ = nullptr;
  std::size_t base_ = 0;
  std::uint64_t id_ = 0;
  std::optional<std::uint64_t> generation_;
  bool in_shm_ = false;
  std::size_t size_ = 0;
};

}  // namespace

std::uint64_t current_task_id() noexcept {
  return running_task;
}

bool cancel_requested() noexcept {
  cancel_watch* w = watch;
  if (!w || running_task == 0 || w->task != running_task) return false;
  if (w->cancelled) return true;
  try {
    for (;;) {
      pollfd p{w->in_fd, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      std::byte buf[4096];
      const ssize_t n = ::read(w->in_fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // end of input (or a broken channel): the coordinator is done with us
        w->eof = true;
        w->cancelled = true;
        break;
      }
      w->ahead.insert(w->ahead.end(), buf, buf + n);
    }
    if (!w->cancelled) w->cancelled = says_stop(*w);
  } catch (const std::bad_alloc&) {
    return false;
  }
  return w->cancelled;
}

int serve(const registry& jobs, const worker_options& options) noexcept {
  if (::fcntl(options.in_fd, F_GETFD) < 0 || ::fcntl(options.out_fd, F_GETFD) < 0) {
    std::fprintf(stderr,
                 "crew worker: fd %d and fd %d must be open: this program is started by a crew "
                 "coordinator (process_pool), not by hand\n",
                 options.in_fd, options.out_fd);
    return static_cast<int>(worker_exit::not_started_by_crew);
  }
  arrange_parent_death();
  // Jobs print lines; the coordinator reads them through a pipe, where stdio would
  // otherwise buffer whole blocks and the lines would arrive late.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  segment seg;
  auto fd_option = [](const std::optional<int>& given, const char* variable) {
    return given ? *given : static_cast<int>(env_size(variable, std::size_t(-1)));
  };
  const int request_fd = fd_option(options.shm_request_fd, "CREW_SHM_REQUEST_FD");
  const int response_fd = fd_option(options.shm_response_fd, "CREW_SHM_RESPONSE_FD");
  if (request_fd >= 0 && response_fd >= 0 && !map_segment(request_fd, response_fd, seg)) {
    std::fprintf(stderr, "crew worker: cannot map the shared memory on fd %d and fd %d\n",
                 request_fd, response_fd);
    return static_cast<int>(worker_exit::bad_segment);
  }
  // Mapped: the descriptors must not reach our children, nor the variables a pool that a
  // job might start.
  if (request_fd >= 0) ::close(request_fd);
  if (response_fd >= 0) ::close(response_fd);
  ::unsetenv("CREW_SHM_REQUEST_FD");
  ::unsetenv("CREW_SHM_RESPONSE_FD");
  // The pool says its frame limit in CREW_MAX_PAYLOAD: both sides then agree on it.
  const std::size_t max_payload = options.max_payload
                                      ? *options.max_payload
                                      : env_size("CREW_MAX_PAYLOAD", protocol::default_max_payload);
  ::unsetenv("CREW_MAX_PAYLOAD");
  const std::size_t inline_max =
      options.shm_inline_max ? *options.shm_inline_max : env_size("CREW_SHM_INLINE", 0);
  ::unsetenv("CREW_SHM_INLINE");
  try {
    protocol::hello h;
    h.pid = static_cast<std::uint32_t>(::getpid());
    h.jobs = jobs.jobs();
    std::vector<const registry::entry*> index;
    for (const auto& j : h.jobs)
      index.push_back(jobs.find(j.name));

    std::vector<std::byte> out;
    // flag_shm on the hello: this worker takes and gives shared-memory descriptors.
    // flag_batch: it takes batch frames (options.batch).
    std::uint16_t hello_flags = seg ? protocol::flag_shm : std::uint16_t{0};
    if (options.batch) hello_flags |= protocol::flag_batch;
    protocol::append_frame(out, protocol::frame_type::hello, 0, protocol::encode_hello(h),
                           hello_flags);
    if (!write_all(options.out_fd, out.data(), out.size()))
      return static_cast<int>(worker_exit::io_error);
    out.clear();
    auto flush = [&](std::vector<std::byte>& pending) {
      const bool ok = pending.empty() || write_all(options.out_fd, pending.data(), pending.size());
      pending.clear();
      return ok;
    };

    protocol::frame_reader reader(max_payload);
    task_runner runner(index, seg, inline_max, max_payload);
    cancel_watch cw;
    cw.in_fd = options.in_fd;
    cw.max_payload = max_payload;
    cw.reader = &reader;
    watch = &cw;
    struct unwatch {
      ~unwatch() { watch = nullptr; }
    } unwatch_at_exit;
    for (;;) {
      protocol::frame_view f;
      boost::system::error_code ec;
      while (reader.next(f, ec)) {
        if (f.header.type == protocol::frame_type::shutdown)
          return flush(out) ? 0 : static_cast<int>(worker_exit::io_error);
        if (f.header.type == protocol::frame_type::cancel) continue;  // nothing runs now
        const bool is_batch = f.header.type == protocol::frame_type::batch && options.batch;
        if (f.header.type != protocol::frame_type::task && !is_batch) {
          std::fprintf(stderr, "crew worker: unexpected frame type %d from coordinator\n",
                       static_cast<int>(f.header.type));
          return static_cast<int>(worker_exit::protocol_error);
        }
        // A coordinator that sends tasks ahead may already have cancelled this one.
        if (cancel_buffered(reader.buffered(), f.header.task_id, max_payload)) {
          runner.refuse(f.header.task_id, out);
        } else {
          cw.task = f.header.task_id;
          cw.cancelled = false;
          cw.scan = 0;
          if (is_batch)
            runner.run_batch(f, out, max_payload);
          else
            runner.run(f, out);
          cw.task = 0;
          flush_stdio();
          if (!cw.ahead.empty()) {  // what cancel_requested() read goes back in stream order
            auto space = reader.prepare(cw.ahead.size());
            std::memcpy(space.data(), cw.ahead.data(), cw.ahead.size());
            reader.commit(cw.ahead.size());
            cw.ahead.clear();
          }
        }
        // Each reply goes out before the next task starts: that task may be slow, and the
        // coordinator's deadlines and pipelining wait on this reply.
        if (!flush(out)) return static_cast<int>(worker_exit::io_error);
      }
      // Every complete frame is handled: the gathered replies go out before we wait for more.
      if (!flush(out)) return static_cast<int>(worker_exit::io_error);
      if (ec) {
        std::fprintf(stderr, "crew worker: bad frame from coordinator: %s\n", ec.message().c_str());
        return static_cast<int>(worker_exit::protocol_error);
      }
      auto space = reader.prepare();
      const ssize_t n = ::read(options.in_fd, space.data(), space.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return static_cast<int>(worker_exit::io_error);
      }
      if (n == 0) return 0;  // the coordinator closed the channel: it is done with us
      reader.commit(static_cast<std::size_t>(n));
    }
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "crew worker: %s\n", ex.what());
    return static_cast<int>(worker_exit::io_error);
  }
}

}  // namespace crew
