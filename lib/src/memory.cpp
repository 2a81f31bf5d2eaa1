// Huge-page hints for large buffers crew fills. Contract in crew/codec.hpp
// (detail::advise_huge_pages).
#include <crew/codec.hpp>

#include <sys/mman.h>

#include <cstdint>

namespace crew::detail {

void advise_huge_pages(const void* p, std::size_t n) noexcept {
  constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t first = (begin + huge - 1) & ~(huge - 1);
  const std::uintptr_t last = (begin + n) & ~(huge - 1);
  // EINVAL (THP compiled out) and the like change nothing: the buffer is filled either way.
  if (last > first) (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

}  // namespace crew::detail
