// The worker's environment: `$CREW_*` variables, the parent-death arrangement, the shared
// memory mapping, stdout buffering. Contract in environment.hpp.
#include "environment.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crew::detail {
namespace {

// The parent-death signal's handler: the coordinator (the thread that started us) is gone;
// take the whole process group down, the job's children with it. Async-signal-safe.
extern "C" void on_parent_death(int) {
  ::kill(0, SIGKILL);
  ::_exit(137);
}

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) : fallback;
}

// A descriptor given in the options, else the one named in `variable`, else -1 (none).
int fd_setting(const std::optional<int>& given, const char* variable) {
  return given ? *given : static_cast<int>(env_size(variable, std::size_t(-1)));
}

void* map_file(int fd, int prot, std::size_t& size) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) return nullptr;
  size = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// The request file read-only (the coordinator's arguments, which we must not be able to
// change), the response file read-write; the header in the request file says where the
// areas are, and is checked against both sizes.
bool map_segment(int request_fd, int response_fd, worker_segment& s) {
  std::size_t request_size = 0, response_size = 0;
  void* req = map_file(request_fd, PROT_READ, request_size);
  void* resp = map_file(response_fd, PROT_READ | PROT_WRITE, response_size);
  if (!req || !resp || request_size < protocol::shm_header::size) return false;
  s.request_base = static_cast<const std::byte*>(req);
  s.response_base = static_cast<std::byte*>(resp);
  return !protocol::read_shm_header(s.request_base, request_size, response_size, s.layout);
}

}  // namespace

void arrange_parent_death() {
  const char* expected = std::getenv("CREW_COORDINATOR_PID");
  if (!expected) return;  // not started by a crew pool (e.g. a test speaking the protocol)
  struct sigaction sa {};
  sa.sa_handler = on_parent_death;
  sigemptyset(&sa.sa_mask);
  const int sig = ::sigaction(SIGHUP, &sa, nullptr) == 0 ? SIGHUP : SIGKILL;
  ::prctl(PR_SET_PDEATHSIG, sig);
  // The coordinator may have died before the call above. (Our parent need not be the
  // coordinator itself: a wrapper such as `timeout` or a shell script may sit between.)
  const auto coordinator = static_cast<pid_t>(std::strtol(expected, nullptr, 10));
  if (::getppid() != coordinator && ::kill(coordinator, 0) != 0 && errno == ESRCH)
    on_parent_death(0);
  ::unsetenv("CREW_COORDINATOR_PID");
}

void line_buffer_stdout() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
}

void flush_stdio() {
  std::cout.flush();
  std::fflush(stdout);
}

bool take_settings(const worker_options& options, worker_settings& out) {
  const int request_fd = fd_setting(options.shm_request_fd, "CREW_SHM_REQUEST_FD");
  const int response_fd = fd_setting(options.shm_response_fd, "CREW_SHM_RESPONSE_FD");
  if (request_fd >= 0 && response_fd >= 0 && !map_segment(request_fd, response_fd, out.segment)) {
    std::fprintf(stderr, "crew worker: cannot map the shared memory on fd %d and fd %d\n",
                 request_fd, response_fd);
    return false;
  }
  // Mapped: the descriptors must not reach our children, nor the variables a pool that a
  // job might start.
  if (request_fd >= 0) ::close(request_fd);
  if (response_fd >= 0) ::close(response_fd);
  ::unsetenv("CREW_SHM_REQUEST_FD");
  ::unsetenv("CREW_SHM_RESPONSE_FD");
  // The pool says its frame limit in CREW_MAX_PAYLOAD: both sides then agree on it.
  out.max_payload = options.max_payload
                        ? *options.max_payload
                        : env_size("CREW_MAX_PAYLOAD", protocol::default_max_payload);
  ::unsetenv("CREW_MAX_PAYLOAD");
  out.inline_max =
      options.shm_inline_max ? *options.shm_inline_max : env_size("CREW_SHM_INLINE", 0);
  ::unsetenv("CREW_SHM_INLINE");
  return true;
}

}  // namespace crew::detail
