// peers.py --serve as a child process; see python_peer.hpp.
#include "python_peer.hpp"

#include "bench_common.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace crew::bench {

namespace {

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

python_peer::python_peer(const std::string& python, const std::string& script,
                         std::size_t workers) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) throw_errno("pipe2");
  if (::pipe2(out, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(in[0]);
    ::close(in[1]);
    throw_errno("pipe2", err);
  }
  to_ = in[1];
  from_ = out[0];
  const std::string w = std::to_string(workers);
  std::vector<char*> argv{const_cast<char*>(python.c_str()), const_cast<char*>(script.c_str()),
                          const_cast<char*>("--serve"),      const_cast<char*>("--workers"),
                          const_cast<char*>(w.c_str()),      nullptr};
  file_actions fa;
  fa.check(::posix_spawn_file_actions_adddup2(&fa.a, in[0], 0));
  fa.check(::posix_spawn_file_actions_adddup2(&fa.a, out[1], 1));
  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  ::posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, pipe;
  sigemptyset(&none);
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &pipe);
  ::posix_spawnattr_setflags(
      &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const int rc = ::posix_spawn(&pid_, python.c_str(), &fa.a, &attr, argv.data(), environ);
  ::posix_spawnattr_destroy(&attr);
  ::close(in[0]);
  ::close(out[1]);
  if (rc != 0) {
    pid_ = -1;
    close_fd(to_);
    close_fd(from_);
    throw_errno("posix_spawn(" + python + ")", rc);
  }
  try {
    const auto line = read_line(std::chrono::seconds(120));
    auto v = boost::json::parse(line);
    if (!v.is_object() || !v.as_object().contains("ready"))
      throw std::runtime_error("peers.py --serve: unexpected first line: " + line);
    hello_ = std::move(v.as_object());
  } catch (...) {
    stop(std::chrono::milliseconds(0));
    throw;
  }
}

python_peer::~python_peer() {
  if (pid_ <= 0) return;
  try {
    finish();
  } catch (...) {
    stop(std::chrono::milliseconds(0));
  }
}

std::string python_peer::read_line(std::chrono::seconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("peers.py --serve stopped answering");
    pollfd p{from_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) throw_errno("poll");
    if (r <= 0) continue;
    char buf[65536];
    const ssize_t n = ::read(from_, buf, sizeof buf);
    if (n > 0)
      buffer_.append(buf, static_cast<std::size_t>(n));
    else if (n == 0)
      throw std::runtime_error("peers.py --serve ended (see its messages above)");
    else if (errno != EINTR)
      throw_errno("read from peers.py");
  }
}

boost::json::object python_peer::call(const boost::json::object& command,
                                      std::chrono::seconds patience) {
  if (pid_ <= 0) throw std::runtime_error("peers.py --serve is not running");
  const std::string line = boost::json::serialize(command) + "\n";
  sigpipe_blocker no_sigpipe;  // a child that died: EPIPE, not the end of crew-bench
  for (std::size_t off = 0; off < line.size();) {
    const ssize_t w = ::write(to_, line.data() + off, line.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("write to peers.py");
    }
    off += static_cast<std::size_t>(w);
  }
  const auto answer = read_line(patience);
  auto v = boost::json::parse(answer);
  if (!v.is_object()) throw std::runtime_error("peers.py --serve answered " + answer);
  auto& o = v.as_object();
  if (const auto* e = o.if_contains("error"))
    throw std::runtime_error(std::string(e->is_string() ? e->as_string().c_str() : "error") +
                             " (command " + boost::json::serialize(command) + ")");
  return std::move(o);
}

void python_peer::finish() {
  if (pid_ <= 0) return;
  call({{"cmd", "quit"}}, std::chrono::seconds(30));
  const int status = stop(std::chrono::milliseconds(30'000));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("peers.py --serve failed (wait status " + std::to_string(status) +
                             ")");
}

// Closes its input (it exits at the end of input) and waits for it; after `patience`, kills
// its process group (its pool's workers too).
int python_peer::stop(std::chrono::milliseconds patience) {
  close_fd(to_);
  const pid_t pid = std::exchange(pid_, -1);
  int status = 0;
  if (pid > 0) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    for (;;) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR)) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(-pid, SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  close_fd(from_);
  return status;
}

}  // namespace crew::bench
