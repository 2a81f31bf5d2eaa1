// Shared test utilities: what a process-level test checks at its end.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace crew::test {

/// Direct children of this process (any state), from /proc.
std::vector<int> children();
/// Direct children of `pid` (any state).
std::vector<int> children_of(int pid);
/// Children of this process in state Z.
std::vector<int> zombies();
/// Open file descriptors of this process.
std::set<int> open_fds();
/// True if a process with this pid exists (zombies included).
bool process_exists(int pid);
/// True if a process with this pid exists and is not a zombie.
bool process_alive(int pid);
/// Waits up to `seconds` until this process has no children left; returns the leftovers.
std::vector<int> wait_for_no_children(double seconds = 5.0);

}  // namespace crew::test
