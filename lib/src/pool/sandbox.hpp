// Private: the command line that runs a worker inside bubblewrap (sandbox_options in
// crew/process_pool.hpp; docs/architecture.md, "The sandbox"). Pure: it reads the file
// system (to check the paths it is given) but starts nothing.
#pragma once

#include "../spawn.hpp"

#include <crew/process_pool.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace crew::detail {

/// `bwrap` as `options` names it: the path given, else `bwrap` found on PATH; empty if
/// there is none.
std::filesystem::path sandbox_executable(const sandbox_options& options);

/// The command that runs `worker` (already resolved) with `args` in the sandbox of
/// `options`, in `cwd` (empty: this process's working directory), with `limits_prefix`
/// (e.g. `prlimit ... --`) run inside it before the worker. Empty `exe` with `why` set when
/// it cannot be built: no bubblewrap, a writable or hidden path that does not exist.
command_line sandboxed_command(const sandbox_options& options, const std::filesystem::path& worker,
                               const std::vector<std::string>& args,
                               const std::filesystem::path& cwd,
                               const std::vector<std::string>& limits_prefix, std::string& why);

/// The `prlimit(1)` prefix that sets the address-space and CPU limits (0: not set) on the
/// command that follows it; empty if neither is set.
std::vector<std::string> prlimit_prefix(std::size_t address_space, long cpu_seconds);

}  // namespace crew::detail
