// crew-hostile-worker's frame-level modes: oversized and slow frames, large results
// (issue 14, findings 3, 6 and 7). Each speaks the protocol by hand (hostile.hpp).
//
// Modes:
//   big-hello N_MIB   a hello of about N MiB listing jobs by the hundred thousand (a short
//                     name and signature each: tables far larger in memory than on the wire)
//   huge-header       hello (the demo jobs); on the first task, the header of a result frame
//                     announcing $CREW_MAX_PAYLOAD bytes, then silence
//   trickle MS        hello (the demo jobs); on the first task, the header of a result frame
//                     announcing 1 MiB, then one payload byte every MS milliseconds
//   str-flood         hello (the demo jobs and `strs`, a vec<str>(i32) job); on the first
//                     task, a result frame as large as $CREW_MAX_PAYLOAD allows holding a
//                     vec<str> of empty strings (8 bytes each on the wire, 32 in memory)
// After its attack each mode reads (and ignores) frames until its input ends.
#include "demo_jobs.hpp"
#include "hostile.hpp"

#include <crew/codec.hpp>
#include <crew/registry.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <unistd.h>

namespace hostile {
namespace {

using crew::protocol::frame_type;

std::vector<std::pair<std::string, std::string>> demo_and(
    std::vector<std::pair<std::string, std::string>> more) {
  crew::registry r;
  crew::demo::register_jobs(r);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& j : r.jobs())
    out.emplace_back(j.name, j.signature);
  for (auto& j : more)
    out.push_back(std::move(j));
  return out;
}

std::size_t max_payload() {
  const char* v = std::getenv("CREW_MAX_PAYLOAD");
  return v && *v ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10))
                 : crew::protocol::default_max_payload;
}

// Reads and drops frames until the coordinator closes our input (or kills us).
int drain() {
  std::vector<std::byte> payload;
  while (read_frame(payload)) {
  }
  return 0;
}

// The first task's id, or empty at end of input.
std::optional<std::uint64_t> first_task() {
  std::vector<std::byte> payload;
  while (auto h = read_frame(payload))
    if (h->type == frame_type::task || h->type == frame_type::batch) return h->task_id;
  return std::nullopt;
}

// A result frame's header announcing `length` bytes.
std::vector<std::byte> result_header(std::uint64_t id, std::size_t length) {
  std::vector<std::byte> out;
  crew::protocol::begin_frame(out, frame_type::result, id);
  const auto n = static_cast<std::uint32_t>(length);
  std::memcpy(out.data() + 16, &n, 4);
  return out;
}

int big_hello(std::size_t mib) {
  // Built by hand: pid, a job count, then (u64 length, name, u64 length, signature) per job,
  // until the payload reaches `mib` MiB.
  std::vector<std::byte> payload;
  crew::encoder e(payload);
  e.put(static_cast<std::uint32_t>(::getpid()));
  e.put(std::uint32_t{0});  // the count, written below
  std::uint32_t jobs = 0;
  while (payload.size() < (mib << 20) - 64) {
    e.put("j" + std::to_string(jobs));
    e.put(std::string("i32(i32)"));
    ++jobs;
  }
  std::memcpy(payload.data() + 4, &jobs, 4);
  std::fprintf(stderr, "hostile worker: a hello of %zu bytes listing %u jobs\n", payload.size(),
               jobs);
  if (!write_frame(frame_type::hello, 0, payload)) return 1;
  return drain();
}

int huge_header() {
  if (!say_hello(demo_and({}), crew::protocol::flag_batch)) return 1;
  const auto id = first_task();
  if (!id) return 0;
  const std::size_t n = max_payload();
  std::fprintf(stderr, "hostile worker: a result header announcing %zu bytes, then silence\n", n);
  if (!write_all(result_header(*id, n))) return 1;
  return drain();
}

int trickle(long ms) {
  if (!say_hello(demo_and({}), crew::protocol::flag_batch)) return 1;
  const auto id = first_task();
  if (!id) return 0;
  const std::size_t n = std::size_t{1} << 20;
  if (!write_all(result_header(*id, n))) return 1;
  for (std::size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    const std::byte b{0};
    if (!write_all({&b, 1})) return 0;  // the coordinator gave up on us
  }
  return drain();
}

int str_flood() {
  if (!say_hello(demo_and({{"strs", "vec<str>(i32)"}}), crew::protocol::flag_batch)) return 1;
  const auto id = first_task();
  if (!id) return 0;
  // As many empty strings as the frame holds: 8 bytes each here, a 32-byte std::string each
  // once decoded.
  const std::size_t count = (max_payload() - 8) / 8;
  std::vector<std::byte> payload((count + 1) * 8);  // zeros: every string is empty
  std::memcpy(payload.data(), &count, 8);
  std::fprintf(stderr, "hostile worker: a vec<str> of %zu empty strings\n", count);
  if (!write_frame(frame_type::result, *id, payload)) return 1;
  return drain();
}

long number(std::span<char*> args, long fallback) {
  return args.empty() ? fallback : std::strtol(args[0], nullptr, 10);
}

}  // namespace

std::optional<int> frame_mode(std::string_view mode, std::span<char*> args) {
  if (mode == "big-hello") return big_hello(static_cast<std::size_t>(number(args, 24)));
  if (mode == "huge-header") return huge_header();
  if (mode == "trickle") return trickle(number(args, 100));
  if (mode == "str-flood") return str_flood();
  return std::nullopt;
}

}  // namespace hostile
