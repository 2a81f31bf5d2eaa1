// crew-hostile-worker: see hostile.hpp. The process-level modes and the main().
//
// Modes:
//   serve               crew::serve with the demo jobs and the attack jobs of hostile_jobs
//                       (hostile.hpp): probe, forge, shrink_request, spew, escape.
//   exit-unread         says hello (the demo jobs), waits until a task arrives, exits without
//                       reading it.
//   hello-exit          says hello, exits at once (while the pool is idle).
//   (hostile_frames.cpp) the frame-level modes.
#include "demo_jobs.hpp"
#include "hostile.hpp"

#include <crew/codec.hpp>
#include <crew/registry.hpp>
#include <crew/worker_runtime.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ranges>
#include <sstream>
#include <string>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

namespace hostile {

bool write_all(std::span<const std::byte> bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(4, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

bool write_frame(crew::protocol::frame_type type, std::uint64_t id,
                 std::span<const std::byte> payload, std::uint16_t flags) {
  std::vector<std::byte> out;
  crew::protocol::append_frame(out, type, id, payload, flags);
  return write_all(out);
}

bool say_hello(const std::vector<std::pair<std::string, std::string>>& jobs, std::uint16_t flags) {
  crew::protocol::hello h;
  h.pid = static_cast<std::uint32_t>(::getpid());
  for (const auto& [name, signature] : jobs)
    h.jobs.push_back({name, signature});
  return write_frame(crew::protocol::frame_type::hello, 0, crew::protocol::encode_hello(h), flags);
}

std::optional<crew::protocol::frame_header> read_frame(std::vector<std::byte>& payload) {
  auto read_exact = [](std::byte* p, std::size_t n) {
    for (std::size_t off = 0; off < n;) {
      const ssize_t r = ::read(3, p + off, n - off);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      off += static_cast<std::size_t>(r);
    }
    return true;
  };
  std::byte head[crew::protocol::header_size];
  if (!read_exact(head, sizeof head)) return std::nullopt;
  crew::protocol::frame_header h;
  if (crew::protocol::parse_header(head, crew::protocol::default_max_payload, h))
    return std::nullopt;
  payload.resize(h.length);
  if (!read_exact(payload.data(), payload.size())) return std::nullopt;
  return h;
}

}  // namespace hostile

namespace {

// The demo jobs' names and signatures, as crew-worker announces them.
std::vector<std::pair<std::string, std::string>> demo_jobs() {
  crew::registry r;
  crew::demo::register_jobs(r);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& j : r.jobs())
    out.emplace_back(j.name, j.signature);
  return out;
}

std::string errno_text(bool ok) {
  return ok ? "ok" : std::string("refused (") + std::strerror(errno) + ")";
}

// The other processes this one can see in /proc.
std::vector<int> visible_pids() {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int pid = std::atoi(name.c_str());
    if (pid != ::getpid()) out.push_back(pid);
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Other crew-hostile-worker processes in /proc (siblings in the same pool).
std::vector<int> siblings() {
  std::vector<int> out;
  for (int pid : visible_pids()) {
    // By name (what comm holds of it), not by command line: bubblewrap's command line
    // names the worker too.
    const std::string comm = read_file("/proc/" + std::to_string(pid) + "/comm");
    if (comm.rfind("crew-hostile-wo", 0) == 0) out.push_back(pid);
  }
  return out;
}

// The target pid a test names in $HOSTILE_TARGET_PID (the coordinator), or 0.
int target_pid() {
  const char* t = std::getenv("HOSTILE_TARGET_PID");
  return t ? std::atoi(t) : 0;
}

// One line per attack: `name: outcome`.
std::string probe() {
  std::string r;
  auto line = [&](const std::string& k, const std::string& v) { r += k + ": " + v + "\n"; };
  line("pid", std::to_string(::getpid()));
  line("visible processes", std::to_string(visible_pids().size()));
  line("siblings", std::to_string(siblings().size()));
  if (const int t = target_pid(); t > 0) {
    const std::string base = "/proc/" + std::to_string(t);
    line("signal coordinator", errno_text(::kill(t, 0) == 0));
    const int env = ::open((base + "/environ").c_str(), O_RDONLY | O_CLOEXEC);
    std::string content;
    if (env >= 0) {
      char buf[4096];
      const ssize_t n = ::read(env, buf, sizeof buf);
      ::close(env);
      if (n > 0) content.assign(buf, static_cast<std::size_t>(n));
    }
    line("coordinator environ", env >= 0 && !content.empty() ? "read" : errno_text(false));
    const int fds = ::open((base + "/fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    line("coordinator fds", errno_text(fds >= 0));
    if (fds >= 0) ::close(fds);
  }
  const char* secret = std::getenv("HOSTILE_SECRET");
  line("secret in environment", secret ? secret : "absent");
  const int tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  line("controlling terminal", errno_text(tty >= 0));
  if (tty >= 0) ::close(tty);
  const std::string status = read_file("/proc/self/status");
  const auto nnp = status.find("NoNewPrivs:");
  line("no_new_privs", nnp == std::string::npos
                           ? "unknown"
                           : status.substr(nnp + 11, status.find('\n', nnp) - nnp - 11));
  line("dumpable", std::to_string(::prctl(PR_GET_DUMPABLE)));
  if (const char* path = std::getenv("HOSTILE_WRITE_TRY")) {
    for (std::string_view p :
         std::string_view(path) | std::views::split(':') |
             std::views::transform([](auto s) { return std::string_view(s.begin(), s.end()); })) {
      const std::string file = std::string(p) + "/hostile-probe";
      const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      line("write " + std::string(p), errno_text(fd >= 0));
      if (fd >= 0) {
        ::close(fd);
        ::unlink(file.c_str());
      }
    }
  }
  if (const char* path = std::getenv("HOSTILE_READ_TRY")) {
    for (std::string_view p :
         std::string_view(path) | std::views::split(':') |
             std::views::transform([](auto s) { return std::string_view(s.begin(), s.end()); })) {
      const int fd = ::open(std::string(p).c_str(), O_RDONLY | O_CLOEXEC);
      line("read " + std::string(p), errno_text(fd >= 0));
      if (fd >= 0) ::close(fd);
    }
  }
  {
    std::size_t n = 0;
    std::error_code ec;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/run", ec))
      ++n;
    line("entries in /run", std::to_string(n));
  }
  if (const char* port = std::getenv("HOSTILE_CONNECT_PORT")) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::atoi(port)));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = s >= 0 && ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    line("connect 127.0.0.1:" + std::string(port), errno_text(ok));
    if (s >= 0) ::close(s);
  }
  return r;
}

// The forging attack: siblings found, and how many of them could be stopped and had their
// reply channel opened for writing (each restarted at once: nothing is forged here, the
// count is what an attacker could reach).
int forge(int) {
  int reachable = 0;
  for (int pid : siblings()) {
    if (::kill(pid, SIGSTOP) != 0) continue;
    const std::string fd4 = "/proc/" + std::to_string(pid) + "/fd/4";
    const int fd = ::open(fd4.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      ++reachable;
      ::close(fd);
    }
    ::kill(pid, SIGCONT);
  }
  return reachable;
}

int kept_request_fd = -1;

// Finding 2: reopen the request file read-write through /proc and shrink it. Returns how
// many of the attempts were refused (truncate, grow, write, writable shared mapping).
int shrink_request(int) {
  if (kept_request_fd < 0) return -1;
  const std::string path = "/proc/self/fd/" + std::to_string(kept_request_fd);
  int refused = 0;
  const int rw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  const int fd = rw >= 0 ? rw : kept_request_fd;
  if (::ftruncate(fd, 0) != 0) ++refused;
  if (::ftruncate(fd, 1 << 30) != 0) ++refused;
  if (::pwrite(fd, "x", 1, 4096) != 1) ++refused;
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED)
    ++refused;
  else
    ::munmap(p, 4096);
  if (rw >= 0) ::close(rw);
  return refused;
}

// Finding 7: lines full of terminal escape sequences (a title change, clear screen, a
// cursor move) on stdout.
int spew(int lines) {
  for (int i = 0; i < lines; ++i)
    std::printf("\x1b]0;owned\x07\x1b[2J\x1b[H line %d \x1b[31mred\x1b[0m\r\n", i);
  std::fflush(stdout);
  return lines;
}

// Finding 1: a child that escapes the process-group kill.
int escape(int seconds) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  const pid_t child = ::fork();
  if (child == 0) {
    ::setsid();
    ::prctl(PR_SET_NAME, "crew-escapee");
    [[maybe_unused]] auto w = ::write(ready[1], "x", 1);  // out of the group now
    for (int fd = 0; fd < 1024; ++fd)
      ::close(fd);  // holds none of the worker's pipes: only the kill can end it
    ::sleep(static_cast<unsigned>(seconds));
    ::_exit(0);
  }
  ::close(ready[1]);
  char c;
  const bool escaped = child > 0 && ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  return escaped ? 0 : -1;
}

int serve_mode() {
  if (std::getenv("CREW_SHM_REQUEST_FD")) kept_request_fd = ::dup(5);
  crew::registry jobs;
  crew::demo::register_jobs(jobs);
  jobs.add(hostile::jobs::probe, [](int) { return probe(); });
  jobs.add(hostile::jobs::forge, forge);
  jobs.add(hostile::jobs::shrink_request, shrink_request);
  jobs.add(hostile::jobs::spew, spew);
  jobs.add(hostile::jobs::escape, escape);
  return crew::serve(jobs);
}

// Waits until fd 3 has bytes (a task), or end of input.
void wait_for_task() {
  pollfd p{3, POLLIN, 0};
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "serve";
  std::span<char*> rest(argv + std::min(argc, 2), argv + argc);
  if (mode == "serve") return serve_mode();
  if (mode == "exit-unread") {
    if (!hostile::say_hello(demo_jobs(), crew::protocol::flag_batch)) return 1;
    wait_for_task();
    std::fprintf(stderr, "hostile worker: a task arrived; exiting without reading it\n");
    return 0;
  }
  if (mode == "hello-exit") {
    hostile::say_hello(demo_jobs(), crew::protocol::flag_batch);
    std::fprintf(stderr, "hostile worker: said hello; exiting\n");
    return 0;
  }
  if (auto code = hostile::frame_mode(mode, rest)) return *code;
  std::fprintf(stderr, "crew-hostile-worker: unknown mode '%.*s'\n", static_cast<int>(mode.size()),
               mode.data());
  return 2;
}
