#include <crew/protocol.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

namespace crew::protocol {
namespace {

template <class T>
T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
void store(std::byte* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

constexpr std::uint8_t max_type = static_cast<std::uint8_t>(frame_type::pong);

}  // namespace

void append_frame(std::vector<std::byte>& out, frame_type type, std::uint64_t task_id,
                  std::span<const std::byte> payload, std::uint16_t flags) {
  if (payload.size() > std::numeric_limits<std::uint32_t>::max())
    throw capacity_exceeded("a frame payload of " + std::to_string(payload.size()) +
                            " bytes does not fit a 32-bit length");
  const auto at = out.size();
  out.resize(at + header_size + payload.size());
  std::byte* h = out.data() + at;
  store(h + 0, magic);
  store(h + 4, version);
  store(h + 5, static_cast<std::uint8_t>(type));
  store(h + 6, flags);
  store(h + 8, task_id);
  store(h + 16, static_cast<std::uint32_t>(payload.size()));
  if (!payload.empty()) std::memcpy(h + header_size, payload.data(), payload.size());
}

boost::system::error_code parse_header(const std::byte* in, std::size_t max_payload,
                                       frame_header& out) noexcept {
  if (load<std::uint32_t>(in) != magic) return errc::protocol_error;
  if (load<std::uint8_t>(in + 4) != version) return errc::protocol_error;
  const auto type = load<std::uint8_t>(in + 5);
  if (type == 0 || type > max_type) return errc::protocol_error;
  out.type = static_cast<frame_type>(type);
  out.flags = load<std::uint16_t>(in + 6);
  if ((out.flags & ~(flag_shm | flag_batch | flag_heartbeat | flag_placement)) != 0)
    return errc::protocol_error;
  if ((out.flags & (flag_batch | flag_heartbeat | flag_placement)) && out.type != frame_type::hello)
    return errc::protocol_error;
  out.task_id = load<std::uint64_t>(in + 8);
  out.length = load<std::uint32_t>(in + 16);
  if (out.length > max_payload) return errc::payload_too_large;
  return {};
}

frame_reader::frame_reader(std::size_t max_payload) : max_payload_(max_payload) {
}

std::span<std::byte> frame_reader::prepare(std::size_t min_bytes) {
  // Compact first: what was consumed is never needed again.
  if (begin_ != 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  std::size_t want = end_ + min_bytes;
  if (buf_.size() < want) {
    // A header already in the buffer tells how much the frame needs. Its length was
    // checked against the limit by next(), but a header costs its sender 20 bytes: room is
    // made only as the payload arrives, as much again as is buffered (at least
    // reserve_ahead), so a large frame still arrives in few reads (the buffer doubles)
    // while a header alone commits little. A rest of at most half as much again is taken
    // whole, with `min_bytes` beyond it for the next prepare: a frame just over a doubling
    // does not cost one more copy of everything for its last bytes.
    if (end_ >= header_size) {
      const std::size_t frame = header_size + load<std::uint32_t>(buf_.data() + 16);
      if (frame - header_size <= max_payload_ && frame > want) {
        const std::size_t ahead = std::max({min_bytes, reserve_ahead, end_});
        want = frame - end_ <= ahead + ahead / 2 ? frame + min_bytes : end_ + ahead;
        buf_.reserve(want);  // exactly: no hidden doubling on top of this one
      }
    }
    buf_.resize(want);
  } else if (buf_.capacity() > shrink_above && want <= shrink_above / 8) {
    // The large frame that grew the buffer is gone: give its memory back. Checked only
    // when no growth is needed, so a small frame costs one comparison.
    std::vector<std::byte> small(std::max(want, reserve_ahead));
    if (end_ != 0) std::memcpy(small.data(), buf_.data(), end_);
    buf_.swap(small);
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

bool frame_reader::next(frame_view& out, boost::system::error_code& ec) {
  ec.clear();
  const std::size_t have = end_ - begin_;
  if (have < header_size) return false;
  const std::byte* h = buf_.data() + begin_;
  frame_header header;
  ec = parse_header(h, max_payload_, header);
  if (ec) return false;
  if (have - header_size < header.length) return false;
  out.header = header;
  out.payload = {h + header_size, header.length};
  begin_ += header_size + header.length;
  if (begin_ == end_) begin_ = end_ = 0;  // the view stays valid: nothing is moved here
  return true;
}

void append_descriptor(std::vector<std::byte>& out, const shm_descriptor& d) {
  const auto at = out.size();
  out.resize(at + shm_descriptor_size);
  store(out.data() + at, d.offset);
  store(out.data() + at + 8, d.length);
  store(out.data() + at + 16, d.generation);
}

boost::system::error_code check_descriptor(std::span<const std::byte> payload,
                                           std::size_t area_size, std::uint64_t expected_generation,
                                           shm_descriptor& out) noexcept {
  if (payload.size() != shm_descriptor_size) return errc::protocol_error;
  out.offset = load<std::uint64_t>(payload.data());
  out.length = load<std::uint64_t>(payload.data() + 8);
  out.generation = load<std::uint64_t>(payload.data() + 16);
  // Checked arithmetic: offset <= size and length <= size - offset, so no sum can wrap.
  if (out.offset > area_size || out.length > area_size - out.offset) return errc::protocol_error;
  if (out.generation != expected_generation) return errc::protocol_error;
  return {};
}

void write_shm_header(std::byte* page, const shm_header& h) noexcept {
  store(page, shm_header::magic);
  store(page + 4, std::uint32_t{version});
  store(page + 8, h.request_offset);
  store(page + 16, h.request_size);
  store(page + 24, h.response_offset);
  store(page + 32, h.response_size);
}

boost::system::error_code read_shm_header(const std::byte* page, std::size_t request_file_size,
                                          std::size_t response_file_size,
                                          shm_header& out) noexcept {
  if (request_file_size < shm_header::size) return errc::protocol_error;
  if (load<std::uint32_t>(page) != shm_header::magic) return errc::protocol_error;
  if (load<std::uint32_t>(page + 4) != version) return errc::protocol_error;
  out.request_offset = load<std::uint64_t>(page + 8);
  out.request_size = load<std::uint64_t>(page + 16);
  out.response_offset = load<std::uint64_t>(page + 24);
  out.response_size = load<std::uint64_t>(page + 32);
  auto within = [](std::uint64_t off, std::uint64_t len, std::uint64_t file) {
    return off <= file && len <= file - off;
  };
  if (out.request_offset < shm_header::size ||
      !within(out.request_offset, out.request_size, request_file_size) ||
      !within(out.response_offset, out.response_size, response_file_size))
    return errc::protocol_error;
  return {};
}

std::vector<std::byte> encode_hello(const hello& h) {
  std::vector<std::byte> out;
  encoder e(out);
  e.put(h.pid);
  e.put(static_cast<std::uint32_t>(h.jobs.size()));
  for (const auto& j : h.jobs) {
    e.put(j.name);
    e.put(j.signature);
  }
  if (h.where) {
    e.put(h.where->host);
    e.put(h.where->node);
    e.put(h.where->pod);
  }
  return out;
}

namespace {
// A hello's string, its length checked against `limit` before anything is allocated.
std::string hello_string(decoder& d, std::size_t limit, const char* what, const char* limit_name) {
  const auto n = d.get<std::uint64_t>();
  if (n > limit)
    throw decode_error(std::string("a ") + what + " of " + std::to_string(n) +
                       " bytes, more than the limit of " + std::to_string(limit) + " (" +
                       limit_name + ")");
  const auto* p = d.take(static_cast<std::size_t>(n));
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}
}  // namespace

hello decode_hello(std::span<const std::byte> payload, bool with_placement) {
  if (payload.size() > max_hello_payload)
    throw decode_error("a hello of " + std::to_string(payload.size()) +
                       " bytes, more than the limit of " + std::to_string(max_hello_payload) +
                       " (max_hello_payload)");
  decoder d(payload.data(), payload.size());
  hello h;
  h.pid = d.get<std::uint32_t>();
  const auto n = d.get<std::uint32_t>();
  if (n > max_hello_jobs)
    throw decode_error("a hello listing " + std::to_string(n) + " jobs, more than the limit of " +
                       std::to_string(max_hello_jobs) + " (max_hello_jobs)");
  // Each job takes at least two length prefixes: reject impossible counts up front.
  if (n > d.remaining() / 16) throw decode_error("hello lists more jobs than its bytes hold");
  h.jobs.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    job_info j;
    j.name = hello_string(d, max_hello_job_name, "job name", "max_hello_job_name");
    j.signature = hello_string(d, max_hello_signature, "job signature", "max_hello_signature");
    h.jobs.push_back(std::move(j));
  }
  if (with_placement) {
    placement w;
    w.host = hello_string(d, max_placement_name, "host name", "max_placement_name");
    w.node = hello_string(d, max_placement_name, "node name", "max_placement_name");
    w.pod = hello_string(d, max_placement_name, "pod name", "max_placement_name");
    h.where = std::move(w);
  }
  d.expect_end();
  return h;
}

std::byte* append_frame_for(std::vector<std::byte>& out, frame_type type, std::uint64_t task_id,
                            std::size_t payload_size, std::uint16_t flags) {
  if (payload_size > std::numeric_limits<std::uint32_t>::max())
    throw capacity_exceeded("a frame payload of " + std::to_string(payload_size) +
                            " bytes does not fit a 32-bit length");
  const auto at = out.size();
  append_frame(out, type, task_id, {}, flags);
  store(out.data() + at + 16, static_cast<std::uint32_t>(payload_size));
  out.resize(at + header_size + payload_size);
  return out.data() + at + header_size;
}

std::vector<std::byte> encode_error(const error_payload& ep) {
  std::vector<std::byte> out;
  encoder e(out);
  e.put(static_cast<std::uint32_t>(ep.code));
  e.put(ep.message);
  return out;
}

unknown_error_code::unknown_error_code(std::uint32_t code)
    : decode_error("error frame carries unknown code " + std::to_string(code)) {
}

error_payload decode_error_payload(std::span<const std::byte> payload) {
  decoder d(payload.data(), payload.size());
  error_payload ep;
  const auto code = d.get<std::uint32_t>();
  if (code < static_cast<std::uint32_t>(errc::job_failed) ||
      code > static_cast<std::uint32_t>(errc::cancelled))
    throw unknown_error_code(code);
  ep.code = static_cast<errc>(code);
  ep.message = d.get<std::string>();
  d.expect_end();
  return ep;
}

namespace {
std::byte* append_item(std::vector<std::byte>& out, std::size_t n, const frame_type* kind) {
  if (n > std::numeric_limits<std::uint32_t>::max())
    throw capacity_exceeded("a batch item of " + std::to_string(n) +
                            " bytes does not fit a 32-bit length");
  const auto at = out.size();
  out.resize(at + (kind ? 5 : 4) + n);
  std::byte* p = out.data() + at;
  if (kind) *p++ = static_cast<std::byte>(*kind);
  store(p, static_cast<std::uint32_t>(n));
  return p + 4;
}
}  // namespace

std::byte* append_batch_arg(std::vector<std::byte>& out, std::size_t n) {
  return append_item(out, n, nullptr);
}

std::byte* append_batch_item(std::vector<std::byte>& out, std::size_t n, frame_type kind) {
  return append_item(out, n, &kind);
}

batch_reader::batch_reader(std::span<const std::byte> items) : bytes_(items) {
  if (items.size() < 4) throw decode_error("batch shorter than its item count");
  count_ = load<std::uint32_t>(items.data());
  // Every item takes at least its 4-byte length.
  if (count_ > (items.size() - 4) / 4)
    throw decode_error("batch of " + std::to_string(count_) + " items in " +
                       std::to_string(items.size()) + " bytes");
}

void batch_reader::bad_next() const {
  if (bytes_.size() - at_ < 4) throw decode_error("batch item truncated");
  throw decode_error("batch item runs past the end");
}

void batch_reader::expect_end() const {
  if (at_ != bytes_.size()) throw decode_error("bytes left over after the last batch item");
}

batch_result_reader::batch_result_reader(std::span<const std::byte> payload, std::size_t expected)
    : bytes_(payload) {
  if (payload.size() < 4) throw decode_error("batch result shorter than its item count");
  const auto count = load<std::uint32_t>(payload.data());
  if (count != expected)
    throw decode_error("batch result of " + std::to_string(count) + " items for a batch of " +
                       std::to_string(expected));
  if (count > (payload.size() - 4) / 5)
    throw decode_error("batch result of " + std::to_string(count) + " items in " +
                       std::to_string(payload.size()) + " bytes");
}

void batch_result_reader::bad_next() const {
  if (bytes_.size() - at_ < 5)
    throw decode_error("batch result item " + std::to_string(index_) + " truncated");
  const auto kind = load<std::uint8_t>(bytes_.data() + at_);
  if (kind != static_cast<std::uint8_t>(frame_type::result) &&
      kind != static_cast<std::uint8_t>(frame_type::error))
    throw decode_error("batch result item " + std::to_string(index_) + " of kind " +
                       std::to_string(kind));
  throw decode_error("batch result item " + std::to_string(index_) + " runs past the end");
}

void batch_result_reader::expect_end() const {
  if (at_ != bytes_.size()) throw decode_error("bytes left over after the last batch result item");
}

void check_batch_result(std::span<const std::byte> payload, std::size_t expected) {
  batch_result_reader r(payload, expected);
  for (std::size_t i = 0; i < expected; ++i) {
    const auto item = r.next();
    if (item.kind == frame_type::error) (void)decode_error_payload(item.bytes);
  }
  r.expect_end();
}

namespace {
// The batch and batch_result builders: a u32 count (written last), then the items.
std::byte* add_counted(std::vector<std::byte>& bytes, std::uint32_t& count, std::size_t n,
                       const frame_type* kind) {
  if (count == std::numeric_limits<std::uint32_t>::max())
    throw capacity_exceeded("a batch cannot hold more than 4294967295 items");
  if (bytes.empty()) bytes.resize(4);
  std::byte* to = append_item(bytes, n, kind);
  ++count;
  return to;
}
std::vector<std::byte> finish_counted(std::vector<std::byte>& bytes, std::uint32_t& count) {
  if (bytes.empty()) bytes.resize(4);
  store(bytes.data(), count);
  count = 0;
  return std::exchange(bytes, {});
}
void check_outcome(frame_type kind) {
  if (kind != frame_type::result && kind != frame_type::error)
    throw std::invalid_argument("a batch_result item is a result or an error, not frame type " +
                                std::to_string(static_cast<int>(kind)));
}
}  // namespace

void batch_builder::reserve(std::size_t bytes) {
  if (bytes_.size() < bytes) bytes_.resize(bytes);
}

// The slow path of add: the first item, a full buffer, or an item or count over the limits.
std::byte* batch_builder::add_growing(std::size_t n) {
  if (count_ == std::numeric_limits<std::uint32_t>::max())
    throw capacity_exceeded("a batch cannot hold more than 4294967295 items");
  if (n > std::numeric_limits<std::uint32_t>::max())
    throw capacity_exceeded("a batch item of " + std::to_string(n) +
                            " bytes does not fit a 32-bit length");
  if (size_ == 0) size_ = 4;  // room for the count first
  if (bytes_.size() - std::min(size_, bytes_.size()) < 4 + n)
    bytes_.resize(std::max({size_ + 4 + n, 2 * bytes_.size(), std::size_t{256}}));
  std::byte* p = bytes_.data() + size_;
  store(p, static_cast<std::uint32_t>(n));
  size_ += 4 + n;
  ++count_;
  return p + 4;
}

void batch_builder::add(std::span<const std::byte> item) {
  std::byte* to = add(item.size());
  if (!item.empty()) std::memcpy(to, item.data(), item.size());
}

std::vector<std::byte> batch_builder::finish() {
  if (size_ == 0) size_ = 4;
  bytes_.resize(size_);  // down to what was written: no reallocation
  store(bytes_.data(), count_);
  count_ = 0;
  size_ = 0;
  return std::exchange(bytes_, {});
}

void batch_result_builder::reserve(std::size_t bytes) {
  bytes_.reserve(bytes);
}

std::byte* batch_result_builder::add(frame_type kind, std::size_t n) {
  check_outcome(kind);
  return add_counted(bytes_, count_, n, &kind);
}

void batch_result_builder::add(frame_type kind, std::span<const std::byte> bytes) {
  std::byte* to = add(kind, bytes.size());
  if (!bytes.empty()) std::memcpy(to, bytes.data(), bytes.size());
}

std::vector<std::byte> batch_result_builder::finish() {
  return finish_counted(bytes_, count_);
}

std::size_t begin_frame(std::vector<std::byte>& out, frame_type type, std::uint64_t task_id,
                        std::uint16_t flags) {
  const auto at = out.size();
  append_frame(out, type, task_id, {}, flags);
  return at;
}

void finish_frame(std::vector<std::byte>& out, std::size_t header_at) {
  const std::size_t n = out.size() - header_at - header_size;
  if (n > std::numeric_limits<std::uint32_t>::max())
    throw capacity_exceeded("a frame payload of " + std::to_string(n) +
                            " bytes does not fit a 32-bit length");
  store(out.data() + header_at + 16, static_cast<std::uint32_t>(n));
}

}  // namespace crew::protocol
