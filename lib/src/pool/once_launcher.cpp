#include "once_launcher.hpp"

#include "local_launcher.hpp"
#include "remote_command.hpp"

#include <boost/asio/bind_executor.hpp>

#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace crew::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::size_t tail_lines = 12;
constexpr std::chrono::milliseconds exit_linger{300};

std::string describe(int status, bool killed_by_crew) {
  if (status < 0) return "ended; its exit status is unknown";
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    std::string s = "was killed by signal " + std::to_string(sig);
    if (const char* abbrev = sigabbrev_np(sig)) s += std::string(" (SIG") + abbrev + ")";
    if (killed_by_crew) s += ", sent by crew";
    return s;
  }
  return "ended with status " + std::to_string(status);
}

}  // namespace

std::shared_ptr<once_launcher> once_launcher::start(
    const asio::any_io_executor& strand, const std::vector<std::string>& command,
    const child_setup& setup, std::shared_ptr<local_registry> registry, std::weak_ptr<void> owner,
    line_handler on_line, exit_handler on_exit, std::string& why) {
  if (command.empty() || command[0].empty()) {
    why = "listen_options::launch_once is an empty command";
    return nullptr;
  }
  std::string text;
  for (const auto& w : command)
    text += (text.empty() ? "" : " ") + shell_quote(w);
  const auto exe = resolve_executable(command[0]);
  if (::access(exe.c_str(), X_OK) != 0) {
    why = "cannot start the workers' launcher '" + command[0] + "': not found or not executable";
    return nullptr;
  }
  pipe_pair out, err;
  for (auto* p : {&out, &err})
    if (auto ec = make_pipe(*p)) {
      why = "cannot create pipes for the workers' launcher: " + ec.message();
      return nullptr;
    }
  unique_fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null) {
    why = std::string("cannot open /dev/null: ") + std::strerror(errno);
    return nullptr;
  }
  child_fds fds;
  fds.on_stdio = true;
  fds.channel_in = null.get();
  fds.channel_out = out.write.get();
  fds.err = err.write.get();
  boost::system::error_code ec;
  const std::vector<std::string> args(command.begin() + 1, command.end());
  auto proc = spawn_worker(strand, exe, args, setup, fds, {}, ec);
  if (ec) {
    why = "cannot start the workers' launcher '" + text + "': " + ec.message();
    return nullptr;
  }
  registry->add(proc.id());
  auto l = std::make_shared<once_launcher>(strand, std::move(proc), std::move(out.read),
                                           std::move(err.read), std::move(registry),
                                           std::move(owner), std::move(on_line),
                                           std::move(on_exit), std::move(text));
  l->wait_exit();
  l->read(output_line::stream::out);
  l->read(output_line::stream::err);
  return l;
}

once_launcher::once_launcher(const asio::any_io_executor& strand, boost::process::v2::process proc,
                             unique_fd out, unique_fd err, std::shared_ptr<local_registry> registry,
                             std::weak_ptr<void> owner, line_handler on_line, exit_handler on_exit,
                             std::string text)
    : proc_(std::move(proc)),
      pid_(proc_->id()),
      registry_(std::move(registry)),
      owner_(std::move(owner)),
      on_line_(std::move(on_line)),
      on_exit_(std::move(on_exit)),
      text_(std::move(text)),
      out_(strand, out.release()),
      err_(strand, err.release()),
      linger_(strand) {
}

void once_launcher::read(output_line::stream which) {
  const bool is_out = which == output_line::stream::out;
  auto& pipe = is_out ? out_ : err_;
  auto& buf = is_out ? out_buf_ : err_buf_;
  pipe.async_read_some(asio::buffer(buf), [self = shared_from_this(), which,
                                           is_out](error_code ec, std::size_t n) {
    auto& splitter = is_out ? self->out_lines_ : self->err_lines_;
    auto emit = [&](std::string_view line) {
      self->tail_.emplace_back(line.substr(0, 512));
      if (self->tail_.size() > tail_lines) self->tail_.pop_front();
      // The owner (the pool) is held for the call: the handler may run as it is destroyed.
      if (auto owner = self->owner_.lock(); owner && self->on_line_) self->on_line_(which, line);
    };
    if (ec) {
      splitter.finish(emit);
      (is_out ? self->out_done_ : self->err_done_) = true;
      return self->maybe_report();
    }
    splitter.feed(std::string_view((is_out ? self->out_buf_ : self->err_buf_).data(), n), emit);
    self->read(which);
  });
}

void once_launcher::wait_exit() {
  proc_->handle().async_wait(
      asio::bind_executor(out_.get_executor(), [self = shared_from_this()](error_code ec, int st) {
        self->exited_ = true;
        self->status_ = ec ? -1 : st;
        self->proc_->detach();  // reaped: never signal this pid again
        // Its children (srun's helpers) die with it: it led its own process group. Not if
        // this wait did not reap it (the destructor did: its group id may be anyone's now).
        if (!ec && !self->registry_->reaped_by_destructor()) ::kill(-self->pid_, SIGKILL);
        self->registry_->remove(self->pid_);
        // Its pipes get a moment to drain (a grandchild may hold them open).
        self->linger_.expires_after(exit_linger);
        self->linger_.async_wait([self](error_code e) {
          if (e) return;
          self->out_done_ = self->err_done_ = true;
          self->maybe_report();
        });
        self->maybe_report();
      }));
}

void once_launcher::maybe_report() {
  if (reported_ || !exited_ || !out_done_ || !err_done_) return;
  reported_ = true;
  linger_.cancel();
  error_code ignored;
  out_.close(ignored);
  err_.close(ignored);
  std::string tail;
  for (const auto& l : tail_)
    tail += (tail.empty() ? "" : " | ") + l;
  if (auto owner = owner_.lock(); owner && on_exit_)
    on_exit_(describe(status_, killed_by_crew_), tail);
}

void once_launcher::stop(policy::stop_step step) {
  if (exited_ || registry_->reaped_by_destructor()) return;
  if (step == policy::stop_step::terminate) {
    ::kill(-pid_, SIGTERM);
  } else if (step == policy::stop_step::kill) {
    killed_by_crew_ = true;
    ::kill(-pid_, SIGKILL);
  }
}

}  // namespace crew::detail
