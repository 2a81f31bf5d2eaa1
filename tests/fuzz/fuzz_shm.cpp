// crew-fuzz-shm: the checks that stand between a peer's bytes and the shared-memory areas:
// protocol::check_descriptor (a descriptor from the worker, against an area size and the
// task's generation; offsets and lengths near 2^64 included) and protocol::read_shm_header
// (the header page, against the two files' sizes). Both are checked against a model of
// docs/protocol.md section 8 computed in 128 bits, and by round trip through the writers.
//
// Input layout:
//   byte 0   bit 0: 0 = descriptor, 1 = shm header
//   descriptor: u64 area size, u64 expected generation, then the payload (any length;
//               24 bytes is the valid one)
//   header:     u64 request file size, u64 response file size, then the page's first bytes
//               (the rest of the 4096-byte page is zeros)
#include "fuzz_support.hpp"

#include <crew/protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

namespace {

using namespace crew;
using namespace crew::protocol;

void run_descriptor(fuzz::input& in) {
  const std::uint64_t area_size = in.u64();
  const std::uint64_t generation = in.u64();
  const auto payload = in.rest();
  // The payload in an exact-size heap block: ASan reports a read past 24 bytes.
  auto block = std::make_unique<std::byte[]>(payload.size());
  if (!payload.empty()) std::memcpy(block.get(), payload.data(), payload.size());
  (void)fuzz::check_descriptor_against_model({block.get(), payload.size()}, area_size, generation);
}

void run_header(fuzz::input& in) {
  const std::uint64_t request_file = in.u64();
  const std::uint64_t response_file = in.u64();
  const auto bytes = in.bytes(shm_header::size);
  auto page = std::make_unique<std::byte[]>(shm_header::size);  // zeroed
  if (!bytes.empty()) std::memcpy(page.get(), bytes.data(), bytes.size());

  shm_header h;
  const auto ec = read_shm_header(page.get(), request_file, response_file, h);

  // The model.
  using u128 = unsigned __int128;
  const std::byte* p = page.get();
  const bool magic_ok = p[0] == std::byte{'C'} && p[1] == std::byte{'R'} &&
                        p[2] == std::byte{'S'} && p[3] == std::byte{'H'};
  const bool version_ok =
      p[4] == std::byte{1} && p[5] == std::byte{0} && p[6] == std::byte{0} && p[7] == std::byte{0};
  const std::uint64_t req_off = fuzz::load_le64(p + 8), req_len = fuzz::load_le64(p + 16);
  const std::uint64_t resp_off = fuzz::load_le64(p + 24), resp_len = fuzz::load_le64(p + 32);
  const bool ok = request_file >= shm_header::size && magic_ok && version_ok &&
                  req_off >= shm_header::size && u128{req_off} + req_len <= request_file &&
                  u128{resp_off} + resp_len <= response_file;
  if (!ok) {
    CREW_FUZZ_CHECK(ec == errc::protocol_error);
    return;
  }
  CREW_FUZZ_CHECK(!ec);
  CREW_FUZZ_CHECK(h.request_offset == req_off && h.request_size == req_len &&
                  h.response_offset == resp_off && h.response_size == resp_len);
  // What the worker then maps: both areas lie in their files, the request area after the
  // header page, with no sum that wraps.
  CREW_FUZZ_CHECK(h.request_offset >= shm_header::size);
  CREW_FUZZ_CHECK(h.request_offset + h.request_size >= h.request_offset);
  CREW_FUZZ_CHECK(h.request_offset + h.request_size <= request_file);
  CREW_FUZZ_CHECK(h.response_offset + h.response_size >= h.response_offset);
  CREW_FUZZ_CHECK(h.response_offset + h.response_size <= response_file);
  // The coordinator's writer produces the same 40 bytes.
  auto written = std::make_unique<std::byte[]>(shm_header::size);
  write_shm_header(written.get(), h);
  CREW_FUZZ_CHECK(std::memcmp(written.get(), page.get(), 40) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  crew::fuzz::input in(crew::fuzz::as_bytes(data, size));
  if (in.u8() & 1)
    run_header(in);
  else
    run_descriptor(in);
  return 0;
}
