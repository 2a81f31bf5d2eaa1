// Where `crew run` writes: checked writes to a file descriptor, the job log's file, and the
// terminal (results on stdout, a progress line on stderr that nothing is drawn over).
//
// Contract: a write either writes every byte or throws output_error naming what failed
// ("stdout: No space left on device"); nothing is silently dropped. SIGPIPE is the
// caller's to ignore (run_main does), so a closed pipe is an EPIPE error here.
#pragma once

#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

namespace crew::cli {

/// A write that failed; what() says where and why.
class output_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Writes all of `data` to `fd` (partial writes and EINTR retried). Throws output_error
/// "`what`: <strerror>" on failure.
void write_all(int fd, std::string_view data, const std::string& what);

/// Opens `path` for appending records (created 0644 if missing). A last line without its
/// newline (a run killed while writing it) is terminated first, so that the next record
/// starts on a line of its own. Throws output_error.
int open_append_log(const std::string& path);

/// The terminal side of a run. Results go to `out_fd` (stdout); a progress line, when
/// enabled, is drawn on stderr and cleared before anything else is written to a terminal,
/// then drawn again. Thread safety: every member locks.
class console {
 public:
  /// `progress`: draw the progress line on stderr (the caller checked it is a terminal).
  console(int out_fd, bool progress);
  console(const console&) = delete;
  console& operator=(const console&) = delete;

  /// Writes results (whole lines). Throws output_error ("stdout: ...").
  void out(std::string_view text);
  /// Writes messages (whole lines) to stderr; errors there are ignored.
  void err(std::string_view text);
  /// Updates the progress line: done of `total` (0: not known yet), failures so far; at
  /// most ten times a second unless `force`.
  void progress(std::size_t done, std::size_t total, std::size_t failed, bool force = false);
  /// Clears the progress line for good.
  void finish();
  bool progress_enabled() const noexcept { return progress_; }

 private:
  void clear_locked();
  void draw_locked();

  std::mutex mutex_;
  int out_fd_;
  bool progress_;
  bool out_is_terminal_;
  bool drawn_ = false;
  std::string line_;  // the progress line as last drawn
  double start_, last_ = -1;
};

}  // namespace crew::cli
