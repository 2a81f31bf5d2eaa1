// Values in JSON for `crew run`: a job's arguments from JSON into crew's wire encoding, and
// its result back to JSON or to text, driven by the job's signature as its worker announces
// it (docs/protocol.md §3-§4; the mapping is in docs/cli.md, "Values in JSON").
//
// Parse a signature once with job_signature::parse, then encode and decode any number of
// values with it; read JSON text with parse_json, which reads floats exactly. The result functions
// and append_int_arg are made for the hot path of a run: they build no JSON value and allocate
// nothing beyond growing `out`. Decoding goes through crew::decoder: it never reads past the end,
// and a count is checked against the bytes left before anything is reserved. Thread safety:
// everything here is a pure function; a job_signature may be shared by threads that only read it.
#pragma once

#include <crew/codec.hpp>

#include <boost/json/fwd.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace crew::cli {

/// A wire type from a signature: one of the types of protocol.md §3 that have a JSON form
/// (every built-in type; a user type has none), or `void` as a job's result.
struct wire_type {
  /// Which type; `void_` is a job's result only.
  enum class kind {
    boolean,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    f32,
    f64,
    str,
    vec,
    pair,
    tuple,
    void_
  };
  kind k;
  std::vector<wire_type> elems;  ///< vec: 1; pair: 2; tuple: n (0 or more); others: none
  /// The wire name again, e.g. "vec<pair<i32,str>>"; "void" for void_.
  std::string name() const;
};

/// A job's signature: its result and argument types.
struct job_signature {
  wire_type result;             ///< `void_` for a job without a result
  std::vector<wire_type> args;  ///< in order; empty for `R()`
  /// Parses "R(A1,...)" exactly as protocol.md §4 spells it (no spaces). Throws
  /// std::invalid_argument naming the signature and what is wrong: a missing or stray
  /// parenthesis, unbalanced `<>`, an empty type, text after `)`, `void` anywhere but the
  /// result, a vec whose elements take no bytes (`vec<tuple<>>`, which crew has not), types
  /// nested more than 64 deep, or a type with no JSON form (a user type such as "point": the
  /// message says `type 'point' has no JSON form`).
  static job_signature parse(std::string_view text);
};

/// A JSON value that does not fit its type; what() says where, then what, e.g.
/// "argument 2: 300 does not fit u8" or "argument 1[3]: expected a string, got true"
/// (arguments count from 1, elements of arrays from 0).
class value_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses one JSON document (e.g. a line of input) as boost::json::parse does, except that a
/// number with a fraction or an exponent is read correctly rounded (std::from_chars): Boost
/// 1.81's own parser is one unit in the last place off for some (about one 17-digit double in
/// ten), so a float that append_result_json wrote would not read back bit for bit. Arrays and
/// objects may nest 100 deep (Boost's default is 32; signatures nest up to 64). On error sets
/// `ec` (a boost::json::error: syntax, extra_data after the document, too_deep, ...) and
/// returns null.
boost::json::value parse_json(std::string_view text, boost::system::error_code& ec);
/// The same; throws boost::system::system_error on error.
boost::json::value parse_json(std::string_view text);

/// Appends the encoding of `args` to `out` as a task's arguments (a tuple of them); `args`
/// must be a JSON array with exactly one element per argument. Throws value_error (and
/// leaves `out` as it was) for anything else or a value that does not fit its type;
/// std::bad_alloc if `out` cannot grow.
void append_args(const job_signature& sig, const boost::json::value& args,
                 std::vector<std::byte>& out);

/// Appends one integer argument `v`, for `--range A:B` over a job of one integer argument.
/// Throws value_error (and leaves `out` as it was) if the job does not take exactly one
/// argument of an integer type (iN, uN; not bool) or `v` does not fit its width.
void append_int_arg(const job_signature& sig, std::int64_t v, std::vector<std::byte>& out);

/// Decodes `bytes`, an encoded result of `sig`, and appends it to `out` as compact JSON
/// text: always valid JSON and valid UTF-8 (a str that is not UTF-8 becomes
/// {"base64":"..."}; a non-finite float "nan", "inf" or "-inf"; void null). Throws
/// crew::decode_error for malformed bytes (a bool byte other than 0 or 1, a count the
/// bytes left cannot hold), truncated ones or trailing bytes; `out` is then as it was.
void append_result_json(const job_signature& sig, std::span<const std::byte> bytes,
                        std::string& out);

/// The same as append_result_json, as the text Python would print for the value: integers
/// as digits, floats as repr (2.0, 0.1, 1e+16, nan, inf, -inf; an f32 with its own shortest
/// digits), a str as repr ('ab', "it's", with escapes) or, when it is not UTF-8, as bytes
/// (b'\xff'), bools True/False, void None, a vec [a, b], a pair or tuple (a, b), (a,) or ().
void append_result_text(const job_signature& sig, std::span<const std::byte> bytes,
                        std::string& out);

/// Appends `s` as a JSON string literal, quotes included, escaping what JSON requires
/// (`"`, `\` and control characters). A byte that is not part of valid UTF-8 becomes the
/// four characters `\xNN` of the string (written `\\xNN` in the JSON source), as in
/// escape_invalid_utf8: the document always parses. For text meant to be read (names,
/// messages): a string that already held `\xNN` cannot be told apart.
void append_json_string(std::string_view s, std::string& out);

/// `s` with every byte that is not part of valid UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF) replaced by the four characters `\xNN` (lowercase
/// hex, as Python's backslashreplace writes it); valid UTF-8 comes back unchanged.
std::string escape_invalid_utf8(std::string_view s);

}  // namespace crew::cli
