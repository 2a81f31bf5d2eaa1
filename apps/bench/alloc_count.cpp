// The counting allocator hook; see alloc_count.hpp. Linked into the crew-bench executable
// only (a definition of malloc there takes the place of libc's for every library), never
// into a library. Each function counts, then calls glibc's own implementation
// (__libc_malloc and friends, exported by glibc for exactly this), so that every block is a
// glibc block whichever function frees or resizes it.
#include "alloc_count.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>

#include <malloc.h>

#if defined(CREW_BENCH_NO_ALLOC_HOOK) || defined(__SANITIZE_ADDRESS__) || \
    defined(__SANITIZE_THREAD__)

namespace crew::bench {
bool allocation_hook_active() noexcept {
  return false;
}
std::uint64_t allocation_count() noexcept {
  return 0;
}
}  // namespace crew::bench

#else

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void __libc_free(void* p);
}

namespace {
std::atomic<std::uint64_t> allocations{0};
inline void count() noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

namespace crew::bench {
bool allocation_hook_active() noexcept {
  return true;
}
std::uint64_t allocation_count() noexcept {
  return allocations.load(std::memory_order_relaxed);
}
}  // namespace crew::bench

// noexcept: as glibc declares them in C++ (__THROW).
extern "C" {

void* malloc(std::size_t size) noexcept {
  count();
  return __libc_malloc(size);
}

void* calloc(std::size_t n, std::size_t size) noexcept {
  count();
  return __libc_calloc(n, size);
}

void* realloc(void* p, std::size_t size) noexcept {
  count();
  return __libc_realloc(p, size);
}

void free(void* p) noexcept {
  __libc_free(p);
}

void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  count();
  return __libc_memalign(alignment, size);
}

void* memalign(std::size_t alignment, std::size_t size) noexcept {
  count();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  if (alignment == 0 || alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0)
    return EINVAL;
  count();
  void* p = __libc_memalign(alignment, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

}  // extern "C"

#endif
