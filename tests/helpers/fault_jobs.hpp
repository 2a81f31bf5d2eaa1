// Jobs of the fault-injection worker (tests/helpers/fault_worker.cpp).
#pragma once

#include <crew/job.hpp>

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

}  // namespace crew::test
