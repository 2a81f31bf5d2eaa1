// crew/protocol.hpp — the framed wire protocol between a coordinator and a worker.
// Pure functions and buffers, no IO: the channels and the worker runtime do the IO.
// The format is specified in docs/protocol.md.
//
// Only needed to write a worker without crew's runtime, or to test one; process_pool and
// serve (worker_runtime.hpp) use it for you. Read next: docs/protocol.md.
// Thread safety: the functions are pure (they touch only their arguments); every object
// here belongs to one thread.
#pragma once

#include <crew/codec.hpp>
#include <crew/error.hpp>
#include <crew/job.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace crew::protocol {

/// First four bytes of every frame: "CREW" in ASCII.
inline constexpr std::uint32_t magic = 0x57455243;
/// The protocol version this build speaks.
inline constexpr std::uint8_t version = 1;
/// Bytes in a frame header.
inline constexpr std::size_t header_size = 20;
/// Default largest payload accepted, checked before anything is allocated.
inline constexpr std::size_t default_max_payload = std::size_t{256} << 20;

// A hello's own limits, far below max_payload: a worker's first frame must not make its
// coordinator allocate much (docs/protocol.md §4). decode_hello checks each before it
// allocates; the coordinator also refuses a hello header announcing more than
// max_hello_payload before buffering its payload.
/// Largest hello payload, in bytes.
inline constexpr std::size_t max_hello_payload = std::size_t{1} << 20;
/// Most jobs a hello may list.
inline constexpr std::size_t max_hello_jobs = 10'000;
/// Longest job name in a hello, in bytes.
inline constexpr std::size_t max_hello_job_name = 1024;
/// Longest job signature in a hello, in bytes.
inline constexpr std::size_t max_hello_signature = 4096;

/// What a frame carries.
enum class frame_type : std::uint8_t {
  hello = 1,         ///< worker -> coordinator, first frame: pid and served jobs
  task = 2,          ///< coordinator -> worker: run a job
  result = 3,        ///< worker -> coordinator: the job's encoded result
  error = 4,         ///< worker -> coordinator: the job failed (errc + message)
  cancel = 5,        ///< coordinator -> worker: stop task `task_id` if it can (no payload)
  shutdown = 6,      ///< coordinator -> worker: finish and exit 0
  batch = 7,         ///< coordinator -> worker: run a job once per item (docs/protocol.md §9)
  batch_result = 8,  ///< worker -> coordinator: one outcome per item of a batch, in order
  ping = 9,          ///< coordinator -> worker: are you there? (no payload; docs/protocol.md §10)
  pong = 10,         ///< worker -> coordinator: the answer to ping, echoing its task_id
};

/// Frame flag: the payload is a shm_descriptor; the bytes it names are in the shared
/// segment (task: request area, result: response area). Other flag bits are errors.
inline constexpr std::uint16_t flag_shm = 1;
/// Hello flag: the worker accepts batch frames. Valid on a hello only.
inline constexpr std::uint16_t flag_batch = 2;
/// Hello flag: the worker answers every ping with a pong at once, even while a job runs
/// (a worker speaking on stdio, docs/protocol.md §10). Valid on a hello only. The
/// coordinator sends pings only to a worker that set it.
inline constexpr std::uint16_t flag_heartbeat = 4;
/// Hello flag: the payload ends with the worker's placement (host, node, pod; see
/// `placement`). Valid on a hello only.
inline constexpr std::uint16_t flag_placement = 8;
/// Longest placement name in a hello, in bytes.
inline constexpr std::size_t max_placement_name = 255;

/// A decoded frame header.
struct frame_header {
  /// What the frame carries.
  frame_type type{};
  /// flag_shm; on a hello also flag_batch and flag_heartbeat.
  std::uint16_t flags = 0;
  /// The task the frame belongs to; 0 for hello and shutdown.
  std::uint64_t task_id = 0;
  /// Payload bytes after the header.
  std::uint32_t length = 0;
};

/// A complete frame, viewing bytes owned by the frame_reader that produced it.
struct frame_view {
  /// The frame's header.
  frame_header header;
  /// Its `header.length` payload bytes.
  std::span<const std::byte> payload;
};

/// Appends one frame (header and payload) to `out`. Throws capacity_exceeded for a payload
/// of 4 GiB or more (it cannot have a 32-bit length), std::bad_alloc.
void append_frame(std::vector<std::byte>& out, frame_type type, std::uint64_t task_id,
                  std::span<const std::byte> payload, std::uint16_t flags = 0);

/// Decodes the `header_size` bytes at `in`. Fails with `protocol_error` for a bad magic,
/// version, type or flags, and with `payload_too_large` for a length over `max_payload`.
boost::system::error_code parse_header(const std::byte* in, std::size_t max_payload,
                                       frame_header& out) noexcept;

/// Reassembles frames from a byte stream read in arbitrary pieces.
/// Usage: `auto buf = prepare(n); n = read(fd, buf); commit(n); while (next(f, ec)) ...`.
/// After `next` reports an error the stream is broken and must be dropped.
///
/// Memory follows the bytes that arrive, not the lengths headers announce: when `prepare`
/// must grow the buffer for a frame begun, it makes room for `ahead` = max(`min_bytes`,
/// 64 KiB, what is buffered) more bytes, or for the whole rest of the frame (and `min_bytes`
/// beyond it) when that rest is at most 1.5 x `ahead`. The buffer doubles as the payload comes in,
/// never taking the declared length at once: a header announcing 256 MiB, then silence, costs about
/// 64 KiB. Once a buffer grown past 1 MiB is no longer needed (its frame consumed, what is buffered
/// and wanted under 128 KiB), `prepare` gives it back and starts again from a small one. Thread
/// safety: none.
class frame_reader {
 public:
  /// The room ahead a frame's buffer may always have: prepare's default.
  static constexpr std::size_t reserve_ahead = std::size_t{64} << 10;
  /// A buffer larger than this is released by `prepare` once no frame needs it.
  static constexpr std::size_t shrink_above = std::size_t{1} << 20;

  /// A reader that rejects frames with a payload over `max_payload`.
  explicit frame_reader(std::size_t max_payload = default_max_payload);
  /// Space for at least `min_bytes` more input (more if the frame begun needs it, see
  /// above). Moves the buffered bytes (invalidating earlier views); throws std::bad_alloc.
  std::span<std::byte> prepare(std::size_t min_bytes = reserve_ahead);
  /// Marks `n` bytes of the last prepared space as filled.
  void commit(std::size_t n) noexcept { end_ += n; }
  /// Extracts the next complete frame. Returns false when more input is needed or when
  /// `ec` was set (`protocol_error` or `payload_too_large`, as parse_header). The view stays
  /// valid until the next call of prepare or next.
  bool next(frame_view& out, boost::system::error_code& ec);
  /// True when some bytes of an incomplete frame are buffered (EOF now = truncation).
  bool mid_frame() const noexcept { return end_ != begin_; }
  /// The bytes read but not yet returned as frames (for looking ahead without consuming).
  std::span<const std::byte> buffered() const noexcept {
    return {buf_.data() + begin_, end_ - begin_};
  }
  /// Bytes of buffer the reader holds allocated (what the growth rule above bounds).
  std::size_t capacity() const noexcept { return buf_.capacity(); }

 private:
  std::size_t max_payload_;
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

/// Where a payload lies in a shared-memory area: 24 bytes on the wire (three u64).
struct shm_descriptor {
  std::uint64_t offset = 0;      ///< from the start of the area
  std::uint64_t length = 0;      ///< bytes
  std::uint64_t generation = 0;  ///< the task's generation, echoed by the worker
};
/// Bytes of an encoded shm_descriptor.
inline constexpr std::size_t shm_descriptor_size = 24;
/// Appends the 24 bytes of `d` to `out` (a task or result frame's payload, after the job
/// index for a task). Throws std::bad_alloc.
void append_descriptor(std::vector<std::byte>& out, const shm_descriptor& d);
/// Decodes and validates a descriptor from a peer: the payload must be exactly 24 bytes,
/// `offset + length` must not wrap and must lie within `area_size`, and the generation
/// must be `expected_generation`. Any failure is `protocol_error`.
boost::system::error_code check_descriptor(std::span<const std::byte> payload,
                                           std::size_t area_size, std::uint64_t expected_generation,
                                           shm_descriptor& out) noexcept;

/// The layout of the shared memory, written by the coordinator in the first page of the
/// request file (fd 5). The request area lies in the request file (after this page), the
/// response area in the response file (fd 6). The coordinator never reads it back.
/// Members: `magic`, the header's first four bytes; `size`, the bytes reserved for the
/// header at the start of the request file; the offset and byte count of each area in its
/// file. On the wire: u32 magic, u32 version, then the four u64 in declaration order.
struct shm_header {
  static constexpr std::uint32_t magic = 0x48535243;     // "CRSH"
  static constexpr std::size_t size = 4096;              // the request area starts page-aligned
  std::uint64_t request_offset = 0, request_size = 0;    // in the request file
  std::uint64_t response_offset = 0, response_size = 0;  // in the response file
};
/// Writes the header at `page` (at least shm_header::size bytes).
void write_shm_header(std::byte* page, const shm_header& h) noexcept;
/// Reads and checks a header against the two files' sizes: the request file must hold the
/// header page, magic and version must match, the request area must lie after the header
/// within the request file, the response area within the response file. protocol_error if
/// not.
boost::system::error_code read_shm_header(const std::byte* page, std::size_t request_file_size,
                                          std::size_t response_file_size, shm_header& out) noexcept;

/// Where a worker runs, as it reports it in its hello (flag_placement): for messages,
/// events and the timeline. Each at most max_placement_name bytes; empty when unknown.
struct placement {
  std::string host;  ///< gethostname()
  std::string node;  ///< $SLURMD_NODENAME (a Slurm task)
  std::string pod;   ///< the Kubernetes pod's name ($CREW_POD_NAME, else $HOSTNAME in a pod)
  /// How a worker is named in messages: the node, else the pod, else the host.
  const std::string& shown() const noexcept {
    return !node.empty() ? node : !pod.empty() ? pod : host;
  }
};

/// The worker's handshake: the first frame it sends.
struct hello {
  /// The worker's process id.
  std::uint32_t pid = 0;
  /// The jobs it serves; a task names one by its index in this list.
  std::vector<job_info> jobs;
  /// Where it runs: sent (with flag_placement) by a worker on stdio or connected back.
  std::optional<placement> where;
};
/// The payload of a hello frame: pid, u32 job count, then each job's name and signature;
/// then, with `where` (the frame then carries flag_placement), its host, node and pod.
std::vector<std::byte> encode_hello(const hello& h);
/// Throws decode_error for a malformed payload, or one over the hello limits
/// (max_hello_payload, max_hello_jobs, max_hello_job_name, max_hello_signature,
/// max_placement_name: the message names the limit), checked before anything is allocated.
/// `with_placement`: the frame carried flag_placement (the three names follow the jobs).
hello decode_hello(std::span<const std::byte> payload, bool with_placement = false);

/// Appends a frame header for a payload of `payload_size` bytes and room for that payload,
/// and returns where the payload goes (valid until `out` changes size): for writing a
/// payload in place, once, instead of building it elsewhere and copying it in. A task
/// frame's payload is the job's u32 index in the worker's hello list, then the encoded
/// arguments. Throws capacity_exceeded if the payload cannot have a 32-bit length.
std::byte* append_frame_for(std::vector<std::byte>& out, frame_type type, std::uint64_t task_id,
                            std::size_t payload_size, std::uint16_t flags = 0);

/// Batches (docs/protocol.md §9). A batch frame's payload is the u32 job index, then a u32
/// item count, then per item a u32 length and that many bytes of encoded arguments. A
/// batch_result's payload is a u32 item count, then per item a u8 kind (3: result, 4: error,
/// as the frame types), a u32 length and that many bytes (an encoded result, or an error
/// payload).
struct batch_item {
  /// frame_type::result or frame_type::error.
  frame_type kind = frame_type::result;
  /// An encoded result, or an error payload (decode_error_payload); views the payload.
  std::span<const std::byte> bytes;
};
/// Appends the header of a batch's argument item of `n` bytes (its u32 length) and room for
/// it; returns where the bytes go, valid until `out` changes size. Throws capacity_exceeded
/// over 4 GiB - 1.
std::byte* append_batch_arg(std::vector<std::byte>& out, std::size_t n);
/// The same for an item of a batch_result: `kind` is result or error.
std::byte* append_batch_item(std::vector<std::byte>& out, std::size_t n, frame_type kind);
/// Walks a batch frame's items (the payload after the job index) without copying them.
/// Throws decode_error for a count that cannot fit, an item running past the end, or bytes
/// left over (checked by `expect_end`).
class batch_reader {
 public:
  /// Reads the item count. Throws decode_error if there is none, or if the bytes cannot
  /// hold that many items.
  explicit batch_reader(std::span<const std::byte> items);
  /// The number of items.
  std::uint32_t count() const noexcept { return count_; }
  /// The next item's bytes (a view of `items`); call it `count()` times. Throws
  /// decode_error for an item that is truncated or runs past the end.
  std::span<const std::byte> next() {
    // Inline: map's batches call it once per item.
    if (bytes_.size() - at_ >= 4) {
      std::uint32_t n;
      std::memcpy(&n, bytes_.data() + at_, 4);
      if (n <= bytes_.size() - at_ - 4) {
        const auto item = bytes_.subspan(at_ + 4, n);
        at_ += 4 + std::size_t{n};
        return item;
      }
    }
    bad_next();
  }
  /// Throws decode_error unless every byte was consumed.
  void expect_end() const;

 private:
  [[noreturn]] void bad_next() const;
  std::span<const std::byte> bytes_;
  std::size_t at_ = 4;
  std::uint32_t count_ = 0;
};
/// Walks a batch_result payload, which must hold exactly `expected` items, each a result or
/// an error. Throws decode_error otherwise.
class batch_result_reader {
 public:
  /// Reads the item count. Throws decode_error if it is not `expected` or the bytes cannot
  /// hold that many items.
  batch_result_reader(std::span<const std::byte> payload, std::size_t expected);
  /// The next item (viewing `payload`); call it `expected` times. Throws decode_error for
  /// an item that is truncated, runs past the end, or is neither a result nor an error.
  batch_item next() {
    // Inline: map's replies call it once per item.
    if (bytes_.size() - at_ >= 5) {
      const auto kind = static_cast<std::uint8_t>(bytes_[at_]);
      std::uint32_t n;
      std::memcpy(&n, bytes_.data() + at_ + 1, 4);
      if ((kind == static_cast<std::uint8_t>(frame_type::result) ||
           kind == static_cast<std::uint8_t>(frame_type::error)) &&
          n <= bytes_.size() - at_ - 5) {
        batch_item item{static_cast<frame_type>(kind), bytes_.subspan(at_ + 5, n)};
        at_ += 5 + std::size_t{n};
        ++index_;
        return item;
      }
    }
    bad_next();
  }
  /// Throws decode_error unless every byte was consumed.
  void expect_end() const;

 private:
  [[noreturn]] void bad_next() const;
  std::span<const std::byte> bytes_;
  std::size_t at_ = 4;
  std::uint32_t index_ = 0;
};
/// Checks a whole batch_result (what the coordinator does before handing it on), error
/// payloads included. Throws decode_error.
void check_batch_result(std::span<const std::byte> payload, std::size_t expected);
/// Builds a batch frame's items (the payload after the job index): the u32 count, which
/// `finish` writes, then per item its u32 length and bytes. What batch_reader reads.
/// Thread safety: none.
class batch_builder {
 public:
  /// Reserves room for `bytes` bytes of the batch, the count included. Throws std::bad_alloc.
  void reserve(std::size_t bytes);
  /// Appends an item of `n` bytes and returns where they go, valid until the builder next
  /// changes. Throws capacity_exceeded for an item over 4 GiB - 1 or a 4 Gi-th item,
  /// std::bad_alloc.
  std::byte* add(std::size_t n) {
    // Inline, into room already there: map calls it once per item.
    if (size_ != 0 && count_ < std::numeric_limits<std::uint32_t>::max() &&
        n <= std::numeric_limits<std::uint32_t>::max() && bytes_.size() - size_ >= 4 + n) {
      std::byte* p = bytes_.data() + size_;
      const auto length = static_cast<std::uint32_t>(n);
      std::memcpy(p, &length, 4);
      size_ += 4 + n;
      ++count_;
      return p + 4;
    }
    return add_growing(n);
  }
  /// Appends a copy of `item`; throws as the other add.
  void add(std::span<const std::byte> item);
  /// Items added since the builder was made or last finished.
  std::uint32_t count() const noexcept { return count_; }
  /// Bytes of the batch so far, the count included.
  std::size_t size() const noexcept { return size_ == 0 ? 4 : size_; }
  /// The batch, its count written (4 bytes of zero for no item); the builder is empty
  /// again. Throws std::bad_alloc.
  std::vector<std::byte> finish();

 private:
  std::byte* add_growing(std::size_t n);
  std::vector<std::byte> bytes_;  // room: the batch is its first size_ bytes
  std::size_t size_ = 0;          // 0 until the first item, then the count's 4 bytes + items
  std::uint32_t count_ = 0;
};
/// Builds a batch_result's payload: the u32 count, which `finish` writes, then per item its
/// u8 kind (result or error), u32 length and bytes. What batch_result_reader reads.
/// Thread safety: none.
class batch_result_builder {
 public:
  /// Reserves room for `bytes` bytes of the payload, the count included. Throws
  /// std::bad_alloc.
  void reserve(std::size_t bytes);
  /// Appends an item of `kind` (frame_type::result: an encoded result; frame_type::error: an
  /// error payload, see encode_error) and `n` bytes, and returns where they go, valid until
  /// the builder next changes. Throws std::invalid_argument for another kind,
  /// capacity_exceeded for an item over 4 GiB - 1 or a 4 Gi-th item, std::bad_alloc.
  std::byte* add(frame_type kind, std::size_t n);
  /// Appends an item of `kind` holding a copy of `bytes`; throws as the other add.
  void add(frame_type kind, std::span<const std::byte> bytes);
  /// Items added since the builder was made or last finished.
  std::uint32_t count() const noexcept { return count_; }
  /// The payload, its count written (4 bytes of zero for no item); the builder is empty
  /// again. Throws std::bad_alloc.
  std::vector<std::byte> finish();

 private:
  std::vector<std::byte> bytes_;  // empty until the first item: room for the count comes first
  std::uint32_t count_ = 0;
};
/// Starts a frame whose payload is appended afterwards; `finish_frame` writes its length.
/// Returns the header's offset in `out`. Throws std::bad_alloc.
std::size_t begin_frame(std::vector<std::byte>& out, frame_type type, std::uint64_t task_id,
                        std::uint16_t flags = 0);
/// Throws capacity_exceeded if the payload appended since `begin_frame` is over 4 GiB - 1.
void finish_frame(std::vector<std::byte>& out, std::size_t header_at);

/// The payload of an error frame: an errc value and a message.
struct error_payload {
  /// Why the task failed.
  errc code = errc::job_failed;
  /// The detail, e.g. the job's exception message.
  std::string message;
};
/// The payload of an error frame: u32 code, then the message as a string.
std::vector<std::byte> encode_error(const error_payload& e);
/// What decode_error_payload throws for a code that is no errc value: a decode_error (its
/// code is `errc::decode_error`, as for any malformed payload) whose `what()` is its
/// message alone, "error frame carries unknown code N": the text of the decode_error code
/// ("bytes did not decode as the declared type") would describe another failure.
class unknown_error_code : public decode_error {
 public:
  /// For the unknown `code`.
  explicit unknown_error_code(std::uint32_t code);
  /// The message alone (see above).
  const char* what() const noexcept override { return message().c_str(); }
};
/// Throws decode_error for a malformed payload, unknown_error_code (a decode_error) for an
/// unknown code.
error_payload decode_error_payload(std::span<const std::byte> payload);

}  // namespace crew::protocol
