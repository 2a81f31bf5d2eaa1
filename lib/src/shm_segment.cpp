#include "shm_segment.hpp"

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/permissions.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <string_view>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crew::detail {
namespace ipc = boost::interprocess;

std::string random_shm_name() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(rng()));
  return "crew-" + std::to_string(::getpid()) + "-" + hex;
}

namespace {

constexpr std::size_t page = protocol::shm_header::size;
std::size_t round_up(std::size_t n) {
  return (n + page - 1) / page * page;
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

shm_segment shm_segment::create(std::size_t request_bytes, std::size_t response_bytes,
                                boost::system::error_code& ec, std::string& why,
                                const std::function<std::string()>& next_name) {
  ec.clear();
  why.clear();
  shm_segment s;
  s.layout_.request_offset = page;
  s.layout_.request_size = round_up(request_bytes);
  s.layout_.response_offset = page + s.layout_.request_size;
  s.layout_.response_size = round_up(response_bytes);
  const std::size_t total = page + s.layout_.request_size + s.layout_.response_size;
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
    // now, only a crash in the last few microseconds can leave an entry (the sweep's case).
    ipc::shared_memory_object::remove(s.name_.c_str());
    linked = false;
    if (::ftruncate(fd, static_cast<off_t>(total)) != 0) {
      const int err = errno;
      return fail(err, "cannot size " + where + " (" + std::strerror(err) + ")");
    }
    // Reserve every page now: a full /dev/shm must fail here with ENOSPC, not later with
    // SIGBUS when a page is first touched.
    if (const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(total)); rc != 0)
      return fail(rc, "cannot allocate " + where + " (" + std::strerror(rc) +
                          "); use smaller shm areas or free space there");
    s.region_ = ipc::mapped_region(s.shm_, ipc::read_write, 0, total);
  } catch (const ipc::interprocess_exception& e) {
    const int err = e.get_native_error() ? e.get_native_error() : EIO;
    return fail(err, "cannot create " + where + ": " + e.what());
  }
  protocol::write_shm_header(s.base(), s.layout_);
  return s;
}

void sweep_stale_segments() {
  {
    std::error_code fs_ec;
    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", fs_ec)) {
      const std::string name = entry.path().filename().string();
      const long pid = creator_pid(name);
      if (pid <= 0) continue;
      struct stat st {};
      if (::lstat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
          st.st_uid != ::geteuid())
        continue;
      if (pid == ::getpid()) continue;
      if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive
      ipc::shared_memory_object::remove(name.c_str());
    }
  }
}

}  // namespace crew::detail
