// Private: the command line that runs a worker through a launcher (crew::launcher in
// crew/process_pool.hpp; docs/remote.md): the launcher's prefix, then
// `env CREW_STDIO=1 CREW_MAX_PAYLOAD=N [-C DIR] [NAME=value ...] WORKER ARGS...` — as
// separate arguments, or quoted into one word for a remote shell (ssh joins its arguments
// with spaces and hands them to the login shell). And the name a launcher's workers go by
// in messages. Pure: it reads PATH to find the launcher, starts nothing.
#pragma once

#include "../spawn.hpp"

#include <crew/process_pool.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace crew::detail {

/// `word` quoted for a POSIX shell: itself if it is made only of characters no shell
/// treats specially, else in single quotes (a `'` inside written as `'\''`).
std::string shell_quote(std::string_view word);

/// `l`'s command, its words joined by spaces (for messages).
std::string command_text(const launcher& l);

/// What `l`'s workers are called: its name, else ssh's destination, srun's `-w` node list,
/// else the whole command.
std::string launcher_name(const launcher& l);

/// Whether `l` passes the worker's command line to a shell (see launcher::passing: with
/// `automatic`, when a word of its command is ssh or autossh).
bool passes_through_shell(const launcher& l);

/// What the remote side runs, one word per argument: env, `-C cwd` if `cwd` is not empty,
/// crew's variables (CREW_STDIO, CREW_MAX_PAYLOAD, and CREW_HEARTBEAT_TIMEOUT_MS unless
/// `heartbeat_timeout` is 0), `env_entries`, the worker and `args`.
std::vector<std::string> remote_words(const std::filesystem::path& worker,
                                      const std::vector<std::string>& args,
                                      const std::vector<std::string>& env_entries,
                                      const std::filesystem::path& cwd, std::size_t max_payload,
                                      std::chrono::milliseconds heartbeat_timeout);

/// The local command: `l.command[0]` found on PATH (empty `exe` with `why` set if it is
/// not there, or if the command is empty), its other words, then `words` (joined and
/// quoted into one argument for a shell launcher).
command_line launcher_command(const launcher& l, const std::vector<std::string>& words,
                              std::string& why);

/// The environment variables a launcher needs from the coordinator's environment besides
/// env_allow: its agent and credentials (`SSH_AUTH_SOCK`, `SSH_AGENT_PID`, `KRB5CCNAME`)
/// and, for srun inside an allocation, `SLURM_*`.
const std::vector<std::string>& launcher_env_allow();

}  // namespace crew::detail
