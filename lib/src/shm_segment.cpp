#include "shm_segment.hpp"

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/permissions.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace crew::detail {
namespace ipc = boost::interprocess;

namespace {
// Bytes of the request files of this process's live segments: memfds, which /dev/shm's size
// does not bound, so they are budgeted against its free space here.
std::atomic<std::size_t> committed_requests{0};
}  // namespace

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

int shm_segment::response_fd() const noexcept {
  return response_.get_mapping_handle().handle;
}

boost::system::error_code shm_segment::read_response(std::size_t offset, std::size_t length,
                                                     std::vector<std::byte>& out) {
  out.resize(length);
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(response_fd(), out.data() + done, length - done,
                              static_cast<off_t>(layout_.response_offset + offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errc::protocol_error;  // the worker shrank the file under the data
    done += static_cast<std::size_t>(n);
  }
  return {};
}

namespace {

// Thrown inside create() with the errno and the sentence to report.
struct creation_failure {
  int err;
  std::string why;
};

// Creates one object exclusively (never opening an existing name), checks it is ours and
// private, and returns it with its name. Unlinking is the caller's, once it holds what it
// needs.
ipc::shared_memory_object create_exclusive(const std::function<std::string()>& next_name,
                                           std::string& name) {
  ipc::permissions owner_only(0600);
  ipc::shared_memory_object obj;
  for (int attempt = 0;; ++attempt) {
    name = next_name();
    try {
      obj = ipc::shared_memory_object(ipc::create_only, name.c_str(), ipc::read_write, owner_only);
      break;
    } catch (const ipc::interprocess_exception& e) {
      name.clear();  // someone else's: never opened, never removed
      if (e.get_error_code() != ipc::already_exists_error || attempt == 7) throw;
    }
  }
  const int fd = obj.get_mapping_handle().handle;
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  ::fchmod(fd, 0600);  // the mode asked for, whatever the umask did to it
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_uid != ::geteuid() || (st.st_mode & 0777) != 0600 ||
      st.st_size != 0) {
    ipc::shared_memory_object::remove(name.c_str());
    throw creation_failure{
        EACCES, "shared-memory object " + name + " is not a new, private object of this user"};
  }
  return obj;
}

// Sizes and reserves every page now: a full /dev/shm must fail here with ENOSPC, not
// later with SIGBUS when a page is first touched.
void allocate(int fd, std::size_t size, const std::string& what) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    throw creation_failure{err, "cannot size " + what + " (" + std::strerror(err) + ")"};
  }
  if (const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(size)); rc != 0)
    throw creation_failure{rc, "cannot allocate " + what + " (" + std::strerror(rc) +
                                   "); use smaller shm areas or free space there"};
}

bool same_file(int a, int b) {
  struct stat sa {
  }, sb{};
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

// A descriptor as Boost.Interprocess's mapped_region takes it.
struct mappable_fd {
  int fd;
  ipc::mapping_handle_t get_mapping_handle() const noexcept {
    return ipc::ipcdetail::mapping_handle_from_file_handle(fd);
  }
};

// The sealed request file: a memfd of `size` bytes, allocated, mapped read-write into `map`,
// then sealed so that nobody (the worker least of all) can change its size or write it
// except through that mapping.
unique_fd make_request_file(std::size_t size, ipc::mapped_region& map, const std::string& where,
                            shm_charge& charge) {
  // Bounded like the response file: a memfd is limited by memory only, and allocating more
  // than /dev/shm could hold would take it from everything else on the machine. The other
  // live request files of this process count too (their memory is not in /dev/shm).
  struct statvfs vfs {};
  const std::size_t before = committed_requests.fetch_add(size);
  charge = shm_charge(committed_requests, size);
  if (::statvfs("/dev/shm", &vfs) == 0 &&
      before + size > static_cast<std::size_t>(vfs.f_bavail) * vfs.f_frsize)
    throw creation_failure{ENOSPC, "cannot allocate " + where +
                                       " (more than /dev/shm has free, less this process's "
                                       "other request areas); use smaller shm areas or free "
                                       "space there"};
  unique_fd fd(::memfd_create("crew-request", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) {
    const int err = errno;
    throw creation_failure{
        err, "cannot create the request file of " + where + " (" + std::strerror(err) + ")"};
  }
  ::fchmod(fd.get(), 0600);  // as private as the response file
  allocate(fd.get(), size, where);
  map = ipc::mapped_region(mappable_fd{fd.get()}, ipc::read_write, 0, size);
  // Our mapping stays writable (F_SEAL_FUTURE_WRITE spares mappings made before it).
  // Before Linux 5.1 there is no F_SEAL_FUTURE_WRITE: the size seals alone still keep our
  // mapping from faulting (a worker could then only spoil its own arguments).
  if (::fcntl(fd.get(), F_ADD_SEALS,
              F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0 &&
      (errno != EINVAL ||
       ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)) {
    const int err = errno;
    throw creation_failure{
        err, "cannot seal the request file of " + where + " (" + std::strerror(err) + ")"};
  }
  return fd;
}

// A read-only descriptor of `fd`'s file: a description of its own, opened through /proc
// (the same descriptor where /proc is not mounted: the seals are what protects the file).
unique_fd read_only_reopen(int fd) {
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  unique_fd ro(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (ro && same_file(ro.get(), fd)) return ro;
  return unique_fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

}  // namespace

shm_segment shm_segment::create(std::size_t request_bytes, std::size_t response_bytes,
                                boost::system::error_code& ec, std::string& why,
                                const std::function<std::string()>& next_name) {
  ec.clear();
  why.clear();
  shm_segment s;
  std::size_t request_size = 0, response_size = 0;
  if (!round_up(request_bytes, request_size) || !round_up(response_bytes, response_size) ||
      request_size > max_file - page) {
    ec.assign(EFBIG, boost::system::system_category());
    why = "shared-memory areas of " + std::to_string(request_bytes) + " and " +
          std::to_string(response_bytes) + " bytes are too large";
    return s;
  }
  s.layout_ = {page, request_size, 0, response_size};
  const std::size_t request_file = page + request_size;
  const std::string where =
      "shared memory of " + std::to_string(request_file + response_size) + " bytes in /dev/shm";
  std::string name;
  std::string linked;  // a name of ours that still exists in /dev/shm
  try {
    s.response_ = create_exclusive(next_name, name);
    s.names_.push_back(name);
    ipc::shared_memory_object::remove(name.c_str());  // unlinked: a crash can leave nothing
    allocate(s.response_fd(), response_size, where);
    s.request_ = make_request_file(request_file, s.request_map_, where, s.charge_);
    s.request_read_only_ = read_only_reopen(s.request_.get());
    if (!s.request_read_only_) {
      const int err = errno;
      throw creation_failure{
          err, "cannot open the request file of " + where + " (" + std::strerror(err) + ")"};
    }
    protocol::write_shm_header(static_cast<std::byte*>(s.request_map_.get_address()), s.layout_);
  } catch (const creation_failure& f) {
    ec.assign(f.err, boost::system::system_category());
    why = f.why;
    if (!linked.empty()) ipc::shared_memory_object::remove(linked.c_str());
    return shm_segment();
  } catch (const ipc::interprocess_exception& e) {
    ec.assign(e.get_native_error() ? e.get_native_error() : EIO, boost::system::system_category());
    why = "cannot create " + where + ": " + e.what();
    if (!linked.empty()) ipc::shared_memory_object::remove(linked.c_str());
    return shm_segment();
  } catch (const std::exception& e) {
    ec.assign(EIO, boost::system::system_category());
    why = "cannot create " + where + ": " + e.what();
    if (!linked.empty()) ipc::shared_memory_object::remove(linked.c_str());
    return shm_segment();
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
