#include "value_json.hpp"

#include <boost/json/array.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_stack.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <utility>

namespace crew::cli {
namespace {

namespace json = boost::json;
using kind = wire_type::kind;

// ---- names ----------------------------------------------------------------------------------

struct named_kind {
  std::string_view name;
  kind k;
};
// The types without parameters, by wire name (protocol.md §3).
constexpr std::array<named_kind, 12> scalar_kinds{{{"bool", kind::boolean},
                                                   {"i8", kind::i8},
                                                   {"i16", kind::i16},
                                                   {"i32", kind::i32},
                                                   {"i64", kind::i64},
                                                   {"u8", kind::u8},
                                                   {"u16", kind::u16},
                                                   {"u32", kind::u32},
                                                   {"u64", kind::u64},
                                                   {"f32", kind::f32},
                                                   {"f64", kind::f64},
                                                   {"str", kind::str}}};

std::string_view kind_name(kind k) {
  for (const auto& s : scalar_kinds)
    if (s.k == k) return s.name;
  switch (k) {
    case kind::vec:
      return "vec";
    case kind::pair:
      return "pair";
    case kind::tuple:
      return "tuple";
    default:
      return "void";
  }
}

void append_name(const wire_type& t, std::string& out) {
  out += kind_name(t.k);
  if (t.k != kind::vec && t.k != kind::pair && t.k != kind::tuple) return;
  out += '<';
  for (std::size_t i = 0; i < t.elems.size(); ++i) {
    if (i != 0) out += ',';
    append_name(t.elems[i], out);
  }
  out += '>';
}

std::string arg_names(const job_signature& sig) {
  std::string s = "(";
  for (std::size_t i = 0; i < sig.args.size(); ++i) {
    if (i != 0) s += ',';
    append_name(sig.args[i], s);
  }
  return s + ")";
}

// Bytes the smallest value of `t` takes: what a vec's count is checked against (as
// codec.hpp's min_size).
std::size_t min_size(const wire_type& t) {
  switch (t.k) {
    case kind::boolean:
    case kind::i8:
    case kind::u8:
      return 1;
    case kind::i16:
    case kind::u16:
      return 2;
    case kind::i32:
    case kind::u32:
    case kind::f32:
      return 4;
    case kind::i64:
    case kind::u64:
    case kind::f64:
    case kind::str:
    case kind::vec:
      return 8;
    case kind::pair:
    case kind::tuple: {
      std::size_t n = 0;
      for (const auto& e : t.elems)
        n += min_size(e);
      return n;
    }
    case kind::void_:
      return 0;
  }
  return 0;
}

bool is_integer(kind k) {
  switch (k) {
    case kind::i8:
    case kind::i16:
    case kind::i32:
    case kind::i64:
    case kind::u8:
    case kind::u16:
    case kind::u32:
    case kind::u64:
      return true;
    default:
      return false;
  }
}

// Calls `f(T{})` with the integer type of `k` (which must be an integer kind).
template <class F>
void visit_integer(kind k, F&& f) {
  switch (k) {
    case kind::i8:
      f(std::int8_t{});
      break;
    case kind::i16:
      f(std::int16_t{});
      break;
    case kind::i32:
      f(std::int32_t{});
      break;
    case kind::i64:
      f(std::int64_t{});
      break;
    case kind::u8:
      f(std::uint8_t{});
      break;
    case kind::u16:
      f(std::uint16_t{});
      break;
    case kind::u32:
      f(std::uint32_t{});
      break;
    case kind::u64:
      f(std::uint64_t{});
      break;
    default:
      break;
  }
}

// ---- the signature parser -------------------------------------------------------------------

// A recursive descent over "R(A1,...)". Nesting is bounded, so neither this nor the walks
// over the parsed types can run out of stack on a hostile signature.
class signature_parser {
 public:
  static constexpr int max_depth = 64;

  explicit signature_parser(std::string_view text) : text_(text) {}

  job_signature parse() {
    job_signature sig;
    sig.result = type(0);
    if (peek() == '>') fail("unbalanced '>'" + at(pos_));
    if (peek() != '(') fail("expected '(' after the result type" + found());
    ++pos_;
    if (peek() == ')') {
      ++pos_;
    } else {
      for (;;) {
        const auto start = pos_;
        sig.args.push_back(type(0));
        if (sig.args.back().k == kind::void_)
          fail("'void' is only allowed as the result, not as argument " +
               std::to_string(sig.args.size()) + at(start));
        if (peek() == ',') {
          ++pos_;
        } else if (peek() == ')') {
          ++pos_;
          break;
        } else if (peek() == '>') {
          fail("unbalanced '>'" + at(pos_));
        } else {
          fail("expected ',' or ')' after argument " + std::to_string(sig.args.size()) + found());
        }
      }
    }
    if (pos_ != text_.size()) fail("unexpected text after ')'" + at(pos_));
    return sig;
  }

 private:
  wire_type type(int depth) {
    if (depth > max_depth) fail("types nest more than " + std::to_string(max_depth) + " deep");
    const auto start = pos_;
    while (pos_ < text_.size() &&
           std::string_view("<>,()").find(text_[pos_]) == std::string_view::npos)
      ++pos_;
    const auto name = text_.substr(start, pos_ - start);
    if (name.empty()) fail("expected a type" + found());
    if (const auto space = name.find_first_of(" \t\r\n"); space != std::string_view::npos)
      fail("a space" + at(start + space) + " (signatures are written without spaces)");
    for (const auto& s : scalar_kinds) {
      if (s.name != name) continue;
      if (peek() == '<') fail("'" + std::string(name) + "' takes no '<'" + at(pos_));
      return wire_type{s.k, {}};
    }
    if (name == "void") {
      if (depth > 0) fail("'void' is only allowed as the result" + at(start));
      if (peek() == '<') fail("'void' takes no '<'" + at(pos_));
      return wire_type{kind::void_, {}};
    }
    if (name == "vec" || name == "pair" || name == "tuple") return parameterized(name, depth);
    // A user type: name it whole, its parameters too, when they are balanced.
    std::size_t end = pos_;
    for (int open = 0; end < text_.size(); ++end) {
      if (text_[end] == '<') ++open;
      if (text_[end] == '>' && --open == 0) {
        ++end;
        break;
      }
      if (open == 0) break;
    }
    fail("type '" + escape_invalid_utf8(text_.substr(start, end - start)) + "' has no JSON form");
  }

  wire_type parameterized(std::string_view name, int depth) {
    const auto k = name == "vec" ? kind::vec : name == "pair" ? kind::pair : kind::tuple;
    if (peek() != '<') fail("expected '<' after '" + std::string(name) + "'" + found());
    const auto open = pos_++;
    wire_type t{k, {}};
    if (k == kind::tuple && peek() == '>') {
      ++pos_;
      return t;
    }
    for (;;) {
      t.elems.push_back(type(depth + 1));
      if (peek() == ',') {
        ++pos_;
      } else if (peek() == '>') {
        ++pos_;
        break;
      } else {
        fail("expected ',' or '>' to close '" + std::string(name) + "<'" + at(open) + found());
      }
    }
    const std::size_t wanted = k == kind::vec ? 1 : k == kind::pair ? 2 : t.elems.size();
    if (t.elems.size() != wanted)
      fail("'" + std::string(name) + "<'" + at(open) + " takes " + std::to_string(wanted) +
           (wanted == 1 ? " type, not " : " types, not ") + std::to_string(t.elems.size()));
    // As codec.hpp: a count is checked against the bytes left, which needs elements of at
    // least one byte.
    if (k == kind::vec && min_size(t.elems[0]) == 0)
      fail("'vec<'" + at(open) + " holds elements of zero bytes, which crew has not");
    return t;
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  static std::string at(std::size_t pos) { return " at position " + std::to_string(pos + 1); }
  std::string found() const {
    if (pos_ >= text_.size()) return ", found the end";
    return ", found '" + escape_invalid_utf8(text_.substr(pos_, 1)) + "'" + at(pos_);
  }
  // Quotes the signature, cut when long (it comes from a worker and may be anything).
  [[noreturn]] void fail(const std::string& what) const {
    constexpr std::size_t shown = 200;
    std::size_t n = std::min(text_.size(), shown);
    while (n < text_.size() && n > 0 && (static_cast<unsigned char>(text_[n]) & 0xC0) == 0x80)
      --n;
    throw std::invalid_argument("signature '" + escape_invalid_utf8(text_.substr(0, n)) +
                                (n < text_.size() ? "...': " : "': ") + what);
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// ---- UTF-8, escapes, base64 -----------------------------------------------------------------

constexpr char hex_digits[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence at `p` (1 to 4), or 0 when the byte at `p` starts none
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_length(const unsigned char* p, const unsigned char* end) {
  const unsigned c = p[0];
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong below
    if (c == 0xED) hi = 0x9F;  // surrogates above
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong below
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF above
  } else {
    return 0;
  }
  if (static_cast<std::size_t>(end - p) < n || p[1] < lo || p[1] > hi) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

bool valid_utf8(std::string_view s) {
  const auto* p = bytes_of(s);
  const auto* end = p + s.size();
  while (p != end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const auto n = utf8_length(p, end);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

// The code point of the valid sequence of `n` bytes at `p`.
char32_t code_point(const unsigned char* p, std::size_t n) {
  if (n == 1) return p[0];
  char32_t cp = p[0] & (0x7Fu >> n);
  for (std::size_t i = 1; i < n; ++i)
    cp = (cp << 6) | (p[i] & 0x3Fu);
  return cp;
}

void append_hex_byte(unsigned char c, std::string& out) {
  out += hex_digits[c >> 4];
  out += hex_digits[c & 0xF];
}

// `s` as JSON string content, without quotes: `"`, `\` and control characters escaped; a byte
// that is not part of valid UTF-8 written as `\\xNN` (so it reads back as the text `\xNN`).
void append_json_content(std::string_view s, std::string& out) {
  const auto* p = bytes_of(s);
  const auto* end = p + s.size();
  while (p != end) {
    const auto* run = p;  // bytes copied as they are
    while (p != end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
      ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      if (const auto n = utf8_length(p, end); n != 0) {
        out.append(reinterpret_cast<const char*>(p), n);
        p += n;
      } else {
        out += "\\\\x";
        append_hex_byte(c, out);
        ++p;
      }
      continue;
    }
    ++p;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        out += "\\u00";
        append_hex_byte(c, out);
    }
  }
}

constexpr char base64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void append_base64(std::string_view s, std::string& out) {
  const auto* p = bytes_of(s);
  std::size_t i = 0;
  for (; i + 3 <= s.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += base64_digits[v >> 18];
    out += base64_digits[(v >> 12) & 63];
    out += base64_digits[(v >> 6) & 63];
    out += base64_digits[v & 63];
  }
  if (const auto left = s.size() - i; left != 0) {
    const std::uint32_t v =
        (std::uint32_t{p[i]} << 16) | (left == 2 ? std::uint32_t{p[i + 1]} << 8 : 0);
    out += base64_digits[v >> 18];
    out += base64_digits[(v >> 12) & 63];
    out += left == 2 ? base64_digits[(v >> 6) & 63] : '=';
    out += '=';
  }
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// ---- floats as Python's repr ----------------------------------------------------------------

// A finite `v` as Python's repr writes a float: its shortest round-trip digits (std::to_chars;
// for a float, its own shortest digits), positional when the decimal exponent is in
// [-4, 16) with at least one digit after the point, else d.ddde+XX.
template <class F>
void append_float_repr(F v, std::string& out) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  // buf holds [-]d[.ddd]e(+|-)dd[d]
  const char* p = buf;
  if (*p == '-') out += *p++;
  char digits[32];
  std::size_t n = 0;
  for (; *p != 'e'; ++p)
    if (*p != '.') digits[n++] = *p;
  ++p;
  const bool negative_exp = *p++ == '-';
  int e = 0;
  std::from_chars(p, r.ptr, e);
  if (negative_exp) e = -e;
  const std::string_view d(digits, n);
  if (e >= -4 && e < 16) {
    if (e < 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-e - 1), '0');
      out += d;
    } else if (static_cast<std::size_t>(e) + 1 >= n) {
      out += d;
      out.append(static_cast<std::size_t>(e) + 1 - n, '0');
      out += ".0";
    } else {
      out += d.substr(0, static_cast<std::size_t>(e) + 1);
      out += '.';
      out += d.substr(static_cast<std::size_t>(e) + 1);
    }
    return;
  }
  out += d[0];
  if (n > 1) {
    out += '.';
    out += d.substr(1);
  }
  out += e < 0 ? "e-" : "e+";
  if (e > -10 && e < 10) out += '0';
  char exp[8];
  const auto x = std::to_chars(exp, exp + sizeof exp, e < 0 ? -e : e);
  out.append(exp, x.ptr);
}

template <class F>
void append_nonfinite(F v, std::string& out) {
  out += std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

// ---- reading JSON text ----------------------------------------------------------------------

// What boost::json::parser does (build a value on a value_stack), but a double is read again
// from its text with std::from_chars, which rounds correctly where Boost 1.81 may not.
class exact_number_handler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  json::value_stack st;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return true; }
  bool on_object_end(std::size_t n, json::error_code&) {
    st.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    st.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    st.push_string(s);
    return true;
  }
  // A number split over several writes comes in parts (not with one whole document, but
  // nothing here relies on that).
  bool on_number_part(json::string_view s, json::error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    number_.clear();
    st.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    number_.clear();
    st.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view s, json::error_code&) {
    std::string_view text(s.data(), s.size());
    if (!number_.empty()) text = number_.append(s.data(), s.size());
    double exact = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), exact);
    // Out of double's range, from_chars sets nothing: keep Boost's value (an infinity).
    st.push_double(r.ec == std::errc() && r.ptr == text.data() + text.size() ? exact : d);
    number_.clear();
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  std::string number_;
};

// ---- JSON -> bytes --------------------------------------------------------------------------

// Where a value sits, for messages: "argument 2", then "[i]" for each element below it.
// Built on the stack as the walk descends; turned into text only when something is wrong.
struct value_path {
  const value_path* parent;
  std::size_t index;  // at the root, the argument's number (from 1); below, the element's
};

void append_path(const value_path& p, std::string& out) {
  if (p.parent == nullptr) {
    out += "argument " + std::to_string(p.index);
    return;
  }
  append_path(*p.parent, out);
  out += '[' + std::to_string(p.index) + ']';
}

[[noreturn]] void fail(const value_path& p, const std::string& what) {
  std::string s;
  append_path(p, s);
  throw value_error(s + ": " + what);
}

// A JSON value as a message shows it: scalars as written (long strings cut), containers by
// their size.
std::string describe(const json::value& v) {
  std::string s;
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return v.get_bool() ? "true" : "false";
    case json::kind::int64:
      return std::to_string(v.get_int64());
    case json::kind::uint64:
      return std::to_string(v.get_uint64());
    case json::kind::double_:
      if (std::isfinite(v.get_double()))
        append_float_repr(v.get_double(), s);
      else
        append_nonfinite(v.get_double(), s);
      return s;
    case json::kind::string: {
      std::string_view str(v.get_string().data(), v.get_string().size());
      constexpr std::size_t shown = 40;
      const bool cut = str.size() > shown;
      if (cut) {
        std::size_t n = shown;
        while (n > 0 && (static_cast<unsigned char>(str[n]) & 0xC0) == 0x80)
          --n;
        str = str.substr(0, n);
      }
      s += '"';
      append_json_content(str, s);
      return s + (cut ? "...\"" : "\"");
    }
    case json::kind::array: {
      const auto n = v.get_array().size();
      return "an array of " + std::to_string(n) + (n == 1 ? " element" : " elements");
    }
    case json::kind::object:
      return "an object";
  }
  return "?";
}

template <class T>
void put_integer(kind k, const json::value& v, encoder& e, const value_path& p) {
  bool fits = false;
  T x{};
  if (v.is_int64()) {
    fits = std::in_range<T>(v.get_int64());
    x = static_cast<T>(v.get_int64());
  } else if (v.is_uint64()) {
    fits = std::in_range<T>(v.get_uint64());
    x = static_cast<T>(v.get_uint64());
  } else if (v.is_double()) {
    // Integers past u64 parse as doubles: say that they are too large, not that they have a
    // fraction.
    const double d = v.get_double();
    if (!(std::trunc(d) == d && std::fabs(d) >= 0x1p63))
      fail(p, "expected an integer (no fraction, no exponent), got " + describe(v));
  } else {
    fail(p, "expected an integer, got " + describe(v));
  }
  if (!fits) fail(p, describe(v) + " does not fit " + std::string(kind_name(k)));
  e.put(x);
}

void put_float(kind k, const json::value& v, encoder& e, const value_path& p) {
  double d = 0;
  if (v.is_int64()) {
    d = static_cast<double>(v.get_int64());
  } else if (v.is_uint64()) {
    d = static_cast<double>(v.get_uint64());
  } else if (v.is_double()) {
    d = v.get_double();
    // A number past double's range parses as an infinity: the value written is lost.
    if (std::isinf(d))
      fail(p, "a number too large for " + std::string(kind_name(k)) +
                  " (\"inf\" and \"-inf\" are the infinities)");
  } else if (v.is_string() && v.get_string() == "nan") {
    d = std::numeric_limits<double>::quiet_NaN();
  } else if (v.is_string() && v.get_string() == "inf") {
    d = std::numeric_limits<double>::infinity();
  } else if (v.is_string() && v.get_string() == "-inf") {
    d = -std::numeric_limits<double>::infinity();
  } else {
    fail(p, "expected a number (or \"nan\", \"inf\", \"-inf\"), got " + describe(v));
  }
  if (k == kind::f64) {
    e.put(d);
    return;
  }
  // From FLT_MAX + half an ulp up, a double rounds to infinity as a float. Below that it
  // rounds to FLT_MAX at most: clamp, since converting a double past FLT_MAX is not defined.
  constexpr double rounds_to_inf = 0x1.ffffffp127;
  constexpr double max = std::numeric_limits<float>::max();
  if (std::isfinite(d) && std::fabs(d) >= rounds_to_inf) fail(p, describe(v) + " does not fit f32");
  const float max_f = std::numeric_limits<float>::max();
  e.put(!std::isfinite(d) ? static_cast<float>(d)
        : d > max         ? max_f
        : d < -max        ? -max_f
                          : static_cast<float>(d));
}

void put_bytes(std::string_view s, encoder& e) {
  e.put(static_cast<std::uint64_t>(s.size()));
  e.write(s.data(), s.size());
}

// {"base64": "..."}: strict RFC 4648 base64, padded, with zero bits after the last byte.
void put_base64(std::string_view s, encoder& e, const value_path& p) {
  if (s.size() % 4 != 0)
    fail(p, "base64 of " + std::to_string(s.size()) + " characters, not a multiple of 4");
  const std::size_t pad = s.ends_with("==") ? 2 : s.ends_with('=') ? 1 : 0;
  for (std::size_t i = 0; i < s.size() - pad; ++i)
    if (base64_value(s[i]) < 0)
      fail(p, "base64 has '" + escape_invalid_utf8(s.substr(i, 1)) + "' at position " +
                  std::to_string(i + 1));
  const std::size_t n = s.size() / 4 * 3 - pad;
  const std::size_t last = s.size() - pad;  // the last character with bits
  if (pad != 0 && (base64_value(s[last - 1]) & (pad == 2 ? 15 : 3)) != 0)
    fail(p, "base64 has bits set past its last byte");
  e.put(static_cast<std::uint64_t>(n));
  for (std::size_t i = 0, written = 0; written < n; i += 4) {
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j)
      v = (v << 6) | static_cast<std::uint32_t>(i + j < last ? base64_value(s[i + j]) : 0);
    const unsigned char b[3] = {static_cast<unsigned char>(v >> 16),
                                static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    const std::size_t k = std::min<std::size_t>(3, n - written);
    e.write(b, k);
    written += k;
  }
}

void put_str(const json::value& v, encoder& e, const value_path& p) {
  if (v.is_string()) {
    put_bytes(std::string_view(v.get_string().data(), v.get_string().size()), e);
    return;
  }
  if (v.is_object()) {
    const auto& o = v.get_object();
    const auto* b = o.if_contains("base64");
    if (o.size() == 1 && b != nullptr && b->is_string()) {
      put_base64(std::string_view(b->get_string().data(), b->get_string().size()), e, p);
      return;
    }
    fail(p, "expected a string or {\"base64\": \"...\"}, got another object");
  }
  fail(p, "expected a string, got " + describe(v));
}

void put_value(const wire_type& t, const json::value& v, encoder& e, const value_path& p) {
  switch (t.k) {
    case kind::boolean:
      if (!v.is_bool()) fail(p, "expected true or false, got " + describe(v));
      e.put(v.get_bool());
      return;
    case kind::f32:
    case kind::f64:
      put_float(t.k, v, e, p);
      return;
    case kind::str:
      put_str(v, e, p);
      return;
    case kind::vec: {
      if (!v.is_array()) fail(p, "expected an array, got " + describe(v));
      const auto& a = v.get_array();
      e.put(static_cast<std::uint64_t>(a.size()));
      for (std::size_t i = 0; i < a.size(); ++i)
        put_value(t.elems[0], a[i], e, value_path{&p, i});
      return;
    }
    case kind::pair:
    case kind::tuple: {
      const auto n = t.elems.size();
      if (!v.is_array() || v.get_array().size() != n)
        fail(p, "expected an array of " + std::to_string(n) + (n == 1 ? " element" : " elements") +
                    " for " + t.name() + ", got " + describe(v));
      const auto& a = v.get_array();
      for (std::size_t i = 0; i < n; ++i)
        put_value(t.elems[i], a[i], e, value_path{&p, i});
      return;
    }
    case kind::void_:
      fail(p, "void has no value");
    default:
      visit_integer(t.k, [&](auto tag) { put_integer<decltype(tag)>(t.k, v, e, p); });
  }
}

// ---- bytes -> JSON or text ------------------------------------------------------------------

enum class style { json, text };

// Characters Python's str.isprintable() rejects past ASCII, as sorted ranges: C1 controls,
// the separators (Zs, Zl, Zp), format characters (Cf), private use (Co) and noncharacters.
// Unassigned code points (Cn) need Unicode's tables and are shown as they are.
constexpr std::pair<char32_t, char32_t> unprintable[] = {
    {0x80, 0xA0},         {0xAD, 0xAD},       {0x600, 0x605},     {0x61C, 0x61C},
    {0x6DD, 0x6DD},       {0x70F, 0x70F},     {0x890, 0x891},     {0x8E2, 0x8E2},
    {0x1680, 0x1680},     {0x180E, 0x180E},   {0x2000, 0x200F},   {0x2028, 0x202F},
    {0x205F, 0x2064},     {0x2066, 0x206F},   {0x3000, 0x3000},   {0xE000, 0xF8FF},
    {0xFDD0, 0xFDEF},     {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0xFFFE, 0xFFFF},
    {0x110BD, 0x110BD},   {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3},
    {0x1D173, 0x1D17A},   {0x1FFFE, 0x1FFFF}, {0x2FFFE, 0x2FFFF}, {0x3FFFE, 0x3FFFF},
    {0xE0001, 0xE0001},   {0xE0020, 0xE007F}, {0xEFFFE, 0xEFFFF}, {0xF0000, 0xFFFFF},
    {0x100000, 0x10FFFF},
};

bool printable(char32_t cp) {
  if (cp < 0x80) return cp >= 0x20 && cp != 0x7F;
  const auto* it = std::upper_bound(std::begin(unprintable), std::end(unprintable), cp,
                                    [](char32_t c, const auto& r) { return c < r.first; });
  return it == std::begin(unprintable) || cp > std::prev(it)->second;
}

char repr_quote(std::string_view s) {
  return s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos ? '"'
                                                                                         : '\'';
}

// `\t`, `\n`, `\r`, `\\` and the quote as Python escapes them; false for other characters.
bool append_short_escape(unsigned char c, char quote, std::string& out) {
  switch (c) {
    case '\t':
      out += "\\t";
      return true;
    case '\n':
      out += "\\n";
      return true;
    case '\r':
      out += "\\r";
      return true;
    case '\\':
      out += "\\\\";
      return true;
    default:
      if (c != static_cast<unsigned char>(quote)) return false;
      out += '\\';
      out += quote;
      return true;
  }
}

// Python's repr of a str (`s` is valid UTF-8).
void append_str_repr(std::string_view s, std::string& out) {
  const char quote = repr_quote(s);
  out += quote;
  const auto* p = bytes_of(s);
  const auto* end = p + s.size();
  while (p != end) {
    const auto* run = p;  // printable ASCII, copied as it is
    while (p != end && *p >= 0x20 && *p < 0x7F && *p != '\\' && *p != quote)
      ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    const auto n = utf8_length(p, end);
    const char32_t cp = code_point(p, n);
    if (cp < 0x80 && append_short_escape(p[0], quote, out)) {
      // written
    } else if (printable(cp)) {
      out.append(reinterpret_cast<const char*>(p), n);
    } else {
      const int width = cp < 0x100 ? 2 : cp < 0x10000 ? 4 : 8;
      out += width == 2 ? "\\x" : width == 4 ? "\\u" : "\\U";
      for (int shift = (width - 1) * 4; shift >= 0; shift -= 4)
        out += hex_digits[(cp >> shift) & 0xF];
    }
    p += n;
  }
  out += quote;
}

// Python's repr of bytes: b'...'.
void append_bytes_repr(std::string_view s, std::string& out) {
  const char quote = repr_quote(s);
  out += 'b';
  out += quote;
  for (const unsigned char c : s) {
    if (append_short_escape(c, quote, out)) continue;
    if (c < 0x20 || c >= 0x7F) {
      out += "\\x";
      append_hex_byte(c, out);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
}

// A u64 count of elements of at least `unit` bytes each, checked against the bytes left
// before anything is read or written for them (as codec.hpp does).
std::size_t take_count(decoder& d, std::size_t unit, const char* what) {
  const auto n = d.get<std::uint64_t>();
  if (n > d.remaining() / std::max<std::size_t>(unit, 1))
    throw decode_error(std::string(what) + " claims " + std::to_string(n) + " elements but only " +
                       std::to_string(d.remaining()) + " bytes remain");
  return static_cast<std::size_t>(n);
}

template <class T>
void append_integer(T v, std::string& out) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

template <style S, class F>
void append_float(F v, std::string& out) {
  if (std::isfinite(v)) {
    append_float_repr(v, out);
  } else if constexpr (S == style::json) {
    out += '"';
    append_nonfinite(v, out);
    out += '"';
  } else {
    append_nonfinite(v, out);
  }
}

template <style S>
void append_str(std::string_view s, std::string& out) {
  const bool utf8 = valid_utf8(s);
  if constexpr (S == style::json) {
    if (utf8) {
      out += '"';
      append_json_content(s, out);
      out += '"';
    } else {
      out += "{\"base64\":\"";
      append_base64(s, out);
      out += "\"}";
    }
  } else {
    if (utf8)
      append_str_repr(s, out);
    else
      append_bytes_repr(s, out);
  }
}

template <style S>
void append_value(const wire_type& t, decoder& d, std::string& out) {
  switch (t.k) {
    case kind::boolean: {
      const bool b = d.get<bool>();
      if constexpr (S == style::json)
        out += b ? "true" : "false";
      else
        out += b ? "True" : "False";
      return;
    }
    case kind::i8:
      append_integer(d.get<std::int8_t>(), out);
      return;
    case kind::i16:
      append_integer(d.get<std::int16_t>(), out);
      return;
    case kind::i32:
      append_integer(d.get<std::int32_t>(), out);
      return;
    case kind::i64:
      append_integer(d.get<std::int64_t>(), out);
      return;
    case kind::u8:
      append_integer(d.get<std::uint8_t>(), out);
      return;
    case kind::u16:
      append_integer(d.get<std::uint16_t>(), out);
      return;
    case kind::u32:
      append_integer(d.get<std::uint32_t>(), out);
      return;
    case kind::u64:
      append_integer(d.get<std::uint64_t>(), out);
      return;
    case kind::f32:
      append_float<S>(d.get<float>(), out);
      return;
    case kind::f64:
      append_float<S>(d.get<double>(), out);
      return;
    case kind::str: {
      const auto n = take_count(d, 1, "string");
      append_str<S>(std::string_view(reinterpret_cast<const char*>(d.take(n)), n), out);
      return;
    }
    case kind::vec: {
      const auto& elem = t.elems[0];
      const auto n = take_count(d, min_size(elem), "vector");
      out += '[';
      for (std::size_t i = 0; i < n; ++i) {
        if (i != 0) out += S == style::json ? "," : ", ";
        append_value<S>(elem, d, out);
      }
      out += ']';
      return;
    }
    case kind::pair:
    case kind::tuple: {
      out += S == style::json ? '[' : '(';
      for (std::size_t i = 0; i < t.elems.size(); ++i) {
        if (i != 0) out += S == style::json ? "," : ", ";
        append_value<S>(t.elems[i], d, out);
      }
      if (S == style::text && t.elems.size() == 1) out += ',';  // Python's (a,)
      out += S == style::json ? ']' : ')';
      return;
    }
    case kind::void_:
      out += S == style::json ? "null" : "None";
      return;
  }
}

template <style S>
void append_result(const job_signature& sig, std::span<const std::byte> bytes, std::string& out) {
  const auto old = out.size();
  try {
    decoder d(bytes.data(), bytes.size());
    append_value<S>(sig.result, d, out);
    d.expect_end();
  } catch (...) {
    out.resize(old);
    throw;
  }
}

}  // namespace

boost::json::value parse_json(std::string_view text, boost::system::error_code& ec) {
  json::parse_options options;
  options.max_depth = 100;
  json::basic_parser<exact_number_handler> p(options);
  p.handler().st.reset();
  const auto n = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && n < text.size()) ec = json::error::extra_data;
  if (ec) return nullptr;
  return p.handler().st.release();
}

boost::json::value parse_json(std::string_view text) {
  boost::system::error_code ec;
  auto v = parse_json(text, ec);
  if (ec) throw boost::system::system_error(ec);
  return v;
}

std::string wire_type::name() const {
  std::string s;
  append_name(*this, s);
  return s;
}

job_signature job_signature::parse(std::string_view text) {
  return signature_parser(text).parse();
}

void append_args(const job_signature& sig, const boost::json::value& args,
                 std::vector<std::byte>& out) {
  const auto old = out.size();
  try {
    if (!args.is_array())
      throw value_error("expected a JSON array of the job's arguments " + arg_names(sig) +
                        ", got " + describe(args));
    const auto& a = args.get_array();
    const auto n = sig.args.size();
    if (a.size() != n)
      throw value_error("the job takes " + std::to_string(n) +
                        (n == 1 ? " argument " : " arguments ") + arg_names(sig) + ", got " +
                        std::to_string(a.size()));
    encoder e(out);
    for (std::size_t i = 0; i < n; ++i)
      put_value(sig.args[i], a[i], e, value_path{nullptr, i + 1});
  } catch (...) {
    out.resize(old);
    throw;
  }
}

void append_int_arg(const job_signature& sig, std::int64_t v, std::vector<std::byte>& out) {
  if (sig.args.size() != 1 || !is_integer(sig.args[0].k))
    throw value_error("expected a job of one integer argument; this one takes " + arg_names(sig));
  visit_integer(sig.args[0].k, [&](auto tag) {
    using T = decltype(tag);
    if (!std::in_range<T>(v))
      throw value_error("argument 1: " + std::to_string(v) + " does not fit " +
                        std::string(kind_name(sig.args[0].k)));
    const auto x = static_cast<T>(v);
    const auto old = out.size();
    out.resize(old + sizeof x);
    std::memcpy(out.data() + old, &x, sizeof x);
  });
}

void append_result_json(const job_signature& sig, std::span<const std::byte> bytes,
                        std::string& out) {
  append_result<style::json>(sig, bytes, out);
}

void append_result_text(const job_signature& sig, std::span<const std::byte> bytes,
                        std::string& out) {
  append_result<style::text>(sig, bytes, out);
}

void append_json_string(std::string_view s, std::string& out) {
  out += '"';
  append_json_content(s, out);
  out += '"';
}

std::string escape_invalid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = bytes_of(s);
  const auto* end = p + s.size();
  while (p != end) {
    if (const auto n = utf8_length(p, end); n != 0) {
      out.append(reinterpret_cast<const char*>(p), n);
      p += n;
    } else {
      out += "\\x";
      append_hex_byte(*p++, out);
    }
  }
  return out;
}

}  // namespace crew::cli
