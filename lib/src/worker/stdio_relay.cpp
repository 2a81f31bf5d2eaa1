// The relay thread of a worker on stdio. Contract in stdio_relay.hpp.
#include "stdio_relay.hpp"

#include "environment.hpp"

#include <crew/worker_runtime.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <thread>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

namespace crew::detail {
namespace {

constexpr std::size_t read_chunk = std::size_t{64} << 10;
constexpr int pipe_bytes = 1 << 20;  // room for a few frames behind a long job
// A userspace buffer the pipe has drained is given back above this size.
constexpr std::size_t keep_pending = std::size_t{4} << 20;
// While a pong waits for the lock on frames out (serve is writing a frame), look again this
// often; reading the input goes on meanwhile.
constexpr int pong_retry_ms = 2;

// The process's relay, never freed: its thread may run until the process ends (and a leak
// checker sees it reachable).
stdio_relay* the_relay = nullptr;

constexpr int exit_code(worker_exit e) noexcept {
  return static_cast<int>(e);
}

}  // namespace

stdio_relay::stdio_relay(int frames_in, int frames_out, int pipe_read, int pipe_write,
                         std::size_t max_payload, std::chrono::milliseconds silence)
    : in_(frames_in),
      out_(frames_out),
      serve_in_(pipe_read),
      pipe_out_(pipe_write),
      max_payload_(max_payload),
      silence_(silence),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
}

void stdio_relay::hold(const std::byte* p, std::size_t n) {
  if (held_.empty()) {
    held_since_ = std::chrono::steady_clock::now();
    const std::uint64_t one = 1;
    if (wake_ < 0 || ::write(wake_, &one, sizeof one) < 0) {  // no watch: send it now
      write_held(p, n);
      return;
    }
  }
  held_.insert(held_.end(), p, p + n);
}

bool stdio_relay::write_held(const std::byte* p, std::size_t n) {
  if (held_.empty()) return write_all(out_, p, n);
  held_.insert(held_.end(), p, p + n);
  const bool ok = write_all(out_, held_.data(), held_.size());
  held_.clear();
  if (held_.capacity() > keep_pending) held_.shrink_to_fit();
  return ok;
}

// On the relay thread: sends what is held once it has waited gather_limit (a long task
// began after it). False if frames out is broken.
bool stdio_relay::send_held_if_due() {
  std::unique_lock lock(out_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || held_.empty()) return true;  // serve is writing: it sends them
  if (std::chrono::steady_clock::now() - held_since_ < gather_limit) return true;
  return write_held(nullptr, 0);
}

bool write_all(int fd, const std::byte* p, std::size_t n) noexcept {
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

stdio_relay* stdio_relay::start(int frames_in, int frames_out, std::size_t max_payload,
                                std::chrono::milliseconds silence) noexcept {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("crew worker: cannot make the stdio relay's pipe");
    return nullptr;
  }
  ::fcntl(fds[1], F_SETPIPE_SZ, pipe_bytes);  // best effort: the default 64 KiB works too
  ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  stdio_relay* relay = nullptr;
  // The thread takes no signal meant for the process: a job's handlers, and the system
  // calls they interrupt, stay on the thread that runs the jobs.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    relay = new stdio_relay(frames_in, frames_out, fds[0], fds[1], max_payload, silence);
    std::thread([relay] { relay->run(); }).detach();
    the_relay = relay;
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "crew worker: cannot start the stdio relay: %s\n", ex.what());
    delete relay;
    relay = nullptr;
    ::close(fds[0]);
    ::close(fds[1]);
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return relay;
}

void stdio_relay::finish() noexcept {
  auto expected = state::serving;
  if (state_.compare_exchange_strong(expected, state::serve_ends)) return;
  for (;;)  // the relay is ending the process, with its exit code
    ::pause();
}

void stdio_relay::run() noexcept {
  int code = 0;
  try {
    code = relay();
  } catch (const std::exception& ex) {  // std::bad_alloc: the stream cannot be kept in order
    std::fprintf(stderr, "crew worker: stdio relay: %s\n", ex.what());
    code = exit_code(worker_exit::io_error);
  }
  if (code < 0) return;  // serve has returned: its exit code stands
  auto expected = state::serving;
  if (!state_.compare_exchange_strong(expected, state::relay_ends)) return;
  // The coordinator is gone (or cannot be heard): nobody else would end the job's children,
  // nor us in the middle of a long job.
  kill_rest_of_group();
  ::_exit(code);
}

// The loop: returns the exit code for the process at end of input or on a broken channel,
// or -1 once serve has returned.
int stdio_relay::relay() {
  std::vector<std::byte> buf(read_chunk);
  using clock = std::chrono::steady_clock;
  auto heard = clock::now();
  bool holding = false;  // replies may be held (a hold began and was not sent yet)
  for (;;) {
    if (state_.load() == state::serve_ends) return -1;
    const bool waiting = pending_at_ < pending_.size();
    int wait_ms = pongs_.empty() ? -1 : pong_retry_ms;
    if (silence_.count() > 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(heard + silence_ - clock::now());
      if (left.count() <= 0) {
        std::fprintf(stderr,
                     "crew worker: nothing from the coordinator for %lld ms "
                     "(CREW_HEARTBEAT_TIMEOUT_MS): it is gone; exiting\n",
                     static_cast<long long>(silence_.count()));
        return 0;
      }
      const int until = static_cast<int>(std::min<long long>(left.count() + 1, 60'000));
      wait_ms = wait_ms < 0 ? until : std::min(wait_ms, until);
    }
    // Replies held back: wake when the oldest is due (a hold beginning wakes us at once).
    if (holding) wait_ms = wait_ms < 0 ? 1 : std::min(wait_ms, 1);
    pollfd p[3] = {{in_, POLLIN, 0}, {wake_, POLLIN, 0}, {pipe_out_, POLLOUT, 0}};
    if (!waiting) p[2].fd = -1;
    if (::poll(p, 3, wait_ms) < 0) {
      if (errno == EINTR) continue;
      return exit_code(worker_exit::io_error);
    }
    if (p[1].revents != 0) {
      std::uint64_t n = 0;
      (void)!::read(wake_, &n, sizeof n);
      holding = true;
    }
    if (holding) {
      if (!send_held_if_due()) return exit_code(worker_exit::io_error);
      std::lock_guard lock(out_mutex_);
      holding = !held_.empty();
    }
    if (waiting && p[2].revents != 0 && !drain()) return exit_code(worker_exit::io_error);
    if (p[0].revents != 0) {
      const ssize_t n = ::read(in_, buf.data(), buf.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return 0;  // end of input (or a broken link): the coordinator is done
      heard = clock::now();
      take(buf.data(), static_cast<std::size_t>(n));
      if (!drain()) return exit_code(worker_exit::io_error);
    }
    if (!send_pongs()) return exit_code(worker_exit::io_error);
  }
}

// Follows the frames in `n` input bytes: pings are answered, everything else forwarded.
void stdio_relay::take(const std::byte* p, std::size_t n) {
  while (n > 0) {
    if (raw_) {
      forward(p, n);
      return;
    }
    if (payload_left_ > 0) {
      const std::size_t k = std::min(n, payload_left_);
      forward(p, k);
      p += k;
      n -= k;
      payload_left_ -= k;
      continue;
    }
    const std::size_t k = std::min(n, protocol::header_size - header_have_);
    std::copy(p, p + k, header_ + header_have_);
    header_have_ += k;
    p += k;
    n -= k;
    if (header_have_ < protocol::header_size) return;
    header_have_ = 0;
    protocol::frame_header h;
    if (protocol::parse_header(header_, max_payload_, h)) {
      // Broken: the serve loop reads the same header, reports it and exits.
      raw_ = true;
      forward(header_, protocol::header_size);
      continue;
    }
    if (h.type == protocol::frame_type::ping && h.length == 0) {
      pongs_.push_back(h.task_id);
      continue;
    }
    forward(header_, protocol::header_size);
    payload_left_ = h.length;
  }
}

void stdio_relay::forward(const std::byte* p, std::size_t n) {
  if (pending_at_ > 0 && pending_at_ >= pending_.size() / 2) {  // drop what the pipe took
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(pending_at_));
    pending_at_ = 0;
  }
  pending_.insert(pending_.end(), p, p + n);
}

// Writes what the pipe takes without blocking; false if the pipe is broken.
bool stdio_relay::drain() {
  while (pending_at_ < pending_.size()) {
    const ssize_t w =
        ::write(pipe_out_, pending_.data() + pending_at_, pending_.size() - pending_at_);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;  // serve is busy: keep it
      return false;
    }
    pending_at_ += static_cast<std::size_t>(w);
  }
  pending_.clear();
  pending_at_ = 0;
  if (pending_.capacity() > keep_pending) pending_.shrink_to_fit();
  return true;
}

// Writes the pongs owed, all in one write, unless serve is writing a frame: then they wait
// for the next turn of the loop. False if frames out is broken.
bool stdio_relay::send_pongs() {
  if (pongs_.empty()) return true;
  std::unique_lock lock(out_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return true;
  pong_frames_.clear();
  for (const std::uint64_t id : pongs_)
    protocol::append_frame(pong_frames_, protocol::frame_type::pong, id, {});
  pongs_.clear();
  return write_all(out_, pong_frames_.data(), pong_frames_.size());
}

}  // namespace crew::detail
