#include <crew/codec.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace crew {
// How Boost.Test shows an errc in a failed assertion (found by ADL).
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) {
  return os << to_string(e);
}
}  // namespace crew

namespace {

/// A user type with a codec made by member_codec, as codec.hpp documents.
struct point {
  double x = 0;
  double y = 0;
  std::string label;
  std::vector<std::int32_t> tags;
  friend bool operator==(const point&, const point&) = default;
};

}  // namespace

template <>
struct crew::codec<point>
    : crew::member_codec<point, &point::x, &point::y, &point::label, &point::tags> {
  static std::string name() { return "point"; }
};

namespace {

using bytes = std::vector<std::byte>;

bytes make_bytes(std::initializer_list<unsigned> values) {
  bytes out;
  for (unsigned v : values)
    out.push_back(static_cast<std::byte>(v));
  return out;
}

bytes concat(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bytes u64_le(std::uint64_t v) {
  bytes out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
  return out;
}

std::string hex(const bytes& b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (std::byte x : b) {
    const auto v = std::to_integer<unsigned>(x);
    if (!s.empty()) s += ' ';
    s += digits[v >> 4];
    s += digits[v & 0xf];
  }
  return s;
}

/// Encodes `value` both ways (encode_values and encoder::put), checks they agree, decodes
/// it back, checks every byte was consumed, and returns the decoded value.
template <class T>
T round_trip(const T& value) {
  const bytes encoded = crew::encode_values(value);
  bytes via_encoder;
  crew::encoder e(via_encoder);
  e.put(value);
  BOOST_TEST((via_encoder == encoded));
  crew::decoder d(encoded);
  T out = d.get<T>();
  BOOST_TEST(d.remaining() == 0u);
  BOOST_CHECK_NO_THROW(d.expect_end());
  return out;
}

template <class T>
bool same_bits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

/// Runs `f`, which must throw crew::decode_error (with code errc::decode_error) and
/// nothing else. Returns true if it did.
bool throws_decode_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const crew::decode_error& e) {
    return e.code() == crew::errc::decode_error;
  } catch (const std::exception& e) {
    BOOST_TEST_MESSAGE("threw something else than decode_error: " << e.what());
    return false;
  } catch (...) {
    BOOST_TEST_MESSAGE("threw a non-std exception");
    return false;
  }
  return false;
}

template <class T>
bool decode_throws(const bytes& b) {
  return throws_decode_error([&] {
    crew::decoder d(b);
    (void)d.get<T>();
  });
}

template <class T>
std::string name_of() {
  return crew::codec<T>::name();
}

/// A value exercising every codec at once.
using complex_t =
    std::tuple<std::int32_t, std::string, std::vector<double>, std::vector<std::string>,
               std::pair<bool, std::vector<std::vector<std::int16_t>>>, point, std::vector<bool>,
               std::tuple<>, std::vector<point>, std::uint8_t, float>;

complex_t complex_value() {
  return {-7,
          std::string("he\0llo", 6),
          {1.5, -0.0, 1e300},
          {"", "a", "bc"},
          {true, {{}, {1, -2}, {3}}},
          point{1.0, 2.0, "origin", {4, 5}},
          {true, false, true},
          {},
          {point{}, point{-1.0, 0.5, "p", {}}},
          std::uint8_t{200},
          3.25f};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(codec)

// ---------------------------------------------------------------------------------------
// Round trips

// Distinct types only (int8_t is signed char, int32_t is int, ...): Boost.Test rejects
// a test case registered twice.
using arithmetic_types =
    std::tuple<bool, char, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t, std::int32_t,
               std::uint32_t, std::int64_t, std::uint64_t, float, double>;

BOOST_AUTO_TEST_CASE_TEMPLATE(arithmetic_round_trip, T, arithmetic_types) {
  using lim = std::numeric_limits<T>;
  std::vector<T> samples = {lim::lowest(), lim::min(), lim::max(), static_cast<T>(0),
                            static_cast<T>(1)};
  if constexpr (std::is_signed_v<T>) samples.push_back(static_cast<T>(-1));
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool> && sizeof(T) >= 2)
    samples.push_back(static_cast<T>(0x0102));
  if constexpr (std::is_floating_point_v<T>) {
    samples.push_back(lim::infinity());
    samples.push_back(-lim::infinity());
    samples.push_back(lim::denorm_min());
    samples.push_back(lim::epsilon());
    samples.push_back(static_cast<T>(-0.0));
    samples.push_back(static_cast<T>(0.1));
  }
  for (const T v : samples) {
    BOOST_TEST(crew::encode_values(v).size() == sizeof(T));
    const T out = round_trip(v);
    BOOST_TEST(same_bits(out, v));
  }
}

BOOST_AUTO_TEST_CASE(double_special_bit_patterns_survive) {
  const std::uint64_t patterns[] = {
      0x7ff8000000000000,  // quiet NaN
      0x7ff0000000000001,  // signalling NaN
      0xfff800000000dead,  // negative NaN with payload
      0x8000000000000000,  // -0.0
      0x7ff0000000000000,  // +inf
      0xfff0000000000000,  // -inf
      0x0000000000000001,  // smallest denormal
      0x7fefffffffffffff,  // max
      0xffefffffffffffff,  // lowest
  };
  for (const std::uint64_t p : patterns) {
    BOOST_TEST_CONTEXT("pattern " << std::hex << p) {
      const bytes raw = u64_le(p);
      crew::decoder d(raw);
      const double v = d.get<double>();
      d.expect_end();
      BOOST_TEST(std::bit_cast<std::uint64_t>(v) == p);
      BOOST_TEST(hex(crew::encode_values(v)) == hex(u64_le(p)));
    }
  }
  const double negative_zero = round_trip(-0.0);
  BOOST_TEST(negative_zero == 0.0);
  BOOST_TEST(std::signbit(negative_zero));
  BOOST_TEST(std::isnan(round_trip(std::numeric_limits<double>::quiet_NaN())));
  BOOST_TEST(round_trip(std::numeric_limits<double>::infinity()) ==
             std::numeric_limits<double>::infinity());
  BOOST_TEST(round_trip(-std::numeric_limits<double>::infinity()) ==
             -std::numeric_limits<double>::infinity());
}

BOOST_AUTO_TEST_CASE(float_special_bit_patterns_survive) {
  const std::uint32_t patterns[] = {0x7fc00000, 0x7f800001, 0xffc0beef, 0x80000000,
                                    0x7f800000, 0xff800000, 0x00000001, 0x7f7fffff};
  for (const std::uint32_t p : patterns) {
    BOOST_TEST_CONTEXT("pattern " << std::hex << p) {
      const auto raw = crew::encode_values(p);
      crew::decoder d(raw);
      const float v = d.get<float>();
      d.expect_end();
      BOOST_TEST(std::bit_cast<std::uint32_t>(v) == p);
      BOOST_TEST(hex(crew::encode_values(v)) == hex(raw));
    }
  }
  BOOST_TEST(std::signbit(round_trip(-0.0f)));
}

BOOST_AUTO_TEST_CASE(string_round_trip) {
  BOOST_TEST(round_trip(std::string()).empty());
  BOOST_TEST(round_trip(std::string("hello")) == "hello");

  const std::string with_nuls("\0a\0\0b\0", 6);
  const std::string out = round_trip(with_nuls);
  BOOST_TEST(out.size() == 6u);
  BOOST_TEST(out == with_nuls);

  std::string big(std::size_t{1} << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>((i * 7 + i / 256) & 0xff);
  BOOST_TEST(crew::encode_values(big).size() == 8 + big.size());
  const std::string big_out = round_trip(big);
  BOOST_TEST(big_out.size() == big.size());
  BOOST_TEST((big_out == big));
}

BOOST_AUTO_TEST_CASE(vector_of_numbers_round_trip) {
  BOOST_TEST(round_trip(std::vector<double>{}).empty());
  BOOST_TEST(crew::encode_values(std::vector<double>{}).size() == 8u);
  BOOST_TEST(round_trip(std::vector<std::int32_t>{}).empty());

  const std::vector<double> d = {1.5, -2.25, 0.0, 1e-300, std::numeric_limits<double>::max()};
  BOOST_TEST(round_trip(d) == d, boost::test_tools::per_element());

  std::vector<std::int64_t> large(std::size_t{1} << 20);
  for (std::size_t i = 0; i < large.size(); ++i)
    large[i] = static_cast<std::int64_t>(i * 2654435761u) - (std::int64_t{1} << 40);
  BOOST_TEST(crew::encode_values(large).size() == 8 + large.size() * 8);
  BOOST_TEST((round_trip(large) == large));

  const std::vector<std::uint8_t> small_ints = {0, 1, 255, 128};
  BOOST_TEST(round_trip(small_ints) == small_ints, boost::test_tools::per_element());
  const std::vector<float> floats = {1.0f, -0.5f, 3e38f};
  BOOST_TEST(round_trip(floats) == floats, boost::test_tools::per_element());
  const std::vector<std::int16_t> shorts = {-32768, 32767, 0, -1};
  BOOST_TEST(round_trip(shorts) == shorts, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(vector_of_strings_round_trip) {
  BOOST_TEST(round_trip(std::vector<std::string>{}).empty());
  const std::vector<std::string> v = {"", "a", std::string("\0\0", 2), std::string(1000, 'x')};
  BOOST_TEST(round_trip(v) == v, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(nested_vector_round_trip) {
  const std::vector<std::vector<int>> v = {{}, {1}, {2, 3, 4}, {}, {-5}};
  BOOST_TEST((round_trip(v) == v));
  BOOST_TEST(round_trip(std::vector<std::vector<int>>{}).empty());
  const std::vector<std::vector<std::vector<std::string>>> deep = {{{"a"}, {}}, {}, {{"", "b"}}};
  BOOST_TEST((round_trip(deep) == deep));
}

BOOST_AUTO_TEST_CASE(vector_of_bool_round_trip) {
  BOOST_TEST(round_trip(std::vector<bool>{}).empty());
  BOOST_TEST((round_trip(std::vector<bool>{true}) == std::vector<bool>{true}));
  std::vector<bool> pattern;
  for (int i = 0; i < 1000; ++i)
    pattern.push_back(i % 3 == 0 || i % 7 == 1);
  BOOST_TEST(crew::encode_values(pattern).size() == 8u + 1000u);
  BOOST_TEST((round_trip(pattern) == pattern));
}

BOOST_AUTO_TEST_CASE(pair_and_tuple_round_trip) {
  const std::pair<int, std::string> p{42, "forty-two"};
  BOOST_TEST((round_trip(p) == p));
  const std::pair<std::string, std::vector<double>> p2{"", {1.0, 2.0}};
  BOOST_TEST((round_trip(p2) == p2));

  BOOST_TEST(crew::encode_values(std::tuple<>{}).empty());
  BOOST_TEST((round_trip(std::tuple<>{}) == std::tuple<>{}));

  const std::tuple<int, std::string, double> t{-1, "x", 0.25};
  BOOST_TEST((round_trip(t) == t));

  const std::tuple<std::tuple<int, std::tuple<>>, std::pair<bool, std::string>,
                   std::vector<std::tuple<std::uint8_t, std::string>>>
      nested{{7, {}}, {false, "n"}, {{1, "a"}, {2, ""}}};
  BOOST_TEST((round_trip(nested) == nested));

  const std::vector<std::pair<int, double>> pairs = {{1, 1.0}, {2, 2.0}};
  BOOST_TEST((round_trip(pairs) == pairs));
}

BOOST_AUTO_TEST_CASE(complex_value_round_trip) {
  const complex_t v = complex_value();
  BOOST_TEST((round_trip(v) == v));
}

BOOST_AUTO_TEST_CASE(member_codec_user_type) {
  static_assert(crew::encodable<point>);
  static_assert(crew::encodable<std::vector<point>>);
  BOOST_TEST(name_of<point>() == "point");
  BOOST_TEST(name_of<std::vector<point>>() == "vec<point>");
  BOOST_TEST((name_of<std::pair<point, int>>() == "pair<point,i32>"));
  // Every member's smallest size: two f64, and a count for the string and the vector.
  BOOST_TEST(crew::codec<point>::min_size == 32u);

  const point p{1.5, -2.0, std::string("a\0b", 3), {1, 2, 3}};
  BOOST_TEST((round_trip(p) == p));
  BOOST_TEST((round_trip(point{}) == point{}));
  // Encoded exactly as the members one after the other.
  BOOST_TEST(hex(crew::encode_values(p)) == hex(crew::encode_values(p.x, p.y, p.label, p.tags)));

  const std::vector<point> many = {p, point{}, point{0, 0, "z", {}}};
  BOOST_TEST((round_trip(many) == many));
}

BOOST_AUTO_TEST_CASE(encode_values_concatenates) {
  const bytes all = crew::encode_values(std::int32_t{1}, std::string("s"), true, 2.0);
  const bytes parts = concat(
      concat(concat(crew::encode_values(std::int32_t{1}), crew::encode_values(std::string("s"))),
             crew::encode_values(true)),
      crew::encode_values(2.0));
  BOOST_TEST(hex(all) == hex(parts));
  BOOST_TEST(crew::encode_values().empty());

  crew::decoder d(all);
  BOOST_TEST(d.get<std::int32_t>() == 1);
  BOOST_TEST(d.get<std::string>() == "s");
  BOOST_TEST(d.get<bool>() == true);
  BOOST_TEST(d.get<double>() == 2.0);
  BOOST_TEST(d.remaining() == 0u);
}

BOOST_AUTO_TEST_CASE(encoder_appends_to_its_buffer) {
  bytes buf = make_bytes({0xaa, 0xbb});
  crew::encoder e(buf);
  e.put(std::uint16_t{0x0102});
  e.write("xy", 2);
  e.write(nullptr, 0);
  BOOST_TEST(e.size() == 4u);  // what this encoder wrote, not what the buffer held
  BOOST_TEST(hex(buf) == hex(make_bytes({0xaa, 0xbb, 0x02, 0x01, 'x', 'y'})));
}

BOOST_AUTO_TEST_CASE(a_fixed_area_encoder_never_writes_past_its_end) {
  std::array<std::byte, 12> area{};
  area.fill(std::byte{0xee});
  crew::encoder e(area.data(), 10);
  e.put(std::uint64_t{7});
  BOOST_CHECK_THROW(e.put(std::uint32_t{1}), crew::capacity_exceeded);
  try {
    e.put(std::uint32_t{1});
  } catch (const crew::capacity_exceeded& x) {
    BOOST_TEST(x.code() == make_error_code(crew::errc::payload_too_large));
  }
  e.put(std::uint16_t{0x0304});  // what still fits is written
  BOOST_TEST(e.size() == 10u);
  BOOST_TEST(static_cast<int>(area[10]) == 0xee);  // the guard bytes are untouched
  BOOST_TEST(static_cast<int>(area[11]) == 0xee);
}

BOOST_AUTO_TEST_CASE(a_counting_encoder_sizes_what_a_real_one_writes) {
  const auto value = std::make_tuple(std::string("abc"), std::vector<double>(1000, 1.5),
                                     std::vector<std::string>{"x", "", "yz"});
  auto counter = crew::encoder::counter();
  counter.put(value);
  BOOST_TEST(counter.size() == crew::encode_values(value).size());
}

BOOST_AUTO_TEST_CASE(decoder_take_and_remaining) {
  const bytes b = make_bytes({1, 2, 3, 4, 5});
  crew::decoder d(b.data(), b.size());
  BOOST_TEST(d.remaining() == 5u);
  const std::byte* p = d.take(2);
  BOOST_TEST(p == b.data());
  BOOST_TEST(d.remaining() == 3u);
  BOOST_TEST(throws_decode_error([&] { (void)d.take(4); }));
  BOOST_TEST(d.take(0) == b.data() + 2);
  BOOST_TEST(d.take(3) == b.data() + 2);
  BOOST_TEST(d.remaining() == 0u);
  BOOST_CHECK_NO_THROW(d.expect_end());
  BOOST_TEST(throws_decode_error([&] { (void)d.take(1); }));

  crew::decoder empty(nullptr, 0);
  BOOST_TEST(empty.remaining() == 0u);
  BOOST_CHECK_NO_THROW(empty.expect_end());
  BOOST_TEST(throws_decode_error([&] { (void)empty.get<std::uint8_t>(); }));
}

// ---------------------------------------------------------------------------------------
// Exact wire layout

BOOST_AUTO_TEST_CASE(integers_are_little_endian) {
  BOOST_TEST(hex(crew::encode_values(std::int32_t{0x01020304})) ==
             hex(make_bytes({0x04, 0x03, 0x02, 0x01})));
  BOOST_TEST(hex(crew::encode_values(std::uint16_t{0x0102})) == hex(make_bytes({0x02, 0x01})));
  BOOST_TEST(hex(crew::encode_values(std::uint64_t{0x0102030405060708})) ==
             hex(make_bytes({8, 7, 6, 5, 4, 3, 2, 1})));
  BOOST_TEST(hex(crew::encode_values(std::int8_t{-1})) == hex(make_bytes({0xff})));
  BOOST_TEST(hex(crew::encode_values(std::int64_t{-2})) ==
             hex(make_bytes({0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})));
  BOOST_TEST(hex(crew::encode_values(std::int16_t{-32768})) == hex(make_bytes({0x00, 0x80})));
}

BOOST_AUTO_TEST_CASE(bool_and_floats_layout) {
  BOOST_TEST(hex(crew::encode_values(true)) == hex(make_bytes({1})));
  BOOST_TEST(hex(crew::encode_values(false)) == hex(make_bytes({0})));
  BOOST_TEST(hex(crew::encode_values(1.0f)) == hex(make_bytes({0x00, 0x00, 0x80, 0x3f})));
  BOOST_TEST(hex(crew::encode_values(1.5)) == hex(make_bytes({0, 0, 0, 0, 0, 0, 0xf8, 0x3f})));
}

BOOST_AUTO_TEST_CASE(string_layout) {
  BOOST_TEST(hex(crew::encode_values(std::string("ab"))) ==
             hex(make_bytes({2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b'})));
  BOOST_TEST(hex(crew::encode_values(std::string())) == hex(u64_le(0)));
  std::string s300(300, 'q');
  const bytes b = crew::encode_values(s300);
  BOOST_TEST(hex(bytes(b.begin(), b.begin() + 8)) ==
             hex(make_bytes({0x2c, 0x01, 0, 0, 0, 0, 0, 0})));
}

BOOST_AUTO_TEST_CASE(container_layout) {
  BOOST_TEST(hex(crew::encode_values(std::vector<double>{1.5})) ==
             hex(concat(u64_le(1), make_bytes({0, 0, 0, 0, 0, 0, 0xf8, 0x3f}))));
  BOOST_TEST(hex(crew::encode_values(std::vector<std::int32_t>{1, -1})) ==
             hex(concat(u64_le(2), make_bytes({1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}))));
  BOOST_TEST(hex(crew::encode_values(std::vector<bool>{true, false, true})) ==
             hex(concat(u64_le(3), make_bytes({1, 0, 1}))));
  BOOST_TEST(hex(crew::encode_values(std::vector<std::string>{"a", ""})) ==
             hex(concat(concat(u64_le(2), concat(u64_le(1), make_bytes({'a'}))), u64_le(0))));
  BOOST_TEST(hex(crew::encode_values(std::vector<std::vector<std::uint8_t>>{{7}, {}})) ==
             hex(concat(concat(u64_le(2), concat(u64_le(1), make_bytes({7}))), u64_le(0))));
  // pair and tuple: the elements in order, no framing.
  BOOST_TEST(hex(crew::encode_values(std::pair<std::uint8_t, std::uint16_t>{1, 0x0203})) ==
             hex(make_bytes({1, 3, 2})));
  BOOST_TEST(hex(crew::encode_values(std::tuple<std::uint8_t, bool, std::int8_t>{9, true, -2})) ==
             hex(make_bytes({9, 1, 0xfe})));
}

// ---------------------------------------------------------------------------------------
// Names in signatures

BOOST_AUTO_TEST_CASE(type_names) {
  BOOST_TEST(name_of<bool>() == "bool");
  BOOST_TEST(name_of<std::int8_t>() == "i8");
  BOOST_TEST(name_of<std::uint8_t>() == "u8");
  BOOST_TEST(name_of<std::int16_t>() == "i16");
  BOOST_TEST(name_of<std::uint16_t>() == "u16");
  BOOST_TEST(name_of<int>() == "i32");
  BOOST_TEST(name_of<std::uint32_t>() == "u32");
  BOOST_TEST(name_of<std::int64_t>() == "i64");
  BOOST_TEST(name_of<std::uint64_t>() == "u64");
  BOOST_TEST(name_of<long long>() == "i64");
  BOOST_TEST(name_of<float>() == "f32");
  BOOST_TEST(name_of<double>() == "f64");
  BOOST_TEST(name_of<std::string>() == "str");
  BOOST_TEST(name_of<std::vector<double>>() == "vec<f64>");
  BOOST_TEST(name_of<std::vector<bool>>() == "vec<bool>");
  BOOST_TEST(name_of<std::vector<std::string>>() == "vec<str>");
  BOOST_TEST(name_of<std::vector<std::vector<int>>>() == "vec<vec<i32>>");
  BOOST_TEST((name_of<std::tuple<int, std::string>>() == "tuple<i32,str>"));
  BOOST_TEST(name_of<std::tuple<>>() == "tuple<>");
  BOOST_TEST(name_of<std::tuple<double>>() == "tuple<f64>");
  BOOST_TEST((name_of<std::tuple<std::tuple<int, bool>, std::vector<std::uint8_t>>>() ==
              "tuple<tuple<i32,bool>,vec<u8>>"));
  BOOST_TEST((name_of<std::pair<int, std::string>>() == "pair<i32,str>"));
  BOOST_TEST((name_of<std::pair<std::string, std::vector<double>>>() == "pair<str,vec<f64>>"));
}

BOOST_AUTO_TEST_CASE(types_without_codec_are_not_encodable) {
  static_assert(crew::encodable<int>);
  static_assert(crew::encodable<std::vector<std::pair<int, std::string>>>);
  static_assert(!crew::encodable<std::map<int, int>>);
  static_assert(!crew::encodable<std::vector<std::map<int, int>>>);
  static_assert(!crew::encodable<std::tuple<int, std::map<int, int>>>);
  static_assert(!crew::encodable<std::pair<std::map<int, int>, int>>);
  static_assert(!crew::encodable<const char*>);
  BOOST_TEST(true);
}

// ---------------------------------------------------------------------------------------
// Malformed input

BOOST_AUTO_TEST_CASE(decode_error_is_a_task_error) {
  const crew::decode_error e("bad bytes");
  BOOST_TEST(e.code() == crew::errc::decode_error);
  BOOST_TEST(e.message() == "bad bytes");
  const crew::task_error& base = e;
  BOOST_TEST(base.code() == crew::errc::decode_error);
}

BOOST_AUTO_TEST_CASE(every_truncation_throws) {
  const bytes full = crew::encode_values(complex_value());
  BOOST_TEST_REQUIRE(full.size() > 100u);
  for (std::size_t len = 0; len < full.size(); ++len) {
    // A copy of exactly `len` bytes, so a sanitizer sees any read past the end.
    const bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    BOOST_TEST(decode_throws<complex_t>(prefix), "prefix of " << len << " bytes");
  }
  crew::decoder d(full);
  BOOST_CHECK_NO_THROW((void)d.get<complex_t>());
}

BOOST_AUTO_TEST_CASE(every_truncation_of_simple_types_throws) {
  const auto check_all_prefixes = [](const bytes& full, auto tag) {
    using T = decltype(tag);
    for (std::size_t len = 0; len < full.size(); ++len) {
      const bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
      BOOST_TEST(decode_throws<T>(prefix), "prefix of " << len << " bytes");
    }
  };
  check_all_prefixes(crew::encode_values(std::uint64_t{5}), std::uint64_t{});
  check_all_prefixes(crew::encode_values(2.5), double{});
  check_all_prefixes(crew::encode_values(std::string("abc")), std::string{});
  check_all_prefixes(crew::encode_values(std::vector<std::int32_t>{1, 2}),
                     std::vector<std::int32_t>{});
  check_all_prefixes(crew::encode_values(std::vector<bool>{true, false}), std::vector<bool>{});
  check_all_prefixes(crew::encode_values(point{1, 2, "l", {3}}), point{});
}

BOOST_AUTO_TEST_CASE(bool_byte_must_be_0_or_1) {
  BOOST_TEST(decode_throws<bool>(make_bytes({2})));
  BOOST_TEST(decode_throws<bool>(make_bytes({0xff})));
  BOOST_TEST(decode_throws<std::vector<bool>>(concat(u64_le(2), make_bytes({1, 2}))));
  BOOST_TEST((decode_throws<std::pair<bool, bool>>(make_bytes({0, 0x80}))));
  const bytes zero_one = make_bytes({0, 1});
  crew::decoder ok(zero_one);
  BOOST_TEST(ok.get<bool>() == false);
  BOOST_TEST(ok.get<bool>() == true);
}

BOOST_AUTO_TEST_CASE(string_count_beyond_input_throws) {
  const bytes abc = make_bytes({'a', 'b', 'c'});
  BOOST_TEST(decode_throws<std::string>(concat(u64_le(~std::uint64_t{0}), abc)));
  BOOST_TEST(decode_throws<std::string>(concat(u64_le(std::uint64_t{1} << 60), abc)));
  BOOST_TEST(decode_throws<std::string>(concat(u64_le(std::uint64_t{1} << 63), abc)));
  BOOST_TEST(decode_throws<std::string>(concat(u64_le(4), abc)));  // remaining + 1
  BOOST_TEST(decode_throws<std::string>(u64_le(1)));

  const bytes fits = concat(u64_le(3), abc);  // remaining: fits exactly
  crew::decoder exact(fits);
  BOOST_TEST(exact.get<std::string>() == "abc");
  BOOST_TEST(exact.remaining() == 0u);
}

BOOST_AUTO_TEST_CASE(vector_count_beyond_input_throws_before_allocating) {
  const bytes sixteen(16, std::byte{0});
  // A decoder that allocated `count` elements first would throw bad_alloc or
  // length_error here, which throws_decode_error counts as a failure.
  for (const std::uint64_t count :
       {~std::uint64_t{0}, std::uint64_t{1} << 60, std::uint64_t{1} << 62, std::uint64_t{3}}) {
    BOOST_TEST_CONTEXT("count " << count) {
      const bytes b = concat(u64_le(count), sixteen);
      BOOST_TEST(decode_throws<std::vector<double>>(b));
      BOOST_TEST(decode_throws<std::vector<std::string>>(b));
      BOOST_TEST(decode_throws<std::vector<std::vector<int>>>(b));
      BOOST_TEST(decode_throws<std::vector<point>>(b));
      BOOST_TEST((decode_throws<std::vector<std::pair<double, double>>>(b)));
      if (count > 16) BOOST_TEST(decode_throws<std::string>(b));
    }
  }
  // count * sizeof(element) wraps around to 4: must still be rejected.
  BOOST_TEST(decode_throws<std::vector<std::int32_t>>(
      concat(u64_le((std::uint64_t{1} << 62) + 1), make_bytes({1, 2, 3, 4}))));
  // remaining + 1 elements, for several element sizes.
  BOOST_TEST(decode_throws<std::vector<std::int32_t>>(concat(u64_le(5), sixteen)));
  BOOST_TEST(decode_throws<std::vector<std::uint8_t>>(concat(u64_le(17), sixteen)));
  BOOST_TEST(decode_throws<std::vector<bool>>(concat(u64_le(17), sixteen)));
  BOOST_TEST(decode_throws<std::vector<std::vector<int>>>(concat(u64_le(3), sixteen)));
  // Exactly what the input holds decodes.
  const bytes four_ints = concat(u64_le(4), sixteen);
  crew::decoder d(four_ints);
  BOOST_TEST(d.get<std::vector<std::int32_t>>().size() == 4u);
  const bytes two_strings = concat(u64_le(2), sixteen);
  crew::decoder d2(two_strings);
  BOOST_TEST(d2.get<std::vector<std::string>>().size() == 2u);
}

namespace {
// An allocator that records the largest allocation it was asked for.
std::size_t largest_allocation = 0;
template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    largest_allocation = std::max(largest_allocation, n * sizeof(T));
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(const counting_allocator&, const counting_allocator&) = default;
};
}  // namespace

// Issue 14, finding 7: an empty string is 8 bytes on the wire and a 32-byte std::string in
// memory. With a memory limit, what the elements take in memory is checked against it
// before anything is reserved.
BOOST_AUTO_TEST_CASE(a_count_too_large_in_memory_throws_before_allocating) {
  const std::uint64_t count = 1 << 20;
  const bytes b = concat(u64_le(count), bytes(count * 8, std::byte{0}));  // 1 Mi empty strings
  const std::size_t limit = std::size_t{16} << 20;
  using strings = std::vector<std::string, counting_allocator<std::string>>;
  largest_allocation = 0;
  std::string message;
  try {
    crew::decoder d(b.data(), b.size(), limit);
    (void)d.get<strings>();
  } catch (const crew::decode_error& e) {
    message = e.message();
  }
  BOOST_TEST(message == "vector of 1048576 elements would take " +
                            std::to_string(count * sizeof(std::string)) +
                            " bytes in memory, more than the limit 16777216");
  BOOST_TEST(largest_allocation == 0u);  // refused before reserving
  // Without a limit, or within one, the same bytes decode as before.
  crew::decoder unlimited(b);
  BOOST_TEST(unlimited.get<std::vector<std::string>>().size() == count);
  crew::decoder within(b.data(), b.size(), count * sizeof(std::string));
  BOOST_TEST(within.get<std::vector<std::string>>().size() == count);
  BOOST_TEST(within.memory_left() == 0u);

  // The limit is for the whole value: two vectors each within it, together over it.
  const bytes half = concat(u64_le(count / 2), bytes(count / 2 * 8, std::byte{0}));
  const bytes both = concat(concat(u64_le(2), half), half);
  auto refusal = [](const bytes& in, std::size_t memory, auto type) -> std::string {
    try {
      crew::decoder d(in.data(), in.size(), memory);
      (void)d.get<typename decltype(type)::type>();
    } catch (const crew::decode_error& e) {
      return e.message();
    }
    return "decoded";
  };
  BOOST_TEST(
      refusal(both, count * sizeof(std::string),
              std::type_identity<std::vector<std::vector<std::string>>>{}) ==
      "vector of 524288 elements would take " +
          std::to_string(2 * sizeof(std::vector<std::string>) + count * sizeof(std::string)) +
          " bytes in memory, more than the limit " + std::to_string(count * sizeof(std::string)));
  // Strings count their bytes.
  const bytes abc = concat(u64_le(3), make_bytes({'a', 'b', 'c'}));
  BOOST_TEST(refusal(abc, 2, std::type_identity<std::string>{}) ==
             "string of 3 elements would take 3 bytes in memory, more than the limit 2");
  BOOST_TEST(refusal(abc, 3, std::type_identity<std::string>{}) == "decoded");
}

BOOST_AUTO_TEST_CASE(trailing_bytes_are_detected) {
  const bytes b = concat(crew::encode_values(std::int32_t{5}), make_bytes({0}));
  crew::decoder d(b);
  BOOST_TEST(d.get<std::int32_t>() == 5);
  BOOST_TEST(d.remaining() == 1u);
  BOOST_TEST(throws_decode_error([&] { d.expect_end(); }));

  const bytes c = concat(crew::encode_values(complex_value()), make_bytes({1, 2, 3}));
  crew::decoder dc(c);
  BOOST_CHECK_NO_THROW((void)dc.get<complex_t>());
  BOOST_TEST(throws_decode_error([&] { dc.expect_end(); }));
}

BOOST_AUTO_TEST_CASE(random_input_only_throws_decode_error) {
  std::mt19937_64 rng(20240611);
  const bytes valid = crew::encode_values(complex_value());
  const auto below = [&](std::size_t n) {
    return static_cast<std::size_t>(rng() % static_cast<std::uint64_t>(n));
  };
  int decoded = 0;
  int rejected = 0;
  int other = 0;
  for (int round = 0; round < 4000; ++round) {
    bytes input;
    switch (round % 4) {
      case 0: {  // pure noise, mostly small bytes so that counts are sometimes plausible
        input.resize(below(96));
        for (auto& x : input)
          x = static_cast<std::byte>(rng() % 4 == 0 ? rng() : rng() % 4);
        break;
      }
      case 1: {  // a valid encoding with a few bytes changed
        input = valid;
        for (std::size_t k = 1 + below(4); k > 0; --k)
          input[below(input.size())] = static_cast<std::byte>(rng());
        break;
      }
      case 2: {  // a valid encoding with a few bytes nudged by +-1 (counts off by one)
        input = valid;
        for (std::size_t k = 1 + below(3); k > 0; --k) {
          auto& x = input[below(input.size())];
          x = static_cast<std::byte>(std::to_integer<unsigned>(x) + (rng() % 2 ? 1u : 255u));
        }
        break;
      }
      default: {  // a valid encoding with a slice cut out or duplicated
        input = valid;
        const std::size_t at = below(input.size());
        const std::size_t n = 1 + below(std::min<std::size_t>(24, input.size() - at));
        if (rng() % 2)
          input.erase(input.begin() + static_cast<std::ptrdiff_t>(at),
                      input.begin() + static_cast<std::ptrdiff_t>(at + n));
        else
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(at),
                       valid.begin() + static_cast<std::ptrdiff_t>(at),
                       valid.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
    }
    try {
      crew::decoder d(input);
      const complex_t v = d.get<complex_t>();
      const std::size_t used = input.size() - d.remaining();
      // Whatever decodes re-encodes to exactly the bytes it came from.
      BOOST_TEST(hex(crew::encode_values(v)) ==
                     hex(bytes(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(used))),
                 "round " << round);
      ++decoded;
    } catch (const crew::decode_error& e) {
      BOOST_TEST(e.code() == crew::errc::decode_error);
      ++rejected;
    } catch (const std::exception& e) {
      BOOST_ERROR("round " << round << " threw " << e.what());
      ++other;
    }
  }
  BOOST_TEST(other == 0);
  BOOST_TEST(rejected > 1000);  // the generator does produce malformed input
  BOOST_TEST_MESSAGE("fuzz: " << decoded << " decoded, " << rejected << " rejected");
}

BOOST_AUTO_TEST_SUITE_END()
