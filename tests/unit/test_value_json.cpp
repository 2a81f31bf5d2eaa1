// Values in JSON for crew run (apps/crew/value_json.hpp): signatures parsed and refused, every
// wire type from JSON to the bytes crew::encoder writes for the same C++ values and back to
// JSON and to Python-like text, values that do not fit their type named by where they are,
// and decoding that refuses truncated, trailing and impossible bytes.
#include "value_json.hpp"

#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

namespace json = boost::json;
using namespace crew::cli;
using bytes = std::vector<std::byte>;
using namespace std::string_literals;

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

bytes raw(std::string_view s) {
  bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

bytes encode_args(std::string_view sig, std::string_view json_args) {
  bytes out;
  append_args(job_signature::parse(sig), parse_json(json_args), out);
  return out;
}

std::string result_json(std::string_view sig, const bytes& b) {
  std::string out;
  append_result_json(job_signature::parse(sig), b, out);
  return out;
}

std::string result_text(std::string_view sig, const bytes& b) {
  std::string out;
  append_result_text(job_signature::parse(sig), b, out);
  return out;
}

/// Runs `f`; returns what() of the `E` it threw (a task_error's message()), or says what
/// happened instead.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    if constexpr (std::is_base_of_v<crew::task_error, E>)
      return e.message();
    else
      return e.what();
  } catch (const std::exception& e) {
    return "another exception: "s + e.what();
  }
  return "no exception";
}

std::string args_error(std::string_view sig, std::string_view json_args) {
  return message_of<value_error>([&] { (void)encode_args(sig, json_args); });
}

std::string signature_error(std::string_view sig) {
  return message_of<std::invalid_argument>([&] { (void)job_signature::parse(sig); });
}

/// One value of type `type`: `json_in` (JSON text) encodes to `expected` (what
/// crew::encoder writes for the C++ value), which decodes to `json_out` and `text_out`; and
/// `json_out`, parsed again, encodes to `expected` again.
void check_round_trip(const std::string& type, std::string_view json_in, const bytes& expected,
                      std::string_view json_out, std::string_view text_out) {
  BOOST_TEST_CONTEXT(type << " " << json_in) {
    BOOST_TEST(hex(encode_args("void(" + type + ")", "[" + std::string(json_in) + "]")) ==
               hex(expected));
    const auto j = result_json(type + "()", expected);
    BOOST_TEST(j == json_out);
    BOOST_TEST(hex(encode_args("void(" + type + ")", "[" + j + "]")) == hex(expected));
    BOOST_TEST(result_text(type + "()", expected) == text_out);
  }
}

template <class... T>
bytes enc(const T&... v) {
  return crew::encode_values(v...);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(value_json)

// ---- signatures -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(signatures_parse_and_name_their_types_again) {
  using k = wire_type::kind;
  const auto s = job_signature::parse("vec<pair<i32,str>>(tuple<u8,f32>,str)");
  BOOST_TEST((s.result.k == k::vec));
  BOOST_TEST(s.result.name() == "vec<pair<i32,str>>");
  BOOST_TEST_REQUIRE(s.args.size() == 2u);
  BOOST_TEST(s.args[0].name() == "tuple<u8,f32>");
  BOOST_TEST((s.args[1].k == k::str));

  const auto none = job_signature::parse("i32()");
  BOOST_TEST((none.result.k == k::i32));
  BOOST_TEST(none.args.empty());
  const auto v = job_signature::parse("void(str)");
  BOOST_TEST((v.result.k == k::void_));
  BOOST_TEST(v.result.name() == "void");

  for (const char* text : {"bool(i8,i16,i32,i64,u8,u16,u32,u64,f32,f64,str)", "tuple<>(tuple<>)",
                           "vec<vec<vec<f64>>>(pair<vec<str>,tuple<bool,tuple<i64>>>)",
                           "tuple<i32>(vec<tuple<u8>>)"}) {
    const auto sig = job_signature::parse(text);
    std::string again = sig.result.name() + "(";
    for (std::size_t i = 0; i < sig.args.size(); ++i)
      again += (i ? "," : "") + sig.args[i].name();
    BOOST_TEST(again + ")" == text);
  }
}

BOOST_AUTO_TEST_CASE(malformed_signatures_are_refused_saying_why) {
  BOOST_TEST(signature_error("f64(point)") ==
             "signature 'f64(point)': type 'point' has no JSON form");
  BOOST_TEST(signature_error("point(i32)").find("type 'point' has no JSON form") !=
             std::string::npos);
  BOOST_TEST(signature_error("f64(map<i32,str>)").find("type 'map<i32,str>' has no JSON form") !=
             std::string::npos);
  BOOST_TEST(signature_error("f64i32").find("type 'f64i32' has no JSON form") != std::string::npos);
  BOOST_TEST(signature_error("f64)").find("expected '(' after the result type, found ')'") !=
             std::string::npos);
  BOOST_TEST(signature_error("f64").find("expected '(' after the result type, found the end") !=
             std::string::npos);
  BOOST_TEST(signature_error("f64(i32").find("expected ',' or ')'") != std::string::npos);
  BOOST_TEST(signature_error("i32(void)").find("'void' is only allowed as the result") !=
             std::string::npos);
  BOOST_TEST(signature_error("i32(str,void)").find("not as argument 2") != std::string::npos);
  BOOST_TEST(signature_error("vec<void>()").find("'void' is only allowed as the result") !=
             std::string::npos);
  BOOST_TEST(signature_error("vec<i32(i32)").find("to close 'vec<'") != std::string::npos);
  BOOST_TEST(signature_error("vec<i32>>(i32)").find("unbalanced '>'") != std::string::npos);
  BOOST_TEST(signature_error("f64(vec<i32>>)").find("unbalanced '>'") != std::string::npos);
  BOOST_TEST(signature_error("f64(pair<i32,str)").find("to close 'pair<'") != std::string::npos);
  BOOST_TEST(signature_error("f64(i32) ").find("unexpected text after ')'") != std::string::npos);
  BOOST_TEST(signature_error("f64(i32)x").find("unexpected text after ')'") != std::string::npos);
  BOOST_TEST(signature_error("f64(i32, str)").find("a space at position 9") != std::string::npos);
  BOOST_TEST(signature_error("f64(i32,)").find("expected a type") != std::string::npos);
  BOOST_TEST(signature_error("f64(,i32)").find("expected a type") != std::string::npos);
  BOOST_TEST(signature_error("(i32)").find("expected a type") != std::string::npos);
  BOOST_TEST(signature_error("").find("expected a type") != std::string::npos);
  BOOST_TEST(signature_error("vec(i32)").find("expected '<' after 'vec'") != std::string::npos);
  BOOST_TEST(signature_error("i32<u8>()").find("'i32' takes no '<'") != std::string::npos);
  BOOST_TEST(signature_error("pair<i32>()").find("takes 2 types, not 1") != std::string::npos);
  BOOST_TEST(signature_error("vec<i32,i32>()").find("takes 1 type, not 2") != std::string::npos);
  BOOST_TEST(signature_error("vec<tuple<>>()").find("elements of zero bytes") != std::string::npos);
  BOOST_TEST(signature_error("vec<pair<tuple<>,tuple<>>>()").find("elements of zero bytes") !=
             std::string::npos);
  // Deep nesting is refused before it can exhaust the stack; 64 levels are fine.
  std::string deep = "i32";
  for (int i = 0; i < 64; ++i)
    deep = "vec<" + deep + ">";
  BOOST_CHECK_NO_THROW(job_signature::parse(deep + "()"));
  BOOST_TEST(signature_error("vec<" + deep + ">()").find("nest more than 64 deep") !=
             std::string::npos);
  std::string bomb;
  for (int i = 0; i < 100000; ++i)
    bomb += "vec<";
  const auto m = signature_error(bomb + "i32()");
  BOOST_TEST(m.find("nest more than 64 deep") != std::string::npos);
  BOOST_TEST(m.size() < 400u);  // the signature is quoted cut
  BOOST_TEST(signature_error(std::string(1000, '<')).find("...': expected a type") !=
             std::string::npos);
  // Invalid UTF-8 in a signature is quoted escaped.
  BOOST_TEST(signature_error("f64(\xff)") ==
             "signature 'f64(\\xff)': type '\\xff' has no JSON form");
}

// ---- every type round-trips -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(integers_round_trip_at_their_limits) {
  check_round_trip("bool", "true", enc(true), "true", "True");
  check_round_trip("bool", "false", enc(false), "false", "False");
  check_round_trip("i8", "-128", enc(std::int8_t{-128}), "-128", "-128");
  check_round_trip("i8", "127", enc(std::int8_t{127}), "127", "127");
  check_round_trip("i16", "-32768", enc(std::int16_t{-32768}), "-32768", "-32768");
  check_round_trip("i32", "2147483647", enc(std::int32_t{2147483647}), "2147483647", "2147483647");
  check_round_trip("i32", "-5", enc(std::int32_t{-5}), "-5", "-5");
  const auto i64_min = std::numeric_limits<std::int64_t>::min();
  check_round_trip("i64", "-9223372036854775808", enc(i64_min), "-9223372036854775808",
                   "-9223372036854775808");
  check_round_trip("i64", "9223372036854775807", enc(std::numeric_limits<std::int64_t>::max()),
                   "9223372036854775807", "9223372036854775807");
  check_round_trip("u8", "255", enc(std::uint8_t{255}), "255", "255");
  check_round_trip("u16", "65535", enc(std::uint16_t{65535}), "65535", "65535");
  check_round_trip("u32", "4294967295", enc(std::uint32_t{4294967295u}), "4294967295",
                   "4294967295");
  check_round_trip("u64", "18446744073709551615", enc(std::numeric_limits<std::uint64_t>::max()),
                   "18446744073709551615", "18446744073709551615");
  check_round_trip("u64", "0", enc(std::uint64_t{0}), "0", "0");
}

BOOST_AUTO_TEST_CASE(floats_round_trip_written_as_python_writes_them) {
  check_round_trip("f64", "2", enc(2.0), "2.0", "2.0");
  check_round_trip("f64", "2.0", enc(2.0), "2.0", "2.0");
  check_round_trip("f64", "0.1", enc(0.1), "0.1", "0.1");
  check_round_trip("f64", "-0.0", enc(-0.0), "-0.0", "-0.0");
  check_round_trip("f64", "1e16", enc(1e16), "1e+16", "1e+16");
  check_round_trip("f64", "1e15", enc(1e15), "1000000000000000.0", "1000000000000000.0");
  check_round_trip("f64", "100000", enc(100000.0), "100000.0", "100000.0");
  check_round_trip("f64", "0.0001", enc(0.0001), "0.0001", "0.0001");
  check_round_trip("f64", "0.00001", enc(0.00001), "1e-05", "1e-05");
  check_round_trip("f64", "-1.5e300", enc(-1.5e300), "-1.5e+300", "-1.5e+300");
  check_round_trip("f64", "1.25e-310", enc(1.25e-310), "1.25e-310", "1.25e-310");
  check_round_trip("f64", "123456.789", enc(123456.789), "123456.789", "123456.789");
  check_round_trip("f64", "9007199254740993", enc(9007199254740992.0), "9007199254740992.0",
                   "9007199254740992.0");
  check_round_trip("f64", "18446744073709551615", enc(18446744073709551616.0),
                   "1.8446744073709552e+19", "1.8446744073709552e+19");
  check_round_trip("f64", "-9223372036854775808", enc(-9223372036854775808.0),
                   "-9.223372036854776e+18", "-9.223372036854776e+18");
  check_round_trip("f64", "\"nan\"", enc(std::numeric_limits<double>::quiet_NaN()), "\"nan\"",
                   "nan");
  check_round_trip("f64", "\"inf\"", enc(std::numeric_limits<double>::infinity()), "\"inf\"",
                   "inf");
  check_round_trip("f64", "\"-inf\"", enc(-std::numeric_limits<double>::infinity()), "\"-inf\"",
                   "-inf");
  // An f32 is written with its own shortest digits.
  check_round_trip("f32", "0.1", enc(0.1f), "0.1", "0.1");
  check_round_trip("f32", "16777216", enc(16777216.0f), "16777216.0", "16777216.0");
  check_round_trip("f32", "1e20", enc(1e20f), "1e+20", "1e+20");
  check_round_trip("f32", "-3", enc(-3.0f), "-3.0", "-3.0");
  check_round_trip("f32", "\"-inf\"", enc(-std::numeric_limits<float>::infinity()), "\"-inf\"",
                   "-inf");
  const float max = std::numeric_limits<float>::max();
  check_round_trip("f32", "3.4028234663852886e38", enc(max), "3.4028235e+38", "3.4028235e+38");
  // Past FLT_MAX but below FLT_MAX + half an ulp: rounds to FLT_MAX, as a float parse would.
  check_round_trip("f32", "-3.40282356e38", enc(-max), "-3.4028235e+38", "-3.4028235e+38");
  check_round_trip("f32", "1e-50", enc(0.0f), "0.0", "0.0");
}

BOOST_AUTO_TEST_CASE(a_negative_nan_is_still_nan) {
  const double nan = -std::numeric_limits<double>::quiet_NaN();
  BOOST_TEST(result_json("f64()", enc(nan)) == "\"nan\"");
  BOOST_TEST(result_text("f64()", enc(nan)) == "nan");
}

BOOST_AUTO_TEST_CASE(strings_round_trip) {
  check_round_trip("str", "\"ab\"", enc("ab"s), "\"ab\"", "'ab'");
  check_round_trip("str", "\"\"", enc(""s), "\"\"", "''");
  check_round_trip("str", "\"caf\\u00e9 \\u20ac \\ud83d\\ude00\"", enc("café € 😀"s), "\"café € 😀\"",
                   "'café € 😀'");
  check_round_trip("str", "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\x7f\"",
                   enc("a\"b\\c\n\t\r\b\f\x01\x1f\x7f"s),
                   "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\x7f\"",
                   "'a\"b\\\\c\\n\\t\\r\\x08\\x0c\\x01\\x1f\\x7f'");
  check_round_trip("str", "\"nul\\u0000inside\"", enc("nul\0inside"s), "\"nul\\u0000inside\"",
                   "'nul\\x00inside'");
  // Python's repr picks the quote that needs no escape, and escapes what it cannot print.
  check_round_trip("str", "\"it's\"", enc("it's"s), "\"it's\"", "\"it's\"");
  check_round_trip("str", "\"it's \\\"x\\\"\"", enc("it's \"x\""s), "\"it's \\\"x\\\"\"",
                   "'it\\'s \"x\"'");
  check_round_trip("str", "\"\\u00a0\\u0085\\u200b\\u2028\\ue000\\ufeff\"",
                   enc("\u00a0\u0085\u200b\u2028\ue000\ufeff"s),
                   "\"\u00a0\u0085\u200b\u2028\ue000\ufeff\"",
                   "'\\xa0\\x85\\u200b\\u2028\\ue000\\ufeff'");
  check_round_trip("str", "\"\\udb80\\udc00\"", enc("\U000f0000"s), "\"\U000f0000\"",
                   "'\\U000f0000'");
}

BOOST_AUTO_TEST_CASE(strings_from_base64) {
  check_round_trip("str", R"({"base64":"YWI="})", enc("ab"s), "\"ab\"", "'ab'");
  check_round_trip("str", R"({"base64":""})", enc(""s), "\"\"", "''");
  check_round_trip("str", R"({"base64":"/w=="})", enc("\xff"s), R"({"base64":"/w=="})", "b'\\xff'");
  check_round_trip("str", R"({"base64":"YWJj"})", enc("abc"s), "\"abc\"", "'abc'");
  check_round_trip("str", R"({"base64":"+/+/"})", enc("\xfb\xff\xbf"s), R"({"base64":"+/+/"})",
                   "b'\\xfb\\xff\\xbf'");
  BOOST_TEST(args_error("void(str)", R"([{"base64":"YWI"}])") ==
             "argument 1: base64 of 3 characters, not a multiple of 4");
  BOOST_TEST(args_error("void(str)", R"([{"base64":"Y*I="}])") ==
             "argument 1: base64 has '*' at position 2");
  BOOST_TEST(args_error("void(str)", R"([{"base64":"Y WI="}])").find("not a multiple") !=
             std::string::npos);
  BOOST_TEST(args_error("void(str)", R"([{"base64":"=YWI"}])") ==
             "argument 1: base64 has '=' at position 1");
  BOOST_TEST(args_error("void(str)", R"([{"base64":"Y==="}])") ==
             "argument 1: base64 has '=' at position 2");
  BOOST_TEST(args_error("void(str)", R"([{"base64":"YWJ=YWI="}])") ==
             "argument 1: base64 has '=' at position 4");
  BOOST_TEST(args_error("void(str)", R"([{"base64":"/x=="}])") ==
             "argument 1: base64 has bits set past its last byte");
  BOOST_TEST(args_error("void(str)", R"([{"base64":"YWJ="}])") ==
             "argument 1: base64 has bits set past its last byte");
  BOOST_TEST(args_error("void(str)", R"([{"base64":5}])").find("expected a string or") !=
             std::string::npos);
  BOOST_TEST(args_error("void(str)", R"([{"base64":"YQ==","x":1}])").find("expected a string or") !=
             std::string::npos);
  BOOST_TEST(args_error("void(str)", R"([{}])").find("expected a string or") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(containers_round_trip) {
  check_round_trip("vec<i32>", "[1,2,3]", enc(std::vector<std::int32_t>{1, 2, 3}), "[1,2,3]",
                   "[1, 2, 3]");
  check_round_trip("vec<f64>", "[]", enc(std::vector<double>{}), "[]", "[]");
  check_round_trip("vec<f64>", "[1.5,\"nan\",-2]",
                   enc(std::vector<double>{1.5, std::numeric_limits<double>::quiet_NaN(), -2}),
                   "[1.5,\"nan\",-2.0]", "[1.5, nan, -2.0]");
  check_round_trip("vec<str>", "[\"a\",\"\"]", enc(std::vector<std::string>{"a", ""}),
                   "[\"a\",\"\"]", "['a', '']");
  check_round_trip("vec<bool>", "[true,false]", enc(std::vector<bool>{true, false}), "[true,false]",
                   "[True, False]");
  check_round_trip("pair<i32,str>", "[1,\"a\"]", enc(std::pair<std::int32_t, std::string>{1, "a"}),
                   "[1,\"a\"]", "(1, 'a')");
  check_round_trip("tuple<u8,f32>", "[7,1.5]", enc(std::tuple<std::uint8_t, float>{7, 1.5f}),
                   "[7,1.5]", "(7, 1.5)");
  check_round_trip("tuple<i32>", "[5]", enc(std::tuple<std::int32_t>{5}), "[5]", "(5,)");
  check_round_trip("tuple<>", "[]", enc(std::tuple<>{}), "[]", "()");
  using nested = std::vector<std::pair<std::int32_t, std::string>>;
  check_round_trip("vec<pair<i32,str>>", "[[1,\"x\"],[-2,\"\\u00ff\"]]",
                   enc(nested{{1, "x"}, {-2, "\u00ff"}}), "[[1,\"x\"],[-2,\"\u00ff\"]]",
                   "[(1, 'x'), (-2, '\u00ff')]");
  using deep = std::tuple<std::vector<std::vector<std::int16_t>>, std::pair<bool, std::tuple<>>,
                          std::vector<std::string>>;
  check_round_trip(
      "tuple<vec<vec<i16>>,pair<bool,tuple<>>,vec<str>>", "[[[],[1,-2]],[false,[]],[\"\",\"q\"]]",
      enc(deep{{{}, {1, -2}}, {false, {}}, {"", "q"}}), "[[[],[1,-2]],[false,[]],[\"\",\"q\"]]",
      "([[], [1, -2]], (False, ()), ['', 'q'])");
}

BOOST_AUTO_TEST_CASE(arguments_encode_as_a_tuple_of_them) {
  // A task's arguments are the encoding of a tuple of them (protocol.md §5).
  bytes expected;
  crew::encoder e(expected);
  e.put(std::tuple<int, std::string>{5, "x"});
  BOOST_TEST(hex(encode_args("f64(i32,str)", R"([5,"x"])")) == hex(expected));
  BOOST_TEST(hex(encode_args("vec<pair<i32,str>>(tuple<u8,f32>,str)", R"([[1,0.5],"s"])")) ==
             hex(enc(std::tuple<std::uint8_t, float>{1, 0.5f}, "s"s)));
  BOOST_TEST(encode_args("i32()", "[]").empty());

  // Appends, and keeps what was there.
  bytes out = raw("ab");
  append_args(job_signature::parse("void(u8,u8)"), json::parse("[1,2]"), out);
  BOOST_TEST(hex(out) == "61 62 01 02");
}

BOOST_AUTO_TEST_CASE(void_results_are_null_or_none) {
  BOOST_TEST(result_json("void(str)", {}) == "null");
  BOOST_TEST(result_text("void(str)", {}) == "None");
  BOOST_TEST(message_of<crew::decode_error>([] { (void)result_json("void()", raw("x")); }) ==
             "1 unexpected trailing bytes");
}

BOOST_AUTO_TEST_CASE(results_append_to_what_is_there) {
  std::string out = "x=";
  append_result_json(job_signature::parse("pair<i32,str>()"), enc(std::pair{3, "a"s}), out);
  append_result_text(job_signature::parse("pair<i32,str>()"), enc(std::pair{3, "a"s}), out);
  BOOST_TEST(out == "x=[3,\"a\"](3, 'a')");
}

BOOST_AUTO_TEST_CASE(large_vectors_round_trip) {
  std::vector<double> v(100000);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<double>(i) / 7.0 - 1000.0;
  const auto b = enc(v);
  const auto j = result_json("vec<f64>()", b);
  BOOST_TEST((encode_args("void(vec<f64>)", "[" + j + "]") == b));
}

// ---- reading JSON text ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(parse_json_reads_every_double_exactly) {
  // Boost 1.81's parser reads this one as 474.5938056855635 (one ulp off).
  BOOST_TEST(parse_json("474.59380568556355").as_double() == 474.59380568556355);
  BOOST_TEST(parse_json("[1.3927926388013963e-143]").as_array()[0].as_double() ==
             1.3927926388013963e-143);
  // Any double written as a result reads back bit for bit, whatever its exponent.
  std::mt19937_64 rng(7);
  const auto sig = job_signature::parse("f64()");
  const auto back = job_signature::parse("void(f64)");
  for (int i = 0; i < 20000; ++i) {
    std::uint64_t bits = rng();
    double d = 0;
    std::memcpy(&d, &bits, sizeof d);
    const auto b = enc(d);
    std::string j = "[";
    append_result_json(sig, b, j);
    bytes again;
    append_args(back, parse_json(j + "]"), again);
    if (std::isnan(d)) continue;  // NaN payloads are not kept: "nan" is the quiet NaN
    BOOST_TEST_REQUIRE((again == b), j);
  }
  // So does every float.
  const auto sig32 = job_signature::parse("f32()");
  const auto back32 = job_signature::parse("void(f32)");
  for (int i = 0; i < 20000; ++i) {
    const auto bits = static_cast<std::uint32_t>(rng());
    float f = 0;
    std::memcpy(&f, &bits, sizeof f);
    if (std::isnan(f)) continue;
    const auto b = enc(f);
    std::string j = "[";
    append_result_json(sig32, b, j);
    bytes again;
    append_args(back32, parse_json(j + "]"), again);
    BOOST_TEST_REQUIRE((again == b), j);
  }
}

BOOST_AUTO_TEST_CASE(parse_json_is_boost_json_parse_otherwise) {
  const auto text = R"( {"a":[1,-2,18446744073709551615,-9223372036854775808,1.5e3,"s\u00e9",)"
                    R"(true,false,null,{}],"b":{"c":[]}} )";
  BOOST_TEST(json::serialize(parse_json(text)) == json::serialize(json::parse(text)));
  BOOST_TEST(parse_json("1e400").as_double() == std::numeric_limits<double>::infinity());
  boost::system::error_code ec;
  BOOST_TEST(parse_json("[1,", ec).is_null());
  BOOST_TEST(ec.failed());
  BOOST_TEST(parse_json("[1] [2]", ec).is_null());
  BOOST_TEST((ec == json::error::extra_data));
  BOOST_TEST(parse_json("\"\xff\"", ec).is_null());
  BOOST_TEST(ec.failed());
  BOOST_CHECK_THROW(parse_json("{"), boost::system::system_error);
  // 100 levels are fine (Boost's default stops at 32), 101 are not.
  BOOST_TEST(parse_json(std::string(100, '[') + std::string(100, ']'), ec).is_array());
  BOOST_TEST(!ec.failed());
  BOOST_TEST(parse_json(std::string(101, '[') + std::string(101, ']'), ec).is_null());
  BOOST_TEST((ec == json::error::too_deep));
}

// ---- values that do not fit -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(integers_out_of_range_name_the_argument) {
  BOOST_TEST(args_error("f64(i32,u8)", "[1,300]") == "argument 2: 300 does not fit u8");
  BOOST_TEST(args_error("f64(u32)", "[-1]") == "argument 1: -1 does not fit u32");
  BOOST_TEST(args_error("f64(i64)", "[9223372036854775808]") ==
             "argument 1: 9223372036854775808 does not fit i64");
  BOOST_TEST(args_error("f64(i32)", "[1.5]") ==
             "argument 1: expected an integer (no fraction, no exponent), got 1.5");
  BOOST_TEST(args_error("f64(i32)", "[1e2]") ==
             "argument 1: expected an integer (no fraction, no exponent), got 100.0");
  BOOST_TEST(args_error("f64(i32)", "[2.0]").find("expected an integer") != std::string::npos);
  BOOST_TEST(args_error("f64(i8)", "[-129]") == "argument 1: -129 does not fit i8");
  BOOST_TEST(args_error("f64(i8)", "[128]") == "argument 1: 128 does not fit i8");
  BOOST_TEST(args_error("f64(i16)", "[32768]") == "argument 1: 32768 does not fit i16");
  BOOST_TEST(args_error("f64(u16)", "[65536]") == "argument 1: 65536 does not fit u16");
  BOOST_TEST(args_error("f64(i32)", "[2147483648]") == "argument 1: 2147483648 does not fit i32");
  BOOST_TEST(args_error("f64(u64)", "[-1]") == "argument 1: -1 does not fit u64");
  BOOST_TEST(args_error("f64(i64)", "[-9223372036854775809]") ==
             "argument 1: -9.223372036854776e+18 does not fit i64");
  BOOST_TEST(args_error("f64(u64)", "[18446744073709551616]") ==
             "argument 1: 1.8446744073709552e+19 does not fit u64");
  BOOST_TEST(args_error("f64(i32)", "[\"5\"]") == "argument 1: expected an integer, got \"5\"");
  BOOST_TEST(args_error("f64(i32)", "[true]") == "argument 1: expected an integer, got true");
  BOOST_TEST(args_error("f64(i32)", "[null]") == "argument 1: expected an integer, got null");
  BOOST_TEST(args_error("f64(bool)", "[1]") == "argument 1: expected true or false, got 1");
}

BOOST_AUTO_TEST_CASE(floats_that_do_not_fit) {
  BOOST_TEST(args_error("f64(f32)", "[1e39]") == "argument 1: 1e+39 does not fit f32");
  BOOST_TEST(args_error("f64(f32)", "[-3.4028236e38]") ==
             "argument 1: -3.4028236e+38 does not fit f32");
  BOOST_TEST(args_error("f64(f64)", "[1e400]") ==
             "argument 1: a number too large for f64 (\"inf\" and \"-inf\" are the infinities)");
  BOOST_TEST(args_error("f64(f32)", "[-1e400]").find("too large for f32") != std::string::npos);
  BOOST_TEST(args_error("f64(f64)", "[\"NaN\"]") ==
             "argument 1: expected a number (or \"nan\", \"inf\", \"-inf\"), got \"NaN\"");
  BOOST_TEST(args_error("f64(f64)", "[[1]]") ==
             "argument 1: expected a number (or \"nan\", \"inf\", \"-inf\"), got an array of 1 "
             "element");
  BOOST_TEST(args_error("f64(f64)", "[{}]").find("got an object") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(wrong_arity_is_refused) {
  BOOST_TEST(args_error("f64(i32,str)", "[1]") == "the job takes 2 arguments (i32,str), got 1");
  BOOST_TEST(args_error("f64(i32,str)", "[1,\"a\",3]") ==
             "the job takes 2 arguments (i32,str), got 3");
  BOOST_TEST(args_error("f64(i32)", "[]") == "the job takes 1 argument (i32), got 0");
  BOOST_TEST(args_error("i32()", "[1]") == "the job takes 0 arguments (), got 1");
  BOOST_TEST(args_error("f64(i32)", "5") ==
             "expected a JSON array of the job's arguments (i32), got 5");
  BOOST_TEST(args_error("f64(i32)", R"({"a":1})") ==
             "expected a JSON array of the job's arguments (i32), got an object");
}

BOOST_AUTO_TEST_CASE(wrong_types_inside_containers_name_the_element) {
  BOOST_TEST(args_error("void(vec<str>)", R"([["a","b","c",true]])") ==
             "argument 1[3]: expected a string, got true");
  BOOST_TEST(args_error("void(i32,vec<pair<i32,str>>)", R"([0,[[1,"a"],[2,3]]])") ==
             "argument 2[1][1]: expected a string, got 3");
  BOOST_TEST(args_error("void(vec<pair<i32,str>>)", R"([[[1]]])") ==
             "argument 1[0]: expected an array of 2 elements for pair<i32,str>, got an array of "
             "1 element");
  BOOST_TEST(args_error("void(pair<i32,str>)", R"([{"a":1}])") ==
             "argument 1: expected an array of 2 elements for pair<i32,str>, got an object");
  BOOST_TEST(args_error("void(tuple<u8,f32>)", R"([[1,2,3]])") ==
             "argument 1: expected an array of 2 elements for tuple<u8,f32>, got an array of 3 "
             "elements");
  BOOST_TEST(args_error("void(tuple<u8,vec<u8>>)", R"([[1,[1,256]]])") ==
             "argument 1[1][1]: 256 does not fit u8");
  BOOST_TEST(args_error("void(vec<i32>)", R"(["abc"])") ==
             "argument 1: expected an array, got \"abc\"");
  BOOST_TEST(args_error("void(vec<vec<bool>>)", R"([[[true],[false,null]]])") ==
             "argument 1[1][1]: expected true or false, got null");
  // A long string is cut in the message.
  BOOST_TEST(args_error("void(i32)", "[\"" + std::string(100, 'x') + "\"]") ==
             "argument 1: expected an integer, got \"" + std::string(40, 'x') + "...\"");
}

BOOST_AUTO_TEST_CASE(a_failed_append_leaves_the_bytes_as_they_were) {
  bytes out = raw("keep");
  const auto sig = job_signature::parse("void(str,vec<u8>)");
  BOOST_CHECK_THROW(append_args(sig, json::parse(R"(["written first",[1,2,300]])"), out),
                    value_error);
  BOOST_TEST(hex(out) == hex(raw("keep")));
  BOOST_CHECK_THROW(append_args(sig, json::parse("[1]"), out), value_error);
  BOOST_TEST(hex(out) == hex(raw("keep")));
}

// ---- --range: one integer argument ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(int_args_for_range_runs) {
  const auto append = [](std::string_view sig, std::int64_t v) {
    bytes out;
    append_int_arg(job_signature::parse(sig), v, out);
    return out;
  };
  BOOST_TEST(hex(append("f64(i32)", 5)) == hex(enc(std::int32_t{5})));
  BOOST_TEST(hex(append("f64(i32)", -5)) == hex(enc(std::int32_t{-5})));
  BOOST_TEST(hex(append("void(u8)", 255)) == hex(enc(std::uint8_t{255})));
  BOOST_TEST(hex(append("str(i64)", std::numeric_limits<std::int64_t>::min())) ==
             hex(enc(std::numeric_limits<std::int64_t>::min())));
  BOOST_TEST(hex(append("str(u64)", std::numeric_limits<std::int64_t>::max())) ==
             hex(enc(std::uint64_t{std::numeric_limits<std::int64_t>::max()})));
  BOOST_TEST(hex(append("i16(i16)", -32768)) == hex(enc(std::int16_t{-32768})));

  const auto error = [&](std::string_view sig, std::int64_t v) {
    return message_of<value_error>([&] { (void)append(sig, v); });
  };
  BOOST_TEST(error("f64(u8)", 300) == "argument 1: 300 does not fit u8");
  BOOST_TEST(error("f64(u32)", -1) == "argument 1: -1 does not fit u32");
  BOOST_TEST(error("f64(i8)", -129) == "argument 1: -129 does not fit i8");
  BOOST_TEST(error("f64(str)", 1) ==
             "expected a job of one integer argument; this one takes (str)");
  BOOST_TEST(error("f64(i32,i32)", 1).find("takes (i32,i32)") != std::string::npos);
  BOOST_TEST(error("f64()", 1).find("takes ()") != std::string::npos);
  BOOST_TEST(error("f64(bool)", 1).find("takes (bool)") != std::string::npos);
  BOOST_TEST(error("f64(f64)", 1).find("takes (f64)") != std::string::npos);

  bytes out = raw("k");
  BOOST_CHECK_THROW(append_int_arg(job_signature::parse("f64(u8)"), 256, out), value_error);
  append_int_arg(job_signature::parse("f64(u8)"), 7, out);
  BOOST_TEST(hex(out) == "6b 07");
}

// ---- invalid UTF-8 --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(str_results_that_are_not_utf8_become_base64) {
  const auto b =
      enc("a\xff"
          "b"s);
  const auto j = result_json("str()", b);
  BOOST_TEST(j == R"({"base64":"Yf9i"})");
  const auto parsed = json::parse(j);
  BOOST_TEST(parsed.as_object().at("base64").as_string() == "Yf9i");
  BOOST_TEST(result_text("str()", b) == "b'a\\xffb'");
  BOOST_TEST(result_text("str()", enc("it's\n\x80"s)) == "b\"it's\\n\\x80\"");

  // Inside containers too, next to valid strings; the document parses and reads back.
  const auto v = enc(std::vector<std::string>{"ok", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                              "\xe2\x82", "\xe2\x82\xac"});
  const auto vj = result_json("vec<str>()", v);
  BOOST_TEST(vj == R"(["ok",{"base64":"wK8="},{"base64":"7aCA"},{"base64":"9JCAgA=="},)"
                   R"({"base64":"4oI="},"€"])");
  BOOST_CHECK_NO_THROW(json::parse(vj));
  BOOST_TEST(hex(encode_args("void(vec<str>)", "[" + vj + "]")) == hex(v));
  BOOST_TEST(result_text("vec<str>()", v) ==
             "['ok', b'\\xc0\\xaf', b'\\xed\\xa0\\x80', b'\\xf4\\x90\\x80\\x80', b'\\xe2\\x82', "
             "'€']");
}

BOOST_AUTO_TEST_CASE(escape_invalid_utf8_writes_the_bytes_as_python_does) {
  BOOST_TEST(escape_invalid_utf8("a\xff"
                                 "b") == R"(a\xffb)");
  BOOST_TEST(escape_invalid_utf8("") == "");
  BOOST_TEST(escape_invalid_utf8("café € 😀 \U0010ffff") == "café € 😀 \U0010ffff");
  BOOST_TEST(escape_invalid_utf8("\xc0\xaf") == R"(\xc0\xaf)");                  // overlong
  BOOST_TEST(escape_invalid_utf8("\xe0\x80\xaf") == R"(\xe0\x80\xaf)");          // overlong
  BOOST_TEST(escape_invalid_utf8("\xed\xa0\x80") == R"(\xed\xa0\x80)");          // surrogate
  BOOST_TEST(escape_invalid_utf8("\xf4\x90\x80\x80") == R"(\xf4\x90\x80\x80)");  // > U+10FFFF
  BOOST_TEST(escape_invalid_utf8("\xe2\x82"
                                 "A") == R"(\xe2\x82A)");        // cut short
  BOOST_TEST(escape_invalid_utf8("\xe2\x82") == R"(\xe2\x82)");  // at the end
  BOOST_TEST(escape_invalid_utf8("\x80\xbf") == R"(\x80\xbf)");  // lone tails
  BOOST_TEST(escape_invalid_utf8("\xf8\x88\x80\x80\x80") == R"(\xf8\x88\x80\x80\x80)");
  BOOST_TEST(escape_invalid_utf8("x\0y"s) == "x\0y"s);
}

BOOST_AUTO_TEST_CASE(json_strings_always_parse) {
  std::string out;
  append_json_string("a\"b\\c\n\x01", out);
  BOOST_TEST(out == R"("a\"b\\c\n\u0001")");
  out.clear();
  append_json_string("é\xff", out);
  BOOST_TEST(out == R"("é\\xff")");
  BOOST_TEST(json::parse(out).as_string() == R"(é\xff)");
  // Any bytes at all make a document that parses back to escape_invalid_utf8 of them.
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  all += "\xe2\x82\xac\xf0\x9f\x98";
  out = "x";
  append_json_string(all, out);
  BOOST_TEST(json::parse(out.substr(1)).as_string() == escape_invalid_utf8(all));
}

// ---- bytes that do not decode ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(truncated_and_trailing_bytes_are_decode_errors) {
  const auto decode_error_of = [](std::string_view sig, const bytes& b) {
    const auto m = message_of<crew::decode_error>([&] { (void)result_json(sig, b); });
    BOOST_TEST(message_of<crew::decode_error>([&] { (void)result_text(sig, b); }) == m);
    return m;
  };
  auto i32 = enc(std::int32_t{7});
  i32.pop_back();
  BOOST_TEST(decode_error_of("i32()", i32) == "truncated input: needed 4 bytes, 3 left");
  BOOST_TEST(decode_error_of("i32()", {}).find("truncated") != std::string::npos);
  auto trailing = enc(std::int32_t{7});
  trailing.push_back(std::byte{0});
  BOOST_TEST(decode_error_of("i32()", trailing) == "1 unexpected trailing bytes");
  auto str = enc("abc"s);
  str.pop_back();
  BOOST_TEST(decode_error_of("str()", str).find("string claims 3 elements") != std::string::npos);
  auto pair = enc(std::pair{1, "ab"s});
  pair.pop_back();
  BOOST_TEST(decode_error_of("pair<i32,str>()", pair).find("claims") != std::string::npos);
  BOOST_TEST(decode_error_of("bool()", raw("\x02")) == "bool byte is 2, not 0 or 1");
  BOOST_TEST(decode_error_of("f64()", raw("1234567")).find("truncated") != std::string::npos);

  // A failed decode leaves `out` as it was, even after writing part of the value.
  std::string out = "keep";
  auto v = enc(std::vector<std::string>{"a", "b"});
  v.pop_back();
  BOOST_CHECK_THROW(append_result_json(job_signature::parse("vec<str>()"), v, out),
                    crew::decode_error);
  BOOST_CHECK_THROW(append_result_text(job_signature::parse("vec<str>()"), v, out),
                    crew::decode_error);
  BOOST_TEST(out == "keep");
}

BOOST_AUTO_TEST_CASE(vector_counts_are_checked_against_the_bytes_left) {
  // 2^60 elements claimed: refused before anything is written for them.
  const auto huge = enc(std::uint64_t{1} << 60);
  BOOST_TEST(message_of<crew::decode_error>([&] { (void)result_json("vec<f64>()", huge); }) ==
             "vector claims 1152921504606846976 elements but only 0 bytes remain");
  BOOST_CHECK_THROW((void)result_text("vec<vec<str>>()", huge), crew::decode_error);
  // Elements of 8 bytes: 2 claimed, 15 bytes left.
  bytes two = enc(std::uint64_t{2});
  two.resize(two.size() + 15);
  BOOST_TEST(message_of<crew::decode_error>([&] { (void)result_json("vec<f64>()", two); }) ==
             "vector claims 2 elements but only 15 bytes remain");
  // A pair<i32,str> takes at least 12 bytes: 2 claimed in 23 bytes is refused outright.
  bytes pairs = enc(std::uint64_t{2});
  pairs.resize(pairs.size() + 23);
  BOOST_TEST(message_of<crew::decode_error>([&] {
               (void)result_json("vec<pair<i32,str>>()", pairs);
             }) == "vector claims 2 elements but only 23 bytes remain");
  // A string count past the end.
  BOOST_TEST(message_of<crew::decode_error>([&] {
               (void)result_json("str()", enc(std::numeric_limits<std::uint64_t>::max()));
             }).find("string claims 18446744073709551615") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
