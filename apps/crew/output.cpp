#include "output.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crew::cli {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw output_error(what + ": " + std::strerror(errno));
    }
    if (n == 0) throw output_error(what + ": nothing written");
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

int open_append_log(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw output_error("job log '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') {
      try {
        write_all(fd, "\n", "job log '" + path + "'");
      } catch (...) {
        ::close(fd);
        throw;
      }
    }
  }
  return fd;
}

console::console(int out_fd, bool progress)
    : out_fd_(out_fd),
      progress_(progress),
      out_is_terminal_(::isatty(out_fd) == 1),
      start_(now_seconds()) {
}

void console::out(std::string_view text) {
  std::lock_guard lock(mutex_);
  const bool redraw = drawn_ && out_is_terminal_;
  if (redraw) clear_locked();
  write_all(out_fd_, text, "stdout");
  if (redraw) draw_locked();
}

void console::err(std::string_view text) {
  std::lock_guard lock(mutex_);
  const bool redraw = drawn_;
  if (redraw) clear_locked();
  try {
    write_all(STDERR_FILENO, text, "stderr");
  } catch (const output_error&) {
    // Nowhere left to say it.
  }
  if (redraw) draw_locked();
}

void console::progress(std::size_t done, std::size_t total, std::size_t failed, bool force) {
  if (!progress_) return;
  std::lock_guard lock(mutex_);
  const double now = now_seconds();
  if (!force && now - last_ < 0.1) return;
  last_ = now;
  const double t = now - start_;
  const double rate = t > 0 ? static_cast<double>(done) / t : 0;
  char eta[32] = "-";
  if (total != 0 && rate > 0 && done < total)
    std::snprintf(eta, sizeof eta, "%.1fs", static_cast<double>(total - done) / rate);
  char buf[160];
  if (total != 0)
    std::snprintf(buf, sizeof buf, "[%zu/%zu] %.1f/s ETA %s, %zu failed", done, total, rate, eta,
                  failed);
  else
    std::snprintf(buf, sizeof buf, "[%zu] %.1f/s, %zu failed", done, rate, failed);
  line_ = buf;
  draw_locked();
}

void console::finish() {
  std::lock_guard lock(mutex_);
  if (drawn_) clear_locked();
  progress_ = false;
}

void console::clear_locked() {
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, "\r\033[K", 4);
  drawn_ = false;
}

void console::draw_locked() {
  if (!progress_ || line_.empty()) return;
  const std::string s = "\r\033[K" + line_;
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, s.data(), s.size());
  drawn_ = true;
}

}  // namespace crew::cli
