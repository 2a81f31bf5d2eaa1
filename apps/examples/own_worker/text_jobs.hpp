// The jobs of the own-worker example, declared once and included by both sides: the worker
// (text_worker.cpp) implements them, the coordinator (text_stats.cpp) calls them. A
// coordinator and a worker built from different versions of this header are caught at the
// handshake (signature_mismatch), not by misread bytes.
#pragma once

// [jobs]
#include <crew/codec.hpp>
#include <crew/job.hpp>

#include <cstdint>
#include <string>

namespace text {

// A result type of your own.
struct stats {
  std::uint64_t lines = 0;
  std::uint64_t words = 0;
  std::string longest_word;
};

}  // namespace text

// Its codec, field by field, visible before any job uses the type.
template <>
struct crew::codec<text::stats>
    : crew::member_codec<text::stats, &text::stats::lines, &text::stats::words,
                         &text::stats::longest_word> {
  static std::string name() { return "text.stats"; }
};

namespace text {
// Counts the lines and words of a text.
inline const crew::job<stats(std::string)> count{"text.count"};
// Reads a file (in the worker's working directory) and counts it; throws if it cannot.
inline const crew::job<stats(std::string)> count_file{"text.count_file"};
}  // namespace text
// [/jobs]
