// Private: starts local worker processes for a pool — everything about a worker that is a
// child of this process: which executable (a bare name found on PATH, a relative path made
// absolute once), its arguments, environment (`CREW_*` included), working directory,
// resource limits, its shared-memory segment with the shm transport (stale segments of dead
// crew processes swept once per process), its four pipes, and the spawn itself (spawn.cpp).
// With launchers (crew::launcher) the process it starts for slot i is the command of
// launcher i % n (remote_command.hpp) with the worker's command line after it, wired on
// its stdin, stdout and stderr; the local-only parts (limits, shared memory, sandbox) are
// refused before (pool_core's settled options).
// What it starts is a local_channel. The registry of live pids it shares with them serves
// pids() and the destructor's last-resort reaping.
#pragma once

#include "local_channel.hpp"

#include <crew/process_pool.hpp>

#include <memory>
#include <string>

namespace crew::detail {

/// `exe` as a pool will start it: a bare name looked up on PATH (as a shell would), a
/// relative path made absolute now (a worker's working directory may differ).
std::filesystem::path resolve_executable(const std::filesystem::path& exe);

class local_launcher {
 public:
  /// `options.executable` must already be resolved.
  explicit local_launcher(const process_pool_options& options);

  /// Starts one worker on `strand`: its channel, or null with `why` set (a boot failure:
  /// no such executable, no pipes, no shared memory, spawn failed, with the path and the
  /// working directory named).
  std::shared_ptr<local_channel> launch(const boost::asio::any_io_executor& strand,
                                        std::size_t slot, std::string& why) const;

  const std::shared_ptr<local_registry>& registry() const noexcept { return registry_; }

 private:
  std::shared_ptr<local_channel> launch_remote(const boost::asio::any_io_executor& strand,
                                               const launcher& l, std::string& why) const;

  const process_pool_options& opts_;
  std::shared_ptr<local_registry> registry_ = std::make_shared<local_registry>();
};

}  // namespace crew::detail
