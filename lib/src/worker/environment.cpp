// The worker's environment: `$CREW_*` variables, the parent-death arrangement, the shared
// memory mapping, stdout buffering, the descriptors and process group of a worker on stdio.
// Contract in environment.hpp.
#include "environment.hpp"

#include "../connect/auth.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
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

// SIGPIPE on stdio: the write that raised it fails with EPIPE instead (take_stdio).
extern "C" void on_sigpipe(int) {
}

// A process as /proc/PID/stat describes it: enough to tell who is in our group.
struct proc_entry {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgrp = 0;
  char state = '?';
};

bool read_stat(pid_t pid, proc_entry& e) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so parse after
  // the last ')'.
  const char* after = std::strrchr(buf, ')');
  int ppid = 0, pgrp = 0;
  if (!after || std::sscanf(after + 1, " %c %d %d", &e.state, &ppid, &pgrp) != 3) return false;
  e.pid = pid;
  e.ppid = static_cast<pid_t>(ppid);
  e.pgrp = static_cast<pid_t>(pgrp);
  return true;
}

// Every process /proc shows (empty if it cannot be read).
std::vector<proc_entry> all_processes() {
  std::vector<proc_entry> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (const dirent* ent = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(ent->d_name, &end, 10);
    proc_entry e;
    if (pid > 0 && end && *end == '\0' && read_stat(static_cast<pid_t>(pid), e)) out.push_back(e);
  }
  ::closedir(d);
  return out;
}

// Whether `pid` descends from `ancestor`, following the parent links in `parent`.
bool descends(pid_t pid, pid_t ancestor, const std::unordered_map<pid_t, pid_t>& parent) {
  for (int depth = 0; depth < 4096 && pid > 1; ++depth) {
    const auto it = parent.find(pid);
    if (it == parent.end()) return false;
    pid = it->second;
    if (pid == ancestor) return true;
  }
  return false;
}

// The live processes of our group other than us (only our descendants if we do not lead it:
// the others are not ours to kill).
std::vector<pid_t> rest_of_group() {
  const pid_t me = ::getpid();
  const pid_t group = ::getpgrp();
  const auto all = all_processes();
  std::unordered_map<pid_t, pid_t> parent;
  if (group != me)
    for (const auto& e : all)
      parent[e.pid] = e.ppid;
  std::vector<pid_t> out;
  for (const auto& e : all)
    if (e.pgrp == group && e.pid != me && e.state != 'Z' && e.state != 'X' &&
        (group == me || descends(e.pid, me, parent)))
      out.push_back(e.pid);
  return out;
}

}  // namespace

bool take_stdio_setting(const worker_options& options) {
  const char* v = std::getenv("CREW_STDIO");
  const bool from_env = v && std::string_view(v) == "1";
  ::unsetenv("CREW_STDIO");
  return options.stdio ? *options.stdio : from_env;
}

std::chrono::milliseconds take_heartbeat_timeout() {
  const char* v = std::getenv("CREW_HEARTBEAT_TIMEOUT_MS");
  long long ms = 0;
  if (v) {
    char* end = nullptr;
    ms = std::strtoll(v, &end, 10);
    if (end == v || *end != '\0' || ms < 0) ms = 0;
  }
  ::unsetenv("CREW_HEARTBEAT_TIMEOUT_MS");
  return std::chrono::milliseconds(ms);
}

bool take_connect_setting(const worker_options& options, connect_settings& out,
                          std::string& error) {
  // Each value is also wiped where it lies: unsetenv alone leaves the initial environment
  // block, which /proc/PID/environ shows, as it was.
  auto take = [](const char* name) -> std::optional<std::string> {
    char* v = std::getenv(name);
    std::optional<std::string> r;
    if (v) {
      r = v;
      std::memset(v, 'x', std::strlen(v));
    }
    ::unsetenv(name);
    return r;
  };
  const auto address = take("CREW_CONNECT");
  const auto secret = take("CREW_SECRET");
  const auto secret_file = take("CREW_SECRET_FILE");
  const auto give_up = take("CREW_CONNECT_TIMEOUT_MS");
  if (options.connect)
    out.address = *options.connect;
  else if (address && !address->empty())
    out.address = *address;
  else
    return false;
  if (give_up) {
    char* end = nullptr;
    const long long ms = std::strtoll(give_up->c_str(), &end, 10);
    if (end != give_up->c_str() && *end == '\0' && ms > 0) out.give_up = std::chrono::milliseconds(ms);
  }
  const std::optional<std::string> file = options.secret_file ? options.secret_file : secret_file;
  try {
    if (options.secret)
      out.secret = *options.secret;
    else if (secret && !secret->empty())
      out.secret = *secret;
    else if (file && !file->empty())
      out.secret = auth::read_secret_file(*file);
    else
      error = "no secret to prove to the pool at " + out.address +
              ": set CREW_SECRET or CREW_SECRET_FILE (crew-worker --secret-file FILE); never on "
              "the command line";
  } catch (const std::exception& e) {
    error = e.what();
  }
  return true;
}

protocol::placement local_placement() {
  auto cut = [](std::string s) {
    if (s.size() > protocol::max_placement_name) s.resize(protocol::max_placement_name);
    return s;
  };
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  protocol::placement p;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0) p.host = cut(name);
  p.node = cut(env("SLURMD_NODENAME"));
  p.pod = cut(env("CREW_POD_NAME"));
  if (p.pod.empty() && !env("KUBERNETES_SERVICE_HOST").empty()) p.pod = cut(env("HOSTNAME"));
  return p;
}

namespace {
void catch_sigpipe() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
      current.sa_handler == SIG_DFL) {
    struct sigaction sa {};
    sa.sa_handler = on_sigpipe;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGPIPE, &sa, nullptr);
  }
}
}  // namespace

void take_connection_mode() {
  ::setpgid(0, 0);  // the job's children join our group, which kill_rest_of_group cleans up
  catch_sigpipe();
}

bool take_stdio(stdio_fds& out) {
  const int in = ::fcntl(0, F_DUPFD_CLOEXEC, 10);
  const int frames_out = in < 0 ? -1 : ::fcntl(1, F_DUPFD_CLOEXEC, 10);
  if (in < 0 || frames_out < 0) {
    if (in >= 0) ::close(in);
    std::fprintf(stderr, "crew worker: on stdio, fd 0 and fd 1 must be open (frames in and out)\n");
    return false;
  }
  // From here on nothing but the frames reaches the real fd 1: what a job prints (stdio,
  // iostreams, the programs it runs) joins the log lines on fd 2.
  if (::dup2(2, 1) < 0) {  // no fd 2: what is printed is lost rather than corrupting frames
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 1);
      ::close(null);
    }
  }
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, 0);
    ::close(null);
  }
  // The job's children join our group, which kill_rest_of_group cleans up. A session
  // leader (what sshd starts) cannot move (EPERM) but already leads its group.
  ::setpgid(0, 0);
  catch_sigpipe();
  out.frames_in = in;
  out.frames_out = frames_out;
  return true;
}

void kill_rest_of_group() noexcept {
  try {
    for (int round = 0; round < 200; ++round) {
      const auto others = rest_of_group();
      if (others.empty()) return;
      // Stopped first, all of them: none can fork a new one between our look and the kill.
      for (const pid_t pid : others)
        ::kill(pid, SIGSTOP);
      for (const pid_t pid : others)
        ::kill(pid, SIGKILL);
      const timespec pause{0, 1'000'000};  // let the kernel finish them before looking again
      ::nanosleep(&pause, nullptr);
    }
  } catch (...) {  // std::bad_alloc: nothing more we can do
  }
}

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
