#include <crew/worker_runtime.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>

#include <fcntl.h>
#include <unistd.h>

namespace crew {
namespace {

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

// Runs one task frame and returns the reply frame's type; the reply payload goes to `out`.
protocol::frame_type run_task(const std::vector<const registry::entry*>& index,
                              std::span<const std::byte> payload, std::vector<std::byte>& out) {
  auto fail = [&](errc code, std::string message) {
    out = protocol::encode_error({code, std::move(message)});
    return protocol::frame_type::error;
  };
  if (payload.size() < 4) return fail(errc::decode_error, "task frame shorter than its job index");
  std::uint32_t job_index;
  std::memcpy(&job_index, payload.data(), 4);
  if (job_index >= index.size())
    return fail(errc::unknown_job, "job index " + std::to_string(job_index) + " out of range");
  const registry::entry& e = *index[job_index];
  decoder args(payload.data() + 4, payload.size() - 4);
  try {
    e.call_encoded(args, out);
    return protocol::frame_type::result;
  } catch (const decode_error& ex) {
    return fail(errc::decode_error, e.info.name + ": " + ex.message());
  } catch (const std::exception& ex) {
    return fail(errc::job_failed, ex.what());
  } catch (...) {
    return fail(errc::job_failed, "unknown exception");
  }
}

}  // namespace

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
  try {
    protocol::hello h;
    h.pid = static_cast<std::uint32_t>(::getpid());
    h.jobs = jobs.jobs();
    std::vector<const registry::entry*> index;
    for (const auto& j : h.jobs)
      index.push_back(jobs.find(j.name));

    std::vector<std::byte> out;
    protocol::append_frame(out, protocol::frame_type::hello, 0, protocol::encode_hello(h));
    if (!write_all(options.out_fd, out.data(), out.size()))
      return static_cast<int>(worker_exit::io_error);

    protocol::frame_reader reader(options.max_payload);
    std::vector<std::byte> reply;
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
        reply.clear();
        const auto type = run_task(index, f.payload, reply);
        flush_stdio();
        out.clear();
        protocol::append_frame(out, type, f.header.task_id, reply);
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
