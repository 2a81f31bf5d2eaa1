// Private: the per-worker shared memory (Boost.Interprocess), as two files.
#pragma once

#include "spawn.hpp"

#include <crew/protocol.hpp>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace crew::detail {

/// A new name for a crew object: `crew-<pid>-<16 hex digits from getrandom>`.
std::string random_shm_name();

/// Bytes of request files held against the process's budget of shared memory (see
/// shm_segment).
using shm_charge = budget_charge;

/// One worker's shared memory, as two files, fully allocated at creation (an area that does
/// not fit fails here, not later with SIGBUS):
///  - the request file: a header page, then the request area. A memfd (not a Boost.Interprocess
///    object: those cannot be sealed), mapped read-write by the coordinator, which encodes
///    arguments straight into it, then SEALED against shrinking, growing and any new write
///    or writable mapping (F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_FUTURE_WRITE, F_SEAL_SEAL).
///    The worker gets a read-only descriptor (fd 5); even one it reopens read-write through
///    /proc/self/fd can neither write the file nor change its size, so nothing it does can
///    make the coordinator's mapping fault. A memfd is bounded only by memory, so its size
///    is budgeted against /dev/shm's free space less the request files of this process's
///    other live segments (a full budget fails here, as a full /dev/shm does);
///  - the response file: the response area, a Boost.Interprocess shared-memory object in
///    /dev/shm, created exclusively with mode 0600, verified (owner, mode), unlinked at
///    once. The worker gets a read-write descriptor (fd 6) and maps it; the coordinator does
///    NOT map it (a worker could shrink the file and turn any access through a mapping into
///    SIGBUS): it copies results out with pread into its own buffer, so a shrunk file is a
///    short read, and nothing is decoded from memory the worker can change meanwhile.
/// No lock and no allocator metadata live in either file.
class shm_segment {
 public:
  shm_segment() = default;
  shm_segment(shm_segment&&) = default;
  shm_segment& operator=(shm_segment&&) = default;

  /// Creates both files. The response file's name comes from `next_name`; a name that
  /// already exists is never opened, the next one is tried (8 at most). On failure returns
  /// an empty segment and sets `ec` and `why` (e.g. /dev/shm full).
  static shm_segment create(std::size_t request_bytes, std::size_t response_bytes,
                            boost::system::error_code& ec, std::string& why,
                            const std::function<std::string()>& next_name = random_shm_name);

  explicit operator bool() const noexcept { return request_map_.get_address() != nullptr; }
  /// The worker's read-only descriptor of the sealed request file (FD_CLOEXEC).
  int worker_request_fd() const noexcept { return request_read_only_.get(); }
  /// The response file's descriptor (FD_CLOEXEC), for the worker.
  int response_fd() const noexcept;
  std::byte* request() const noexcept {
    return static_cast<std::byte*>(request_map_.get_address()) + layout_.request_offset;
  }
  std::size_t request_size() const noexcept { return layout_.request_size; }
  std::size_t response_size() const noexcept { return layout_.response_size; }
  /// The name the response file had before it was unlinked (for diagnostics and tests).
  const std::vector<std::string>& names() const noexcept { return names_; }

  /// Reads `length` bytes at `offset` of the response area into `out` (resized);
  /// `protocol_error` if the file no longer holds them.
  boost::system::error_code read_response(std::size_t offset, std::size_t length,
                                          std::vector<std::byte>& out);

 private:
  shm_charge charge_;  // its request file against the budget (create())
  unique_fd request_, request_read_only_;
  boost::interprocess::shared_memory_object response_;
  boost::interprocess::mapped_region request_map_;
  protocol::shm_header layout_;
  std::vector<std::string> names_;
};

/// Removes objects that crew processes of this user left in /dev/shm when they died
/// (between creating and unlinking one): names `crew-<pid>-<hex>` owned by this user
/// whose pid no longer exists. Touches nothing else.
void sweep_stale_segments();

}  // namespace crew::detail
