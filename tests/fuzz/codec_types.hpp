// tests/fuzz/codec_types.hpp — the types crew-fuzz-codec decodes its input as, shared
// with the corpus generator: the first byte of a codec input is an index in this list.
#pragma once

#include <crew/codec.hpp>

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace crew::fuzz {

/// A user type with a member_codec.
struct record {
  double x = 0;
  std::string name;
  std::vector<std::int32_t> values;
};

}  // namespace crew::fuzz

template <>
struct crew::codec<crew::fuzz::record>
    : crew::member_codec<crew::fuzz::record, &crew::fuzz::record::x, &crew::fuzz::record::name,
                         &crew::fuzz::record::values> {
  static std::string name() { return "record"; }
};

namespace crew::fuzz {

// Append only: an index names a type in the committed corpus.
using codec_types = std::tuple<
    bool, std::uint8_t, std::int16_t, std::int32_t, std::uint64_t, float, double, std::string,
    std::vector<std::string>, std::vector<std::int64_t>, std::vector<double>, std::vector<bool>,
    std::vector<std::uint8_t>, std::tuple<std::int32_t, std::string, double>,
    std::pair<std::string, std::vector<std::int32_t>>, std::vector<std::vector<std::int32_t>>,
    std::vector<std::vector<std::string>>, std::vector<std::pair<std::int32_t, std::string>>,
    std::vector<std::tuple<bool, std::uint16_t>>, array_view<double>, array_view<std::int32_t>,
    array_view<std::uint8_t>, std::tuple<array_view<std::int64_t>, std::string>,
    std::vector<array_view<float>>, record, std::vector<std::vector<std::vector<std::uint16_t>>>,
    std::tuple<bool, std::int8_t, std::uint32_t, std::int64_t, float>, std::vector<record>>;

}  // namespace crew::fuzz
