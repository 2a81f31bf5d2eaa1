// crew/codec.hpp — how arguments and results become bytes, and back.
//
// Wire format (all integers little-endian, see docs/protocol.md):
//   arithmetic      fixed width: bool 1 byte (0 or 1), iN/uN N/8 bytes, f32/f64 IEEE 754
//   std::string     u64 byte count, then the bytes
//   std::vector<T>  u64 element count, then each element (one memcpy for arithmetic T)
//   pair / tuple    the elements in order, nothing else
//
// Decoding is bounds-checked: malformed input throws `decode_error`, never reads past
// the end and never allocates more than the input could hold. A decoder may also be given
// a memory limit: what the decoded strings and vectors take in memory (elements at their
// sizeof, string bytes) is counted against it before each allocation (decoder::claim).
//
// Adding your own type: specialize `crew::codec<T>` with `name`, `encode` and `decode`,
// or derive it from `crew::member_codec<T, &T::a, &T::b, ...>` (see docs/protocol.md).
//
// Built in: bool and the other arithmetic types (not long double), std::string,
// std::vector, std::pair, std::tuple, and array_view (a no-copy vector of numbers).
// Thread safety: codecs are stateless; an encoder or a decoder belongs to one thread.
// Read next: job.hpp (declaring a job over these types).
#pragma once

#include <crew/error.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace crew {

static_assert(std::endian::native == std::endian::little,
              "crew's wire format is little-endian; big-endian hosts need byte swapping");

/// Thrown when bytes do not decode as the declared type. Its code is `errc::decode_error`.
class decode_error : public task_error {
 public:
  /// `what` says what was wrong (becomes message()).
  explicit decode_error(const std::string& what)
      : task_error(make_error_code(errc::decode_error), what) {}
};

/// Thrown by an encoder writing into a fixed area that is too small; its code is
/// `errc::payload_too_large`. The protocol functions also throw it for a frame or batch item
/// over 4 GiB - 1.
class capacity_exceeded : public task_error {
 public:
  /// `what` says what did not fit (becomes message()).
  explicit capacity_exceeded(const std::string& what)
      : task_error(make_error_code(errc::payload_too_large), what) {}
};

/// Writes encoded values to one of three sinks: a growing byte vector, a fixed area (a
/// frame buffer, a shared-memory area; overflow throws capacity_exceeded before writing
/// past it), or nowhere, only counting (to size a payload before placing it).
/// Thread safety: none (one per message).
class encoder {
 public:
  /// Appends to `out`.
  explicit encoder(std::vector<std::byte>& out) noexcept : out_(&out) {}
  /// Writes into `[data, data + capacity)`.
  encoder(std::byte* data, std::size_t capacity) noexcept : base_(data), capacity_(capacity) {}
  /// Counts bytes without writing them.
  static encoder counter() noexcept {
    encoder e;
    e.capacity_ = static_cast<std::size_t>(-1);
    return e;
  }

  /// Writes `n` raw bytes. Throws capacity_exceeded (nothing written) if a fixed area has
  /// fewer than `n` bytes left; std::bad_alloc if a vector cannot grow.
  void write(const void* data, std::size_t n) {
    // Inline: a fixed area with room, or a counter (every codec writes through here).
    if (out_ == nullptr && n <= capacity_ - size_) {
      if (base_ != nullptr && n != 0) std::memcpy(base_ + size_, data, n);
      size_ += n;
      return;
    }
    write_rest(data, n);
  }
  /// Writes a value through its codec; throws what `write` (or a user codec) throws.
  template <class T>
  void put(const T& value);
  /// Bytes written (or counted) by this encoder.
  std::size_t size() const noexcept { return size_; }

 private:
  encoder() noexcept = default;
  // The rest of write: a growing vector, or a fixed area without room (throws).
  [[gnu::noinline]] void write_rest(const void* data, std::size_t n) {
    if (n == 0) return;
    if (!out_)
      throw capacity_exceeded("encoded value does not fit in " + std::to_string(capacity_) +
                              " bytes");
    const auto old = out_->size();
    out_->resize(old + n);
    std::memcpy(out_->data() + old, data, n);
    size_ += n;
  }
  std::vector<std::byte>* out_ = nullptr;
  std::byte* base_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
};

/// Reads encoded values from a byte range, checking every length against what is left
/// and, with a memory limit, what decoded values take in memory against that limit.
/// Thread safety: none (one per message).
class decoder {
 public:
  /// No memory limit.
  static constexpr std::size_t unlimited = static_cast<std::size_t>(-1);
  /// Reads `[data, data + size)`, which must outlive the decoder. The strings and vectors
  /// decoded may take at most `memory_limit` bytes in memory, together (see claim).
  decoder(const std::byte* data, std::size_t size, std::size_t memory_limit = unlimited) noexcept
      : p_(data), end_(data + size), memory_limit_(memory_limit), memory_left_(memory_limit) {}
  /// Reads the bytes of `v`, which must outlive the decoder and not change meanwhile.
  explicit decoder(const std::vector<std::byte>& v) noexcept : decoder(v.data(), v.size()) {}
  /// A decoder must not outlive its bytes: decoding a temporary vector does not compile.
  explicit decoder(std::vector<std::byte>&&) = delete;
  /// Bytes not consumed yet.
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  /// Consumes `n` bytes and returns a pointer to them; throws decode_error if fewer remain.
  const std::byte* take(std::size_t n) {
    if (n > remaining()) truncated(n);
    const std::byte* p = p_;
    p_ += n;
    return p;
  }
  /// Decodes a value through its codec. Throws decode_error for truncated or malformed
  /// input (and whatever a user codec throws); the position is then unspecified.
  template <class T>
  T get();
  /// Throws decode_error unless every byte was consumed.
  void expect_end() const {
    if (remaining() != 0)
      throw decode_error(std::to_string(remaining()) + " unexpected trailing bytes");
  }
  /// Counts `count` elements of `size` bytes each (`what`: "vector", "string") against the
  /// memory limit, before a codec allocates them; throws decode_error if they would take
  /// more than is left of it. A wire element can be far smaller than in memory (8 bytes
  /// for an empty string, 32 for a std::string), so the count check against the bytes left
  /// does not bound the memory alone. Codecs that allocate call it; bytes a user codec
  /// allocates without it are not counted.
  void claim(std::size_t count, std::size_t size, const char* what) {
    if (memory_limit_ == unlimited) return;
    if (size != 0 && count > memory_left_ / size) {
      const std::size_t used = memory_limit_ - memory_left_;
      const std::size_t need =
          count > (unlimited - used) / size ? unlimited : used + count * size;  // saturated
      throw decode_error(std::string(what) + " of " + std::to_string(count) +
                         " elements would take " + std::to_string(need) +
                         " bytes in memory, more than the limit " + std::to_string(memory_limit_));
    }
    memory_left_ -= count * size;
  }
  /// What is left of the memory limit (`unlimited` without one).
  std::size_t memory_left() const noexcept { return memory_left_; }

 private:
  [[noreturn, gnu::noinline]] void truncated(std::size_t n) const {
    throw decode_error("truncated input: needed " + std::to_string(n) + " bytes, " +
                       std::to_string(remaining()) + " left");
  }
  const std::byte* p_;
  const std::byte* end_;
  std::size_t memory_limit_;
  std::size_t memory_left_;
};

/// The codec of `T`. The primary template is undefined: a type without a codec does not
/// compile as a job argument or result. Specializations provide
///   `static std::string name()`               the type's name in job signatures,
///   `static void encode(encoder&, const T&)`,
///   `static T decode(decoder&)`,
/// and may provide `static constexpr std::size_t min_size` (bytes the smallest value
/// takes, default 1), used to reject impossible element counts before allocating.
template <class T, class Enable = void>
struct codec;

/// True when `T` has a codec (name, encode and decode with the right types).
template <class T>
concept encodable = requires(encoder& e, decoder& d, const T& v) {
  { codec<T>::name() } -> std::convertible_to<std::string>;
  codec<T>::encode(e, v);
  { codec<T>::decode(d) } -> std::same_as<T>;
};

namespace detail {
/// Internal: a codec's `min_size`, or 1 when it declares none.
template <class T>
constexpr std::size_t min_size() {
  if constexpr (requires { codec<T>::min_size; })
    return codec<T>::min_size;
  else
    return 1;
}
/// Internal: arithmetic types copied as raw bytes (not bool, not long double).
template <class T>
// long double is excluded: its size and padding differ between platforms (x87 80-bit
// in 16 bytes on x86-64), so it has no portable wire form.
constexpr bool is_plain_number =
    std::is_arithmetic_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, long double>;
/// Internal: whether a job's result `R` encodes as its bytes alone (a number: a batch then
/// knows every item's size before running it), and that size (0 for any other R).
template <class R>
constexpr bool is_plain_number_result = [] {
  if constexpr (std::is_void_v<R>)
    return false;
  else
    return is_plain_number<R>;
}();
template <class R>
constexpr std::size_t plain_size = [] {
  if constexpr (is_plain_number_result<R>)
    return sizeof(R);
  else
    return std::size_t{0};
}();
}  // namespace detail

namespace detail {
// A codec may declare `static constexpr bool is_view` (true when decoded values point into
// the bytes they were decoded from); containers propagate their elements'.
/// Internal: the codec's `is_view`, or false.
template <class T>
constexpr bool holds_view() {
  if constexpr (requires { codec<T>::is_view; })
    return codec<T>::is_view;
  else
    return false;
}
}  // namespace detail

template <class T>
void encoder::put(const T& value) {
  codec<T>::encode(*this, value);
}
template <class T>
T decoder::get() {
  return codec<T>::decode(*this);
}

/// Numbers (every arithmetic type but bool and long double): fixed width, little-endian;
/// named `i8`..`i64`, `u8`..`u64`, `f32`, `f64`. Decoding throws decode_error if truncated.
template <class T>
struct codec<T, std::enable_if_t<detail::is_plain_number<T>>> {
  static constexpr std::size_t min_size = sizeof(T);
  static std::string name() {
    if constexpr (std::is_floating_point_v<T>)
      return "f" + std::to_string(sizeof(T) * 8);
    else
      return (std::is_signed_v<T> ? "i" : "u") + std::to_string(sizeof(T) * 8);
  }
  static void encode(encoder& e, T v) { e.write(&v, sizeof v); }
  static T decode(decoder& d) {
    T v;
    std::memcpy(&v, d.take(sizeof v), sizeof v);
    return v;
  }
};

/// bool: one byte, 0 or 1; any other byte throws decode_error. Named `bool`.
template <>
struct codec<bool> {
  static constexpr std::size_t min_size = 1;
  static std::string name() { return "bool"; }
  static void encode(encoder& e, bool v) {
    const auto b = static_cast<std::uint8_t>(v ? 1 : 0);
    e.write(&b, 1);
  }
  static bool decode(decoder& d) {
    const auto b = static_cast<std::uint8_t>(*d.take(1));
    if (b > 1) throw decode_error("bool byte is " + std::to_string(b) + ", not 0 or 1");
    return b == 1;
  }
};

namespace detail {
/// Internal. Reads a u64 element count and checks that `count` elements of at least `unit`
/// bytes each can fit in what is left, before anything is allocated.
inline std::size_t take_count(decoder& d, std::size_t unit, const char* what) {
  const auto n = codec<std::uint64_t>::decode(d);
  if (unit == 0) unit = 1;
  if (n > d.remaining() / unit)
    throw decode_error(std::string(what) + " claims " + std::to_string(n) + " elements but only " +
                       std::to_string(d.remaining()) + " bytes remain");
  return static_cast<std::size_t>(n);
}
}  // namespace detail

/// std::string: a u64 byte count, then the bytes (any bytes, no terminator). Named `str`.
/// Decoding throws decode_error for a count past the end.
template <>
struct codec<std::string> {
  static constexpr std::size_t min_size = 8;
  static std::string name() { return "str"; }
  static void encode(encoder& e, const std::string& s) {
    codec<std::uint64_t>::encode(e, s.size());
    e.write(s.data(), s.size());
  }
  static std::string decode(decoder& d) {
    const auto n = detail::take_count(d, 1, "string");
    d.claim(n, 1, "string");
    const auto* p = d.take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
};

/// std::vector of any encodable T: a u64 element count, then the elements (numbers in one
/// copy). Named `vec<T>`. Decoding throws decode_error for a count the bytes left cannot
/// hold, checked before allocating.
template <class T, class A>
struct codec<std::vector<T, A>, std::enable_if_t<encodable<T>>> {
  // The element count is checked against the bytes left, which needs every element to
  // take at least one byte (a vector of empty tuples could claim 2^64 of them for free).
  static_assert(detail::min_size<T>() > 0, "vector elements must encode to at least one byte");
  static constexpr bool is_view = detail::holds_view<T>();
  static constexpr std::size_t min_size = 8;
  static std::string name() { return "vec<" + codec<T>::name() + ">"; }
  static void encode(encoder& e, const std::vector<T, A>& v) {
    codec<std::uint64_t>::encode(e, v.size());
    if constexpr (detail::is_plain_number<T>) {
      e.write(v.data(), v.size() * sizeof(T));
    } else {
      for (const auto& x : v)
        codec<T>::encode(e, x);
    }
  }
  static std::vector<T, A> decode(decoder& d) {
    const auto n = detail::take_count(d, detail::min_size<T>(), "vector");
    d.claim(n, sizeof(T), "vector");
    std::vector<T, A> v;
    if constexpr (detail::is_plain_number<T>) {
      v.resize(n);
      const std::byte* src = d.take(n * sizeof(T));
      if (n != 0) std::memcpy(v.data(), src, n * sizeof(T));  // data() may be null when empty
    } else {
      v.reserve(n);
      for (std::size_t i = 0; i < n; ++i)
        v.push_back(codec<T>::decode(d));
    }
    return v;
  }
};

/// A read-only view of an array of numbers, encoded exactly as `std::vector<T>` (same
/// bytes, same wire name), to move large arrays without copying them:
/// - as a job argument in a worker, it views the task's bytes where they lie (in the
///   shared-memory segment with the `shm` transport): valid only while the job runs;
/// - on the caller's side, it refers to the caller's memory, which must stay alive and
///   unchanged until the task completes.
/// It cannot be a job's result (the bytes it would view are reused by the next task).
/// When the bytes are not aligned for `T` (possible inside a pipe frame), decoding copies
/// them into storage the view owns.
template <class T>
class array_view {
  static_assert(detail::is_plain_number<T>, "array_view holds numbers");

 public:
  /// The element type.
  using value_type = T;
  /// An empty view.
  array_view() = default;
  /// Views `s`, or the elements of a vector, in place: nothing is copied, so that memory
  /// must stay alive and unchanged (a vector unresized) while the view is used.
  array_view(std::span<const T> s) noexcept : span_(s) {}     // NOLINT: implicit by design
  array_view(const std::vector<T>& v) noexcept : span_(v) {}  // NOLINT
  /// The viewed elements.
  std::span<const T> span() const noexcept { return span_; }
  /// Pointer to the first element (may be null when empty).
  const T* data() const noexcept { return span_.data(); }
  /// Number of elements.
  std::size_t size() const noexcept { return span_.size(); }
  /// True when there are no elements.
  bool empty() const noexcept { return span_.empty(); }
  /// Iterators over the elements.
  auto begin() const noexcept { return span_.begin(); }
  auto end() const noexcept { return span_.end(); }
  /// Element `i`, unchecked.
  const T& operator[](std::size_t i) const noexcept { return span_[i]; }
  /// Builds a view that owns a copy (used when the source bytes are misaligned).
  static array_view owning(std::vector<T> v) {
    array_view a;
    a.owned_ = std::make_shared<const std::vector<T>>(std::move(v));
    a.span_ = *a.owned_;
    return a;
  }

 private:
  std::span<const T> span_;
  std::shared_ptr<const std::vector<T>> owned_;
};

/// True for types whose decoded values point into bytes they do not own, anywhere inside
/// (array_view, and pairs, tuples, vectors and member_codec types holding one). They
/// cannot be job results.
template <class T>
inline constexpr bool contains_view_v = detail::holds_view<T>();

namespace detail {
/// Internal: the codecs' names joined with commas.
template <class... T>
std::string join_names() {
  std::string s;
  ((s += (s.empty() ? "" : ","), s += codec<T>::name()), ...);
  return s;
}
}  // namespace detail

/// std::tuple of encodable types: the elements in order, nothing else. Named `tuple<...>`.
template <class... T>
struct codec<std::tuple<T...>, std::enable_if_t<(encodable<T> && ...)>> {
  static constexpr std::size_t min_size = (std::size_t{0} + ... + detail::min_size<T>());
  static constexpr bool is_view = (false || ... || detail::holds_view<T>());
  static std::string name() { return "tuple<" + detail::join_names<T...>() + ">"; }
  static void encode(encoder& e, const std::tuple<T...>& t) {
    std::apply([&](const T&... x) { (codec<T>::encode(e, x), ...); }, t);
  }
  static std::tuple<T...> decode(decoder& d) {
    // Braced initialization evaluates left to right, which is the wire order.
    return std::tuple<T...>{codec<T>::decode(d)...};
  }
};

/// std::pair of encodable types: first, then second. Named `pair<A,B>`.
template <class A, class B>
struct codec<std::pair<A, B>, std::enable_if_t<encodable<A> && encodable<B>>> {
  static constexpr std::size_t min_size = detail::min_size<A>() + detail::min_size<B>();
  static constexpr bool is_view = detail::holds_view<A>() || detail::holds_view<B>();
  static std::string name() { return "pair<" + detail::join_names<A, B>() + ">"; }
  static void encode(encoder& e, const std::pair<A, B>& p) {
    codec<A>::encode(e, p.first);
    codec<B>::encode(e, p.second);
  }
  static std::pair<A, B> decode(decoder& d) {
    A a = codec<A>::decode(d);
    B b = codec<B>::decode(d);
    return {std::move(a), std::move(b)};
  }
};

/// array_view<T>: the same bytes and name as std::vector<T> (`vec<T>`). Decoding views the
/// input bytes in place, or copies them when misaligned for T; throws decode_error like the
/// vector's.
template <class T>
struct codec<array_view<T>> {
  static constexpr bool is_view = true;
  static constexpr std::size_t min_size = 8;
  static std::string name() { return "vec<" + codec<T>::name() + ">"; }
  static void encode(encoder& e, const array_view<T>& v) {
    codec<std::uint64_t>::encode(e, v.size());
    e.write(v.data(), v.size() * sizeof(T));
  }
  static array_view<T> decode(decoder& d) {
    const auto n = detail::take_count(d, sizeof(T), "array");
    const std::byte* p = d.take(n * sizeof(T));
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) == 0)
      return array_view<T>(std::span<const T>(reinterpret_cast<const T*>(p), n));
    d.claim(n, sizeof(T), "array");
    std::vector<T> copy(n);
    if (n != 0) std::memcpy(copy.data(), p, n * sizeof(T));
    return array_view<T>::owning(std::move(copy));
  }
};

/// A codec for an aggregate, from a list of its members: each member is encoded in
/// order, exactly as a tuple of them would be. Derive your specialization from it and
/// give it a `name()`:
/// @code
/// struct point { double x, y; };
/// template <> struct crew::codec<point> : crew::member_codec<point, &point::x, &point::y> {
///   static std::string name() { return "point"; }
/// };
/// @endcode
/// `T` must be default-constructible: decoding value-initializes it, then assigns the members
/// in order. Decoding throws what the members' codecs throw.
template <class T, auto... Members>
struct member_codec {
  static constexpr std::size_t min_size =
      (std::size_t{0} + ... +
       detail::min_size<std::remove_cvref_t<decltype(std::declval<T&>().*Members)>>());
  static constexpr bool is_view =
      (false || ... ||
       detail::holds_view<std::remove_cvref_t<decltype(std::declval<T&>().*Members)>>());
  static void encode(encoder& e, const T& v) { (e.put(v.*Members), ...); }
  static T decode(decoder& d) {
    T v{};
    ((v.*Members = d.get<std::remove_cvref_t<decltype(v.*Members)>>()), ...);
    return v;
  }
};

/// Encodes `values...` one after the other (the encoding of a job's argument list).
/// Throws std::bad_alloc, or what a user codec throws.
template <class... T>
std::vector<std::byte> encode_values(const T&... values) {
  std::vector<std::byte> out;
  encoder e(out);
  (e.put(values), ...);
  return out;
}

}  // namespace crew
