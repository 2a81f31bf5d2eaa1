// A counting allocator hook for crew-bench: alloc_count.cpp defines the malloc family in the
// crew-bench executable (interposing glibc's for the whole process: operator new, Asio's
// aligned_alloc, every thread) and counts the allocations. crew-bench reads the count before
// and after a run of tasks: the coordinator's heap allocations per task.
#pragma once

#include <cstdint>

namespace crew::bench {

/// Whether the hook is in this program: not in a sanitizer build (the sanitizers bring their
/// own malloc; CMake defines CREW_BENCH_NO_ALLOC_HOOK there).
bool allocation_hook_active() noexcept;

/// Calls of malloc, calloc, realloc, aligned_alloc, memalign and posix_memalign so far, from
/// every thread of this process (a relaxed atomic: read it while the threads that matter are
/// quiet, or accept that what runs meanwhile counts too). 0 without the hook.
std::uint64_t allocation_count() noexcept;

}  // namespace crew::bench
