// Shared pieces of the crew CLI's subcommands.
#pragma once

#include <crew/error.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace crew {
struct launcher;  // crew/process_pool.hpp
}

namespace crew::cli {

/// Exit codes of the crew CLI (documented in `crew --help`).
enum exit_code : int {
  ok = 0,
  tasks_failed = 1,  ///< the command ran, but some tasks failed
  usage = 2,         ///< bad command line
  internal = 3,      ///< crew itself failed
  cannot_run =
      4,  ///< crew run could not run at all: no worker started, unknown job, bad input file
  output_failed = 5,  ///< a result could not be written (stdout, job log): the run stopped
};

/// The exit codes as `--help` explains them.
inline constexpr const char* exit_codes_text =
    "0 success, 1 some tasks failed, 2 bad command line, 3 internal error,\n"
    "  4 could not run at all (no worker starts, unknown job, unreadable input),\n"
    "  5 a result could not be written (stdout or job log; the run stopped),\n"
    "  129 / 130 / 143 crew run stopped by SIGHUP / SIGINT / SIGTERM (after a drain, --grace)";

/// crew's version (the project's, from CMake).
inline constexpr const char* crew_version = CREW_VERSION;

/// An io_context run by one background thread for the lifetime of the object: what the
/// process pool's asynchronous work runs on while the CLI's main thread waits.
class io_thread {
 public:
  io_thread();
  ~io_thread();
  boost::asio::io_context& context() noexcept { return ioc_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

/// Seconds elapsed on a steady clock since construction.
class stopwatch {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// Python's repr of a float: the shortest text that reads back to the same double.
std::string py_float(double v);
/// "code: message" for a failed task.
std::string describe(const std::exception_ptr& ep);
/// The errc name of a failed task ("job_failed", ...).
std::string error_name(const std::exception_ptr& ep);

/// While alive, in-process writes to stdout go to stderr; `json_out()` writes to the
/// real stdout. Used by --json so that stdout holds nothing but the JSON document.
class stdout_to_stderr {
 public:
  explicit stdout_to_stderr(bool active);
  ~stdout_to_stderr();
  void json_out(const boost::json::value& v) const;

 private:
  int saved_ = -1;
};

/// `text` split into words as a POSIX shell would, without expansions: blanks separate
/// words, '...' is literal, "..." takes \" and \\, a backslash outside quotes escapes the
/// next character. nullopt, with `why` set, for an unterminated quote or trailing backslash.
std::optional<std::vector<std::string>> split_words(std::string_view text, std::string& why);

/// The launchers of `--launcher` options (each a command, split by split_words); empty with
/// `why` set for one that is empty or does not split.
std::vector<launcher> parse_launchers(const std::vector<std::string>& texts, std::string& why);

/// Where `--listen ADDR:PORT` listens: an IPv4 address, a host name, or an IPv6 address in
/// brackets (`[::1]:0`; `host` is then without them); port 0: any free one.
struct listen_address {
  std::string host;
  std::uint16_t port = 0;
  /// `host:port` as a worker would give it to --connect (IPv6 in brackets).
  std::string text(std::uint16_t actual_port) const;
};
/// `text` as ADDR:PORT; nullopt with `why` set for another shape.
std::optional<listen_address> parse_listen_address(std::string_view text, std::string& why);

/// The secret for `--listen`: the content of `secret_file` if given (crew::read_secret_file:
/// a file only its owner can read), else `$CREW_SECRET`, else empty (the pool makes one).
/// Throws std::runtime_error naming the file and why it cannot be used.
std::string listen_secret(const std::string& secret_file);

int notebook_main(const std::vector<std::string>& args);
int run_main(const std::vector<std::string>& args);
int advise_main(const std::vector<std::string>& args);
int jobs_main(const std::vector<std::string>& args);

}  // namespace crew::cli
