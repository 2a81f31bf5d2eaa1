// crew-hostile-worker: a worker that attacks its coordinator, one mode per finding of the
// security review (issue 14). Tests start it in a pool and check that the coordinator, the
// other tasks and the other workers come through unharmed.
//
// Usage: crew-hostile-worker MODE [ARGS...]. Modes that speak the protocol by hand use the
// helpers below (frames to fd 4, frames from fd 3); modes built on crew::serve register
// jobs. Modes live in hostile_worker.cpp (the process- and sandbox-level attacks) and
// hostile_frames.cpp (oversized and slow frames, large results).
#pragma once

#include <crew/job.hpp>
#include <crew/protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hostile {

/// The attack jobs of the `serve` mode (the demo jobs are served too).
namespace jobs {
/// Tries every reach beyond its own task and reports each, one `what: outcome` line per
/// attack: processes visible, siblings, signal/environ/fds of `$HOSTILE_TARGET_PID`,
/// `$HOSTILE_SECRET`, a controlling terminal, session, no_new_privs, dumpable, writes to
/// the `:`-separated `$HOSTILE_WRITE_TRY` directories, reads of the `$HOSTILE_READ_TRY`
/// files, the entries of /run, a connection to 127.0.0.1 at `$HOSTILE_CONNECT_PORT`.
inline const crew::job<std::string(int)> probe{"probe"};
/// Finds sibling hostile workers in /proc, stops each and opens its reply channel for
/// writing (then lets it go): how many could have been sent forged results.
inline const crew::job<int(int)> forge{"forge"};
/// Reopens the shared request file read-write through /proc/self/fd and tries to shrink,
/// grow, write and map it writable: how many of the four were refused (-1: no shm).
inline const crew::job<int(int)> shrink_request{"shrink_request"};
/// Prints the given number of lines full of terminal escape sequences on stdout.
inline const crew::job<int(int)> spew{"spew"};
/// Forks a child that leaves the worker's process group and session (setsid), names
/// itself `crew-escapee` and sleeps for the given seconds; returns at once.
inline const crew::job<int(int)> escape{"escape"};
}  // namespace jobs

/// Writes all of `bytes` to fd 4 (the reply channel); false if the channel is gone.
bool write_all(std::span<const std::byte> bytes);
/// Writes one frame to fd 4.
bool write_frame(crew::protocol::frame_type type, std::uint64_t id,
                 std::span<const std::byte> payload, std::uint16_t flags = 0);
/// Sends a hello announcing `jobs` (name, signature) pairs.
bool say_hello(const std::vector<std::pair<std::string, std::string>>& jobs,
               std::uint16_t flags = 0);
/// Reads the next whole frame from fd 3 into `payload`; empty at end of input.
std::optional<crew::protocol::frame_header> read_frame(std::vector<std::byte>& payload);

/// Runs a mode of hostile_frames.cpp: its exit code, or empty if `mode` is not one of them.
std::optional<int> frame_mode(std::string_view mode, std::span<char*> args);

}  // namespace hostile
