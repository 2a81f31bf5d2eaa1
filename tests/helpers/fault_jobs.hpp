// Jobs of the fault-injection worker (tests/helpers/fault_worker.cpp).
#pragma once

#include <crew/job.hpp>

#include <cstdint>
#include <string>

namespace crew::test {

/// Raises the given signal in the worker.
inline const job<int(int)> crash{"crash"};
/// _exit()s with the given code without replying.
inline const job<int(int)> exit_now{"exit_now"};
/// Writes the given bytes raw to the reply channel (fd 4), then sleeps.
inline const job<int(std::string)> raw_reply{"raw_reply"};
/// Replies to a task id that is not the one it runs.
inline const job<int(int)> wrong_id_reply{"wrong_id_reply"};
/// Writes half of a large result frame, then exits.
inline const job<int(int)> die_mid_frame{"die_mid_frame"};
/// Forks a child that leaves the worker's process group and keeps the worker's pipes
/// open for the given milliseconds; returns at once.
inline const job<int(int)> escape_child{"escape_child"};
/// Forks a child that sleeps forever in the worker's process group; returns its pid.
inline const job<int(int)> spawn_grandchild{"spawn_grandchild"};
/// Replies with a shared-memory result descriptor that must be refused: 0 points past the
/// response area, 1 wraps around 2^64, 2 carries a stale generation. Then sleeps.
inline const job<int(int)> bad_descriptor{"bad_descriptor"};
/// Overwrites the whole response file with the given byte, then returns normally.
inline const job<int(int)> scribble{"scribble"};
/// Truncates the response file to 0 bytes, then replies with a descriptor into it.
inline const job<int(int)> shrink_segment{"shrink_segment"};
/// Tries to truncate, punch, write and map writable the request file; returns how many of
/// the four attempts were refused.
inline const job<int(int)> attack_request{"attack_request"};
/// Ignores SIGTERM, then sleeps for the given number of milliseconds.
inline const job<int(int)> stubborn_sleep{"stubborn_sleep"};
/// Sleeps for the given number of milliseconds, then returns it.
inline const job<int(int)> sleep_ms{"sleep_ms"};

/// Spins on the CPU (a busy hang) for the given milliseconds, then returns them.
inline const job<int(int)> hang_busy{"hang_busy"};
/// Writes a valid result frame (the given code) for its task by hand, then _exit()s with it.
inline const job<int(int)> reply_then_exit{"reply_then_exit"};
/// Allocates, touches and keeps the given number of MiB; returns the worker's pid.
inline const job<int(int)> leak_mib{"leak_mib"};
/// Writes the given number of MiB to stderr in 1000-byte lines, then 1 MiB with no newline.
inline const job<int(int)> flood_stderr{"flood_stderr"};
/// Writes a result frame header whose length field is the given value, then sleeps.
inline const job<int(std::uint32_t)> oversized_frame{"oversized_frame"};
/// Writes a valid result frame (the given value) by hand, then returns it: a second reply.
inline const job<int(int)> duplicate_reply{"duplicate_reply"};
/// Writes half a frame header for its task, closes fd 4 if given non-zero, then sleeps.
inline const job<int(int)> truncated_frame{"truncated_frame"};
/// Says "started" on stderr, polls crew::cancel_requested() every given ms, then throws.
inline const job<int(int)> until_cancelled{"until_cancelled"};
/// Says "started" on stderr, then sleeps the given ms without polling for a cancel.
inline const job<int(int)> ignore_cancel{"ignore_cancel"};
/// Returns a string of the given number of bytes: a small task with a large result.
inline const job<std::string(std::uint32_t)> make_bytes{"make_bytes"};
/// The value of the environment variable named, or "<unset>".
inline const job<std::string(std::string)> getenv_of{"getenv_of"};
/// The worker's working directory.
inline const job<std::string(int)> cwd_of{"cwd_of"};
/// Returns the id of the task (or batch) it runs in: which items of a map travelled together.
inline const job<std::uint64_t(int)> task_id_of{"task_id_of"};
/// Writes a batch_result frame for its batch holding no item at all, then sleeps.
inline const job<int(int)> bad_batch_reply{"bad_batch_reply"};
/// Forks a child in its process group, prints "grandchild PID" on stderr, sleeps forever.
inline const job<int(int)> grandchild_and_sleep{"grandchild_and_sleep"};
/// Tries to allocate and touch the given MiB; returns 1 if that threw bad_alloc, else 0.
inline const job<int(int)> alloc_fails{"alloc_fails"};
/// Burns the given seconds of CPU time, then returns them.
inline const job<int(int)> burn_cpu{"burn_cpu"};
/// Sleeps the given milliseconds, then returns `$SLURMD_NODENAME` (or "<unset>"): which
/// Slurm node ran it, with the time to keep its worker busy meanwhile.
inline const job<std::string(int)> node_after{"node_after"};
/// Prints "worker pid PID" on stderr, then sleeps the given ms (never polling for a cancel)
/// and returns its pid.
inline const job<int(int)> pid_then_sleep{"pid_then_sleep"};
/// Counts its runs in the file at `path` (across workers). While the count is at most
/// `failures` it fails: mode 0 raises SIGSEGV, mode 1 throws, mode 2 hangs. Then it returns
/// the count.
inline const job<int(std::string, int, int)> flaky{"flaky"};

}  // namespace crew::test
