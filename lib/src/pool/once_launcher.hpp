// Private: listen_options::launch_once — the one command that brings a listening pool's
// workers (`srun -N2 -n8 --input=none`, followed by the worker's command line). A local
// child process in its own process group, started with stdin on /dev/null, its environment
// the pool's `env_allow` plus what launchers need (launcher_env_allow) plus
// `CREW_CONNECT` and `CREW_SECRET` (in the environment, never on a command line). Its stdout
// and stderr lines are the pool's output (slot event::no_worker), the last 12 of them kept
// for messages. It is watched through its pidfd; its end is reported once (`on_exit`, with
// how it ended and those lines). stop() climbs: SIGTERM to its group (srun then ends its
// step), then SIGKILL. Listed in the pool's local_registry, so that the destructor's last
// resort reaps it too. On the pool's strand.
#pragma once

#include "local_channel.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace crew::detail {

class once_launcher : public std::enable_shared_from_this<once_launcher> {
 public:
  using line_handler = std::function<void(output_line::stream, std::string_view)>;
  /// How it ended ("exited with code 1") and its last lines (" | "-joined).
  using exit_handler = std::function<void(const std::string& how, const std::string& tail)>;

  /// Starts `command` (its first word looked up on PATH). Null, with `why` set, if it
  /// cannot be started. The handlers run on `strand`, only while `owner` is alive.
  static std::shared_ptr<once_launcher> start(const boost::asio::any_io_executor& strand,
                                              const std::vector<std::string>& command,
                                              const child_setup& setup,
                                              std::shared_ptr<local_registry> registry,
                                              std::weak_ptr<void> owner, line_handler on_line,
                                              exit_handler on_exit, std::string& why);

  /// The command as one line, for messages.
  const std::string& text() const noexcept { return text_; }
  int pid() const noexcept { return pid_; }
  bool running() const noexcept { return !exited_; }
  /// SIGTERM (terminate) or SIGKILL (kill) to its process group while it runs; close_input
  /// does nothing (its input is /dev/null).
  void stop(policy::stop_step step);

  once_launcher(const boost::asio::any_io_executor& strand, boost::process::v2::process proc,
                unique_fd out, unique_fd err, std::shared_ptr<local_registry> registry,
                std::weak_ptr<void> owner, line_handler on_line, exit_handler on_exit,
                std::string text);

 private:
  void read(output_line::stream which);
  void wait_exit();
  void maybe_report();

  std::optional<boost::process::v2::process> proc_;
  int pid_ = -1;
  std::shared_ptr<local_registry> registry_;
  std::weak_ptr<void> owner_;
  line_handler on_line_;
  exit_handler on_exit_;
  std::string text_;
  boost::asio::posix::stream_descriptor out_, err_;
  std::array<char, 4096> out_buf_{}, err_buf_{};
  line_splitter out_lines_, err_lines_;
  std::deque<std::string> tail_;
  boost::asio::steady_timer linger_;
  int status_ = -1;
  bool exited_ = false, out_done_ = false, err_done_ = false, reported_ = false;
  bool killed_by_crew_ = false;
};

}  // namespace crew::detail
