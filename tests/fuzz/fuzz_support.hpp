// tests/fuzz/fuzz_support.hpp — what the fuzz targets share: an invariant check that
// stops the run (libFuzzer then saves the input as a crash), a reader for the fields at
// the front of a fuzz input, an allocation meter, and a model of the descriptor check.
#pragma once

#include <crew/protocol.hpp>

#include <sanitizer/allocator_interface.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

/// Aborts, naming the condition, when an invariant does not hold. Unlike assert() it is
/// never compiled out.
#define CREW_FUZZ_CHECK(cond)                                                             \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (false)

namespace crew::fuzz {

inline std::span<const std::byte> as_bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

inline bool equal_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return std::ranges::equal(a, b);
}

/// Takes fields from the front of a fuzz input, little-endian; a field cut by the end of
/// the input reads as zeros in its missing bytes, so that every input is usable.
class input {
 public:
  explicit input(std::span<const std::byte> bytes) : bytes_(bytes) {}
  std::uint8_t u8() { return take<std::uint8_t>(); }
  std::uint64_t u64() { return take<std::uint64_t>(); }
  /// Up to `n` bytes.
  std::span<const std::byte> bytes(std::size_t n) {
    n = std::min(n, bytes_.size());
    auto out = bytes_.first(n);
    bytes_ = bytes_.subspan(n);
    return out;
  }
  std::span<const std::byte> rest() { return bytes(bytes_.size()); }

 private:
  template <class T>
  T take() {
    T v{};
    auto b = bytes(sizeof v);
    if (!b.empty()) std::memcpy(&v, b.data(), b.size());
    return v;
  }
  std::span<const std::byte> bytes_;
};

/// Measures the peak of heap bytes live in this thread between start() and stop(),
/// through the sanitizer allocator's hooks (so malloc and every operator new count).
class alloc_meter {
 public:
  /// Installs the hooks; call once, from LLVMFuzzerInitialize.
  static void install() { __sanitizer_install_malloc_and_free_hooks(&on_malloc, &on_free); }
  static void start() noexcept {
    live_ = peak_ = 0;
    on_ = true;
  }
  /// The peak, in bytes, above what was live at start().
  static std::int64_t stop() noexcept {
    on_ = false;
    return peak_;
  }

 private:
  static void on_malloc(const volatile void*, std::size_t n) {
    if (!on_) return;
    live_ += static_cast<std::int64_t>(n);
    peak_ = std::max(peak_, live_);
  }
  static void on_free(const volatile void* p) {
    if (!on_ || p == nullptr) return;
    live_ -= static_cast<std::int64_t>(__sanitizer_get_allocated_size(const_cast<const void*>(p)));
  }
  static inline thread_local bool on_ = false;
  static inline thread_local std::int64_t live_ = 0;
  static inline thread_local std::int64_t peak_ = 0;
};

/// A decode may allocate a few times what its input could hold (a 32-byte std::string
/// object per 8-byte length prefix, nested containers reserving at each level), never an
/// amount taken from a length or count field. This is the bound the targets check.
inline std::int64_t decode_alloc_bound(std::size_t input_size) {
  return 16 * static_cast<std::int64_t>(input_size) + 4096;
}

inline std::uint64_t load_le64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

/// Checks protocol::check_descriptor on `payload` against a model of docs/protocol.md,
/// section 8, computed in 128 bits so that no sum can wrap. Returns whether it accepted.
inline bool check_descriptor_against_model(std::span<const std::byte> payload,
                                           std::size_t area_size, std::uint64_t generation) {
  protocol::shm_descriptor d;
  const auto ec = protocol::check_descriptor(payload, area_size, generation, d);
  bool ok = payload.size() == protocol::shm_descriptor_size;
  if (ok) {
    const std::uint64_t offset = load_le64(payload.data());
    const std::uint64_t length = load_le64(payload.data() + 8);
    const std::uint64_t gen = load_le64(payload.data() + 16);
    using u128 = unsigned __int128;
    ok = u128{offset} + u128{length} <= u128{area_size} && gen == generation;
    if (ok) {
      CREW_FUZZ_CHECK(d.offset == offset && d.length == length && d.generation == gen);
    }
  }
  if (!ok) {
    CREW_FUZZ_CHECK(ec == errc::protocol_error);
    return false;
  }
  CREW_FUZZ_CHECK(!ec);
  // What the coordinator then does with it: offset + length computed in size_t lies
  // within the area, and reading [offset, offset + length) stays inside it.
  CREW_FUZZ_CHECK(d.offset <= area_size);
  CREW_FUZZ_CHECK(d.offset + d.length >= d.offset);
  CREW_FUZZ_CHECK(d.offset + d.length <= area_size);
  // The descriptor re-encodes to the bytes it came from.
  std::vector<std::byte> again;
  protocol::append_descriptor(again, d);
  CREW_FUZZ_CHECK(equal_bytes(again, payload));
  return true;
}

}  // namespace crew::fuzz
