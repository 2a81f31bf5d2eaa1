// crew-bench: issue 5's benchmark in one command. crew's process pools (pipe and shm), its
// thread_pool and inline_runner, next to Python's pools (peers.py, run as a child) and the raw
// physical limits of this machine (baselines.hpp): trivial-task throughput, one-at-a-time
// latency, large payloads, pool start-up, scaling to a million tasks, the notebook's CPU
// function, and map over a million ints; the crew CLI's `crew run` next to
// process_pool::map (issue 13); and, given a cluster, workers through ssh and srun next to a
// raw round trip through the same launcher (issue 15); a worker that connects back over TCP
// on loopback next to a raw TCP echo (issue 16). Ends with the issues' targets as PASS/FAIL
// ratios.
//
//   crew-bench [--quick] [--json] [--skip-python] [--sections a,b,...] [--svg FILE]
//              [--remote-env FILE]
//
// Sections: trivial, latency, payload, startup, scaling, longcomp, map, cli, connect (the
// default set), and remote: one worker through each launcher of a cluster (ssh, srun in its
// allocation, ssh with a ControlMaster) — one task at a time vs the same bytes echoed by `cat`
// through the launcher, pipelined tasks vs pipelined echoes, start-up to the first result vs the
// launcher running `true`, in interleaved rounds. It runs when a cluster is given: --remote-env
// FILE or $CREW_REMOTE_ENV, the env file `tests/remote/cluster.sh start DIR` writes (DIR/env);
// without one it is skipped with a note, and `--sections remote` is an error.
// connect: a pool listening on 127.0.0.1 whose one worker connects back (launch_once env)
// next to a raw TCP connection on 127.0.0.1 to an echo process (this program started as
// `crew-bench --tcp-echo ADDRESS BYTES MODE`), TCP_NODELAY on both: one task at a time vs a
// ping-pong of an identity frame's bytes, pipelined tasks vs pipelined echoes, in
// interleaved rounds; and, to read the gap, echoes writing once per message and echoes that
// read their socket through a relay thread and a pipe, as the connected worker does.
// --quick runs small counts (a smoke test: results are checked, timings are not).
// --json prints one JSON document on stdout; progress always goes to stderr.
// peers.py is found through $CREW_PEERS, next to this program, or in the source tree.
#include "baselines.hpp"
#include "bench_common.hpp"
#include "demo_jobs.hpp"

#include <crew/inline_runner.hpp>
#include <crew/process_pool.hpp>
#include <crew/registry.hpp>
#include <crew/thread_pool.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <boost/version.hpp>

#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace {

namespace json = boost::json;
namespace raw = crew::bench::raw;
namespace fs = std::filesystem;
using namespace crew::bench;
using crew::demo::identity;
using clock_type = std::chrono::steady_clock;

/// The notebook's long_comp(i) for every i in 0..3, as CPython computes it.
constexpr double long_comp_expected = 2236.5678097446853;
/// Bytes of one identity task frame on the wire (20-byte header, job name, signature, the int
/// argument): the message size of the raw ping-pong that crew's latency is compared with.
constexpr std::size_t frame_bytes = 48;
/// Outstanding tasks at most when many are in flight.
constexpr std::size_t window = 4096;
// Tasks sent ahead to each worker in the throughput, scaling and map runs.
constexpr std::size_t pipeline_depth = 64;
// Workers of the map runs, and of crew run next to them (cli).
constexpr std::size_t map_workers = 2;

const std::vector<std::string> all_sections = {
    "trivial", "latency", "payload", "startup", "scaling", "longcomp", "map", "cli", "connect"};
// Sections run only when asked for, or when what they need is given: remote (a cluster).
const std::vector<std::string> extra_sections = {"remote"};

/// Bytes of an identity task frame on the wire as the pool sends it now: the 20-byte header,
/// the u32 job index and the i32 argument (docs/protocol.md §5). The message size of the raw
/// round trips through a launcher (section remote) and over TCP (section connect).
constexpr std::size_t identity_frame_bytes = 20 + 4 + 4;

/// The cluster tests/remote/cluster.sh started: the KEY=value lines of its env file.
struct remote_cluster {
  std::string file;
  std::map<std::string, std::string> env;
  std::string get(const std::string& key) const {
    const auto it = env.find(key);
    return it == env.end() ? std::string() : it->second;
  }
};

struct options {
  bool quick = false, as_json = false, skip_python = false;
  std::set<std::string> sections{all_sections.begin(), all_sections.end()};
  std::string svg;
  std::optional<remote_cluster> remote;  // --remote-env FILE or $CREW_REMOTE_ENV
  std::string remote_note;               // why the remote section did not run
  bool has(const std::string& s) const { return sections.count(s) != 0; }
};

/// Task counts and repetitions of a run.
struct counts {
  std::size_t trivial_many, trivial_one, thread_one, latency_samples, pipelined_messages, map_ints,
      startup_reps, spawn_reps;
  // cli: rounds of crew run and map interleaved (over map_ints each), and the tasks of the one
  // big crew run whose peak RSS is compared with theirs.
  std::size_t cli_rounds, cli_big;
  // remote: interleaved rounds (crew, raw, crew, ...), round trips per round one at a time,
  // and tasks (and raw messages) per round pipelined: grown from remote_pipelined_min until
  // crew takes about remote_pipelined_s, remote_pipelined_max at most.
  std::size_t remote_rounds, remote_samples, remote_pipelined_min, remote_pipelined_max;
  double remote_pipelined_s;
  // connect: interleaved rounds (crew, raw, crew, ...), round trips per round one at a time,
  // and tasks (and raw messages) per round pipelined.
  std::size_t connect_rounds, connect_samples, connect_pipelined;
  std::vector<std::size_t> scaling;
  config payload;
};

counts counts_for(bool quick) {
  if (quick)
    return {.trivial_many = 20'000,
            .trivial_one = 2'000,
            .thread_one = 2'000,
            .latency_samples = 1'000,
            .pipelined_messages = 20'000,
            .map_ints = 50'000,
            .startup_reps = 3,
            .spawn_reps = 5,
            .cli_rounds = 2,
            .cli_big = 1'000'000,
            .remote_rounds = 3,
            .remote_samples = 50,
            .remote_pipelined_min = 200,
            .remote_pipelined_max = 2'000,
            .remote_pipelined_s = 0.02,
            .connect_rounds = 3,
            .connect_samples = 200,
            .connect_pipelined = 5'000,
            .scaling = {1'000, 10'000, 100'000},
            .payload = {2, 0.02}};
  return {.trivial_many = 100'000,
          .trivial_one = 20'000,
          .thread_one = 20'000,
          .latency_samples = 10'000,
          .pipelined_messages = 500'000,
          .map_ints = 1'000'000,
          .startup_reps = 10,
          .spawn_reps = 20,
          .cli_rounds = 5,
          .cli_big = 10'000'000,
          .remote_rounds = 7,
          .remote_samples = 2'000,
          .remote_pipelined_min = 2'000,
          .remote_pipelined_max = 500'000,
          .remote_pipelined_s = 0.3,
          .connect_rounds = 7,
          .connect_samples = 5'000,
          .connect_pipelined = 100'000,
          .scaling = {1'000, 10'000, 100'000, 1'000'000},
          .payload = {5, 0.3}};
}

double since_start() {
  static const double t0 = now();
  return now() - t0;
}

void progress(const std::string& what) {
  std::fprintf(stderr, "[%6.1f s] crew-bench: %s\n", since_start(), what.c_str());
  std::fflush(stderr);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("wrong result: " + what);
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Nearest-rank percentile (as peers.py).
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::ceil(p / 100 * static_cast<double>(v.size()))));
  return v[rank - 1];
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string rate_name(double per_s) {
  if (per_s >= 1e6) return fmt("%.2f M/s", per_s / 1e6);
  if (per_s >= 1e3) return fmt("%.1f k/s", per_s / 1e3);
  return fmt("%.1f /s", per_s);
}

std::size_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

std::size_t peak_rss_bytes() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::size_t>(ru.ru_maxrss) * 1024;
}

std::string mib(std::size_t bytes) {
  return fmt("%.1f MiB", static_cast<double>(bytes) / MiB);
}

// --- machine -----------------------------------------------------------------------------

json::object machine_info(const json::value* peers) {
  utsname u{};
  ::uname(&u);
  json::object m;
  m["cpu"] = cpu_model();
  m["cores"] = cpu_count();
  m["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.machine;
  m["compiler"] =
#if defined(__clang__)
      "clang " __clang_version__;
#elif defined(__GNUC__)
      "g++ " __VERSION__;
#else
      "unknown";
#endif
  m["boost"] = std::to_string(BOOST_VERSION / 100000) + "." +
               std::to_string(BOOST_VERSION / 100 % 1000) + "." +
               std::to_string(BOOST_VERSION % 100);
  m["loadavg"] = loadavg();
  if (peers && peers->is_object() && peers->as_object().contains("python"))
    m["python"] = peers->as_object().at("python");
  else
    m["python"] = nullptr;
  return m;
}

// --- Python peers ----------------------------------------------------------------------------

std::optional<std::string> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return std::nullopt;
  std::stringstream ss(path);
  for (std::string dir; std::getline(ss, dir, ':');) {
    if (dir.empty()) dir = ".";
    const auto p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return std::nullopt;
}

std::optional<std::string> find_peers() {
  if (const char* env = std::getenv("CREW_PEERS"); env && *env) {
    if (fs::exists(env)) return std::string(env);
    throw std::runtime_error(std::string("$CREW_PEERS names no file: ") + env);
  }
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(self.parent_path() / "peers.py"))
    return (self.parent_path() / "peers.py").string();
#ifdef CREW_PEERS_SOURCE
  if (fs::exists(CREW_PEERS_SOURCE)) return std::string(CREW_PEERS_SOURCE);
#endif
  return std::nullopt;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Runs peers.py --json and parses its document; its progress goes to our stderr.
json::value run_peers(const std::string& python, const std::string& script, bool quick) {
  const std::string cmd =
      shell_quote(python) + " " + shell_quote(script) + " --json" + (quick ? " --quick" : "");
  progress("Python peers: " + cmd);
  std::fflush(stdout);
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    out.append(buf, n);
  const int status = ::pclose(f);
  if (status != 0 || out.empty())
    throw std::runtime_error("peers.py failed (status " + std::to_string(status) + ")");
  return json::parse(out);
}

/// peers["a"]["b"]... as a number, if there.
std::optional<double> peer(const json::value* p, std::initializer_list<std::string_view> path) {
  if (!p) return std::nullopt;
  const json::value* v = p;
  for (auto key : path) {
    if (!v->is_object()) return std::nullopt;
    const auto* next = v->as_object().if_contains(key);
    if (!next) return std::nullopt;
    v = next;
  }
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nullopt;
}

// --- the crew CLI (cli) ----------------------------------------------------------------------

/// The crew CLI of this build (CMake passes the crew-cli target's file), or why there is none.
std::pair<std::optional<std::string>, std::string> find_crew_cli() {
#ifdef CREW_BENCH_CLI
  if (::access(CREW_BENCH_CLI, X_OK) == 0) return {std::string(CREW_BENCH_CLI), ""};
  return {std::nullopt, std::string("skipped: the crew CLI is not at ") + CREW_BENCH_CLI +
                            " (build the target crew-cli)"};
#else
  return {std::nullopt, "skipped: crew-bench was built without the crew CLI (no crew-cli target)"};
#endif
}

/// "10^6" for powers of ten, else the number.
std::string count_name(std::size_t n) {
  int k = 0;
  std::size_t m = n;
  while (m >= 10 && m % 10 == 0)
    m /= 10, ++k;
  return m == 1 && k > 0 ? "10^" + std::to_string(k) : std::to_string(n);
}

class unique_fd {
 public:
  explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

/// One run of a program: wall seconds from posix_spawn until wait4 returned, and the peak RSS
/// wait4 reported (ru_maxrss).
struct child_run {
  double seconds = 0;
  std::size_t peak_rss = 0;
};

// Why a helper: a process's ru_maxrss starts at the peak RSS of the memory image it replaced
// with execve (Linux's exec_mmap keeps the old image's high-water mark), and a child spawned
// from crew-bench replaces a share or a copy of crew-bench's image, tens of MiB after a map
// run. So crew-bench starts itself again (a fresh image of ~4 MiB) as `crew-bench
// --spawn-helper EXE ARGS...`, which spawns EXE and reports through fd 3 its wait status,
// ru_maxrss and seconds: the peak RSS is then the program's own (or the helper's few MiB).
constexpr std::string_view spawn_helper_flag = "--spawn-helper";
constexpr int report_fd = 3;

/// posix_spawn of argv[0] with `actions`, environment inherited; throws on failure.
pid_t spawn(const std::vector<char*>& argv, const posix_spawn_file_actions_t* actions) {
  pid_t pid = -1;
  if (const int e = ::posix_spawn(&pid, argv[0], actions, nullptr, argv.data(), environ); e != 0)
    throw_errno(std::string("posix_spawn(") + argv[0] + ")", e);
  return pid;
}

int wait_for(pid_t pid, rusage* ru) {
  int status = 0;
  while (::wait4(pid, &status, 0, ru) < 0)
    if (errno != EINTR) throw_errno("wait4", errno);
  return status;
}

/// The helper's main: argv = {crew-bench, --spawn-helper, EXE, ARGS...}.
int spawn_helper(int argc, char** argv) {
  try {
    if (argc < 3) throw std::runtime_error("--spawn-helper needs a program");
    std::vector<char*> args(argv + 2, argv + argc);
    args.push_back(nullptr);
    file_actions fa;
    fa.check(::posix_spawn_file_actions_addclose(&fa.a, report_fd));
    const double t0 = now();
    const pid_t pid = spawn(args, &fa.a);
    rusage ru{};
    const int status = wait_for(pid, &ru);
    const double s = now() - t0;
    char line[128];
    const int n = std::snprintf(line, sizeof line, "%d %ld %.9f\n", status, ru.ru_maxrss, s);
    if (::write(report_fd, line, static_cast<std::size_t>(n)) != n) throw_errno("write", errno);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "crew-bench " << spawn_helper_flag << ": " << e.what() << '\n';
    return 1;
  }
}

/// Reads `fd` to its end.
std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r > 0)
      out.append(buf, static_cast<std::size_t>(r));
    else if (r == 0)
      return out;
    else if (errno != EINTR)
      throw_errno("read", errno);
  }
}

/// Runs `exe` with `args` through the spawn helper (environment inherited, stdin from
/// /dev/null, stderr ours), its stdout to /dev/null or, given `out`, read into *out. Throws
/// unless it exits 0.
child_run run_child(const std::string& exe, const std::vector<std::string>& args,
                    std::string* out = nullptr) {
  static const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::string line = exe;
  std::vector<char*> argv{const_cast<char*>(self.c_str()),
                          const_cast<char*>(spawn_helper_flag.data()),
                          const_cast<char*>(exe.c_str())};
  for (const auto& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
    line += " " + a;
  }
  argv.push_back(nullptr);
  auto make_pipe = [](unique_fd& r, unique_fd& w) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2", errno);
    r.reset(fds[0]);
    w.reset(fds[1]);
  };
  unique_fd out_r, out_w, report_r, report_w;
  make_pipe(report_r, report_w);
  file_actions fa;
  fa.check(::posix_spawn_file_actions_addopen(&fa.a, 0, "/dev/null", O_RDONLY, 0));
  if (out) {
    make_pipe(out_r, out_w);
    fa.check(::posix_spawn_file_actions_adddup2(&fa.a, out_w.get(), 1));
  } else {
    fa.check(::posix_spawn_file_actions_addopen(&fa.a, 1, "/dev/null", O_WRONLY, 0));
  }
  fa.check(::posix_spawn_file_actions_adddup2(&fa.a, report_w.get(), report_fd));
  const pid_t pid = spawn(argv, &fa.a);
  out_w.reset();
  report_w.reset();
  std::string report;
  std::exception_ptr read_error;
  try {
    if (out) *out = read_all(out_r.get());
    report = read_all(report_r.get());
  } catch (...) {
    read_error = std::current_exception();
  }
  out_r.reset();  // a child still writing gets EPIPE rather than blocking forever
  report_r.reset();
  const int helper_status = wait_for(pid, nullptr);
  if (read_error) std::rethrow_exception(read_error);
  int status = 0;
  long maxrss_kib = 0;
  double s = 0;
  if (!WIFEXITED(helper_status) || WEXITSTATUS(helper_status) != 0 ||
      std::sscanf(report.c_str(), "%d %ld %lf", &status, &maxrss_kib, &s) != 3)
    throw std::runtime_error("the spawn helper failed running " + line);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(line + " failed: " +
                             (WIFEXITED(status)
                                  ? "exit status " + std::to_string(WEXITSTATUS(status))
                                  : "signal " + std::to_string(WTERMSIG(status))));
  return {s, static_cast<std::size_t>(maxrss_kib) * 1024};
}

/// crew run's text output of identity over 0..n-1: every "identity(i) = i" once, in any order.
void check_identity_lines(const std::string& text, std::size_t n) {
  std::vector<bool> seen(n);
  std::size_t lines = 0;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l); ++lines) {
    long long i = -1, v = -2;
    require(std::sscanf(l.c_str(), "identity(%lld) = %lld", &i, &v) == 2 && i == v && i >= 0 &&
                static_cast<std::size_t>(i) < n && !seen[static_cast<std::size_t>(i)],
            "crew run output line '" + l + "'");
    seen[static_cast<std::size_t>(i)] = true;
  }
  require(lines == n,
          "crew run wrote " + std::to_string(lines) + " lines for " + std::to_string(n) + " tasks");
}

// --- targets ---------------------------------------------------------------------------------

struct target {
  std::string name;
  std::optional<double> ratio;  // empty: not measured in this run
  double bound;
  bool at_least;  // ratio >= bound passes; else ratio <= bound passes
  std::string figures;
};

std::string verdict(const target& t) {
  if (!t.ratio) return "n/a";
  if (t.name.find("(info)") != std::string::npos) return "info";
  return (t.at_least ? *t.ratio >= t.bound : *t.ratio <= t.bound) ? "PASS" : "FAIL";
}

// --- pinning ---------------------------------------------------------------------------------

cpu_set_t original_mask() {
  static const cpu_set_t mask = [] {
    cpu_set_t m;
    CPU_ZERO(&m);
    if (::sched_getaffinity(0, sizeof m, &m) != 0)
      for (int i = 0; i < CPU_SETSIZE; ++i)
        CPU_SET(i, &m);
    return m;
  }();
  return mask;
}

void set_affinity(pid_t pid, std::optional<int> cpu) {
  cpu_set_t set = original_mask();
  if (cpu) {
    CPU_ZERO(&set);
    CPU_SET(*cpu, &set);
  }
  if (::sched_setaffinity(pid, sizeof set, &set) != 0)
    throw std::runtime_error(std::string("sched_setaffinity: ") + std::strerror(errno));
}

/// Pins the io thread (the coordinator's: the pool's strand and completions run there) to
/// `cpu`, or gives it back the original mask.
void pin_io_thread(io_thread& io, std::optional<int> cpu) {
  std::promise<void> done;
  auto f = done.get_future();
  boost::asio::post(io.context(), [&] {
    try {
      set_affinity(0, cpu);
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  f.get();
}

// --- task drivers ----------------------------------------------------------------------------

/// One identity task at a time, each submitted from the previous one's completion handler
/// (on the pool's executor: no other thread wakes up between tasks). Round-trip seconds.
template <class Pool>
struct chain : std::enable_shared_from_this<chain<Pool>> {
  chain(Pool& p, std::size_t count) : pool(p), n(count) { seconds.reserve(count); }
  Pool& pool;
  std::size_t n;
  std::vector<double> seconds;
  std::promise<void> done;
  clock_type::time_point t0, first, last;
  int i = 0;

  void next() {
    t0 = clock_type::now();
    pool.async_submit(identity(i), [self = this->shared_from_this()](std::exception_ptr ep, int v) {
      const auto t1 = clock_type::now();
      if (ep) return self->done.set_exception(ep);
      if (v != self->i)
        return self->done.set_exception(
            std::make_exception_ptr(std::runtime_error("wrong result: identity in chain")));
      self->seconds.push_back(std::chrono::duration<double>(t1 - self->t0).count());
      if (static_cast<std::size_t>(++self->i) < self->n) return self->next();
      self->last = t1;
      self->done.set_value();
    });
  }
  void start() {
    first = clock_type::now();
    next();
  }
  double total() const { return std::chrono::duration<double>(last - first).count(); }
};

/// `n` identity tasks, at most `window` outstanding: each completion (on the pool's executor)
/// submits the next. Returns seconds from the first submission to the last completion.
struct windowed : std::enable_shared_from_this<windowed> {
  windowed(crew::process_pool& p, std::size_t count) : pool(p), n(count) {}
  crew::process_pool& pool;
  std::size_t n, submitted = 0, completed = 0;
  bool failed = false;
  std::promise<void> done;

  void submit_one() {
    const int v = static_cast<int>(submitted++);
    pool.async_submit(identity(v), [self = shared_from_this(), v](std::exception_ptr ep, int r) {
      if (self->failed) return;
      if (ep || r != v) {
        self->failed = true;
        return self->done.set_exception(
            ep ? ep : std::make_exception_ptr(std::runtime_error("wrong result: identity")));
      }
      if (self->submitted < self->n) self->submit_one();
      if (++self->completed == self->n) self->done.set_value();
    });
  }
};

double run_windowed(io_thread& io, crew::process_pool& pool, std::size_t n) {
  auto w = std::make_shared<windowed>(pool, n);
  auto f = w->done.get_future();
  const double t0 = now();
  boost::asio::post(io.context(), [w] {
    for (std::size_t k = 0; k < std::min(window, w->n); ++k)
      w->submit_one();
  });
  f.get();
  return now() - t0;
}

/// A chain of `n` identity tasks on `pool`, started on the io thread.
std::shared_ptr<chain<crew::process_pool>> run_chain(io_thread& io, crew::process_pool& pool,
                                                     std::size_t n) {
  auto c = std::make_shared<chain<crew::process_pool>>(pool, n);
  auto f = c->done.get_future();
  boost::asio::post(io.context(), [c] { c->start(); });
  f.get();
  return c;
}

std::unique_ptr<crew::process_pool> quiet_pool(io_thread& io, std::size_t workers,
                                               crew::transport tr = crew::transport::pipe) {
  crew::process_pool_options o;
  o.workers = workers;
  o.transport = tr;
  o.on_output = [](const crew::output_line&) {};  // long_comp's started/finished lines
  auto p = std::make_unique<crew::process_pool>(io.context().get_executor(), std::move(o));
  for (std::size_t i = 0; i < 2 * workers; ++i)
    p->submit(identity(static_cast<int>(i))).get();
  return p;
}

// --- remote workers (section remote) --------------------------------------------------------

/// The settings of `file` (KEY=value lines, as cluster.sh writes them); throws when it cannot
/// be read or lacks what the section needs.
remote_cluster read_remote_env(const std::string& file) {
  std::ifstream in(file);
  if (!in)
    throw std::runtime_error("cannot read the cluster's env file " + file +
                             " (start one with tests/remote/cluster.sh start DIR: DIR/env)");
  remote_cluster c{file, {}};
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos && !line.empty() && line[0] != '#')
      c.env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  for (const char* key : {"SLURM_CONF", "CREW_SLURM_JOB", "CREW_SSH_CONFIG", "CREW_SSH_HOSTS"})
    if (c.get(key).empty()) throw std::runtime_error(std::string(key) + " missing from " + file);
  return c;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words)
    out += (out.empty() ? "" : " ") + w;
  return out;
}

/// A launcher of the cluster: its short name and its command (the prefix the pool runs).
struct remote_kind {
  std::string name, about;
  std::vector<std::string> command;
};

/// ssh to the first ssh host, srun on the first node inside the allocation, and ssh to the
/// ControlMaster host when the cluster has one.
std::vector<remote_kind> remote_kinds(const remote_cluster& c) {
  const auto config = c.get("CREW_SSH_CONFIG");
  const auto hosts = split(c.get("CREW_SSH_HOSTS"), ',');
  const auto nodes = split(c.get("CREW_SLURM_NODES"), ',');
  if (hosts.empty()) throw std::runtime_error("CREW_SSH_HOSTS names no host in " + c.file);
  std::vector<remote_kind> out{
      {"ssh", "a new ssh connection per worker", {"ssh", "-T", "-F", config, hosts[0]}},
      {"srun",
       "a job step inside the allocation",
       {"srun", "-n1", "-u", "--jobid=" + c.get("CREW_SLURM_JOB"), "--overlap", "-w",
        nodes.empty() ? std::string("n1") : nodes[0]}}};
  if (const auto fast = c.get("CREW_SSH_FAST_HOST"); !fast.empty())
    out.push_back({"ssh+CM",
                   "ssh sharing one connection (ControlMaster)",
                   {"ssh", "-T", "-F", config, fast}});
  return out;
}

std::vector<std::string> plus(std::vector<std::string> words, const std::string& last) {
  words.push_back(last);
  return words;
}

/// A pool of one worker through `command`; warmed up with two tasks unless `cold`.
std::unique_ptr<crew::process_pool> remote_pool(io_thread& io,
                                                const std::vector<std::string>& command,
                                                std::size_t depth, bool cold = false) {
  crew::process_pool_options o;
  o.workers = 1;
  o.launchers = {crew::launcher{command, "", crew::launcher::passing::automatic}};
  o.pipeline_depth = depth;
  o.on_output = [](const crew::output_line& l) { std::cerr << "[remote] " << l.text << '\n'; };
  auto p = std::make_unique<crew::process_pool>(io.context().get_executor(), std::move(o));
  if (!cold)
    for (int i = 0; i < 2; ++i)
      require(p->submit(identity(i)).get() == i, "identity on a remote worker");
  return p;
}

// --- connect-back (section connect) ----------------------------------------------------------

/// How this program is started as the raw TCP echo of section connect:
/// `crew-bench --tcp-echo 127.0.0.1:PORT BYTES batched|per-message` (raw::tcp_echo_main).
constexpr std::string_view tcp_echo_flag = "--tcp-echo";

/// The address a connect-back pool listens on, and its workers connect to.
constexpr const char* connect_address = "127.0.0.1";

/// A pool of one worker that connects back: it listens on 127.0.0.1 (any free port) and
/// brings its worker with launch_once {"env"} (the pool appends the worker's command line:
/// `env crew-worker`, with CREW_CONNECT and CREW_SECRET in its environment); the worker
/// connects, both prove the secret, then frames go over the TCP connection. Warmed up with
/// two tasks.
std::unique_ptr<crew::process_pool> connect_pool(io_thread& io, std::size_t depth) {
  crew::process_pool_options o;
  o.workers = 1;
  o.listen.address = connect_address;
  o.listen.port = 0;
  o.listen.launch_once = {"env"};
  o.pipeline_depth = depth;
  o.on_output = [](const crew::output_line& l) { std::cerr << "[connect] " << l.text << '\n'; };
  auto p = std::make_unique<crew::process_pool>(io.context().get_executor(), std::move(o));
  for (int i = 0; i < 2; ++i)
    require(p->submit(identity(i)).get() == i, "identity on a connected worker");
  return p;
}

/// A crew value and the raw one per interleaved round, and their ratio.
struct paired {
  std::vector<double> crew, raw, ratio;
  void add(double c, double r) {
    crew.push_back(c);
    raw.push_back(r);
    ratio.push_back(c / r);
  }
};

json::object spread(const std::vector<double>& v) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return {{"median", median_of(v)}, {"min", *lo}, {"max", *hi}};
}

// --- SVG chart -------------------------------------------------------------------------------

std::string xml_escape(const std::string& in) {
  std::string out;
  for (char c : in) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

/// Horizontal bars on a log scale, one panel per group: {label, value, colour}.
struct bar {
  std::string label;
  double value;
  std::string colour;
};

void write_svg(const std::string& file,
               const std::vector<std::pair<std::string, std::vector<bar>>>& panels) {
  const int label_w = 420, plot_w = 520, bar_h = 16, gap = 4, title_h = 28;
  int height = 10;
  for (const auto& p : panels)
    height += title_h + static_cast<int>(p.second.size()) * (bar_h + gap) + 24;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << label_w + plot_w + 120 << "' height='"
    << height << "' font-family='sans-serif' font-size='12'>\n"
    << "<rect width='100%' height='100%' fill='white'/>\n";
  int y = 10;
  for (const auto& [title, bars] : panels) {
    o << "<text x='10' y='" << y + 18 << "' font-size='14' font-weight='bold'>" << xml_escape(title)
      << "</text>\n";
    y += title_h;
    double lo = 1e300, hi = 0;
    for (const auto& b : bars)
      if (b.value > 0) lo = std::min(lo, b.value), hi = std::max(hi, b.value);
    if (hi <= 0) continue;
    const double dlo = std::floor(std::log10(lo)), dhi = std::ceil(std::log10(hi)) + (lo == hi);
    auto x_of = [&](double v) { return label_w + (std::log10(v) - dlo) / (dhi - dlo) * plot_w; };
    const int top = y;
    for (const auto& b : bars) {
      o << "<text x='" << label_w - 6 << "' y='" << y + bar_h - 4 << "' text-anchor='end'>"
        << xml_escape(b.label) << "</text>\n";
      if (b.value > 0)
        o << "<rect x='" << label_w << "' y='" << y << "' width='" << x_of(b.value) - label_w
          << "' height='" << bar_h << "' fill='" << b.colour << "'/>\n<text x='"
          << x_of(b.value) + 4 << "' y='" << y + bar_h - 4 << "'>" << fmt("%.3g", b.value)
          << "</text>\n";
      y += bar_h + gap;
    }
    for (double d = dlo; d <= dhi; ++d) {
      const double x = label_w + (d - dlo) / (dhi - dlo) * plot_w;
      o << "<line x1='" << x << "' y1='" << top - 2 << "' x2='" << x << "' y2='" << y
        << "' stroke='#bbb' stroke-dasharray='2,2'/>\n<text x='" << x << "' y='" << y + 14
        << "' text-anchor='middle' fill='#555'>1e" << static_cast<int>(d) << "</text>\n";
    }
    y += 24;
  }
  o << "</svg>\n";
  std::ofstream out(file);
  out << o.str();
  if (!out) throw std::runtime_error("cannot write " + file);
}

std::string colour_of(std::string_view kind) {
  if (kind == "crew") return "#2b7bba";
  if (kind == "python") return "#e08a1e";
  return "#7a7a7a";  // raw limits
}

/// Throughput (tasks/s) and 64 MiB / 1 MiB payload bandwidth (MB/s) from the run's document.
void chart(const std::string& file, const json::object& doc) {
  std::vector<std::pair<std::string, std::vector<bar>>> panels;
  std::vector<bar> tp;
  if (const auto* rows = doc.if_contains("trivial"))
    for (const auto& r : rows->as_array()) {
      const auto& o = r.as_object();
      if (!o.contains("per_s")) continue;
      tp.push_back({std::string(o.at("name").as_string()), o.at("per_s").to_number<double>(),
                    colour_of(o.at("kind").as_string())});
    }
  if (const auto* m = doc.if_contains("map")) {
    const auto& o = m->as_object();
    tp.push_back({"crew process_pool(2).map over ints", o.at("per_s").to_number<double>(),
                  colour_of("crew")});
    if (const auto* py = o.if_contains("python"))
      tp.push_back({"Python Pool(2).map over ints, default chunksize",
                    py->as_object().at("per_s").to_number<double>(), colour_of("python")});
  }
  if (!tp.empty()) panels.emplace_back("Trivial tasks per second (log scale)", std::move(tp));
  std::vector<bar> pl;
  if (const auto* rows = doc.if_contains("payload"))
    for (const auto& r : rows->as_array()) {
      const auto& o = r.as_object();
      const auto n = o.at("size").to_number<std::size_t>();
      if (n < MiB) continue;
      const double moved = o.at("bytes_moved").to_number<double>();
      const std::string what = size_name(n) + " " + std::string(o.at("test").as_string()) + ": ";
      pl.push_back(
          {what + "memcpy", moved / o.at("memcpy_s").to_number<double>() / 1e6, colour_of("raw")});
      pl.push_back({what + "crew shm", moved / o.at("shm_median_s").to_number<double>() / 1e6,
                    colour_of("crew")});
      pl.push_back({what + "crew pipe", moved / o.at("pipe_median_s").to_number<double>() / 1e6,
                    colour_of("crew")});
      if (!o.at("python_median_s").is_null())
        pl.push_back({what + "Python Pool.apply",
                      moved / o.at("python_median_s").to_number<double>() / 1e6,
                      colour_of("python")});
    }
  if (!pl.empty())
    panels.emplace_back("Payload round trips, MB/s moved (log scale)", std::move(pl));
  write_svg(file, panels);
}

// --- the benchmark ---------------------------------------------------------------------------

class bench {
 public:
  bench(const options& o, const json::value* peers)
      : opt_(o), n_(counts_for(o.quick)), peers_(peers) {
    crew::demo::register_jobs(jobs_);
  }

  json::object doc;
  std::vector<target> targets;

  void run() {
    io_thread io;
    if (opt_.has("trivial")) trivial(io);
    if (opt_.has("latency")) latency(io);
    if (opt_.has("scaling")) scaling(io);  // before the big allocations: peak RSS stays its own
    if (opt_.has("map")) map_million(io);
    if (opt_.has("cli")) cli(io);
    if (opt_.has("payload")) payload(io);
    if (opt_.has("startup")) startup(io);
    if (opt_.has("longcomp")) longcomp(io);
    if (opt_.has("connect")) connect(io);
    if (opt_.has("remote"))
      remote(io);
    else if (!opt_.remote_note.empty()) {
      say("\n7. Remote workers: %s\n", opt_.remote_note.c_str());
      doc["remote"] = {{"skipped", opt_.remote_note}};
    }
    evaluate();
  }

  void print_targets() const {
    say("\nTargets (issue 5; crew run: issue 13; connect-back: issue 16)\n%-64s %9s %7s %-5s %s\n",
        "target", "ratio", "bound", "", "figures");
    for (const auto& t : targets)
      say("%-64s %9s %2s%5.2g %-5s %s\n", t.name.c_str(),
          t.ratio ? fmt("%.3g", *t.ratio).c_str() : "-", t.at_least ? ">=" : "<=", t.bound,
          verdict(t).c_str(), t.figures.c_str());
  }

 private:
  template <class... A>
  void say(const char* f, A... a) const {
    if (opt_.as_json) return;
    std::printf(f, a...);
    std::fflush(stdout);
  }

  // 1. Throughput of trivial tasks.
  void trivial(io_thread& io) {
    json::array rows;
    say("\n1. Trivial tasks (identity, returns its int), 2 workers / threads\n%-52s %9s %9s %11s "
        "%10s\n",
        "runner", "tasks", "seconds", "tasks/s", "per task");
    auto row = [&](const std::string& name, double tasks, double seconds, const char* kind) {
      const double per_s = tasks / seconds;
      rows.push_back({{"name", name},
                      {"kind", kind},
                      {"tasks", tasks},
                      {"seconds", seconds},
                      {"per_s", per_s}});
      say("%-52s %9.0f %9.3f %11s %10s\n", name.c_str(), tasks, seconds, rate_name(per_s).c_str(),
          time_name(seconds / tasks).c_str());
      return per_s;
    };
    for (auto tr : {crew::transport::pipe, crew::transport::shm}) {
      const std::string t = tr == crew::transport::pipe ? "pipe" : "shm";
      progress("trivial: process_pool " + t);
      auto pool = make_pool(io, tr, {}, 2);
      auto c = run_chain(io, *pool, n_.trivial_one);
      row("crew process_pool " + t + ", one at a time", static_cast<double>(n_.trivial_one),
          c->total(), "crew");
      const double s = run_windowed(io, *pool, n_.trivial_many);
      row("crew process_pool " + t + ", many in flight (window 4096)",
          static_cast<double>(n_.trivial_many), s, "crew");
      close_pool(pool);
      if (tr == crew::transport::pipe) {  // tasks sent ahead to each worker
        auto piped = make_pool(io, tr, {}, 2, pipeline_depth);
        const double sp = run_windowed(io, *piped, n_.trivial_many);
        crew_many_per_s_ = row("crew process_pool pipe, many in flight, pipeline_depth " +
                                   std::to_string(pipeline_depth),
                               static_cast<double>(n_.trivial_many), sp, "crew");
        close_pool(piped);
      }
    }
    {
      progress("trivial: thread_pool(2)");
      crew::thread_pool tp(jobs_, 2);
      std::vector<double> one;
      one.reserve(n_.thread_one);
      const double t0 = now();
      for (std::size_t i = 0; i < n_.thread_one; ++i) {
        const double a = now();
        const int v = tp.submit(identity(static_cast<int>(i))).get();
        one.push_back(now() - a);
        require(v == static_cast<int>(i), "thread_pool identity");
      }
      row("crew thread_pool(2), one at a time (submit+future)", static_cast<double>(n_.thread_one),
          now() - t0, "crew");
      thread_one_us_ = median_of(one) * 1e6;
      // The same round trip without use_future's hop through Asio's system executor: the
      // handler runs on the pool's thread and fulfils a promise the main thread waits on.
      std::vector<double> direct;
      direct.reserve(n_.thread_one);
      const double t3 = now();
      for (std::size_t i = 0; i < n_.thread_one; ++i) {
        const double a = now();
        std::promise<int> p;
        auto f = p.get_future();
        tp.async_submit(identity(static_cast<int>(i)), [&p](std::exception_ptr ep, int v) {
          if (ep)
            p.set_exception(ep);
          else
            p.set_value(v);
        });
        const int v = f.get();
        direct.push_back(now() - a);
        require(v == static_cast<int>(i), "thread_pool identity (async_submit)");
      }
      row("crew thread_pool(2), one at a time (handler+promise)",
          static_cast<double>(n_.thread_one), now() - t3, "crew");
      thread_direct_us_ = median_of(direct) * 1e6;
      struct state {
        std::atomic<std::size_t> left;
        std::atomic<bool> wrong{false};
        std::promise<void> done;
      };
      auto st = std::make_shared<state>();
      st->left = n_.trivial_many;
      auto f = st->done.get_future();
      const double t1 = now();
      for (std::size_t i = 0; i < n_.trivial_many; ++i)
        tp.async_submit(identity(static_cast<int>(i)), [st, i](std::exception_ptr ep, int v) {
          if (ep || v != static_cast<int>(i)) st->wrong = true;
          if (--st->left == 0) st->done.set_value();
        });
      f.get();
      row("crew thread_pool(2), many in flight", static_cast<double>(n_.trivial_many), now() - t1,
          "crew");
      require(!st->wrong, "thread_pool identity, many in flight");
      tp.join();
    }
    {
      progress("trivial: inline_runner");
      boost::asio::io_context ioc;
      crew::inline_runner ir(jobs_, ioc.get_executor());
      auto c = std::make_shared<chain<crew::inline_runner>>(ir, n_.trivial_one);
      c->start();
      ioc.run();
      c->done.get_future().get();
      row("crew inline_runner, one at a time", static_cast<double>(n_.trivial_one), c->total(),
          "crew");
      ioc.restart();
      std::size_t ok = 0;
      const double t0 = now();
      for (std::size_t i = 0; i < n_.trivial_many; ++i)
        ir.async_submit(identity(static_cast<int>(i)), [&ok, i](std::exception_ptr ep, int v) {
          ok += !ep && v == static_cast<int>(i);
        });
      ioc.run();
      row("crew inline_runner, many (all submitted, then run)",
          static_cast<double>(n_.trivial_many), now() - t0, "crew");
      require(ok == n_.trivial_many, "inline_runner identity");
    }
    progress("trivial: raw baselines");
    const auto asio = raw::asio_thread_pool(2, n_.thread_one);
    asio_one_us_ = asio.round_trip_median_us;
    rows.push_back({{"name", "bare asio::thread_pool(2), post+future one at a time"},
                    {"kind", "raw"},
                    {"median_us", asio.round_trip_median_us}});
    say("%-52s %9s %9s %11s %10s\n", "raw asio::thread_pool(2), post+future one at a time", "", "",
        rate_name(1e6 / asio.round_trip_median_us).c_str(),
        time_name(asio.round_trip_median_us / 1e6).c_str());
    rows.push_back({{"name", "bare asio::thread_pool(2), many posts"},
                    {"kind", "raw"},
                    {"per_s", asio.batched_per_s}});
    say("%-52s %9s %9s %11s %10s\n", "raw asio::thread_pool(2), many posts", "", "",
        rate_name(asio.batched_per_s).c_str(), time_name(1 / asio.batched_per_s).c_str());
    pipelined(rows);
    if (peers_) {
      const std::pair<const char*, const char*> names[] = {
          {"pool_apply_async_one_at_a_time", "Python Pool.apply_async(...).get(), one at a time"},
          {"pool_apply_async_many", "Python Pool.apply_async, many in flight"},
          {"pool_map_chunksize_1", "Python Pool.map, chunksize 1"},
          {"pool_map_default_chunksize", "Python Pool.map, default chunksize"},
          {"ppe_submit_many", "Python ProcessPoolExecutor.submit, many"},
          {"tpe_submit_many", "Python ThreadPoolExecutor.submit, many"}};
      for (const auto& [key, label] : names) {
        const auto tasks = peer(peers_, {"trivial", key, "tasks"});
        const auto secs = peer(peers_, {"trivial", key, "seconds"});
        if (tasks && secs) row(label, *tasks, *secs, "python");
      }
      py_apply_async_many_ = peer(peers_, {"trivial", "pool_apply_async_many", "per_s"});
    }
    doc["trivial"] = std::move(rows);
  }

  /// The pipelined limit: 64-byte messages, 64 in flight, to an echo child.
  void pipelined(json::array& rows) {
    progress("raw pipelined pipe");
    pipelined_per_s_ = raw::pipe_pipelined_per_s(64, 64, n_.pipelined_messages);
    const double per_msg =
        raw::pipe_pipelined_per_s(64, 64, n_.pipelined_messages / 4, raw::echo_mode::per_message);
    rows.push_back({{"name", "raw pipe pipelined 64 B, 64 in flight, batched echo"},
                    {"kind", "raw"},
                    {"per_s", *pipelined_per_s_}});
    rows.push_back({{"name", "raw pipe pipelined 64 B, 64 in flight, per-message echo"},
                    {"kind", "raw"},
                    {"per_s", per_msg}});
    say("%-52s %9zu %9s %11s %10s\n", "raw pipe pipelined 64 B x64, batched echo (limit)",
        n_.pipelined_messages, "", rate_name(*pipelined_per_s_).c_str(),
        time_name(1 / *pipelined_per_s_).c_str());
    say("%-52s %9zu %9s %11s %10s\n", "raw pipe pipelined 64 B x64, per-message echo",
        n_.pipelined_messages / 4, "", rate_name(per_msg).c_str(), time_name(1 / per_msg).c_str());
  }

  // 2. Round-trip latency, one task at a time.
  void latency(io_thread& io) {
    json::array rows;
    const bool can_pin = cpu_count() >= 2;
    say("\n2. Round-trip latency, one task at a time (identity; raw ping-pong of %zu B), 1 "
        "worker\n%-52s %11s %11s %9s\n",
        frame_bytes, "path", "median", "p99", "samples");
    auto row = [&](const std::string& name, bool pinned, double med_us, double p99_us,
                   std::size_t samples) {
      rows.push_back({{"name", name},
                      {"pinned", pinned},
                      {"median_us", med_us},
                      {"p99_us", p99_us},
                      {"samples", samples}});
      say("%-52s %11s %11s %9zu\n", (name + (pinned ? ", pinned 0/1" : "")).c_str(),
          time_name(med_us * 1e-6).c_str(), time_name(p99_us * 1e-6).c_str(), samples);
    };
    for (bool pinned : {false, true}) {
      if (pinned && !can_pin) {
        say("(pinned runs skipped: fewer than 2 CPUs)\n");
        break;
      }
      for (auto tr : {crew::transport::pipe, crew::transport::shm}) {
        const std::string t = tr == crew::transport::pipe ? "pipe" : "shm";
        progress("latency: crew " + t + (pinned ? " pinned" : ""));
        auto pool = make_pool(io, tr);
        if (pinned) {
          pin_io_thread(io, 0);
          for (int pid : pool->pids())
            set_affinity(pid, 1);
        }
        run_chain(io, *pool, std::max<std::size_t>(100, n_.latency_samples / 10));  // warm-up
        auto c = run_chain(io, *pool, n_.latency_samples);
        if (pinned) pin_io_thread(io, std::nullopt);
        close_pool(pool);
        const double med = median_of(c->seconds) * 1e6, p99 = percentile(c->seconds, 99) * 1e6;
        row("crew " + t + " (next submit from handler)", pinned, med, p99, c->seconds.size());
        if (tr == crew::transport::pipe) (pinned ? crew_lat_pinned_ : crew_lat_) = med;
      }
      progress(std::string("latency: raw ping-pong") + (pinned ? " pinned" : ""));
      const auto pp = raw::pipe_pingpong(
          frame_bytes, n_.latency_samples,
          pinned ? std::optional<std::pair<int, int>>(std::pair{0, 1}) : std::nullopt);
      row("raw pipe ping-pong " + std::to_string(frame_bytes) + " B", pinned, pp.median_us,
          pp.p99_us, pp.samples);
      (pinned ? raw_lat_pinned_ : raw_lat_) = pp.median_us;
    }
    if (const auto m = peer(peers_, {"latency", "pool_apply_one_at_a_time", "median_us"})) {
      const auto p = peer(peers_, {"latency", "pool_apply_one_at_a_time", "p99_us"});
      const auto s = peer(peers_, {"latency", "pool_apply_one_at_a_time", "samples"});
      row("Python pool.apply(ident)", false, *m, p.value_or(0),
          static_cast<std::size_t>(s.value_or(0)));
    }
    if (pipelined_per_s_)
      say("%-52s %11s (pipelined limit, %s)\n", "raw pipe pipelined 64 B, 64 in flight",
          time_name(1 / *pipelined_per_s_).c_str(), rate_name(*pipelined_per_s_).c_str());
    doc["latency"] = std::move(rows);
  }

  // 5. Scaling to a million tasks: time per task and the coordinator's memory.
  void scaling(io_thread& io) {
    json::array rows;
    progress("scaling");
    say("\n5. Scaling: identity tasks through process_pool(2, pipe, pipeline_depth 64), window "
        "4096\n%-12s %10s %11s "
        "%12s %12s\n",
        "tasks", "seconds", "per task", "RSS after", "peak RSS");
    auto pool = make_pool(io, crew::transport::pipe, {}, 2, pipeline_depth);
    for (const auto n : n_.scaling) {
      const double s = run_windowed(io, *pool, n);
      const std::size_t rss = rss_bytes(), peak = peak_rss_bytes();
      rows.push_back({{"tasks", n},
                      {"seconds", s},
                      {"per_task_s", s / static_cast<double>(n)},
                      {"rss_bytes", rss},
                      {"peak_rss_bytes", peak}});
      scaling_rss_.emplace_back(n, rss);
      say("%-12zu %10.3f %11s %12s %12s\n", n, s, time_name(s / static_cast<double>(n)).c_str(),
          mib(rss).c_str(), mib(peak).c_str());
    }
    close_pool(pool);
    doc["scaling"] = std::move(rows);
  }

  // map over a million ints.
  void map_million(io_thread& io) {
    progress("map over " + std::to_string(n_.map_ints) + " ints");
    auto pool = make_pool(io, crew::transport::pipe, {}, map_workers, pipeline_depth);
    std::vector<int> in(n_.map_ints);
    for (std::size_t i = 0; i < in.size(); ++i)
      in[i] = static_cast<int>(i);
    const double t0 = now();
    const auto out = pool->map(identity, in);
    const double s = now() - t0;
    close_pool(pool);
    require(out == in, "map(identity)");
    crew_map_per_s_ = static_cast<double>(in.size()) / s;
    json::object o{{"tasks", in.size()}, {"seconds", s}, {"per_s", *crew_map_per_s_}};
    say("\nmap over %zu ints, 2 workers\n%-52s %9s %9s %11s\n", in.size(), "runner", "tasks",
        "seconds", "tasks/s");
    say("%-52s %9zu %9.3f %11s\n", "crew process_pool(2, pipe).map(identity, ints)", in.size(), s,
        rate_name(*crew_map_per_s_).c_str());
    if (const auto t = peer(peers_, {"map_million", "tasks"})) {
      const auto ps = peer(peers_, {"map_million", "seconds"});
      py_map_per_s_ = peer(peers_, {"map_million", "per_s"});
      say("%-52s %9.0f %9.3f %11s\n", "Python Pool(2).map(ident, range(n)), default chunksize", *t,
          ps.value_or(0), rate_name(py_map_per_s_.value_or(0)).c_str());
      o["python"] = {{"tasks", *t}, {"seconds", ps.value_or(0)}, {"per_s", *py_map_per_s_}};
    }
    doc["map"] = std::move(o);
  }

  /// Seconds to construct a process_pool like map_million's (no warm-up), map identity over
  /// `in` and join it: start-up included, as in a run of the crew CLI.
  double fresh_map_seconds(io_thread& io, const std::vector<int>& in) {
    const double t0 = now();
    crew::process_pool_options o;
    o.workers = map_workers;
    o.pipeline_depth = pipeline_depth;
    o.transport = crew::transport::pipe;
    o.on_output = [](const crew::output_line& l) { std::cerr << l.text << '\n'; };
    auto pool = std::make_unique<crew::process_pool>(io.context().get_executor(), std::move(o));
    const auto out = pool->map(identity, in);
    close_pool(pool);
    const double s = now() - t0;
    require(out == in, "map(identity) on a fresh pool");
    return s;
  }

  // crew run (the CLI: a program started, its results written as text) next to
  // process_pool::map over the same ints, both from start-up to exit, rounds interleaved;
  // then one big crew run, whose peak RSS should be the small runs'.
  void cli(io_thread& io) {
    const auto [exe, why] = find_crew_cli();
    if (!exe) {
      progress("cli: " + why);
      say("\ncrew run vs process_pool::map: %s\n", why.c_str());
      cli_note_ = why;
      doc["cli"] = {{"skipped", why}};
      return;
    }
    const std::size_t n = n_.map_ints, rounds = n_.cli_rounds;
    auto args = [](std::size_t tasks) {
      const std::string range = "0:" + std::to_string(tasks), w = std::to_string(map_workers);
      return std::vector<std::string>{"run", "--job",     "identity", "--range",
                                      range, "--workers", w,          "--quiet"};
    };
    auto command = [&](std::size_t tasks) {
      std::string c = "crew";
      for (const auto& a : args(tasks))
        c += " " + a;
      return c + " > /dev/null";
    };
    // The timed runs write to /dev/null: the results are checked on a small range.
    progress("cli: crew run over 1000 tasks, output checked");
    {
      std::string out;
      run_child(*exe, args(1000), &out);
      check_identity_lines(out, 1000);
    }
    std::vector<int> in(n);
    for (std::size_t i = 0; i < n; ++i)
      in[i] = static_cast<int>(i);
    say("\ncrew run vs process_pool::map: %s identity tasks, %zu workers, start-up to exit, %zu "
        "rounds interleaved\n  A: %s\n     (%s)\n  B: process_pool(%zu, pipe, pipeline_depth "
        "%zu): construct, map(identity, ints), join\n%-8s %12s %12s %8s %16s\n",
        count_name(n).c_str(), map_workers, rounds, command(n).c_str(), exe->c_str(), map_workers,
        pipeline_depth, "round", "A crew run", "B map", "A/B", "A peak RSS");
    std::vector<double> run_s, map_s, ratios;
    std::vector<std::size_t> rss;
    json::array rows;
    for (std::size_t r = 0; r < rounds; ++r) {
      const std::string of = std::to_string(r + 1) + "/" + std::to_string(rounds);
      progress("cli: round " + of + ", crew run over " + count_name(n));
      const auto a = run_child(*exe, args(n));
      progress("cli: round " + of + ", process_pool::map over " + count_name(n));
      const double b = fresh_map_seconds(io, in);
      run_s.push_back(a.seconds);
      map_s.push_back(b);
      ratios.push_back(a.seconds / b);
      rss.push_back(a.peak_rss);
      rows.push_back({{"crew_run_s", a.seconds},
                      {"map_s", b},
                      {"ratio", a.seconds / b},
                      {"crew_run_peak_rss_bytes", a.peak_rss}});
      say("%-8zu %12s %12s %8.2f %16s\n", r + 1, time_name(a.seconds).c_str(), time_name(b).c_str(),
          a.seconds / b, mib(a.peak_rss).c_str());
    }
    auto minmax = [](const std::vector<double>& v) {
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      return std::pair{*lo, *hi};
    };
    const auto [run_lo, run_hi] = minmax(run_s);
    const auto [map_lo, map_hi] = minmax(map_s);
    const auto [ratio_lo, ratio_hi] = minmax(ratios);
    const double run_med = median_of(run_s), map_med = median_of(map_s);
    std::vector<double> rss_d(rss.begin(), rss.end());
    const auto small_rss = static_cast<std::size_t>(median_of(rss_d));
    cli_ratio_ = median_of(ratios);
    say("%-8s %12s %12s %8.2f %16s\n", "median", time_name(run_med).c_str(),
        time_name(map_med).c_str(), *cli_ratio_, mib(small_rss).c_str());
    say("%-8s %12s %12s %8.2f\n%-8s %12s %12s %8.2f\n", "min", time_name(run_lo).c_str(),
        time_name(map_lo).c_str(), ratio_lo, "max", time_name(run_hi).c_str(),
        time_name(map_hi).c_str(), ratio_hi);
    say("A/B: median %.2f (min %.2f, max %.2f); tasks/s: crew run %s, map %s\n", *cli_ratio_,
        ratio_lo, ratio_hi, rate_name(static_cast<double>(n) / run_med).c_str(),
        rate_name(static_cast<double>(n) / map_med).c_str());
    cli_figures_ = time_name(run_med) + " vs " + time_name(map_med) + " (" + count_name(n) +
                   " tasks), ratio " + fmt("%.2f", ratio_lo) + "-" + fmt("%.2f", ratio_hi) +
                   " over " + std::to_string(rounds);

    progress("cli: crew run over " + count_name(n_.cli_big) + " tasks");
    const auto big = run_child(*exe, args(n_.cli_big));
    cli_rss_ratio_ = static_cast<double>(big.peak_rss) / static_cast<double>(small_rss);
    say("peak RSS of crew run (wait4): %s tasks %s (median of the rounds), %s tasks %s in %s "
        "(%.2fx)\n",
        count_name(n).c_str(), mib(small_rss).c_str(), count_name(n_.cli_big).c_str(),
        mib(big.peak_rss).c_str(), time_name(big.seconds).c_str(), *cli_rss_ratio_);
    cli_rss_figures_ = mib(big.peak_rss) + " at " + count_name(n_.cli_big) + " vs " +
                       mib(small_rss) + " at " + count_name(n);
    cli_rss_name_ = "crew run peak RSS, " + count_name(n_.cli_big) + " vs " + count_name(n) +
                    " tasks (issue 13)";

    auto spread = [](double med, double lo, double hi) {
      return json::object{{"median_s", med}, {"min_s", lo}, {"max_s", hi}};
    };
    json::object a = spread(run_med, run_lo, run_hi), b = spread(map_med, map_lo, map_hi);
    a["per_s"] = static_cast<double>(n) / run_med;
    a["command"] = command(n);
    b["per_s"] = static_cast<double>(n) / map_med;
    doc["cli"] = {{"crew", *exe},
                  {"tasks", n},
                  {"workers", map_workers},
                  {"rounds", std::move(rows)},
                  {"crew_run", std::move(a)},
                  {"map", std::move(b)},
                  {"ratio", {{"median", *cli_ratio_}, {"min", ratio_lo}, {"max", ratio_hi}}},
                  {"rss",
                   {{"tasks", n},
                    {"peak_rss_bytes", small_rss},
                    {"big_tasks", n_.cli_big},
                    {"big_peak_rss_bytes", big.peak_rss},
                    {"big_seconds", big.seconds},
                    {"big_command", command(n_.cli_big)},
                    {"ratio", *cli_rss_ratio_}}}};
  }

  // 3. Large payloads.
  void payload(io_thread& io) {
    json::array rows;
    say("\n3. Large payloads, 1 worker, one at a time: median round trip (MB/s, bytes moved: "
        "in, or in+out for echo)\n%-7s %-14s %-20s %-20s %-20s %-20s\n",
        "size", "test", "memcpy", "crew shm", "crew pipe", "Python Pool.apply");
    progress("payload: pools");
    auto shm = make_pool(io, crew::transport::shm);
    auto pipe = make_pool(io, crew::transport::pipe);
    for (const std::size_t n : {4 * KiB, 1 * MiB, 64 * MiB}) {
      progress("payload: " + size_name(n));
      const double memcpy_s =
          static_cast<double>(n) / (raw::memcpy_gb_per_s(n, opt_.quick ? 3 : 10) * 1e9);
      const auto bytes = make_payload(n);
      const std::string text(bytes.begin(), bytes.end());
      struct cell {
        const char* test;
        const char* py_key;
        std::size_t moved;
        stats s, p;
      };
      const cell cells[] = {{"in+small", "in_small_out", n, bench_count(n_.payload, *shm, bytes),
                             bench_count(n_.payload, *pipe, bytes)},
                            {"echo", "echo", 2 * n, bench_echo(n_.payload, *shm, text),
                             bench_echo(n_.payload, *pipe, text)}};
      for (const auto& c : cells) {
        const auto py = peer(peers_, {"payload", std::to_string(n), c.py_key, "median_s"});
        // memcpy: the time to copy the bytes moved once.
        const double mc = memcpy_s * static_cast<double>(c.moved) / static_cast<double>(n);
        auto txt = [&](double s) {
          return time_name(s) + " (" + fmt("%.0f", mbps(c.moved, s)) + ")";
        };
        json::object r{{"size", n},
                       {"test", c.test},
                       {"bytes_moved", c.moved},
                       {"memcpy_s", mc},
                       {"shm_median_s", c.s.median},
                       {"pipe_median_s", c.p.median},
                       {"shm_iterations", c.s.iters},
                       {"pipe_iterations", c.p.iters}};
        if (py)
          r["python_median_s"] = *py;
        else
          r["python_median_s"] = nullptr;
        rows.push_back(std::move(r));
        say("%-7s %-14s %-20s %-20s %-20s %-20s\n", size_name(n).c_str(), c.test, txt(mc).c_str(),
            txt(c.s.median).c_str(), txt(c.p.median).c_str(), py ? txt(*py).c_str() : "-");
        if (n == 64 * MiB) big_.push_back({c.test, c.s.median, mc, py});
      }
    }
    close_pool(shm);
    close_pool(pipe);
    doc["payload"] = std::move(rows);
  }

  /// Milliseconds from constructing a process_pool of `workers` (in the sandbox or not) until
  /// its first result.
  double first_result_ms(io_thread& io, std::size_t workers, bool sandboxed = false) {
    const double t0 = now();
    crew::process_pool_options o;
    o.workers = workers;
    o.sandbox.enabled = sandboxed;
    auto pool = std::make_unique<crew::process_pool>(io.context().get_executor(), std::move(o));
    const int v = pool->submit(identity(7)).get();
    const double ms = (now() - t0) * 1e3;
    require(v == 7, "identity after start-up");
    close_pool(pool);
    return ms;
  }

  /// Median milliseconds from constructing a process_pool of `workers` until its first result.
  double startup_ms(io_thread& io, std::size_t workers) {
    std::vector<double> ms;
    for (std::size_t r = 0; r < n_.startup_reps; ++r)
      ms.push_back(first_result_ms(io, workers));
    return median_of(ms);
  }

  // The sandbox's price (issue 14): process_pool(1) to its first result, plain and inside
  // bubblewrap, in interleaved rounds (plain, sandboxed, plain, ...); the ratio is the median
  // of the rounds' ratios, with their min-max.
  void sandbox_startup(io_thread& io, json::array& rows) {
    crew::sandbox_options sb;
    sb.enabled = true;
    if (auto why = crew::sandbox_unavailable(sb); !why.empty()) {
      say("sandboxed worker: not measured: %s\n", why.c_str());
      return;
    }
    progress("startup: plain and sandboxed workers, interleaved");
    const std::size_t rounds = std::max<std::size_t>(5, n_.startup_reps);
    std::vector<double> plain, boxed, ratio;
    for (std::size_t r = 0; r < rounds; ++r) {
      plain.push_back(first_result_ms(io, 1, false));
      boxed.push_back(first_result_ms(io, 1, true));
      ratio.push_back(boxed.back() / plain.back());
    }
    const double pm = median_of(plain), bm = median_of(boxed), rm = median_of(ratio);
    const auto [lo, hi] = std::minmax_element(ratio.begin(), ratio.end());
    say("%-44s %11.2f ms\n%-44s %11.2f ms   %.2fx the plain worker (rounds %.2f-%.2f, %zu "
        "interleaved)\n",
        "crew process_pool(1), plain, interleaved", pm,
        "crew process_pool(1), sandboxed (bubblewrap)", bm, rm, *lo, *hi, rounds);
    rows.push_back(
        {{"name", "crew process_pool(1) to first result, plain (interleaved)"}, {"small_ms", pm}});
    rows.push_back({{"name", "crew process_pool(1) to first result, sandboxed (interleaved)"},
                    {"small_ms", bm},
                    {"ratio_median", rm},
                    {"ratio_min", *lo},
                    {"ratio_max", *hi},
                    {"rounds", rounds}});
  }

  // 4. Pool start-up.
  void startup(io_thread& io) {
    json::array rows;
    const std::string worker = crew::default_worker_executable().string();
    say("\n4. Start-up: constructing process_pool(N) until the first result, median of %zu; raw: "
        "%s --list\n%-44s %14s %14s\n",
        n_.startup_reps, fs::path(worker).filename().c_str(), "", "small coord.", "1 GiB coord.");
    struct line {
      std::string name;
      double small = 0, big = 0;
    };
    std::vector<line> lines;
    for (std::size_t w : {1, 2, 8})
      lines.push_back({"crew process_pool(" + std::to_string(w) + ") to first result"});
    lines.push_back({"raw posix_spawn + waitpid (crew-worker --list)"});
    lines.push_back({"raw fork + exec + waitpid (crew-worker --list)"});
    for (bool big : {false, true}) {
      std::optional<raw::hold_heap> heap;
      if (big) {
        progress("startup: holding 1 GiB");
        heap.emplace(std::size_t{1} << 30);
      }
      progress(std::string("startup: ") + (big ? "1 GiB coordinator" : "small coordinator") +
               " (RSS " + mib(rss_bytes()) + ")");
      std::size_t k = 0;
      for (std::size_t w : {1, 2, 8})
        (big ? lines[k++].big : lines[k++].small) = startup_ms(io, w);
      (big ? lines[3].big : lines[3].small) = raw::spawn_wait_ms(worker, {"--list"}, n_.spawn_reps);
      (big ? lines[4].big : lines[4].small) =
          raw::fork_exec_wait_ms(worker, {"--list"}, n_.spawn_reps);
    }
    for (const auto& l : lines) {
      rows.push_back({{"name", l.name}, {"small_ms", l.small}, {"one_gib_ms", l.big}});
      say("%-44s %11.2f ms %11.2f ms\n", l.name.c_str(), l.small, l.big);
    }
    startup_ = {lines[0].small, lines[0].big, lines[3].small, lines[3].big};
    sandbox_startup(io, rows);
    doc["startup"] = std::move(rows);
  }

  // 6. The notebook's CPU function.
  void longcomp(io_thread& io) {
    progress("longcomp: one call");
    const double t0 = now();
    const double v = crew::demo::long_comp_value(0);
    const double one = now() - t0;
    require(v == long_comp_expected, "long_comp(0) = " + fmt("%.17g", v));
    const auto py_value = peer(peers_, {"long_comp", "value_0"});
    if (py_value) require(*py_value == v, "long_comp(0) differs from Python's");
    progress("longcomp: four in sequence");
    const double t1 = now();
    for (int i = 0; i < 4; ++i)
      require(crew::demo::long_comp_value(i) == long_comp_expected, "long_comp(i) sequential");
    const double seq = now() - t1;
    progress("longcomp: four on process_pool(2)");
    auto pool = quiet_pool(io, 2);
    const double t2 = now();
    const auto out = pool->map(crew::demo::long_comp, std::vector<int>{0, 1, 2, 3});
    const double par = now() - t2;
    close_pool(pool);
    for (double x : out)
      require(x == long_comp_expected, "long_comp on the pool");
    const auto py_one = peer(peers_, {"long_comp", "one_call_s"});
    const auto py_seq = peer(peers_, {"long_comp", "sequential_4_s"});
    const auto py_pool = peer(peers_, {"long_comp", "pool_4_calls_s"});
    auto opt = [](std::optional<double> x) { return x ? json::value(*x) : json::value(nullptr); };
    doc["longcomp"] = {{"value_0", v},
                       {"python_value_0", opt(py_value)},
                       {"equal", py_value ? json::value(*py_value == v) : json::value(nullptr)},
                       {"one_call_s", one},
                       {"sequential_4_s", seq},
                       {"pool_4_calls_s", par},
                       {"python_one_call_s", opt(py_one)},
                       {"python_sequential_4_s", opt(py_seq)},
                       {"python_pool_4_calls_s", opt(py_pool)}};
    auto s = [](std::optional<double> x) { return x ? time_name(*x) : std::string("-"); };
    say("\n6. The notebook's CPU function long_comp: C++ %.17g, Python %s (%s)\n%-36s %12s %12s "
        "%10s\n",
        v, py_value ? fmt("%.17g", *py_value).c_str() : "-", py_value ? "equal" : "not run", "",
        "C++ (crew)", "Python", "speed-up");
    auto ln = [&](const char* what, double c, std::optional<double> p) {
      say("%-36s %12s %12s %10s\n", what, time_name(c).c_str(), s(p).c_str(),
          p ? fmt("%.1fx", *p / c).c_str() : "-");
    };
    ln("one call, in-process", one, py_one);
    ln("4 calls in sequence", seq, py_seq);
    ln("4 calls on 2 workers (map)", par, py_pool);
    say("%-36s %12s\n", "  parallel speed-up over sequential", fmt("%.2fx", seq / par).c_str());
  }

  // 7. Remote workers (issue 15): for each launcher of the cluster (ssh, srun, ssh with a
  // ControlMaster), one worker through it next to the same launcher running a trivial
  // program, in interleaved rounds (crew, raw, crew, raw, ...): one task at a time against a
  // round trip of an identity frame's bytes through `cat`; pipelined tasks against the same
  // messages pipelined through `cat`; start-up to the first result against the launcher
  // running `true`. Medians of the rounds; the ratio crew/raw is the median of the rounds'
  // ratios, with their min-max.
  void remote(io_thread& io) {
    const auto& c = *opt_.remote;
    const std::size_t rounds = n_.remote_rounds, k = n_.remote_samples;
    const std::size_t bytes = identity_frame_bytes;
    const auto kinds = remote_kinds(c);
    say("\n7. Remote workers through a launcher (issue 15), 1 worker; raw: the same launcher "
        "running cat (echo of %zu B,\n   an identity task frame) or true (start-up). %zu rounds "
        "interleaved (crew, raw, crew, ...): medians; crew/raw: median of the\n   rounds' ratios "
        "(min-max). Cluster: %s\n",
        bytes, rounds, c.file.c_str());
    for (const auto& kind : kinds)
      say("   %-7s %s: %s\n", kind.name.c_str(), kind.about.c_str(), joined(kind.command).c_str());
    say("%-7s %-46s %11s %11s %9s %13s\n", "via", "measurement", "crew", "raw", "crew/raw",
        "its min-max");
    json::array rows;
    for (const auto& kind : kinds) {
      const std::string cmd = joined(kind.command);
      auto row = [&](const std::string& label, const char* test, const char* unit, const paired& p,
                     auto show, json::object extra) {
        json::array per_round;
        for (std::size_t r = 0; r < p.crew.size(); ++r)
          per_round.push_back({{"crew", p.crew[r]}, {"raw", p.raw[r]}, {"ratio", p.ratio[r]}});
        json::object o{{"launcher", kind.name},
                       {"command", cmd},
                       {"test", test},
                       {"unit", unit},
                       {"crew", spread(p.crew)},
                       {"raw", spread(p.raw)},
                       {"ratio", spread(p.ratio)},
                       {"rounds", std::move(per_round)}};
        for (auto& [key, v] : extra)
          o[key] = v;
        rows.push_back(std::move(o));
        const auto [lo, hi] = std::minmax_element(p.ratio.begin(), p.ratio.end());
        say("%-7s %-46s %11s %11s %8.2fx %13s\n", kind.name.c_str(), label.c_str(),
            show(median_of(p.crew)).c_str(), show(median_of(p.raw)).c_str(), median_of(p.ratio),
            (fmt("%.2f", *lo) + "-" + fmt("%.2f", *hi)).c_str());
      };
      auto us = [](double v) { return time_name(v * 1e-6); };
      auto per_s = [](double v) { return rate_name(v); };
      auto ms = [](double v) { return fmt("%.1f ms", v); };

      // An untimed first run: host keys, the ControlMaster's connection, page cache.
      progress("remote " + kind.name + ": " + cmd + " true (warm-up)");
      raw::launch_wait_ms(plus(kind.command, "true"));

      // 1. One task at a time vs a round trip of the same bytes through cat.
      progress("remote " + kind.name + ": one at a time");
      auto pool = remote_pool(io, kind.command, 1);
      raw::launched_echo echo(plus(kind.command, "cat"));
      echo.round_trips(bytes, std::max<std::size_t>(20, k / 10));  // warm-up
      for (std::size_t i = 0; i < std::max<std::size_t>(20, k / 10); ++i)
        require(pool->submit(identity(static_cast<int>(i))).get() == static_cast<int>(i),
                "identity on a remote worker");
      paired lat;
      std::vector<double> crew_all, raw_all;
      for (std::size_t r = 0; r < rounds; ++r) {
        std::vector<double> s;
        s.reserve(k);
        for (std::size_t i = 0; i < k; ++i) {
          const double t0 = now();
          const int v = pool->submit(identity(static_cast<int>(i))).get();
          s.push_back(now() - t0);
          require(v == static_cast<int>(i), "identity on a remote worker");
        }
        const auto e = echo.round_trips(bytes, k);
        lat.add(median_of(s) * 1e6, median_of(e) * 1e6);
        crew_all.insert(crew_all.end(), s.begin(), s.end());
        raw_all.insert(raw_all.end(), e.begin(), e.end());
      }
      close_pool(pool);
      const double crew_p99 = percentile(crew_all, 99) * 1e6,
                   raw_p99 = percentile(raw_all, 99) * 1e6,
                   crew_max = *std::max_element(crew_all.begin(), crew_all.end()) * 1e6,
                   raw_max = *std::max_element(raw_all.begin(), raw_all.end()) * 1e6;
      row("one at a time: submit().get() vs " + std::to_string(bytes) + " B echo", "one_at_a_time",
          "us", lat, us,
          {{"bytes", bytes},
           {"samples_per_round", k},
           {"crew_p99_us", crew_p99},
           {"raw_p99_us", raw_p99},
           {"crew_max_us", crew_max},
           {"raw_max_us", raw_max}});
      say("%-7s %-46s %11s %11s\n%-7s %-46s %11s %11s\n", "", "  p99 over all rounds",
          us(crew_p99).c_str(), us(raw_p99).c_str(), "", "  max", us(crew_max).c_str(),
          us(raw_max).c_str());

      // 2. Pipelined: tasks many in flight vs the same messages pipelined through cat.
      progress("remote " + kind.name + ": pipelined");
      auto piped = remote_pool(io, kind.command, pipeline_depth);
      // Tasks per round: grown from the minimum until crew takes about remote_pipelined_s
      // (a burst through srun ends in a stall of ~45 ms whatever its length: too short a
      // burst would measure only that), in hundreds; these runs are the warm-up.
      std::size_t m = n_.remote_pipelined_min;
      for (double t = run_windowed(io, *piped, m);
           t < n_.remote_pipelined_s / 2 && m < n_.remote_pipelined_max;
           t = run_windowed(io, *piped, m)) {
        const double grow = std::clamp(n_.remote_pipelined_s / t, 2.0, 10.0);
        m = std::min(n_.remote_pipelined_max,
                     static_cast<std::size_t>(static_cast<double>(m) * grow / 100) * 100);
      }
      echo.pipelined_per_s(bytes, m);
      paired tput;
      for (std::size_t r = 0; r < rounds; ++r) {
        const double crew_s = run_windowed(io, *piped, m);
        tput.add(static_cast<double>(m) / crew_s, echo.pipelined_per_s(bytes, m));
      }
      close_pool(piped);
      echo.finish();
      row("pipelined, depth " + std::to_string(pipeline_depth) + ", " + std::to_string(m) +
              " per round (tasks/s)",
          "pipelined", "per_s", tput, per_s,
          {{"bytes", bytes},
           {"per_round", m},
           {"pipeline_depth", pipeline_depth},
           {"window", window}});

      // 3. Start-up: pool construction to first result vs the launcher running true.
      progress("remote " + kind.name + ": start-up");
      paired start;
      for (std::size_t r = 0; r < rounds; ++r) {
        const double t0 = now();
        auto cold = remote_pool(io, kind.command, 1, true);
        const int v = cold->submit(identity(7)).get();
        const double crew_ms = (now() - t0) * 1e3;
        require(v == 7, "identity after a remote start-up");
        close_pool(cold);
        start.add(crew_ms, raw::launch_wait_ms(plus(kind.command, "true")));
      }
      row("start-up to first result vs launcher + true", "startup", "ms", start, ms,
          {{"raw_command", cmd + " true"}});
    }
    doc["remote"] = {
        {"env", c.file}, {"rounds", rounds}, {"frame_bytes", bytes}, {"rows", std::move(rows)}};
  }

  // 8. Connect-back (issue 16): one worker that connected to the pool over TCP on loopback
  // (the pool listens on 127.0.0.1; launch_once env brings the worker, which connects and
  // proves the secret; its relay thread reads the socket) next to a raw TCP connection on
  // 127.0.0.1 to an echo process (this program, --tcp-echo), TCP_NODELAY on both, in
  // interleaved rounds (crew, raw, crew, raw, ...): one task at a time — each submitted from
  // the previous one's completion handler, as in section 2 — against a ping-pong of an
  // identity task frame's bytes; pipelined tasks (pipeline_depth 64, window 4096) against
  // as many messages, 64 in flight, echoed in batches (the limit, as the pipe of section 1).
  // For reading the gap (info, not targets): the same echoes with the connected worker's
  // shape — a relay thread reading the socket into a pipe that the echo reads — and one
  // write per echo, as the worker writes each reply. Medians of the rounds; crew/raw is the
  // median of the rounds' ratios, with their min-max.
  void connect(io_thread& io) {
    const std::size_t rounds = n_.connect_rounds, k = n_.connect_samples, m = n_.connect_pipelined,
                      bytes = identity_frame_bytes;
    static const std::string self = fs::read_symlink("/proc/self/exe").string();
    const std::vector<std::string> echo_program{self, std::string(tcp_echo_flag)};
    say("\n8. Connect-back over TCP on loopback (issue 16), 1 worker: process_pool listening on "
        "%s, launch_once {\"env\"}\n   (the worker connects, proves the secret, its relay thread "
        "reads the socket into a pipe). Raw: a TCP connection on\n   %s to an echo process "
        "(crew-bench %s), TCP_NODELAY both ends, %zu B messages (an identity task\n   frame); "
        "\"relayed\": the echo reads the socket through a thread and a pipe, as the worker does. "
        "%zu rounds\n   interleaved (crew, raw, crew, ...): medians; crew/raw: median of the "
        "rounds' ratios (min-max)\n%-64s %11s %11s %9s %11s\n",
        connect_address, connect_address, std::string(tcp_echo_flag).c_str(), bytes, rounds,
        "measurement", "crew", "raw", "crew/raw", "its min-max");
    json::array rows;
    auto row = [&](const std::string& label, const char* test, const char* unit, const paired& p,
                   auto show, json::object extra) {
      json::array per_round;
      for (std::size_t r = 0; r < p.crew.size(); ++r)
        per_round.push_back({{"crew", p.crew[r]}, {"raw", p.raw[r]}, {"ratio", p.ratio[r]}});
      json::object o{{"test", test},
                     {"unit", unit},
                     {"crew", spread(p.crew)},
                     {"raw", spread(p.raw)},
                     {"ratio", spread(p.ratio)},
                     {"rounds", std::move(per_round)}};
      for (auto& [key, v] : extra)
        o[key] = v;
      rows.push_back(std::move(o));
      const auto [lo, hi] = std::minmax_element(p.ratio.begin(), p.ratio.end());
      say("%-64s %11s %11s %8.2fx %11s\n", label.c_str(), show(median_of(p.crew)).c_str(),
          show(median_of(p.raw)).c_str(), median_of(p.ratio),
          (fmt("%.2f", *lo) + "-" + fmt("%.2f", *hi)).c_str());
    };
    auto us = [](double v) { return time_name(v * 1e-6); };
    auto per_s = [](double v) { return rate_name(v); };
    auto figures = [&](const paired& p, auto show) {
      const auto [lo, hi] = std::minmax_element(p.ratio.begin(), p.ratio.end());
      return show(median_of(p.crew)) + " vs " + show(median_of(p.raw)) + ", ratio " +
             fmt("%.2f", *lo) + "-" + fmt("%.2f", *hi) + " over " + std::to_string(p.crew.size());
    };

    // 1. One task at a time vs a TCP ping-pong of the same bytes (direct, and relayed).
    progress("connect: one at a time");
    {
      auto pool = connect_pool(io, 1);
      raw::tcp_echo echo(echo_program, bytes, raw::echo_mode::batched);
      raw::tcp_echo relayed(echo_program, bytes, raw::echo_mode::batched, true);
      const std::size_t warm = std::max<std::size_t>(100, k / 10);
      run_chain(io, *pool, warm);
      echo.round_trips(warm);
      relayed.round_trips(warm);
      paired lat, lat_relayed;
      std::vector<double> crew_all, raw_all, relayed_all;
      for (std::size_t r = 0; r < rounds; ++r) {
        const auto c = run_chain(io, *pool, k);
        const auto e = echo.round_trips(k);
        const auto er = relayed.round_trips(k);
        const double crew_us = median_of(c->seconds) * 1e6;
        lat.add(crew_us, median_of(e) * 1e6);
        lat_relayed.add(crew_us, median_of(er) * 1e6);
        crew_all.insert(crew_all.end(), c->seconds.begin(), c->seconds.end());
        raw_all.insert(raw_all.end(), e.begin(), e.end());
        relayed_all.insert(relayed_all.end(), er.begin(), er.end());
      }
      close_pool(pool);
      echo.finish();
      relayed.finish();
      const double crew_p99 = percentile(crew_all, 99) * 1e6,
                   raw_p99 = percentile(raw_all, 99) * 1e6,
                   relayed_p99 = percentile(relayed_all, 99) * 1e6;
      const json::object extra{{"bytes", bytes}, {"samples_per_round", k}};
      json::object e1 = extra, e2 = extra;
      e1["echo"] = "direct";
      e1["crew_p99_us"] = crew_p99;
      e1["raw_p99_us"] = raw_p99;
      e2["echo"] = "relayed";
      e2["crew_p99_us"] = crew_p99;
      e2["raw_p99_us"] = relayed_p99;
      row("one at a time (next submit from handler) vs " + std::to_string(bytes) + " B ping-pong",
          "one_at_a_time", "us", lat, us, std::move(e1));
      say("%-64s %11s %11s\n", "  p99 over all rounds", us(crew_p99).c_str(), us(raw_p99).c_str());
      row("  same vs ping-pong, relayed (info)", "one_at_a_time_relayed", "us", lat_relayed, us,
          std::move(e2));
      connect_lat_ = median_of(lat.ratio);
      connect_lat_figures_ = figures(lat, us);
      connect_lat_relayed_ = median_of(lat_relayed.ratio);
      connect_lat_relayed_figures_ = figures(lat_relayed, us);
    }

    // 2. Pipelined: tasks many in flight vs as many messages, 64 in flight, echoed: in
    // batches (the limit), one write per echo, and one write per echo relayed.
    progress("connect: pipelined");
    {
      auto piped = connect_pool(io, pipeline_depth);
      raw::tcp_echo batched(echo_program, bytes, raw::echo_mode::batched);
      raw::tcp_echo one_by_one(echo_program, bytes, raw::echo_mode::per_message);
      raw::tcp_echo relayed(echo_program, bytes, raw::echo_mode::per_message, true);
      const std::size_t warm = std::max<std::size_t>(1'000, m / 10);
      run_windowed(io, *piped, warm);
      for (auto* e : {&batched, &one_by_one, &relayed})
        e->pipelined_per_s(pipeline_depth, warm);
      paired tput, tput_per_msg, tput_relayed;
      for (std::size_t r = 0; r < rounds; ++r) {
        const double crew = static_cast<double>(m) / run_windowed(io, *piped, m);
        tput.add(crew, batched.pipelined_per_s(pipeline_depth, m));
        tput_per_msg.add(crew, one_by_one.pipelined_per_s(pipeline_depth, m));
        tput_relayed.add(crew, relayed.pipelined_per_s(pipeline_depth, m));
      }
      close_pool(piped);
      for (auto* e : {&batched, &one_by_one, &relayed})
        e->finish();
      const json::object extra{{"bytes", bytes},
                               {"per_round", m},
                               {"pipeline_depth", pipeline_depth},
                               {"in_flight_raw", pipeline_depth},
                               {"window", window}};
      json::object e1 = extra, e2 = extra, e3 = extra;
      e1["echo"] = "batched";
      e2["echo"] = "per_message";
      e3["echo"] = "per_message, relayed";
      row("pipelined, depth " + std::to_string(pipeline_depth) + ", " + std::to_string(m) +
              "/round vs 64 in flight, batched echo",
          "pipelined", "per_s", tput, per_s, std::move(e1));
      row("  same vs one write per echo (info)", "pipelined_per_message_echo", "per_s",
          tput_per_msg, per_s, std::move(e2));
      row("  same vs one write per echo, relayed (info)", "pipelined_per_message_echo_relayed",
          "per_s", tput_relayed, per_s, std::move(e3));
      connect_tput_ = median_of(tput.ratio);
      connect_tput_figures_ = figures(tput, per_s);
      connect_tput_per_msg_ = median_of(tput_per_msg.ratio);
      connect_tput_per_msg_figures_ = figures(tput_per_msg, per_s);
    }
    doc["connect"] = {{"address", connect_address},
                      {"launch_once", "env"},
                      {"rounds", rounds},
                      {"frame_bytes", bytes},
                      {"raw",
                       "TCP on 127.0.0.1 to an echo process (crew-bench --tcp-echo), "
                       "TCP_NODELAY; relayed: the echo reads the socket through a thread "
                       "and a pipe"},
                      {"rows", std::move(rows)}};
  }

  void evaluate() {
    auto ratio = [](std::optional<double> a, std::optional<double> b) -> std::optional<double> {
      if (!a || !b || *b == 0) return std::nullopt;
      return *a / *b;
    };
    auto figs = [](const char* f, std::optional<double> a, std::optional<double> b) {
      if (!a || !b) return std::string("not measured");
      char buf[160];
      std::snprintf(buf, sizeof buf, f, *a, *b);
      return std::string(buf);
    };
    targets.push_back({"processes many-in-flight vs Pool.apply_async",
                       ratio(crew_many_per_s_, py_apply_async_many_), 10, true,
                       figs("%.0f vs %.0f tasks/s", crew_many_per_s_, py_apply_async_many_)});
    targets.push_back({"processes many-in-flight vs raw pipelined pipe",
                       ratio(crew_many_per_s_, pipelined_per_s_), 0.3, true,
                       figs("%.0f vs %.0f msgs/s", crew_many_per_s_, pipelined_per_s_)});
    targets.push_back({"map over a million ints vs Pool.map default chunksize",
                       ratio(crew_map_per_s_, py_map_per_s_), 2, true,
                       figs("%.0f vs %.0f tasks/s", crew_map_per_s_, py_map_per_s_)});
    targets.push_back({"crew run vs process_pool::map, start-up included (issue 13)", cli_ratio_, 2,
                       false, cli_ratio_ ? cli_figures_ : cli_note_});
    targets.push_back(
        {cli_rss_name_, cli_rss_ratio_, 1.5, false, cli_rss_ratio_ ? cli_rss_figures_ : cli_note_});
    targets.push_back({"latency median crew pipe vs raw ping-pong, unpinned",
                       ratio(crew_lat_, raw_lat_), 1.5, false,
                       figs("%.1f vs %.1f us", crew_lat_, raw_lat_)});
    targets.push_back({"latency median crew pipe vs raw ping-pong, pinned",
                       ratio(crew_lat_pinned_, raw_lat_pinned_), 1.5, false,
                       figs("%.1f vs %.1f us", crew_lat_pinned_, raw_lat_pinned_)});
    targets.push_back({"connect-back latency median vs raw TCP ping-pong (issue 16)", connect_lat_,
                       1.5, false, connect_lat_ ? connect_lat_figures_ : "not measured"});
    targets.push_back({"  (info) same vs raw TCP ping-pong through a relay thread + pipe",
                       connect_lat_relayed_, 1.5, false,
                       connect_lat_relayed_ ? connect_lat_relayed_figures_ : "not measured"});
    targets.push_back({"connect-back pipelined vs raw TCP pipelined, batched echo", connect_tput_,
                       0.5, true, connect_tput_ ? connect_tput_figures_ : "not measured"});
    targets.push_back({"  (info) same vs raw TCP pipelined, one write per echo",
                       connect_tput_per_msg_, 0.5, true,
                       connect_tput_per_msg_ ? connect_tput_per_msg_figures_ : "not measured"});
    if (big_.empty())
      targets.push_back({"64 MiB round trip: crew shm vs Python Pool.apply and memcpy",
                         std::nullopt, 20, true, "not measured"});
    for (const auto& b : big_) {
      targets.push_back({std::string("64 MiB ") + b.test + ": crew shm vs Python Pool.apply",
                         ratio(b.python_s, b.shm_s), 20, true,
                         figs("%.4g vs %.4g s", b.shm_s, b.python_s)});
      targets.push_back({std::string("64 MiB ") + b.test + ": crew shm vs memcpy bandwidth",
                         ratio(b.memcpy_s, b.shm_s), 0.5, true,
                         figs("%.4g vs %.4g s (same bytes)", b.shm_s, b.memcpy_s)});
    }
    targets.push_back({"thread_pool per task (submit+future) vs bare asio post+future",
                       ratio(thread_one_us_, asio_one_us_), 1.5, false,
                       figs("%.2f vs %.2f us", thread_one_us_, asio_one_us_)});
    targets.push_back({"  (info) same with async_submit, handler sets a promise",
                       ratio(thread_direct_us_, asio_one_us_), 1.5, false,
                       figs("%.2f vs %.2f us", thread_direct_us_, asio_one_us_)});
    if (startup_) {
      const auto [cs, cb, rs, rb] = *startup_;
      targets.push_back({"start-up to first result vs posix_spawn+wait, small", cs / rs, 1.5, false,
                         figs("%.2f vs %.2f ms", cs, rs)});
      targets.push_back({"start-up to first result vs posix_spawn+wait, 1 GiB", cb / rb, 1.5, false,
                         figs("%.2f vs %.2f ms", cb, rb)});
    } else {
      targets.push_back({"start-up to first result vs posix_spawn+wait", std::nullopt, 1.5, false,
                         "not measured"});
    }
    // Flat: RSS after the largest size within 10% (at least 4 MiB) of RSS after 10^4.
    std::optional<double> growth;
    std::string rss_figs = "not measured";
    const auto base = std::find_if(scaling_rss_.begin(), scaling_rss_.end(),
                                   [](const auto& p) { return p.first == 10'000; });
    if (base != scaling_rss_.end() && scaling_rss_.back().first > base->first) {
      const double b = static_cast<double>(base->second),
                   e = static_cast<double>(scaling_rss_.back().second);
      const double allowed = std::max(0.1 * b, 4.0 * MiB);
      growth = (e - b) / allowed;
      rss_figs = mib(base->second) + " at 10^4 -> " + mib(scaling_rss_.back().second) + " at " +
                 std::to_string(scaling_rss_.back().first) + " (allowed +" +
                 mib(static_cast<std::size_t>(allowed)) + ")";
    }
    targets.push_back(
        {"RSS flat from 10^4 tasks (growth / allowance)", growth, 1, false, rss_figs});
    json::array arr;
    for (const auto& t : targets)
      arr.push_back({{"target", t.name},
                     {"ratio", t.ratio ? json::value(*t.ratio) : json::value(nullptr)},
                     {"bound", t.bound},
                     {"at_least", t.at_least},
                     {"verdict", verdict(t)},
                     {"figures", t.figures}});
    doc["targets"] = std::move(arr);
  }

  const options& opt_;
  const counts n_;
  const json::value* peers_;
  crew::registry jobs_;

  std::optional<double> crew_many_per_s_, py_apply_async_many_, pipelined_per_s_, crew_map_per_s_,
      py_map_per_s_, crew_lat_, raw_lat_, crew_lat_pinned_, raw_lat_pinned_, thread_one_us_,
      thread_direct_us_, asio_one_us_;
  struct big_payload {
    const char* test;
    double shm_s, memcpy_s;
    std::optional<double> python_s;
  };
  std::vector<big_payload> big_;
  std::optional<std::tuple<double, double, double, double>> startup_;
  std::vector<std::pair<std::size_t, std::size_t>> scaling_rss_;
  std::optional<double> cli_ratio_, cli_rss_ratio_;
  // connect: medians of the rounds' crew/raw ratios, and their figures.
  std::optional<double> connect_lat_, connect_lat_relayed_, connect_tput_, connect_tput_per_msg_;
  std::string connect_lat_figures_, connect_lat_relayed_figures_, connect_tput_figures_,
      connect_tput_per_msg_figures_;
  std::string cli_figures_, cli_rss_figures_, cli_note_ = "not measured",
                                              cli_rss_name_ = "crew run peak RSS flat (issue 13)";
};

int usage() {
  std::cerr
      << "usage: crew-bench [--quick] [--json] [--skip-python] [--sections a,b,...] [--svg FILE]\n"
         "                  [--remote-env FILE]\n"
         "sections: trivial, latency, payload, startup, scaling, longcomp, map, cli, connect "
         "(the default),\n"
         "          remote (workers through ssh and srun; run when a cluster is given)\n"
         "--remote-env FILE  the env file of a cluster (tests/remote/cluster.sh start DIR "
         "writes DIR/env;\n"
         "                   default: $CREW_REMOTE_ENV): adds the section remote\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && argv[1] == spawn_helper_flag) return spawn_helper(argc, argv);
  if (argc >= 2 && argv[1] == tcp_echo_flag) {
    const std::string mode = argc == 5 || argc == 6 ? argv[4] : "";
    const bool relayed = argc == 6 && argv[5] == std::string_view("relayed");
    if ((mode != "batched" && mode != "per-message") || (argc == 6 && !relayed)) {
      std::cerr << "usage: crew-bench " << tcp_echo_flag
                << " 127.0.0.1:PORT BYTES batched|per-message [relayed]\n";
      return 2;
    }
    return raw::tcp_echo_main(
        argv[2], std::strtoul(argv[3], nullptr, 10),
        mode == "batched" ? raw::echo_mode::batched : raw::echo_mode::per_message, relayed);
  }
  options opt;
  bool sections_given = false;
  std::string remote_env;
  if (const char* e = std::getenv("CREW_REMOTE_ENV"); e && *e) remote_env = e;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick")
      opt.quick = true;
    else if (a == "--json")
      opt.as_json = true;
    else if (a == "--skip-python")
      opt.skip_python = true;
    else if (a == "--remote-env" && i + 1 < argc)
      remote_env = argv[++i];
    else if (a == "--sections" && i + 1 < argc) {
      opt.sections.clear();
      sections_given = true;
      std::stringstream ss(argv[++i]);
      for (std::string s; std::getline(ss, s, ',');) {
        if (std::find(all_sections.begin(), all_sections.end(), s) == all_sections.end() &&
            std::find(extra_sections.begin(), extra_sections.end(), s) == extra_sections.end()) {
          std::cerr << "crew-bench: unknown section '" << s << "'\n";
          return usage();
        }
        opt.sections.insert(s);
      }
    } else if (a == "--svg" && i + 1 < argc)
      opt.svg = argv[++i];
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else
      return usage();
  }
  // The remote section: with a cluster, part of the default set; asked for without one, an
  // error; otherwise skipped with a note.
  if (remote_env.empty()) {
    if (opt.has("remote")) {
      std::cerr << "crew-bench: the section remote needs a cluster: --remote-env FILE or "
                   "$CREW_REMOTE_ENV (the env file `tests/remote/cluster.sh start DIR` writes: "
                   "DIR/env)\n";
      return 2;
    }
    if (!sections_given)
      opt.remote_note =
          "skipped: no cluster (--remote-env FILE or $CREW_REMOTE_ENV; tests/remote/cluster.sh)";
  } else if (!sections_given || opt.has("remote")) {
    try {
      opt.remote = read_remote_env(remote_env);
    } catch (const std::exception& e) {
      std::cerr << "crew-bench: " << e.what() << '\n';
      return 2;
    }
    opt.sections.insert("remote");
    // srun finds the cluster through SLURM_CONF: set before any thread or launcher starts.
    ::setenv("SLURM_CONF", opt.remote->get("SLURM_CONF").c_str(), 1);
  }
  since_start();
  original_mask();
  try {
    // Python first, alone on the machine: its numbers are not disturbed by ours.
    json::value peers_doc;
    const json::value* peers = nullptr;
    std::string python_note;
    const bool wants_python = opt.has("trivial") || opt.has("latency") || opt.has("payload") ||
                              opt.has("longcomp") || opt.has("map");
    if (opt.skip_python)
      python_note = "skipped (--skip-python)";
    else if (!wants_python)
      python_note = "not needed by the sections asked for";
    else if (const auto py = find_on_path("python3"); !py)
      python_note = "skipped: python3 not found on PATH";
    else if (const auto script = find_peers(); !script)
      python_note = "skipped: peers.py not found (set $CREW_PEERS)";
    else {
      peers_doc = run_peers(*py, *script, opt.quick);
      peers = &peers_doc;
      python_note = "peers.py: " + *script;
    }
    json::object doc;
    doc["machine"] = machine_info(peers);
    doc["quick"] = opt.quick;
    doc["python_peers"] = python_note;
    if (!opt.as_json) {
      const auto& m = doc["machine"].as_object();
      std::printf(
          "crew-bench%s\nmachine: %s, %d cores, %s\ncompiler: %s; Boost %s; Python %s\n"
          "load: %s; Python peers: %s\n",
          opt.quick ? " --quick (small counts: numbers are rough)" : "", cpu_model().c_str(),
          cpu_count(), m.at("kernel").as_string().c_str(), m.at("compiler").as_string().c_str(),
          m.at("boost").as_string().c_str(),
          m.at("python").is_string() ? m.at("python").as_string().c_str() : "-", loadavg().c_str(),
          python_note.c_str());
    }
    bench b(opt, peers);
    b.run();
    for (auto& [k, v] : b.doc)
      doc[k] = v;
    if (peers) doc["python"] = *peers;
    doc["wall_s"] = since_start();
    doc["loadavg_end"] = loadavg();
    if (!opt.svg.empty()) {
      chart(opt.svg, doc);
      progress("chart written to " + opt.svg);
    }
    if (opt.as_json)
      std::cout << json::serialize(doc) << '\n';
    else {
      b.print_targets();
      std::printf(
          "\nwall time: %.1f s; load at the end: %s (other work on the machine skews "
          "the numbers)\n",
          since_start(), loadavg().c_str());
    }
  } catch (const std::exception& e) {
    std::cerr << "crew-bench: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
