#include "shm_segment.hpp"

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/permissions.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crew::detail {
namespace ipc = boost::interprocess;

std::string random_shm_name() {
  // 64 bits from the kernel for every name: nothing learnt from one name predicts the next.
  std::uint64_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
    // Only where getrandom is unavailable; create_only still refuses any collision.
    r = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) *
        0x9e3779b97f4a7c15ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r));
  return "crew-" + std::to_string(::getpid()) + "-" + hex;
}

namespace {

constexpr std::size_t page = protocol::shm_header::size;
constexpr auto max_file = static_cast<std::size_t>(std::numeric_limits<off_t>::max());

// Rounds up to whole pages; false if the result could not be a file size.
bool round_up(std::size_t n, std::size_t& out) {
  if (n > max_file - page) return false;
  out = (n + page - 1) / page * page;
  return true;
}

// The pid in a name of the form crew-<pid>-<16 lowercase hex digits>, or -1.
long creator_pid(const std::string& name) {
  constexpr std::string_view prefix = "crew-";
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  const auto dash = name.find('-', prefix.size());
  if (dash == std::string::npos || dash == prefix.size() || dash - prefix.size() > 9) return -1;
  const std::string digits = name.substr(prefix.size(), dash - prefix.size());
  const std::string hex = name.substr(dash + 1);
  if (digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  if (hex.size() != 16 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) return -1;
  return std::stol(digits);
}

}  // namespace

int shm_segment::fd() const noexcept {
  return shm_.get_mapping_handle().handle;
}

boost::system::error_code shm_segment::write_request(std::size_t offset,
                                                     std::span<const std::byte> bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd(), bytes.data() + done, bytes.size() - done,
                               static_cast<off_t>(layout_.request_offset + offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {n < 0 ? errno : EIO, boost::system::system_category()};
    done += static_cast<std::size_t>(n);
  }
  return {};
}

boost::system::error_code shm_segment::read_response(std::size_t offset, std::size_t length,
                                                     std::vector<std::byte>& out) {
  out.resize(length);
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd(), out.data() + done, length - done,
                              static_cast<off_t>(layout_.response_offset + offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errc::protocol_error;  // the worker shrank the file under the data
    done += static_cast<std::size_t>(n);
  }
  return {};
}

shm_segment shm_segment::create(std::size_t request_bytes, std::size_t response_bytes,
                                boost::system::error_code& ec, std::string& why,
                                const std::function<std::string()>& next_name) {
  ec.clear();
  why.clear();
  shm_segment s;
  std::size_t request_size = 0, response_size = 0;
  if (!round_up(request_bytes, request_size) || !round_up(response_bytes, response_size) ||
      request_size > max_file - page - response_size) {
    ec.assign(EFBIG, boost::system::system_category());
    why = "shared-memory areas of " + std::to_string(request_bytes) + " and " +
          std::to_string(response_bytes) + " bytes are too large for a segment";
    return s;
  }
  s.layout_.request_offset = page;
  s.layout_.request_size = request_size;
  s.layout_.response_offset = page + request_size;
  s.layout_.response_size = response_size;
  const std::size_t total = page + request_size + response_size;
  const std::string where = "a " + std::to_string(total) + "-byte shared segment in /dev/shm";
  bool linked = false;  // our name exists in /dev/shm
  auto fail = [&](int err, std::string what) {
    ec.assign(err, boost::system::system_category());
    why = std::move(what);
    if (linked) ipc::shared_memory_object::remove(s.name_.c_str());
    return shm_segment();
  };
  try {
    ipc::permissions owner_only(0600);
    for (int attempt = 0;; ++attempt) {
      s.name_ = next_name();
      try {
        s.shm_ = ipc::shared_memory_object(ipc::create_only, s.name_.c_str(), ipc::read_write,
                                           owner_only);
        linked = true;
        break;
      } catch (const ipc::interprocess_exception& e) {
        // Someone else's object by that name: never open it, pick another name.
        if (e.get_error_code() != ipc::already_exists_error || attempt == 7) throw;
      }
    }
    const int fd = s.fd();
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::fchmod(fd, 0600);  // the mode asked for, whatever the umask did to it
    struct stat st {};
    if (::fstat(fd, &st) != 0) return fail(errno, "cannot inspect segment " + s.name_);
    if (st.st_uid != ::geteuid() || (st.st_mode & 0777) != 0600 || st.st_size != 0)
      return fail(EACCES, "segment " + s.name_ + " is not a new, private object of this user");
    // We hold the descriptor and the worker will get it: the name has served. Unlinked
    // now, only a crash in these few microseconds can leave an entry (the sweep's case).
    ipc::shared_memory_object::remove(s.name_.c_str());
    linked = false;
    if (::ftruncate(fd, static_cast<off_t>(total)) != 0) {
      const int err = errno;
      return fail(err, "cannot size " + where + " (" + std::strerror(err) + ")");
    }
    // Reserve every page now: a full /dev/shm must fail here with ENOSPC, not later.
    if (const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(total)); rc != 0)
      return fail(rc, "cannot allocate " + where + " (" + std::strerror(rc) +
                          "); use smaller shm areas or free space there");
    std::vector<std::byte> header(page);
    protocol::write_shm_header(header.data(), s.layout_);
    if (::pwrite(fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size()))
      return fail(errno ? errno : EIO, "cannot write the header of " + where);
    s.size_ = total;
  } catch (const ipc::interprocess_exception& e) {
    const int err = e.get_native_error() ? e.get_native_error() : EIO;
    return fail(err, "cannot create " + where + ": " + e.what());
  } catch (const std::exception& e) {
    return fail(EIO, "cannot create " + where + ": " + e.what());
  }
  return s;
}

void sweep_stale_segments() {
  std::error_code fs_ec;
  std::filesystem::directory_iterator it("/dev/shm", fs_ec), end;
  for (; !fs_ec && it != end; it.increment(fs_ec)) {
    const std::string name = it->path().filename().string();
    const long pid = creator_pid(name);
    if (pid <= 0 || pid == ::getpid()) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
      continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive
    ipc::shared_memory_object::remove(name.c_str());
  }
}

}  // namespace crew::detail
