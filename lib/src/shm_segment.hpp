// Private: the per-worker shared-memory segment (Boost.Interprocess).
#pragma once

#include <crew/protocol.hpp>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <functional>
#include <string>

namespace crew::detail {

/// A new name for a crew segment: `crew-<pid>-<16 random hex digits>`.
std::string random_shm_name();

/// One worker's segment: a header page, a request area (the coordinator writes, the
/// worker reads) and a response area (the other way). Created exclusively with mode 0600,
/// verified, fully allocated, mapped, and unlinked before any worker sees it: the worker
/// receives the descriptor (fd 5), never the name. Holds no lock and no allocator
/// metadata: the worker may scribble on all of it without harming the coordinator, which
/// keeps its own copy of the layout.
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

  explicit operator bool() const noexcept { return region_.get_address() != nullptr; }
  /// The segment's descriptor (FD_CLOEXEC), to hand to the worker.
  int fd() const noexcept;
  std::size_t size() const noexcept { return region_.get_size(); }
  std::byte* request() const noexcept { return base() + layout_.request_offset; }
  std::size_t request_size() const noexcept { return layout_.request_size; }
  const std::byte* response() const noexcept { return base() + layout_.response_offset; }
  std::size_t response_size() const noexcept { return layout_.response_size; }
  /// The name it had before it was unlinked (for diagnostics and tests).
  const std::string& name() const noexcept { return name_; }

 private:
  std::byte* base() const noexcept { return static_cast<std::byte*>(region_.get_address()); }

  boost::interprocess::shared_memory_object shm_;
  boost::interprocess::mapped_region region_;
  protocol::shm_header layout_;
  std::string name_;
};

/// Removes segments that crew processes of this user left in /dev/shm when they died
/// (between creating and unlinking a segment): names `crew-<pid>-<hex>` owned by this
/// user whose pid no longer exists. Touches nothing else.
void sweep_stale_segments();

}  // namespace crew::detail
