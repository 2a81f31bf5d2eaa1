// peers.py --serve as a child of crew-bench: Python's warm pools, answering one command at a
// time, so that crew-bench can interleave its rounds (crew round, Python round, crew round,
// ...). The protocol is peers.py's (its module documentation): one JSON command per line on
// the child's stdin, one JSON line per command on its stdout.
#pragma once

#include <boost/json/object.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>

namespace crew::bench {

class python_peer {
 public:
  /// Starts `python script --serve --workers N` (posix_spawn; stdin and stdout are ours
  /// through close-on-exec pipes, stderr inherited; its own process group, so that its pool's
  /// workers go with it when it has to be killed) and waits for its ready line (its pool is
  /// warm then). Throws std::runtime_error if it cannot start or does not answer.
  python_peer(const std::string& python, const std::string& script, std::size_t workers);
  /// finish(), or kills the process group if that fails.
  ~python_peer();
  python_peer(const python_peer&) = delete;
  python_peer& operator=(const python_peer&) = delete;

  /// The ready line: {"ready", "python", "start_method", "workers"}.
  const boost::json::object& hello() const noexcept { return hello_; }

  /// Sends `command` ({"cmd": ..., ...}) and returns its answer. Throws std::runtime_error
  /// on an answer {"error": ...} (a wrong result, a bad command), when the child ends, or
  /// when no answer comes within `patience`.
  boost::json::object call(const boost::json::object& command,
                           std::chrono::seconds patience = std::chrono::seconds(600));

  /// Normal end: "quit", end of input; throws unless it exits with status 0 within 30 s.
  void finish();

 private:
  std::string read_line(std::chrono::seconds patience);
  int stop(std::chrono::milliseconds patience);

  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string buffer_;
  boost::json::object hello_;
};

}  // namespace crew::bench
