// Private: the per-worker shared-memory segment (Boost.Interprocess).
#pragma once

#include <crew/protocol.hpp>

#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace crew::detail {

/// A new name for a crew segment: `crew-<pid>-<16 hex digits from getrandom>`.
std::string random_shm_name();

/// One worker's segment: a header page, a request area (the coordinator writes, the
/// worker reads) and a response area (the other way). Created exclusively with mode 0600,
/// verified, unlinked at once, and fully allocated; the worker receives its descriptor
/// (fd 5), never the name, and maps it.
///
/// The coordinator does NOT map it: the worker holds a writable descriptor and could
/// shrink the file at any moment, which would turn any access through a mapping into
/// SIGBUS in the coordinator. It moves bytes with pwrite/pread instead (one copy each, as
/// a memcpy into a mapping would be): a shrunk file gives a short read, an error. The
/// segment holds no lock and no allocator metadata; the coordinator keeps its own copy
/// of the layout and never reads the header back.
class shm_segment {
 public:
  shm_segment() = default;
  shm_segment(shm_segment&&) = default;
  shm_segment& operator=(shm_segment&&) = default;

  /// Creates a segment with areas of the given sizes. Names come from `next_name`; a
  /// name that already exists is never opened, the next one is tried (8 at most). On
  /// failure returns an empty segment and sets `ec` and `why` (e.g. /dev/shm full).
  static shm_segment create(std::size_t request_bytes, std::size_t response_bytes,
                            boost::system::error_code& ec, std::string& why,
                            const std::function<std::string()>& next_name = random_shm_name);

  explicit operator bool() const noexcept { return size_ != 0; }
  /// The segment's descriptor (FD_CLOEXEC), to hand to the worker.
  int fd() const noexcept;
  std::size_t size() const noexcept { return size_; }
  std::size_t request_size() const noexcept { return layout_.request_size; }
  std::size_t response_size() const noexcept { return layout_.response_size; }
  /// The name it had before it was unlinked (for diagnostics and tests).
  const std::string& name() const noexcept { return name_; }

  /// Writes `bytes` at `offset` of the request area (bounds checked by the caller).
  boost::system::error_code write_request(std::size_t offset, std::span<const std::byte> bytes);
  /// Reads `length` bytes at `offset` of the response area into `out` (resized);
  /// `protocol_error` if the file no longer holds them.
  boost::system::error_code read_response(std::size_t offset, std::size_t length,
                                          std::vector<std::byte>& out);

 private:
  boost::interprocess::shared_memory_object shm_;
  protocol::shm_header layout_;
  std::size_t size_ = 0;
  std::string name_;
};

/// Removes segments that crew processes of this user left in /dev/shm when they died
/// (between creating and unlinking a segment): names `crew-<pid>-<hex>` owned by this
/// user whose pid no longer exists. Touches nothing else.
void sweep_stale_segments();

}  // namespace crew::detail
