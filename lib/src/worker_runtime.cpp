#include <crew/worker_runtime.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <optional>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crew {
namespace {

thread_local std::uint64_t running_task = 0;

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

// One task: decodes, runs, and leaves the whole reply frame in `reply`.
class task_runner {
 public:
  task_runner(const std::vector<const registry::entry*>& index, const segment& seg,
              std::size_t inline_max)
      : index_(index), seg_(seg), inline_max_(inline_max) {}

  void run(const protocol::frame_view& f, std::vector<std::byte>& reply) {
    reply_ = &reply;
    id_ = f.header.task_id;
    std::span<const std::byte> p = f.payload;
    if (p.size() < 4) return fail(errc::decode_error, "task frame shorter than its job index");
    std::uint32_t job_index;
    std::memcpy(&job_index, p.data(), 4);
    if (job_index >= index_.size())
      return fail(errc::unknown_job, "job index " + std::to_string(job_index) + " out of range");
    std::span<const std::byte> args = p.subspan(4);
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
    struct running_guard {
      explicit running_guard(std::uint64_t id) { running_task = id; }
      ~running_guard() { running_task = 0; }
    } guard(id_);
    try {
      e.call_encoded(in, [this](std::size_t size) { return sink(size); });
      finish_result();
    } catch (const decode_error& ex) {
      fail(errc::decode_error, e.info.name + ": " + ex.message());
    } catch (const std::exception& ex) {
      fail(errc::job_failed, ex.what());
    } catch (...) {
      fail(errc::job_failed, "unknown exception");
    }
  }

 private:
  // Large results of shm tasks go straight into the response area; everything else is
  // written straight into the reply frame after its header.
  encoder sink(std::size_t size) {
    in_shm_ = generation_ && size > inline_max_ && size <= seg_.layout.response_size;
    size_ = size;
    if (in_shm_) return encoder(seg_.response().data(), size);
    reply_->clear();
    return encoder(protocol::append_frame_for(*reply_, protocol::frame_type::result, id_, size),
                   size);
  }

  // An inline result is complete once encoded; a shared one still needs its descriptor.
  void finish_result() {
    if (!in_shm_) return;
    reply_->clear();
    std::vector<std::byte> d;
    protocol::append_descriptor(d, {0, size_, *generation_});
    protocol::append_frame(*reply_, protocol::frame_type::result, id_, d, protocol::flag_shm);
  }

  void fail(errc code, std::string message) {
    reply_->clear();
    protocol::append_frame(*reply_, protocol::frame_type::error, id_,
                           protocol::encode_error({code, std::move(message)}));
  }

  const std::vector<const registry::entry*>& index_;
  const segment& seg_;
  std::size_t inline_max_;
  std::vector<std::byte>* reply_ = nullptr;
  std::uint64_t id_ = 0;
  std::optional<std::uint64_t> generation_;
  bool in_shm_ = false;
  std::size_t size_ = 0;
};

}  // namespace

std::uint64_t current_task_id() noexcept {
  return running_task;
}

int serve(const registry& jobs, const worker_options& options) noexcept {
  if (::fcntl(options.in_fd, F_GETFD) < 0 || ::fcntl(options.out_fd, F_GETFD) < 0) {
    std::fprintf(stderr,
                 "crew worker: fd %d and fd %d must be open: this program is started by a crew "
                 "coordinator (process_pool), not by hand\n",
                 options.in_fd, options.out_fd);
    return static_cast<int>(worker_exit::not_started_by_crew);
  }
  // Jobs print lines; the coordinator reads them through a pipe, where stdio would
  // otherwise buffer whole blocks and the lines would arrive late.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  segment seg;
  auto fd_option = [](int given, const char* variable) {
    return given != -2 ? given : static_cast<int>(env_size(variable, std::size_t(-1)));
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
  const std::size_t inline_max = options.shm_inline_max != static_cast<std::size_t>(-1)
                                     ? options.shm_inline_max
                                     : env_size("CREW_SHM_INLINE", 0);
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
    protocol::append_frame(out, protocol::frame_type::hello, 0, protocol::encode_hello(h),
                           seg ? protocol::flag_shm : std::uint16_t{0});
    if (!write_all(options.out_fd, out.data(), out.size()))
      return static_cast<int>(worker_exit::io_error);

    protocol::frame_reader reader(options.max_payload);
    task_runner runner(index, seg, inline_max);
    for (;;) {
      protocol::frame_view f;
      boost::system::error_code ec;
      while (reader.next(f, ec)) {
        if (f.header.type == protocol::frame_type::shutdown) return 0;
        if (f.header.type == protocol::frame_type::cancel) continue;  // nothing runs now
        if (f.header.type != protocol::frame_type::task) {
          std::fprintf(stderr, "crew worker: unexpected frame type %d from coordinator\n",
                       static_cast<int>(f.header.type));
          return static_cast<int>(worker_exit::protocol_error);
        }
        runner.run(f, out);
        flush_stdio();
        if (!write_all(options.out_fd, out.data(), out.size()))
          return static_cast<int>(worker_exit::io_error);
      }
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
