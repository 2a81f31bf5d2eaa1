// crew-fuzz-codec: crew::decoder on arbitrary bytes, as one of several types. Whatever
// decodes must re-encode to exactly the bytes it was decoded from (the encoding is
// canonical), decode again to the same value, encode the same through every encoder sink,
// and must not have allocated more than a small multiple of its input's size.
//
// Input layout:
//   byte 0   the type: an index in crew::fuzz::codec_types (codec_types.hpp), modulo its size
//   byte 1   bits 0-2: where the bytes start in an 8-aligned buffer, to reach both the
//            in-place and the copying path of array_view
//   rest     the encoded value
#include "codec_types.hpp"
#include "fuzz_support.hpp"

#include <crew/codec.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using crew::array_view;
using crew::decode_error;
using crew::decoder;
using crew::encoder;
using crew::fuzz::record;

// Value equality that holds for NaN too (floating point compares by bits) and compares
// array_view by contents. Declared first: the overloads call each other.
template <class T>
requires std::is_arithmetic_v<T>
bool same(const T& a, const T& b);
bool same(const std::string& a, const std::string& b);
bool same(const record& a, const record& b);
template <class T, class A>
bool same(const std::vector<T, A>& a, const std::vector<T, A>& b);
template <class A, class B>
bool same(const std::pair<A, B>& a, const std::pair<A, B>& b);
template <class... T>
bool same(const std::tuple<T...>& a, const std::tuple<T...>& b);
template <class T>
bool same(const array_view<T>& a, const array_view<T>& b);

template <class T>
requires std::is_arithmetic_v<T>
bool same(const T& a, const T& b) {
  if constexpr (std::is_floating_point_v<T>)
    return std::memcmp(&a, &b, sizeof a) == 0;
  else
    return a == b;
}
bool same(const std::string& a, const std::string& b) {
  return a == b;
}
bool same(const record& a, const record& b) {
  return same(a.x, b.x) && same(a.name, b.name) && same(a.values, b.values);
}
template <class T, class A>
bool same(const std::vector<T, A>& a, const std::vector<T, A>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same(a[i], b[i])) return false;
  return true;
}
template <class A, class B>
bool same(const std::pair<A, B>& a, const std::pair<A, B>& b) {
  return same(a.first, b.first) && same(a.second, b.second);
}
template <class... T>
bool same(const std::tuple<T...>& a, const std::tuple<T...>& b) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return (same(std::get<I>(a), std::get<I>(b)) && ...);
  }
  (std::index_sequence_for<T...>{});
}
template <class T>
bool same(const array_view<T>& a, const array_view<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same(a[i], b[i])) return false;
  return true;
}

template <class T>
constexpr bool is_array_view = false;
template <class T>
constexpr bool is_array_view<array_view<T>> = true;

// Where an array_view decoded straight from the input must point: into the input when the
// elements lie aligned there, else into storage of its own.
template <class T>
void check_placement(const std::byte* bytes, std::size_t size, const array_view<T>& v) {
  const std::byte* elements = bytes + 8;
  const auto* p = reinterpret_cast<const std::byte*>(v.data());
  const bool inside = p >= bytes && p < bytes + size;
  if (v.empty()) return;
  if (reinterpret_cast<std::uintptr_t>(elements) % alignof(T) == 0)
    CREW_FUZZ_CHECK(p == elements);
  else
    CREW_FUZZ_CHECK(!inside && reinterpret_cast<std::uintptr_t>(p) % alignof(T) == 0);
}

template <class T>
void round_trip(const std::byte* bytes, std::size_t size) {
  decoder d(bytes, size);
  crew::fuzz::alloc_meter::start();
  std::optional<T> decoded;
  try {
    decoded.emplace(d.get<T>());
  } catch (const decode_error&) {
    // A rejected input allocated no more than an accepted one may: checked below.
  }
  CREW_FUZZ_CHECK(crew::fuzz::alloc_meter::stop() <= crew::fuzz::decode_alloc_bound(size));
  if (!decoded) return;
  const T& v = *decoded;
  const std::size_t used = size - d.remaining();
  CREW_FUZZ_CHECK(used <= size);
  // expect_end() agrees with what is left.
  bool trailing = false;
  try {
    d.expect_end();
  } catch (const decode_error&) {
    trailing = true;
  }
  CREW_FUZZ_CHECK(trailing == (used != size));
  if constexpr (is_array_view<T>) check_placement(bytes, size, v);

  // Canonical: re-encoding gives the very bytes consumed.
  const std::vector<std::byte> again = crew::encode_values(v);
  CREW_FUZZ_CHECK(crew::fuzz::equal_bytes(again, {bytes, used}));
  // And those decode to the same value, with nothing left.
  decoder d2(again);
  const T v2 = d2.get<T>();
  CREW_FUZZ_CHECK(d2.remaining() == 0);
  CREW_FUZZ_CHECK(same(v, v2));
  // The counting sink counts the same size; a fixed area of exactly that size receives
  // the same bytes; one byte less is refused without writing past it (ASan watches the
  // exact-size heap blocks).
  encoder counter = encoder::counter();
  counter.put(v);
  CREW_FUZZ_CHECK(counter.size() == again.size());
  if (!again.empty()) {
    auto exact = std::make_unique<std::byte[]>(again.size());
    encoder fixed(exact.get(), again.size());
    fixed.put(v);
    CREW_FUZZ_CHECK(fixed.size() == again.size());
    CREW_FUZZ_CHECK(std::memcmp(exact.get(), again.data(), again.size()) == 0);
    auto short_area = std::make_unique<std::byte[]>(again.size() - 1);
    encoder too_small(short_area.get(), again.size() - 1);
    bool refused = false;
    try {
      too_small.put(v);
    } catch (const crew::capacity_exceeded&) {
      refused = true;
    }
    CREW_FUZZ_CHECK(refused);
  }
}

using entry = void (*)(const std::byte*, std::size_t);
template <std::size_t... I>
constexpr auto make_targets(std::index_sequence<I...>) {
  return std::array<entry, sizeof...(I)>{
      &round_trip<std::tuple_element_t<I, crew::fuzz::codec_types>>...};
}
constexpr auto targets =
    make_targets(std::make_index_sequence<std::tuple_size_v<crew::fuzz::codec_types>>{});

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crew::fuzz::alloc_meter::install();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  crew::fuzz::input in(crew::fuzz::as_bytes(data, size));
  const entry target = targets[in.u8() % targets.size()];
  const std::size_t shift = in.u8() & 7;
  const auto value = in.rest();
  // An exact-size heap block (ASan reports any read past it) whose first byte is `shift`
  // bytes past an address that operator new aligned to 16.
  auto block = std::make_unique<std::byte[]>(shift + value.size());
  std::byte* bytes = block.get() + shift;
  if (!value.empty()) std::memcpy(bytes, value.data(), value.size());
  target(bytes, value.size());
  return 0;
}
