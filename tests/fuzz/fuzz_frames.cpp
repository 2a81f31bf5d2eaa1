// crew-fuzz-frames: the frame decoder (protocol::frame_reader, parse_header) fed a byte
// stream in chunks the input chooses, checked frame by frame against an independent model
// of docs/protocol.md section 2; and the payload decoders a peer's bytes reach
// (decode_hello, decode_error_payload, check_descriptor), checked by round trip.
//
// Input layout:
//   byte 0   bits 0-2: max payload (max_payloads[]); bits 3-5: shm area size (area_sizes[]);
//            bit 7: payload mode, the rest of the input is one payload, not a stream
//   stream mode:
//   byte 1   bits 0-3: k, the number of chunk specs that follow
//   k bytes  chunk specs, used in turn: bits 0-5: n - 1; bits 6-7: how to feed n bytes
//            (0: prepare(n), 1: prepare(1), 2: prepare(0), 3: prepare(64 * n))
//   rest     the stream (k = 0: fed in one piece)
#include "fuzz_support.hpp"

#include <crew/codec.hpp>
#include <crew/protocol.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <vector>

namespace {

using namespace crew;
using namespace crew::protocol;
using crew::fuzz::equal_bytes;

// libFuzzer's inputs are small (-max_len): a max payload of 1 MiB already exceeds any
// frame they can hold. (prepare() grows with the bytes that arrive, so a header claiming
// more costs little either way.)
constexpr std::array<std::size_t, 8> max_payloads{0, 1, 4, 24, 28, 64, 4096, 1 << 20};
constexpr std::array<std::size_t, 8> area_sizes{0,
                                                1,
                                                24,
                                                4096,
                                                std::size_t{1} << 20,
                                                std::size_t{1} << 32,
                                                std::numeric_limits<std::size_t>::max() / 2,
                                                std::numeric_limits<std::size_t>::max()};

// The model: docs/protocol.md section 2, read byte by byte, sharing no code with
// protocol.cpp.
struct model_header {
  errc error{};  // zero when the header is valid
  std::uint8_t type = 0;
  std::uint16_t flags = 0;
  std::uint64_t task_id = 0;
  std::uint32_t length = 0;
};

std::uint64_t le(const std::byte* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

model_header model_parse(const std::byte* p, std::size_t max_payload) {
  model_header h;
  const bool magic_ok = p[0] == std::byte{'C'} && p[1] == std::byte{'R'} &&
                        p[2] == std::byte{'E'} && p[3] == std::byte{'W'};
  h.type = static_cast<std::uint8_t>(le(p + 5, 1));
  h.flags = static_cast<std::uint16_t>(le(p + 6, 2));
  h.task_id = le(p + 8, 8);
  h.length = static_cast<std::uint32_t>(le(p + 16, 4));
  // Types 1-10 (9, 10: ping, pong); flag bit 0 (shm) on any frame, bits 1 (batch), 2
  // (heartbeat) and 3 (placement) on a hello only.
  if (!magic_ok || le(p + 4, 1) != 1 || h.type < 1 || h.type > 10 || h.flags > 15 ||
      ((h.flags & 14) && h.type != 1))
    h.error = errc::protocol_error;
  else if (h.length > max_payload)
    h.error = errc::payload_too_large;
  return h;
}

struct model_frame {
  std::size_t offset;  // of the header in the stream
  model_header header;
  std::size_t end() const { return offset + header_size + header.length; }
};

// The frames of the whole stream, then what ends it: a bad header at `bad_offset`, or
// nothing (a tail shorter than its frame is just incomplete).
struct model_stream {
  std::vector<model_frame> frames;
  std::optional<model_frame> bad;
};

model_stream model_split(std::span<const std::byte> s, std::size_t max_payload) {
  model_stream m;
  std::size_t at = 0;
  while (s.size() - at >= header_size) {
    model_frame f{at, model_parse(s.data() + at, max_payload)};
    if (f.header.error != errc{}) {
      m.bad = f;
      break;
    }
    if (f.end() > s.size()) break;
    m.frames.push_back(f);
    at = f.end();
  }
  return m;
}

// A payload as the coordinator or the worker would take it: whatever decodes must
// re-encode to the same bytes, and must not have allocated beyond its size.
// With and without a placement (flag_placement).
void check_hello(std::span<const std::byte> payload) {
  for (const bool placed : {false, true}) {
    fuzz::alloc_meter::start();
    try {
      const hello h = decode_hello(payload, placed);
      (void)fuzz::alloc_meter::stop();
      CREW_FUZZ_CHECK(h.where.has_value() == placed);
      // Each job takes two 8-byte length prefixes after the 8 bytes of pid and count; a
      // placement three more, and at most max_placement_name bytes each.
      CREW_FUZZ_CHECK(8 + 16 * h.jobs.size() + (placed ? 24 : 0) <= payload.size());
      if (placed)
        CREW_FUZZ_CHECK(h.where->host.size() <= max_placement_name &&
                        h.where->node.size() <= max_placement_name &&
                        h.where->pod.size() <= max_placement_name);
      CREW_FUZZ_CHECK(equal_bytes(encode_hello(h), payload));
    } catch (const decode_error&) {
    }
    CREW_FUZZ_CHECK(fuzz::alloc_meter::stop() <= fuzz::decode_alloc_bound(payload.size()));
  }
}

void check_error_payload(std::span<const std::byte> payload) {
  fuzz::alloc_meter::start();
  try {
    const error_payload e = decode_error_payload(payload);
    (void)fuzz::alloc_meter::stop();
    const auto code = static_cast<int>(e.code);
    CREW_FUZZ_CHECK(code >= 1 && code <= 12);
    CREW_FUZZ_CHECK(equal_bytes(encode_error(e), payload));
  } catch (const decode_error&) {
  }
  CREW_FUZZ_CHECK(fuzz::alloc_meter::stop() <= fuzz::decode_alloc_bound(payload.size()));
}

template <class F>
bool throws(F&& f) {
  try {
    f();
  } catch (const decode_error&) {
    return true;
  }
  return false;
}

// A batch's items, walked; when they parse, they account for every byte (4-byte count, then
// a 4-byte length before each item).
void check_batch(std::span<const std::byte> items) {
  try {
    batch_reader r(items);
    std::size_t total = 4;
    for (std::uint32_t i = 0; i < r.count(); ++i) {
      const auto item = r.next();
      CREW_FUZZ_CHECK(item.data() >= items.data() &&
                      item.data() + item.size() <= items.data() + items.size());
      total += 4 + item.size();
    }
    r.expect_end();
    CREW_FUZZ_CHECK(total == items.size());
    CREW_FUZZ_CHECK(le(items.data(), 4) == r.count());
  } catch (const decode_error&) {
  }
}

void check_batch_result_payload(std::span<const std::byte> payload) {
  const auto count = static_cast<std::size_t>(le(payload.data(), 4));
  try {
    check_batch_result(payload, count);
    batch_result_reader r(payload, count);
    std::size_t total = 4;
    for (std::size_t i = 0; i < count; ++i) {
      const auto item = r.next();
      CREW_FUZZ_CHECK(item.kind == frame_type::result || item.kind == frame_type::error);
      total += 5 + item.bytes.size();
    }
    r.expect_end();
    CREW_FUZZ_CHECK(total == payload.size());
  } catch (const decode_error&) {
  }
  // The count must match what the batch asked for: one item more is refused.
  if (count < 0xffffffff) CREW_FUZZ_CHECK(throws([&] { check_batch_result(payload, count + 1); }));
}

void check_payload(const frame_header& h, std::span<const std::byte> payload,
                   std::size_t area_size) {
  if (h.flags & flag_shm) {
    // The generation a descriptor must carry is the id of its task.
    if (h.type == frame_type::task && payload.size() >= 4)
      (void)fuzz::check_descriptor_against_model(payload.subspan(4), area_size, h.task_id);
    if (h.type == frame_type::result)
      (void)fuzz::check_descriptor_against_model(payload, area_size, h.task_id);
  }
  if (h.type == frame_type::hello) check_hello(payload);
  if (h.type == frame_type::batch && payload.size() >= 4) check_batch(payload.subspan(4));
  if (h.type == frame_type::batch_result && payload.size() >= 4)
    check_batch_result_payload(payload);
  if (h.type == frame_type::error) check_error_payload(payload);
}

void check_frame(const frame_view& f, const model_frame& m, std::span<const std::byte> stream,
                 std::size_t max_payload, std::size_t area_size) {
  // The header is the model's.
  CREW_FUZZ_CHECK(m.header.error == errc{});
  CREW_FUZZ_CHECK(static_cast<std::uint8_t>(f.header.type) == m.header.type);
  CREW_FUZZ_CHECK(f.header.flags == m.header.flags);
  CREW_FUZZ_CHECK(f.header.task_id == m.header.task_id);
  CREW_FUZZ_CHECK(f.header.length == m.header.length);
  // The payload is the header's length, within the limit, and the stream's bytes.
  CREW_FUZZ_CHECK(f.payload.size() == f.header.length);
  CREW_FUZZ_CHECK(f.header.length <= max_payload);
  CREW_FUZZ_CHECK(equal_bytes(f.payload, stream.subspan(m.offset + header_size, f.header.length)));
  // parse_header on the frame's own bytes agrees.
  frame_header again;
  CREW_FUZZ_CHECK(!parse_header(stream.data() + m.offset, max_payload, again));
  CREW_FUZZ_CHECK(again.type == f.header.type && again.flags == f.header.flags &&
                  again.task_id == f.header.task_id && again.length == f.header.length);
  // Re-encoding gives the same bytes, by both writers.
  std::vector<std::byte> out;
  append_frame(out, f.header.type, f.header.task_id, f.payload, f.header.flags);
  CREW_FUZZ_CHECK(equal_bytes(out, stream.subspan(m.offset, header_size + f.header.length)));
  std::vector<std::byte> in_place;
  std::byte* p =
      append_frame_for(in_place, f.header.type, f.header.task_id, f.payload.size(), f.header.flags);
  if (!f.payload.empty()) std::memcpy(p, f.payload.data(), f.payload.size());
  CREW_FUZZ_CHECK(in_place == out);
  check_payload(f.header, f.payload, area_size);
}

void run_stream(std::uint8_t cfg, fuzz::input& in) {
  const std::size_t max_payload = max_payloads[cfg & 7];
  const std::size_t area_size = area_sizes[(cfg >> 3) & 7];
  const auto specs = in.bytes(in.u8() & 15);
  const auto stream = in.rest();
  const model_stream model = model_split(stream, max_payload);

  frame_reader reader(max_payload);
  std::size_t fed = 0;       // bytes committed
  std::size_t consumed = 0;  // bytes of the frames returned
  std::size_t frames = 0;    // frames returned
  std::size_t turn = 0;
  frame_view f;
  boost::system::error_code ec;
  CREW_FUZZ_CHECK(!reader.next(f, ec) && !ec && !reader.mid_frame());
  while (fed < stream.size()) {
    const std::size_t left = stream.size() - fed;
    std::size_t n = left;
    std::size_t ask = left;
    if (!specs.empty()) {
      const auto spec = std::to_integer<unsigned>(specs[turn++ % specs.size()]);
      n = (spec & 63) + 1;
      const unsigned how = spec >> 6;
      ask = how == 0 ? n : how == 1 ? 1 : how == 2 ? 0 : 64 * n;
    }
    auto space = reader.prepare(ask);
    CREW_FUZZ_CHECK(space.size() >= ask);
    if (space.empty()) space = reader.prepare(1);  // prepare(0) may give no room
    CREW_FUZZ_CHECK(!space.empty());
    n = std::min({n, left, space.size()});
    std::memcpy(space.data(), stream.data() + fed, n);
    reader.commit(n);
    fed += n;

    // Drain: every frame complete in what was fed comes out, in order, then either a bad
    // header complete in what was fed is reported, or the reader asks for more.
    while (reader.next(f, ec)) {
      CREW_FUZZ_CHECK(frames < model.frames.size());
      const model_frame& m = model.frames[frames];
      CREW_FUZZ_CHECK(m.offset == consumed && m.end() <= fed);
      check_frame(f, m, stream, max_payload, area_size);
      consumed = m.end();
      ++frames;
    }
    if (ec) {
      CREW_FUZZ_CHECK(model.bad && model.bad->offset == consumed && consumed + header_size <= fed);
      CREW_FUZZ_CHECK(ec == model.bad->header.error);
      return;  // the stream is broken and is dropped
    }
    if (frames < model.frames.size())
      CREW_FUZZ_CHECK(model.frames[frames].end() > fed);
    else if (model.bad)
      CREW_FUZZ_CHECK(model.bad->offset + header_size > fed);
    CREW_FUZZ_CHECK(reader.mid_frame() == (consumed != fed));
  }
  // The whole stream was fed and no header was bad: every frame came out.
  CREW_FUZZ_CHECK(!model.bad && frames == model.frames.size());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crew::fuzz::alloc_meter::install();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  crew::fuzz::input in(crew::fuzz::as_bytes(data, size));
  const std::uint8_t cfg = in.u8();
  if (cfg & 0x80) {
    const auto payload = in.rest();
    check_hello(payload);
    check_error_payload(payload);
  } else {
    run_stream(cfg, in);
  }
  return 0;
}
