// crew-fuzz-make-corpus <dir>: writes the seed corpus of the fuzz targets into
// <dir>/<target>/, built with crew's own encoders so that it follows the format. The
// committed corpus (tests/fuzz/corpus/) is this program's output plus regression inputs
// named regress-*; run.sh checks that the two agree.
#include "codec_types.hpp"

#include <crew/codec.hpp>
#include <crew/protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using namespace crew;
using namespace crew::protocol;
namespace fs = std::filesystem;
using bytes = std::vector<std::byte>;

fs::path root;

void write(const std::string& target, const std::string& name, const bytes& b) {
  const fs::path dir = root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
}

bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}
bytes u8s(std::initializer_list<std::uint8_t> v) {
  bytes out;
  for (auto b : v)
    out.push_back(std::byte{b});
  return out;
}
bytes u64(std::uint64_t v) {
  return encode_values(v);
}
bytes frame(frame_type t, std::uint64_t id, const bytes& payload, std::uint16_t flags = 0) {
  bytes out;
  append_frame(out, t, id, payload, flags);
  return out;
}
bytes descriptor(std::uint64_t offset, std::uint64_t length, std::uint64_t generation) {
  bytes out;
  append_descriptor(out, {offset, length, generation});
  return out;
}

// ---- crew-fuzz-frames ---------------------------------------------------------------
// Byte 0: bits 0-2 the max payload index, 3-5 the area size index (fuzz_frames.cpp);
// 0x1f = 1 MiB frames, a 4096-byte area. Byte 1: the number of chunk specs.
constexpr std::uint8_t big = 0x1f;

void frames() {
  const std::string t = "crew-fuzz-frames";
  const bytes hello2 = encode_hello({1234, {{"long_comp", "f64(i32)"}, {"echo", "str(str)"}}});
  const bytes task = cat({u8s({2, 0, 0, 0}), encode_values(std::int32_t{3})});  // docs §5
  const bytes err = encode_error({errc::decode_error, "bad arguments"});
  const bytes session = cat({frame(frame_type::hello, 0, hello2), frame(frame_type::task, 7, task),
                             frame(frame_type::result, 7, encode_values(2236.5678097446853)),
                             frame(frame_type::task, 8, task), frame(frame_type::error, 8, err),
                             frame(frame_type::cancel, 9, {}), frame(frame_type::shutdown, 0, {})});

  write(t, "hello-whole", cat({u8s({big, 0}), frame(frame_type::hello, 0, hello2)}));
  write(t, "hello-bytewise", cat({u8s({big, 1, 0x00}), frame(frame_type::hello, 0, hello2)}));
  write(t, "hello-empty", cat({u8s({big, 0}), frame(frame_type::hello, 0, encode_hello({}))}));
  write(t, "hello-shm-flag",
        cat({u8s({big, 2, 0x07, 0x53}), frame(frame_type::hello, 0, hello2, flag_shm)}));
  // Every kind of chunk: prepare(n), prepare(1), prepare(0), prepare(64 n).
  write(t, "session-mixed-chunks", cat({u8s({big, 4, 0x04, 0x45, 0x93, 0xc1}), session}));
  write(t, "session-whole", cat({u8s({big, 0}), session}));
  write(t, "shm-task-and-result",
        cat({u8s({big, 1, 0x0b}),
             frame(frame_type::task, 7, cat({u8s({0, 0, 0, 0}), descriptor(0, 4096, 7)}), flag_shm),
             frame(frame_type::result, 7, descriptor(100, 200, 7), flag_shm)}));
  write(t, "shm-result-wrapping",
        cat({u8s({big, 0}),
             frame(frame_type::result, 3, descriptor(~std::uint64_t{0} - 7, 16, 3), flag_shm)}));
  write(t, "shm-result-wrong-generation",
        cat({u8s({big, 0}), frame(frame_type::result, 3, descriptor(0, 1, 4), flag_shm)}));
  write(t, "error-unknown-code",
        cat({u8s({big, 0}),
             frame(frame_type::error, 1,
                   cat({encode_values(std::uint32_t{13}), encode_values(std::string("x"))}))}));
  // Broken streams: each ends in the error the reader must report.
  bytes bad_magic = frame(frame_type::task, 1, task);
  bad_magic[0] = std::byte{'X'};
  write(t, "bad-magic", cat({u8s({big, 0}), frame(frame_type::shutdown, 0, {}), bad_magic}));
  bytes bad_version = frame(frame_type::task, 1, task);
  bad_version[4] = std::byte{2};
  write(t, "bad-version", cat({u8s({big, 0}), bad_version}));
  bytes bad_type = frame(frame_type::task, 1, task);
  bad_type[5] = std::byte{11};
  write(t, "bad-type", cat({u8s({big, 0}), bad_type}));
  // Heartbeats (protocol §10): a ping and its pong, and a hello that answers pings.
  write(t, "ping-pong",
        cat({u8s({big, 0}), frame(frame_type::ping, 1, {}), frame(frame_type::pong, 1, {})}));
  write(t, "bad-flags", cat({u8s({big, 0}), frame(frame_type::task, 1, task, 2)}));
  // Batches: a batch of two i32 items, a batch_result with a result and an error, and the
  // batch flag where it does not belong.
  {
    bytes items(4);
    items[0] = std::byte{2};
    for (std::int32_t v : {7, -1}) {
      const bytes arg = encode_values(v);
      std::memcpy(append_batch_arg(items, arg.size()), arg.data(), arg.size());
    }
    write(t, "batch",
          cat({u8s({big, 0}),
               frame(frame_type::batch, 9, cat({encode_values(std::uint32_t{0}), items}))}));
    bytes results(4);
    results[0] = std::byte{2};
    const bytes value = encode_values(std::int32_t{7});
    std::memcpy(append_batch_item(results, value.size(), frame_type::result), value.data(),
                value.size());
    std::memcpy(append_batch_item(results, err.size(), frame_type::error), err.data(), err.size());
    write(t, "batch-result", cat({u8s({big, 0}), frame(frame_type::batch_result, 9, results)}));
    write(t, "hello-batch-flag",
          cat({u8s({big, 0}), frame(frame_type::hello, 0, hello2, flag_batch | flag_shm)}));
    write(t, "batch-flag-on-task",
          cat({u8s({big, 0}), frame(frame_type::task, 1, task, flag_batch)}));
  }
  // Max payload index 2 (4 bytes): an 8-byte task payload is too large.
  write(t, "too-large", cat({u8s({0x1a, 1, 0x02}), frame(frame_type::task, 1, task)}));
  const bytes whole = frame(frame_type::result, 5, encode_values(std::string(100, 'r')));
  write(t, "truncated", cat({u8s({big, 1, 0x10}), bytes(whole.begin(), whole.end() - 10)}));
  // Payload mode (bit 7): the rest is one payload for decode_hello / decode_error_payload.
  write(t, "payload-hello", cat({u8s({0x80}), hello2}));
  // A hello with its placement (flag_placement, protocol §11), in a stream and as a payload.
  const bytes placed = encode_hello({77, {{"echo", "str(str)"}}, placement{"host-a", "n1", ""}});
  write(t, "hello-placement",
        cat({u8s({big, 0}), frame(frame_type::hello, 0, placed, flag_placement | flag_batch)}));
  write(t, "payload-hello-placed", cat({u8s({0x80}), placed}));
  write(t, "payload-error", cat({u8s({0x80}), err}));
  write(t, "payload-hello-count-too-big",
        cat({u8s({0x80}), encode_values(std::uint32_t{1}, std::uint32_t{1000}), u64(0), u64(0)}));
}

// ---- crew-fuzz-codec ----------------------------------------------------------------
// Byte 0: the index in codec_types; byte 1: the misalignment; then the value.

// sample<T>(k): a value of T, k = 0 the smallest, larger k larger values.
template <class T>
struct sampler;

template <class T>
T sample(int k) {
  return sampler<T>::make(k);
}

template <class T>
struct sampler {
  static T make(int k) {
    static_assert(std::is_arithmetic_v<T>);
    if constexpr (std::is_same_v<T, bool>)
      return k % 2 == 1;
    else if constexpr (std::is_floating_point_v<T>)
      return k == 0 ? T(0) : T(1.5) * static_cast<T>(k) - T(0.25);
    else
      return k == 0 ? T(0) : static_cast<T>(std::numeric_limits<T>::max() - k);
  }
};
template <>
struct sampler<std::string> {
  static std::string make(int k) {
    return k == 0 ? std::string()
                  : std::string("crew-") + std::string(static_cast<std::size_t>(k) * 7, 'x');
  }
};
template <class T, class A>
struct sampler<std::vector<T, A>> {
  static std::vector<T, A> make(int k) {
    std::vector<T, A> v;
    for (int i = 0; i < k; ++i)
      v.push_back(sample<T>(i + 1));
    return v;
  }
};
template <class A, class B>
struct sampler<std::pair<A, B>> {
  static std::pair<A, B> make(int k) { return {sample<A>(k), sample<B>(k)}; }
};
template <class... T>
struct sampler<std::tuple<T...>> {
  static std::tuple<T...> make(int k) { return {sample<T>(k)...}; }
};
template <class T>
struct sampler<array_view<T>> {
  static array_view<T> make(int k) {
    // Encoded at once, so a view of a temporary is fine; kept alive for the program.
    static std::vector<std::vector<T>> keep;
    keep.push_back(sample<std::vector<T>>(k));
    return array_view<T>(keep.back());
  }
};
template <>
struct sampler<fuzz::record> {
  static fuzz::record make(int k) {
    return {0.5 * k, sample<std::string>(k), sample<std::vector<std::int32_t>>(k)};
  }
};

template <class T>
constexpr bool is_view = contains_view_v<T>;

template <std::size_t I>
void codec_seeds() {
  using T = std::tuple_element_t<I, fuzz::codec_types>;
  const std::string t = "crew-fuzz-codec";
  const std::string base = "type" + std::to_string(I) + "-";
  for (int k : {0, 1, 3}) {
    const bytes value = encode_values(sample<T>(k));
    write(t, base + "k" + std::to_string(k), cat({u8s({static_cast<std::uint8_t>(I), 0}), value}));
    // Views decode in place when aligned and copy when not: a misaligned variant too.
    if (is_view<T> && k == 3)
      write(t, base + "k3-shift3", cat({u8s({static_cast<std::uint8_t>(I), 3}), value}));
  }
}

template <std::size_t... I>
void codec_all(std::index_sequence<I...>) {
  (codec_seeds<I>(), ...);
}

std::uint8_t index_of_type(const std::string& name) {
  // The few docs/protocol.md examples below name their type by wire name.
  std::uint8_t found = 0xff;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((codec<std::tuple_element_t<I, fuzz::codec_types>>::name() == name && found == 0xff
          ? void(found = static_cast<std::uint8_t>(I))
          : void()),
     ...);
  }
  (std::make_index_sequence<std::tuple_size_v<fuzz::codec_types>>{});
  if (found == 0xff) throw std::runtime_error("no codec type " + name);
  return found;
}

void codec_corpus() {
  codec_all(std::make_index_sequence<std::tuple_size_v<fuzz::codec_types>>{});
  const std::string t = "crew-fuzz-codec";
  // docs/protocol.md section 3's examples, byte for byte.
  write(t, "docs-i32-5", cat({u8s({index_of_type("i32"), 0}), u8s({0x05, 0, 0, 0})}));
  write(t, "docs-str-ab",
        cat({u8s({index_of_type("str"), 0}), u8s({2, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x62})}));
  write(t, "docs-vec-f64",
        cat({u8s({index_of_type("vec<f64>"), 0}),
             u8s({1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f})}));
  // Counts that claim more than the bytes hold.
  write(t, "vec-str-count-huge",
        cat({u8s({index_of_type("vec<str>"), 0}), u64(~std::uint64_t{0}), u64(0)}));
  write(t, "str-length-huge", cat({u8s({index_of_type("str"), 0}), u64(std::uint64_t{1} << 61)}));
  write(t, "bool-2", u8s({index_of_type("bool"), 0, 2}));
}

// ---- crew-fuzz-shm ------------------------------------------------------------------
// Byte 0 bit 0: 0 = descriptor (u64 area size, u64 generation, payload),
// 1 = header (u64 request file size, u64 response file size, page bytes).

void shm() {
  const std::string t = "crew-fuzz-shm";
  const std::uint64_t max = ~std::uint64_t{0};
  auto desc = [&](const std::string& name, std::uint64_t area, std::uint64_t gen,
                  const bytes& payload) {
    write(t, "descriptor-" + name, cat({u8s({0}), u64(area), u64(gen), payload}));
  };
  desc("whole-area", 4096, 7, descriptor(0, 4096, 7));
  desc("inside", 1 << 20, 42, descriptor(100, 200, 42));
  desc("empty-at-end", 4096, 1, descriptor(4096, 0, 1));
  desc("one-past-end", 4096, 1, descriptor(4096, 1, 1));
  desc("offset-past-end", 4096, 1, descriptor(4097, 0, 1));
  desc("wrapping-offset", 4096, 1, descriptor(max, 2, 1));
  desc("wrapping-length", 4096, 1, descriptor(1, max, 1));
  desc("max-area-max-offset", max, 1, descriptor(max, 0, 1));
  desc("max-area-wrapping", max, 1, descriptor(max - 1, 2, 1));
  desc("wrong-generation", 4096, 7, descriptor(0, 1, 8));
  desc("short", 4096, 0, bytes(23));
  desc("long", 4096, 0, bytes(25));

  auto header = [&](const std::string& name, std::uint64_t request_file,
                    std::uint64_t response_file, const shm_header& h) {
    bytes page(64);
    write_shm_header(page.data(), h);
    write(t, "header-" + name, cat({u8s({1}), u64(request_file), u64(response_file), page}));
  };
  header("valid", 4096 + 65536, 65536, {4096, 65536, 0, 65536});
  header("valid-empty-areas", 4096, 0, {4096, 0, 0, 0});
  header("request-in-header-page", 4096 + 65536, 65536, {0, 65536, 0, 65536});
  header("request-past-file", 4096 + 65536, 65536, {4096, 65537, 0, 65536});
  header("response-wrapping", 4096 + 65536, 65536, {4096, 65536, max, 2});
  header("request-wrapping", 4096 + 65536, 65536, {max - 1, 4096, 0, 0});
  header("request-file-too-small", 4095, 65536, {4096, 0, 0, 0});
  bytes bad(64);
  write_shm_header(bad.data(), {4096, 1, 0, 1});
  bad[0] = std::byte{'X'};
  write(t, "header-bad-magic", cat({u8s({1}), u64(8192), u64(8192), bad}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  try {
    root = argv[1];
    frames();
    codec_corpus();
    shm();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crew-fuzz-make-corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
