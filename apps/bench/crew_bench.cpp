// crew-bench: issues 5 and 17's benchmark in one command. crew's process pools (pipe and shm),
// its thread_pool and inline_runner, next to Python's pools (peers.py --serve, a child kept for
// the run) and the raw physical limits of this machine (baselines.hpp): trivial-task
// throughput, one-at-a-time latency, large payloads, pool start-up, scaling to a million
// tasks, the notebook's CPU function, map over a million ints (default and best chunk sizes),
// heap allocations per task on the coordinator; the crew CLI's `crew run` next to
// process_pool::map (issue 13); and, given a cluster, workers through ssh and srun next to a
// raw round trip through the same launcher (issue 15); a worker that connects back over TCP
// on loopback next to a raw TCP echo (issue 16). Ends with the issues' targets as PASS/FAIL
// ratios.
//
//   crew-bench [--quick] [--json] [--skip-python] [--rounds N] [--sections a,b,...]
//              [--svg FILE] [--remote-env FILE]
//
// Rounds (issue 17: a ratio that swings 3x is not a measurement): every comparison runs in
// interleaved rounds — crew, its peer(s), crew, its peer(s), ... — 7 by default (--rounds N;
// --quick: 3, a smoke test), with the same warm pools on every side (Python's too: peers.py
// --serve answers one command per round). Each round gives one value per side (a rate, or
// the median of the round's samples) and their ratio; a target's ratio is the MEDIAN OF THE
// ROUNDS' RATIOS, shown with its min-max ("2.31 (2.10-2.52)"), and every row of the tables
// is the median of its rounds with their min-max. thread_pool vs bare Asio alternates short
// blocks (2,000 round trips) over 3x as many rounds. --json carries every spread: rows as
// {median, min, max}, each target's ratio, ratio_min, ratio_max, rounds and both sides'
// medians (crew_median, peer_median, unit). Not paired by nature: the RSS targets (one run
// at the largest size) and the notebook's long_comp (one run each side, seconds long).
//
// Sections: trivial, latency, payload, startup, scaling, longcomp, map, alloc, cli, connect
// (the default set), and remote: one worker through each launcher of a cluster (ssh, srun in
// its allocation, ssh with a ControlMaster) — one task at a time vs the same bytes echoed by
// `cat` through the launcher, pipelined tasks vs pipelined echoes, start-up to the first
// result vs the launcher running `true`. It runs when a cluster is given: --remote-env FILE or
// $CREW_REMOTE_ENV, the env file `tests/remote/cluster.sh start DIR` writes (DIR/env); without
// one it is skipped with a note, and `--sections remote` is an error.
// map: 10^6 ints, 2 workers, pipe, pipeline_depth 64: crew's default chunking vs Pool.map's
// default chunksize; then each side's best chunk size (crew: map_chunk 0, 2048, 16384, 65536,
// 131072; Python: chunksize None, 1000, ..., 500000; best median rate over a few rounds of
// the sweep), whose rounds are interleaved again.
// alloc: heap allocations on the coordinator per trivial async_submit (alloc_count.hpp: the
// malloc family counted in this executable, so Asio's aligned_alloc counts as well as
// operator new): 20,000 in flight from the calling thread, one at a time from the completion
// handler, and thread_pool's; not measured in a sanitizer build.
// connect: a pool listening on 127.0.0.1 whose one worker connects back (launch_once env)
// next to a raw TCP connection on 127.0.0.1 to an echo process (this program started as
// `crew-bench --tcp-echo ADDRESS BYTES MODE`), TCP_NODELAY on both: one task at a time vs a
// ping-pong of an identity frame's bytes, pipelined tasks vs pipelined echoes; and, to read
// the gap, echoes writing once per message and echoes that read their socket through a relay
// thread and a pipe, as the connected worker does.
// --quick runs small counts (a smoke test: results are checked, timings are not).
// --json prints one JSON document on stdout; progress always goes to stderr.
// peers.py is found through $CREW_PEERS, next to this program, or in the source tree; without
// python3 (or with --skip-python) the Python rows say so and their targets are n/a.
#include "alloc_count.hpp"
#include "baselines.hpp"
#include "bench_common.hpp"
#include "demo_jobs.hpp"
#include "python_peer.hpp"

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
#include <functional>
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
// The chunk sizes of the map sweep: crew's process_pool_options::map_chunk (0: its default)
// and Python's Pool.map chunksize (null: its default).
const std::vector<std::size_t> crew_map_chunks = {0, 2048, 16384, 65536, 131072};
const std::vector<std::optional<std::size_t>> python_chunksizes = {
    std::nullopt, 1000, 10000, 50000, 125000, 250000, 500000};

const std::vector<std::string> all_sections = {"trivial", "latency",  "payload", "startup",
                                               "scaling", "longcomp", "map",     "alloc",
                                               "cli",     "connect"};
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
  std::optional<std::size_t> rounds;  // --rounds N
  std::set<std::string> sections{all_sections.begin(), all_sections.end()};
  std::string svg;
  std::optional<remote_cluster> remote;  // --remote-env FILE or $CREW_REMOTE_ENV
  std::string remote_note;               // why the remote section did not run
  bool has(const std::string& s) const { return sections.count(s) != 0; }
};

/// Rounds, and task counts and repetitions PER ROUND, of a run.
struct counts {
  // Interleaved rounds of every comparison (sections trivial, latency, payload, startup, map,
  // alloc, cli, connect, remote).
  std::size_t rounds;
  // trivial: crew process_pool one at a time, many in flight with pipeline_depth 1, many in
  // flight with pipeline_depth 64 (and the raw pipelined pipe's messages); Python's
  // apply_async many and one at a time, Pool.map chunksize 1 and default, the executors.
  std::size_t trivial_one, trivial_many_depth1, trivial_many, py_many, py_one, py_map_one,
      py_map_default, py_executor;
  // trivial: messages per round through the raw pipelined pipe (batched echo; per-message
  // echo: a quarter), more than crew's tasks: at its fastest it moves millions a second.
  std::size_t pipelined_messages;
  // trivial: thread_pool vs bare Asio: rounds of short blocks of round trips, and tasks per
  // round many in flight; inline_runner's tasks per round.
  std::size_t thread_rounds, thread_block, thread_many, inline_tasks;
  // latency: round trips per round (crew and raw; Python's).
  std::size_t latency_samples, py_latency_samples;
  // map: ints per map; rounds of the chunk-size sweep.
  std::size_t map_ints, map_sweep_rounds;
  // payload: round trips per round and size (4 KiB, 1 MiB, 64 MiB).
  std::size_t payload_small, payload_mid, payload_big;
  // startup: start-ups per round (of the 1-worker pool and of posix_spawn / fork+exec).
  std::size_t startup_per_round;
  // alloc: warm-up, tasks per round in flight, one at a time.
  std::size_t alloc_warm_up, alloc_many, alloc_one;
  // scaling: rounds per size (RSS: after the last), sizes.
  std::size_t scaling_rounds;
  std::vector<std::size_t> scaling;
  // cli: the tasks of the one big crew run whose peak RSS is compared with the rounds'.
  std::size_t cli_big;
  // remote: round trips per round one at a time, and tasks (and raw messages) per round
  // pipelined: grown from remote_pipelined_min until crew takes about remote_pipelined_s,
  // remote_pipelined_max at most.
  std::size_t remote_samples, remote_pipelined_min, remote_pipelined_max;
  double remote_pipelined_s;
  // connect: round trips per round one at a time, and tasks (and raw messages) per round
  // pipelined.
  std::size_t connect_samples, connect_pipelined;
};

counts counts_for(bool quick, std::optional<std::size_t> rounds) {
  counts c = quick ? counts{.rounds = 3,
                            .trivial_one = 1'000,
                            .trivial_many_depth1 = 4'000,
                            .trivial_many = 20'000,
                            .py_many = 1'000,
                            .py_one = 200,
                            .py_map_one = 1'000,
                            .py_map_default = 20'000,
                            .py_executor = 500,
                            .pipelined_messages = 20'000,
                            .thread_rounds = 5,
                            .thread_block = 500,
                            .thread_many = 20'000,
                            .inline_tasks = 20'000,
                            .latency_samples = 300,
                            .py_latency_samples = 100,
                            .map_ints = 50'000,
                            .map_sweep_rounds = 1,
                            .payload_small = 10,
                            .payload_mid = 3,
                            .payload_big = 1,
                            .startup_per_round = 1,
                            .alloc_warm_up = 300,
                            .alloc_many = 20'000,
                            .alloc_one = 1'000,
                            .scaling_rounds = 2,
                            .scaling = {1'000, 10'000, 100'000},
                            .cli_big = 1'000'000,
                            .remote_samples = 50,
                            .remote_pipelined_min = 200,
                            .remote_pipelined_max = 2'000,
                            .remote_pipelined_s = 0.02,
                            .connect_samples = 200,
                            .connect_pipelined = 5'000}
                   : counts{.rounds = 7,
                            .trivial_one = 3'000,
                            .trivial_many_depth1 = 10'000,
                            .trivial_many = 100'000,
                            .py_many = 10'000,
                            .py_one = 1'000,
                            .py_map_one = 10'000,
                            .py_map_default = 100'000,
                            .py_executor = 5'000,
                            .pipelined_messages = 300'000,
                            .thread_rounds = 21,
                            .thread_block = 2'000,
                            .thread_many = 100'000,
                            .inline_tasks = 100'000,
                            .latency_samples = 2'000,
                            .py_latency_samples = 1'000,
                            .map_ints = 1'000'000,
                            .map_sweep_rounds = 3,
                            .payload_small = 50,
                            .payload_mid = 10,
                            .payload_big = 3,
                            .startup_per_round = 3,
                            .alloc_warm_up = 500,
                            .alloc_many = 20'000,
                            .alloc_one = 5'000,
                            .scaling_rounds = 3,
                            .scaling = {1'000, 10'000, 100'000, 1'000'000},
                            .cli_big = 10'000'000,
                            .remote_samples = 2'000,
                            .remote_pipelined_min = 2'000,
                            .remote_pipelined_max = 500'000,
                            .remote_pipelined_s = 0.3,
                            .connect_samples = 5'000,
                            .connect_pipelined = 100'000};
  if (rounds) {
    c.rounds = *rounds;
    c.thread_rounds = 3 * *rounds;
  }
  return c;
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

// --- rounds ----------------------------------------------------------------------------------

/// {median, min, max} of the values of the rounds (nulls if none).
json::object spread(const std::vector<double>& v) {
  if (v.empty()) return {{"median", nullptr}, {"min", nullptr}, {"max", nullptr}};
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return {{"median", median_of(v)}, {"min", *lo}, {"max", *hi}};
}

/// "min-max" of the values, printed with `f`.
std::string min_max(const std::vector<double>& v, const char* f = "%.3g") {
  if (v.empty()) return "-";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return fmt(f, *lo) + "-" + fmt(f, *hi);
}

/// A crew value and its peer's (raw limit, Python) per interleaved round, and their ratio:
/// crew / peer unless given (e.g. peer time / crew time: how many times faster crew is).
/// `raw` may stay empty: a value measured in rounds with no peer (allocations per task).
struct paired {
  std::vector<double> crew, raw, ratio;
  void add(double c, double r) { add(c, r, c / r); }
  void add(double c, double r, double q) {
    crew.push_back(c);
    raw.push_back(r);
    ratio.push_back(q);
  }
  void add_alone(double c) {
    crew.push_back(c);
    ratio.push_back(c);
  }
};

// --- machine -----------------------------------------------------------------------------

json::object machine_info(const python_peer* py) {
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
  if (py && py->hello().contains("python"))
    m["python"] = py->hello().at("python");
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

/// A number of a peers.py answer.
double num(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_number())
    throw std::runtime_error("peers.py answered without a number '" + std::string(key) +
                             "': " + json::serialize(o));
  return v->to_number<double>();
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
  std::optional<double> ratio;  // median of the rounds' ratios; empty: not measured
  double bound = 0;
  bool at_least = true;  // ratio >= bound passes; else ratio <= bound passes
  std::string figures;
  double ratio_min = 0, ratio_max = 0;
  std::size_t rounds = 0;
  std::optional<double> crew_median, peer_median;  // both sides, in `unit`
  std::string unit;
  std::vector<double> round_ratios;  // in the order of the rounds
};

/// A target not measured yet: `figures` says why.
target unmeasured(std::string name, double bound, bool at_least, std::string figures,
                  std::string unit) {
  target t;
  t.name = std::move(name);
  t.bound = bound;
  t.at_least = at_least;
  t.figures = std::move(figures);
  t.unit = std::move(unit);
  return t;
}

std::string verdict(const target& t) {
  if (!t.ratio) return "n/a";
  if (t.name.find("(info)") != std::string::npos) return "info";
  return (t.at_least ? *t.ratio >= t.bound : *t.ratio <= t.bound) ? "PASS" : "FAIL";
}

/// A value in a target's unit, for its figures.
std::string show(const std::string& unit, double v) {
  if (unit == "per_s") return rate_name(v);
  if (unit == "us") return time_name(v * 1e-6);
  if (unit == "ms") return fmt("%.2f ms", v);
  if (unit == "s") return time_name(v);
  if (unit == "allocations") return fmt("%.2f", v);
  if (unit == "bytes") return mib(static_cast<std::size_t>(v));
  return fmt("%.4g", v);
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

/// Pins the calling thread to `self_cpu` and every other thread of this process to
/// `others_cpu` (nullopt: back to the original mask).
void pin_threads(std::optional<int> self_cpu, std::optional<int> others_cpu) {
  const pid_t self = static_cast<pid_t>(::gettid());
  for (const auto& e : fs::directory_iterator("/proc/self/task")) {
    const pid_t tid = static_cast<pid_t>(std::stol(e.path().filename().string()));
    try {
      set_affinity(tid, tid == self ? self_cpu : others_cpu);
    } catch (const std::exception&) {
      if (tid == self) throw;  // another thread may have just ended
    }
  }
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
    tp.push_back({"crew process_pool(2).map over ints, default chunks",
                  o.at("per_s").to_number<double>(), colour_of("crew")});
    const auto* py = o.if_contains("python");
    if (py && py->is_object())
      tp.push_back({"Python Pool(2).map over ints, default chunksize",
                    py->as_object().at("per_s").to_number<double>(), colour_of("python")});
    if (const auto* best = o.if_contains("best")) {
      const auto& b = best->as_object();
      const auto& c = b.at("crew").as_object().at("median");
      if (c.is_number())
        tp.push_back({"crew map, best map_chunk " + json::serialize(b.at("crew_map_chunk")),
                      c.to_number<double>(), colour_of("crew")});
      const auto& p = b.at("python").as_object().at("median");
      if (p.is_number())
        tp.push_back(
            {"Python Pool.map, best chunksize " + json::serialize(b.at("python_chunksize")),
             p.to_number<double>(), colour_of("python")});
    }
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
  /// py: peers.py --serve, or null (python_note says why).
  bench(const options& o, python_peer* py, std::string python_note)
      : opt_(o), n_(counts_for(o.quick, o.rounds)), py_(py), python_note_(std::move(python_note)) {
    crew::demo::register_jobs(jobs_);
  }

  json::object doc;
  std::vector<target> targets;

  void run() {
    io_thread io;
    doc["rounds"] = n_.rounds;
    if (opt_.has("trivial")) trivial(io);
    if (opt_.has("latency")) latency(io);
    if (opt_.has("scaling")) scaling(io);  // before the big allocations: peak RSS stays its own
    if (opt_.has("alloc")) alloc(io);
    if (opt_.has("map")) map_section(io);
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
    say("\nTargets (issue 5; map, 64 MiB, allocations: issue 17; crew run: issue 13; "
        "connect-back: issue 16). ratio: median of the rounds' ratios (min-max), n rounds\n"
        "%-64s %-22s %3s %7s %-5s %s\n",
        "target", "ratio (min-max)", "n", "bound", "", "figures (medians)");
    for (const auto& t : targets) {
      const std::string r = t.ratio ? fmt("%.3g", *t.ratio) + " (" + fmt("%.3g", t.ratio_min) +
                                          "-" + fmt("%.3g", t.ratio_max) + ")"
                                    : std::string("-");
      say("%-64s %-22s %3s %2s%5.2g %-5s %s\n", t.name.c_str(), r.c_str(),
          t.ratio ? std::to_string(t.rounds).c_str() : "", t.at_least ? ">=" : "<=", t.bound,
          verdict(t).c_str(), t.figures.c_str());
    }
  }

 private:
  template <class... A>
  void say(const char* f, A... a) const {
    if (opt_.as_json) return;
    std::printf(f, a...);
    std::fflush(stdout);
  }

  std::string round_of(std::size_t r, std::size_t rounds) const {
    return "round " + std::to_string(r + 1) + "/" + std::to_string(rounds);
  }

  // Python's side of a round, through peers.py --serve (py_ must be set).
  double py_rate(const char* cmd, std::size_t n) {
    return num(py_->call({{"cmd", cmd}, {"n", n}}), "per_s");
  }
  double py_map_rate(std::size_t n, std::optional<std::size_t> chunksize) {
    json::object c{{"cmd", "map"}, {"n", n}};
    c["chunksize"] = chunksize ? json::value(*chunksize) : json::value(nullptr);
    return num(py_->call(c), "per_s");
  }

  /// One row of a table whose values are rates over the rounds.
  struct rate_row {
    std::string name;
    const char* kind;
    std::size_t tasks = 0;      // per round
    std::vector<double> per_s;  // one per round
    std::vector<double> rt_us;  // one-at-a-time rows of section 1: median round trip per round
  };

  void print_rate_rows(const std::vector<rate_row>& rows, json::array& out) {
    for (const auto& r : rows) {
      if (r.per_s.empty()) continue;
      const double med = median_of(r.per_s);
      json::object o{{"name", r.name},           {"kind", r.kind}, {"tasks_per_round", r.tasks},
                     {"rounds", r.per_s.size()}, {"per_s", med},   {"spread", spread(r.per_s)}};
      o["values"] = json::array(r.per_s.begin(), r.per_s.end());
      if (!r.rt_us.empty()) {
        o["round_trip_us"] = spread(r.rt_us);
        o["round_trip_us_values"] = json::array(r.rt_us.begin(), r.rt_us.end());
      }
      out.push_back(std::move(o));
      const auto [lo, hi] = std::minmax_element(r.per_s.begin(), r.per_s.end());
      say("%-58s %9zu %11s %23s %10s\n", r.name.c_str(), r.tasks, rate_name(med).c_str(),
          (rate_name(*lo) + " - " + rate_name(*hi)).c_str(),
          (r.rt_us.empty() ? time_name(1 / med) : time_name(median_of(r.rt_us) * 1e-6)).c_str());
    }
  }

  // 1. Throughput of trivial tasks: process pools, the raw pipelined pipe and Python's pools
  // in interleaved rounds; then crew's thread_pool and a bare asio::thread_pool in many short
  // interleaved blocks, and the inline_runner.
  void trivial(io_thread& io) {
    const std::size_t R = n_.rounds;
    std::vector<rate_row> rows;
    auto add = [&](std::string name, const char* kind, std::size_t tasks) {
      rows.push_back({std::move(name), kind, tasks, {}, {}});
      return rows.size() - 1;
    };
    progress("trivial: process pools (pipe, shm, pipe with pipeline_depth " +
             std::to_string(pipeline_depth) + ")");
    auto pipe = make_pool(io, crew::transport::pipe, {}, 2);
    auto shm = make_pool(io, crew::transport::shm, {}, 2);
    auto piped = make_pool(io, crew::transport::pipe, {}, 2, pipeline_depth);
    const std::size_t c_piped = add(
        "crew process_pool pipe, many in flight, pipeline_depth " + std::to_string(pipeline_depth),
        "crew", n_.trivial_many);
    const std::size_t r_batched =
        add("raw pipe pipelined 64 B x64, batched echo (limit)", "raw", n_.pipelined_messages);
    const std::size_t p_many = add("Python Pool.apply_async, many in flight", "python", n_.py_many);
    const std::size_t c_pipe_one =
        add("crew process_pool pipe, one at a time", "crew", n_.trivial_one);
    const std::size_t c_pipe_many =
        add("crew process_pool pipe, many in flight (window 4096)", "crew", n_.trivial_many_depth1);
    const std::size_t c_shm_one =
        add("crew process_pool shm, one at a time", "crew", n_.trivial_one);
    const std::size_t c_shm_many =
        add("crew process_pool shm, many in flight (window 4096)", "crew", n_.trivial_many_depth1);
    const std::size_t r_per_msg =
        add("raw pipe pipelined 64 B x64, per-message echo", "raw", n_.pipelined_messages / 4);
    const std::size_t p_one =
        add("Python Pool.apply_async(...).get(), one at a time", "python", n_.py_one);
    const std::size_t p_map_one = add("Python Pool.map, chunksize 1", "python", n_.py_map_one);
    const std::size_t p_map =
        add("Python Pool.map, default chunksize", "python", n_.py_map_default);
    const std::size_t p_ppe =
        add("Python ProcessPoolExecutor.submit, many", "python", n_.py_executor);
    const std::size_t p_tpe =
        add("Python ThreadPoolExecutor.submit, many", "python", n_.py_executor);

    progress("trivial: warm-up");
    run_windowed(io, *piped, n_.trivial_many / 10);
    for (auto* p : {&pipe, &shm}) {
      run_windowed(io, **p, n_.trivial_many_depth1 / 10);
      run_chain(io, **p, 100);
    }
    paired vs_python, vs_pipe;
    auto n = [](std::size_t k) { return static_cast<double>(k); };
    for (std::size_t r = 0; r < R; ++r) {
      progress("trivial: " + round_of(r, R) + ": crew pipelined, raw pipelined pipe" +
               (py_ ? ", Python apply_async" : ""));
      const double crew = n(n_.trivial_many) / run_windowed(io, *piped, n_.trivial_many);
      rows[c_piped].per_s.push_back(crew);
      const double limit = raw::pipe_pipelined_per_s(64, 64, n_.pipelined_messages);
      rows[r_batched].per_s.push_back(limit);
      vs_pipe.add(crew, limit);
      if (py_) {
        const double py = py_rate("apply_async_many", n_.py_many);
        rows[p_many].per_s.push_back(py);
        vs_python.add(crew, py);
      }
      progress("trivial: " + round_of(r, R) + ": the other rows");
      for (auto [p, one, many] :
           {std::tuple{&pipe, c_pipe_one, c_pipe_many}, std::tuple{&shm, c_shm_one, c_shm_many}}) {
        const auto c = run_chain(io, **p, n_.trivial_one);
        rows[one].per_s.push_back(n(n_.trivial_one) / c->total());
        rows[one].rt_us.push_back(median_of(c->seconds) * 1e6);
        rows[many].per_s.push_back(n(n_.trivial_many_depth1) /
                                   run_windowed(io, **p, n_.trivial_many_depth1));
      }
      rows[r_per_msg].per_s.push_back(raw::pipe_pipelined_per_s(64, 64, n_.pipelined_messages / 4,
                                                                raw::echo_mode::per_message));
      if (py_) {
        rows[p_one].per_s.push_back(py_rate("apply_async_one", n_.py_one));
        rows[p_map_one].per_s.push_back(py_map_rate(n_.py_map_one, 1));
        rows[p_map].per_s.push_back(py_map_rate(n_.py_map_default, std::nullopt));
        rows[p_ppe].per_s.push_back(py_rate("ppe_submit_many", n_.py_executor));
        rows[p_tpe].per_s.push_back(py_rate("tpe_submit_many", n_.py_executor));
      }
    }
    for (auto* p : {&pipe, &shm, &piped})
      close_pool(*p);
    pairs_["trivial_vs_pipe"] = vs_pipe;
    if (py_) pairs_["trivial_vs_python"] = vs_python;
    pipelined_per_s_ = median_of(rows[r_batched].per_s);

    // Threads: short blocks of round trips, crew's and bare Asio's alternating.
    const std::size_t TR = n_.thread_rounds, block = n_.thread_block;
    const std::size_t t_future =
        add("crew thread_pool(2), one at a time (submit+future)", "crew", block);
    const std::size_t a_one =
        add("raw asio::thread_pool(2), post+future one at a time", "raw", block);
    const std::size_t t_direct =
        add("crew thread_pool(2), one at a time (handler+promise)", "crew", block);
    const std::size_t t_many = add("crew thread_pool(2), many in flight", "crew", n_.thread_many);
    const std::size_t a_many = add("raw asio::thread_pool(2), many posts", "raw", n_.thread_many);
    const std::size_t i_one = add("crew inline_runner, one at a time", "crew", n_.inline_tasks);
    const std::size_t i_many =
        add("crew inline_runner, many (all submitted, then run)", "crew", n_.inline_tasks);
    progress("trivial: thread_pool(2) vs bare asio::thread_pool(2), " + std::to_string(TR) +
             " rounds of " + std::to_string(block) + " round trips");
    crew::thread_pool tp(jobs_, 2);
    raw::asio_pool asio(2);
    auto future_block = [&](std::size_t k) {
      std::vector<double> s;
      s.reserve(k);
      for (std::size_t i = 0; i < k; ++i) {
        const double a = now();
        const int v = tp.submit(identity(static_cast<int>(i))).get();
        s.push_back(now() - a);
        require(v == static_cast<int>(i), "thread_pool identity");
      }
      return s;
    };
    // The same round trip without use_future's hop through Asio's system executor: the
    // handler runs on the pool's thread and fulfils a promise the main thread waits on.
    auto direct_block = [&](std::size_t k) {
      std::vector<double> s;
      s.reserve(k);
      for (std::size_t i = 0; i < k; ++i) {
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
        s.push_back(now() - a);
        require(v == static_cast<int>(i), "thread_pool identity (async_submit)");
      }
      return s;
    };
    auto thread_many = [&](std::size_t k) {
      struct state {
        std::atomic<std::size_t> left;
        std::atomic<bool> wrong{false};
        std::promise<void> done;
      };
      auto st = std::make_shared<state>();
      st->left = k;
      auto f = st->done.get_future();
      const double t0 = now();
      for (std::size_t i = 0; i < k; ++i)
        tp.async_submit(identity(static_cast<int>(i)), [st, i](std::exception_ptr ep, int v) {
          if (ep || v != static_cast<int>(i)) st->wrong = true;
          if (--st->left == 0) st->done.set_value();
        });
      f.get();
      const double s = now() - t0;
      require(!st->wrong, "thread_pool identity, many in flight");
      return static_cast<double>(k) / s;
    };
    future_block(block);  // warm-up: threads, the system executor's thread
    direct_block(block);
    asio.round_trips(block);
    boost::asio::io_context ioc;
    crew::inline_runner ir(jobs_, ioc.get_executor());
    paired future_vs_asio, direct_vs_asio;
    auto sum = [](const std::vector<double>& v) {
      double s = 0;
      for (double x : v)
        s += x;
      return s;
    };
    // Round trips in blocks; pinned: this thread on CPU 0, every other thread of the process
    // (the pools' threads, Asio's system executor) on CPU 1.
    auto blocks = [&](bool pinned, std::size_t f_row, std::size_t a_row, std::size_t d_row,
                      paired& f_vs_a, paired& d_vs_a) {
      if (pinned) pin_threads(0, 1);
      for (std::size_t r = 0; r < TR; ++r) {
        if (r % 7 == 0)
          progress(std::string("trivial: threads, ") + (pinned ? "pinned, " : "") +
                   round_of(r, TR));
        // Even rounds: crew (future), Asio, crew (handler); odd rounds the other way round,
        // so that neither side always runs right after the other.
        std::vector<double> f, a, d;
        if (r % 2 == 0) {
          f = future_block(block);
          a = asio.round_trips(block);
          d = direct_block(block);
        } else {
          d = direct_block(block);
          a = asio.round_trips(block);
          f = future_block(block);
        }
        const double fu = median_of(f) * 1e6, au = median_of(a) * 1e6, du = median_of(d) * 1e6;
        f_vs_a.add(fu, au);
        d_vs_a.add(du, au);
        rows[f_row].per_s.push_back(n(block) / sum(f));
        rows[f_row].rt_us.push_back(fu);
        rows[a_row].per_s.push_back(n(block) / sum(a));
        rows[a_row].rt_us.push_back(au);
        rows[d_row].per_s.push_back(n(block) / sum(d));
        rows[d_row].rt_us.push_back(du);
      }
      if (pinned) pin_threads(std::nullopt, std::nullopt);
    };
    blocks(false, t_future, a_one, t_direct, future_vs_asio, direct_vs_asio);
    paired future_vs_asio_pinned, direct_vs_asio_pinned;
    if (cpu_count() >= 2) {
      const char* p = ", pinned 0/1";
      const std::size_t pf =
          add(std::string("crew thread_pool(2), one at a time (submit+future)") + p, "crew", block);
      const std::size_t pa =
          add(std::string("raw asio::thread_pool(2), post+future one at a time") + p, "raw", block);
      const std::size_t pd = add(
          std::string("crew thread_pool(2), one at a time (handler+promise)") + p, "crew", block);
      blocks(true, pf, pa, pd, future_vs_asio_pinned, direct_vs_asio_pinned);
      pairs_["thread_vs_asio_pinned"] = future_vs_asio_pinned;
    }
    // The bulk rows after the blocks, in their own `rounds` rounds: 20,000 tasks in flight
    // between the blocks left crew's round trips 3x slower for several blocks (the threads'
    // placement, it seems), which made the ratio drift within a run.
    for (std::size_t r = 0; r < R; ++r) {
      rows[t_many].per_s.push_back(thread_many(n_.thread_many));
      rows[a_many].per_s.push_back(asio.batched_per_s(n_.thread_many));
      {
        ioc.restart();
        auto c = std::make_shared<chain<crew::inline_runner>>(ir, n_.inline_tasks);
        c->start();
        ioc.run();
        c->done.get_future().get();
        rows[i_one].per_s.push_back(n(n_.inline_tasks) / c->total());
      }
      ioc.restart();
      std::size_t ok = 0;
      const double t0 = now();
      for (std::size_t i = 0; i < n_.inline_tasks; ++i)
        ir.async_submit(identity(static_cast<int>(i)), [&ok, i](std::exception_ptr ep, int v) {
          ok += !ep && v == static_cast<int>(i);
        });
      ioc.run();
      rows[i_many].per_s.push_back(n(n_.inline_tasks) / (now() - t0));
      require(ok == n_.inline_tasks, "inline_runner identity");
    }
    tp.join();
    pairs_["thread_vs_asio"] = future_vs_asio;
    pairs_["thread_direct_vs_asio"] = direct_vs_asio;

    say("\n1. Trivial tasks (identity, returns its int), 2 workers / threads. %zu rounds "
        "interleaved (crew, raw, Python, crew, ...);\n   thread_pool vs bare Asio: %zu rounds "
        "of %zu round trips each. tasks/s: median of the rounds (min-max); per task: its\n   "
        "inverse, or for one-at-a-time threads the median round trip\n%-58s %9s %11s %23s "
        "%10s\n",
        R, TR, block, "runner", "per round", "tasks/s", "min - max", "per task");
    json::array out;
    print_rate_rows(rows, out);
    if (!py_) say("%-58s %s\n", "Python's pools", python_note_.c_str());
    doc["trivial"] = std::move(out);
  }

  // 2. Round-trip latency, one task at a time, in interleaved rounds: crew pipe, crew shm,
  // raw ping-pong, Python; then the same pinned (io thread on CPU 0, workers on CPU 1).
  void latency(io_thread& io) {
    const bool can_pin = cpu_count() >= 2;
    const std::size_t R = n_.rounds, k = n_.latency_samples;
    struct path {
      std::string name;
      bool pinned;
      std::size_t samples;
      std::vector<double> med_us, p99_us;  // per round
    };
    std::vector<path> paths;
    auto add = [&](std::string name, bool pinned, std::size_t samples) {
      paths.push_back({std::move(name), pinned, samples, {}, {}});
      return paths.size() - 1;
    };
    progress("latency: pools");
    auto pipe = make_pool(io, crew::transport::pipe);
    auto shm = make_pool(io, crew::transport::shm);
    const std::size_t warm = std::max<std::size_t>(100, k / 10);
    run_chain(io, *pipe, warm);
    run_chain(io, *shm, warm);
    auto crew_round = [&](crew::process_pool& p, path& into) {
      const auto c = run_chain(io, p, k);
      into.med_us.push_back(median_of(c->seconds) * 1e6);
      into.p99_us.push_back(percentile(c->seconds, 99) * 1e6);
      return into.med_us.back();
    };
    auto raw_round = [&](path& into, bool pinned) {
      const auto pp = raw::pipe_pingpong(
          frame_bytes, k,
          pinned ? std::optional<std::pair<int, int>>(std::pair{0, 1}) : std::nullopt);
      into.med_us.push_back(pp.median_us);
      into.p99_us.push_back(pp.p99_us);
      return pp.median_us;
    };
    for (bool pinned : {false, true}) {
      if (pinned && !can_pin) {
        say("(pinned runs skipped: fewer than 2 CPUs)\n");
        break;
      }
      const std::size_t c_pipe = add("crew pipe (next submit from handler)", pinned, k);
      const std::size_t c_shm = add("crew shm (next submit from handler)", pinned, k);
      const std::size_t r_pp =
          add("raw pipe ping-pong " + std::to_string(frame_bytes) + " B" +
                  (pinned ? std::string() : std::string(" (to cat, blocks alternated)")),
              pinned, k);
      std::optional<std::size_t> p_py;
      if (!pinned && py_) p_py = add("Python pool.apply(ident)", false, n_.py_latency_samples);
      auto pin = [&](bool on) {
        pin_io_thread(io, on ? std::optional<int>(0) : std::nullopt);
        for (auto* p : {&pipe, &shm})
          for (int pid : (*p)->pids())
            set_affinity(pid, on ? std::optional<int>(1) : std::nullopt);
      };
      paired pair;
      // Unpinned, where this VM's scheduler puts a waking thread (5 us on the waker's CPU,
      // tens of us on the other) holds for seconds and decides the round trip more than
      // either side: within a round, crew and raw alternate in blocks of a few milliseconds
      // (raw: a `cat` kept running, so no spawn reshuffles the CPUs), so that both see the
      // same placements; the round's median is over its blocks' samples.
      std::optional<raw::launched_echo> cat;
      if (!pinned) {
        cat.emplace(std::vector<std::string>{"cat"});
        cat->round_trips(frame_bytes, warm);
      }
      for (std::size_t r = 0; r < R; ++r) {
        progress(std::string("latency: ") + (pinned ? "pinned, " : "") + round_of(r, R));
        if (!pinned) {
          constexpr std::size_t blocks = 20;
          const std::size_t per_block = std::max<std::size_t>(1, k / blocks);
          std::vector<double> crew_s, raw_s;
          for (std::size_t b = 0; b < blocks; ++b) {
            const auto c = run_chain(io, *pipe, per_block);
            crew_s.insert(crew_s.end(), c->seconds.begin(), c->seconds.end());
            const auto e = cat->round_trips(frame_bytes, per_block);
            raw_s.insert(raw_s.end(), e.begin(), e.end());
          }
          paths[c_pipe].med_us.push_back(median_of(crew_s) * 1e6);
          paths[c_pipe].p99_us.push_back(percentile(crew_s, 99) * 1e6);
          paths[r_pp].med_us.push_back(median_of(raw_s) * 1e6);
          paths[r_pp].p99_us.push_back(percentile(raw_s, 99) * 1e6);
          crew_round(*shm, paths[c_shm]);
          pair.add(paths[c_pipe].med_us.back(), paths[r_pp].med_us.back());
        } else {
          pin(true);
          const double c = crew_round(*pipe, paths[c_pipe]);
          crew_round(*shm, paths[c_shm]);
          pin(false);
          pair.add(c, raw_round(paths[r_pp], pinned));
        }
        if (p_py) {
          const auto a = py_->call({{"cmd", "latency"}, {"samples", n_.py_latency_samples}});
          paths[*p_py].med_us.push_back(num(a, "median_us"));
          paths[*p_py].p99_us.push_back(num(a, "p99_us"));
        }
      }
      if (cat) cat->finish();
      pairs_[pinned ? "lat_pinned" : "lat_unpinned"] = pair;
    }
    close_pool(pipe);
    close_pool(shm);

    say("\n2. Round-trip latency, one task at a time (identity; raw ping-pong of %zu B), 1 "
        "worker. %zu rounds interleaved\n   (crew pipe, crew shm, raw, Python, ...): median "
        "of the rounds' medians (min-max); p99: median of the rounds' p99\n%-52s %11s %21s "
        "%11s %9s\n",
        frame_bytes, R, "path", "median", "min - max", "p99", "per round");
    json::array rows;
    for (const auto& p : paths) {
      const double med = median_of(p.med_us), p99 = median_of(p.p99_us);
      rows.push_back({{"name", p.name},
                      {"pinned", p.pinned},
                      {"median_us", med},
                      {"p99_us", p99},
                      {"samples", p.samples},
                      {"rounds", p.med_us.size()},
                      {"median", spread(p.med_us)},
                      {"p99", spread(p.p99_us)}});
      const auto [lo, hi] = std::minmax_element(p.med_us.begin(), p.med_us.end());
      say("%-52s %11s %21s %11s %9zu\n", (p.name + (p.pinned ? ", pinned 0/1" : "")).c_str(),
          time_name(med * 1e-6).c_str(),
          (time_name(*lo * 1e-6) + " - " + time_name(*hi * 1e-6)).c_str(),
          time_name(p99 * 1e-6).c_str(), p.samples);
    }
    if (!py_) say("%-52s %s\n", "Python pool.apply(ident)", python_note_.c_str());
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
        "4096; %zu rounds per size:\n   median (min-max); RSS after the last\n%-12s %10s %19s "
        "%11s %12s %12s\n",
        n_.scaling_rounds, "tasks", "seconds", "min - max", "per task", "RSS after", "peak RSS");
    auto pool = make_pool(io, crew::transport::pipe, {}, 2, pipeline_depth);
    for (const auto n : n_.scaling) {
      std::vector<double> s;
      for (std::size_t r = 0; r < n_.scaling_rounds; ++r)
        s.push_back(run_windowed(io, *pool, n));
      const double med = median_of(s);
      const std::size_t rss = rss_bytes(), peak = peak_rss_bytes();
      rows.push_back({{"tasks", n},
                      {"rounds", s.size()},
                      {"seconds", med},
                      {"seconds_spread", spread(s)},
                      {"per_task_s", med / static_cast<double>(n)},
                      {"rss_bytes", rss},
                      {"peak_rss_bytes", peak}});
      scaling_rss_.emplace_back(n, rss);
      say("%-12zu %10.3f %19s %11s %12s %12s\n", n, med, min_max(s, "%.3f").c_str(),
          time_name(med / static_cast<double>(n)).c_str(), mib(rss).c_str(), mib(peak).c_str());
    }
    close_pool(pool);
    doc["scaling"] = std::move(rows);
  }

  // map over a million ints: crew's default chunking vs Pool.map's default chunksize in
  // interleaved rounds; a sweep of both sides' chunk sizes; their bests interleaved again.
  void map_section(io_thread& io) {
    const std::size_t n = n_.map_ints, R = n_.rounds, S = n_.map_sweep_rounds;
    progress("map over " + count_name(n) + " ints: pools (map_chunk " +
             std::to_string(crew_map_chunks.size()) + " sizes)");
    std::vector<int> in(n);
    for (std::size_t i = 0; i < n; ++i)
      in[i] = static_cast<int>(i);
    std::vector<std::unique_ptr<crew::process_pool>> pools;
    for (const std::size_t chunk : crew_map_chunks)
      pools.push_back(make_pool(io, crew::transport::pipe, {}, map_workers, pipeline_depth, chunk));
    auto crew_rate = [&](crew::process_pool& p) {
      const double t0 = now();
      const auto out = p.map(identity, in);
      const double s = now() - t0;
      require(out == in, "map(identity)");
      return static_cast<double>(n) / s;
    };
    auto chunk_name = [](std::optional<std::size_t> c) {
      return c ? std::to_string(*c) : std::string("None");
    };
    // Warm-up: each crew pool once, Python's default once.
    for (auto& p : pools)
      crew_rate(*p);
    if (py_) py_map_rate(n, std::nullopt);

    // 1. Defaults.
    paired def;
    for (std::size_t r = 0; r < R; ++r) {
      progress("map: defaults, " + round_of(r, R));
      const double c = crew_rate(*pools[0]);
      if (py_)
        def.add(c, py_map_rate(n, std::nullopt));
      else
        def.crew.push_back(c);
    }
    // 2. The sweep: the best chunk size of each side by median rate.
    std::vector<std::vector<double>> crew_sweep(pools.size()), py_sweep(python_chunksizes.size());
    for (std::size_t s = 0; s < S; ++s) {
      progress("map: chunk-size sweep, " + round_of(s, S));
      for (std::size_t i = 0; i < pools.size(); ++i)
        crew_sweep[i].push_back(crew_rate(*pools[i]));
      if (py_)
        for (std::size_t j = 0; j < python_chunksizes.size(); ++j)
          py_sweep[j].push_back(py_map_rate(n, python_chunksizes[j]));
    }
    auto best_of = [](const std::vector<std::vector<double>>& v) {
      std::size_t best = 0;
      for (std::size_t i = 1; i < v.size(); ++i)
        if (!v[i].empty() && median_of(v[i]) > median_of(v[best])) best = i;
      return best;
    };
    const std::size_t bc = best_of(crew_sweep), bp = best_of(py_sweep);
    // 3. The bests.
    paired best;
    for (std::size_t r = 0; r < R; ++r) {
      progress("map: best chunk sizes, " + round_of(r, R));
      const double c = crew_rate(*pools[bc]);
      if (py_)
        best.add(c, py_map_rate(n, python_chunksizes[bp]));
      else
        best.crew.push_back(c);
    }
    for (auto& p : pools)
      close_pool(p);

    const std::string crew_best = "map_chunk " + std::to_string(crew_map_chunks[bc]) +
                                  (crew_map_chunks[bc] == 0 ? " (default)" : "");
    const std::string py_best = "chunksize " + chunk_name(python_chunksizes[bp]);
    say("\nmap over %s ints, %zu workers (crew: process_pool pipe, pipeline_depth %zu; Python: "
        "Pool(%zu).map(ident, range(n)))\n   %zu rounds interleaved (crew, Python, ...): "
        "median tasks/s (min-max); crew/Python: median of the rounds' ratios\n%-52s %11s %23s "
        "%16s\n",
        count_name(n).c_str(), map_workers, pipeline_depth, map_workers, R, "runner", "tasks/s",
        "min - max", "crew/Python");
    auto line = [&](const std::string& name, const std::vector<double>& v,
                    const std::vector<double>* ratio) {
      if (v.empty()) return;
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      say("%-52s %11s %23s %16s\n", name.c_str(), rate_name(median_of(v)).c_str(),
          (rate_name(*lo) + " - " + rate_name(*hi)).c_str(),
          ratio ? (fmt("%.2f", median_of(*ratio)) + " (" + min_max(*ratio, "%.2f") + ")").c_str()
                : "");
    };
    line("crew map, default chunking (map_chunk 0)", def.crew, py_ ? &def.ratio : nullptr);
    line("Python Pool.map, default chunksize", def.raw, nullptr);
    say("sweep, median of %zu round(s): crew", S);
    for (std::size_t i = 0; i < pools.size(); ++i)
      say(" %zu: %s", crew_map_chunks[i], rate_name(median_of(crew_sweep[i])).c_str());
    if (py_) {
      say("\n                               Python");
      for (std::size_t j = 0; j < python_chunksizes.size(); ++j)
        say(" %s: %s", chunk_name(python_chunksizes[j]).c_str(),
            rate_name(median_of(py_sweep[j])).c_str());
    }
    say("\n");
    line("crew map, best: " + crew_best, best.crew, py_ ? &best.ratio : nullptr);
    if (py_) line("Python Pool.map, best: " + py_best, best.raw, nullptr);
    if (!py_) say("%-52s %s\n", "Python Pool.map", python_note_.c_str());

    json::array crew_sw, py_sw;
    for (std::size_t i = 0; i < pools.size(); ++i)
      crew_sw.push_back({{"map_chunk", crew_map_chunks[i]}, {"per_s", spread(crew_sweep[i])}});
    for (std::size_t j = 0; j < python_chunksizes.size() && py_; ++j)
      py_sw.push_back({{"chunksize", python_chunksizes[j] ? json::value(*python_chunksizes[j])
                                                          : json::value(nullptr)},
                       {"per_s", spread(py_sweep[j])}});
    json::object o{
        {"tasks", n},
        {"workers", map_workers},
        {"pipeline_depth", pipeline_depth},
        {"rounds", R},
        {"per_s", median_of(def.crew)},
        {"crew_default", spread(def.crew)},
        {"sweep", {{"rounds", S}, {"crew", std::move(crew_sw)}, {"python", std::move(py_sw)}}},
        {"best",
         {{"crew_map_chunk", crew_map_chunks[bc]},
          {"crew", spread(best.crew)},
          {"python_chunksize", py_ && python_chunksizes[bp] ? json::value(*python_chunksizes[bp])
                                                            : json::value(nullptr)},
          {"python", spread(best.raw)},
          {"ratio", spread(best.ratio)}}}};
    if (py_) {
      o["python"] = {
          {"per_s", median_of(def.raw)}, {"chunksize", nullptr}, {"spread", spread(def.raw)}};
      o["ratio_default"] = spread(def.ratio);
      pairs_["map_default"] = def;
      pairs_["map_best"] = best;
      map_best_note_ = "crew " + crew_best + ", Python " + py_best;
    } else {
      o["python_note"] = python_note_;
    }
    doc["map"] = std::move(o);
  }

  /// Seconds to construct a process_pool like map_section's (no warm-up), map identity over
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
    const std::size_t n = n_.map_ints, rounds = n_.rounds;
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
    const double cli_ratio = median_of(ratios);
    paired p;
    for (std::size_t r = 0; r < rounds; ++r)
      p.add(run_s[r], map_s[r]);
    pairs_["cli"] = p;
    say("%-8s %12s %12s %8.2f %16s\n", "median", time_name(run_med).c_str(),
        time_name(map_med).c_str(), cli_ratio, mib(small_rss).c_str());
    say("%-8s %12s %12s %8.2f\n%-8s %12s %12s %8.2f\n", "min", time_name(run_lo).c_str(),
        time_name(map_lo).c_str(), ratio_lo, "max", time_name(run_hi).c_str(),
        time_name(map_hi).c_str(), ratio_hi);
    say("A/B: median %.2f (min %.2f, max %.2f); tasks/s: crew run %s, map %s\n", cli_ratio,
        ratio_lo, ratio_hi, rate_name(static_cast<double>(n) / run_med).c_str(),
        rate_name(static_cast<double>(n) / map_med).c_str());

    progress("cli: crew run over " + count_name(n_.cli_big) + " tasks");
    const auto big = run_child(*exe, args(n_.cli_big));
    cli_rss_ratio_ = static_cast<double>(big.peak_rss) / static_cast<double>(small_rss);
    cli_rss_big_ = big.peak_rss;
    cli_rss_small_ = small_rss;
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
                  {"ratio", {{"median", cli_ratio}, {"min", ratio_lo}, {"max", ratio_hi}}},
                  {"rss",
                   {{"tasks", n},
                    {"peak_rss_bytes", small_rss},
                    {"big_tasks", n_.cli_big},
                    {"big_peak_rss_bytes", big.peak_rss},
                    {"big_seconds", big.seconds},
                    {"big_command", command(n_.cli_big)},
                    {"ratio", *cli_rss_ratio_}}}};
  }

  // 3. Large payloads, in interleaved rounds: per size, each round measures memcpy of the
  // same bytes, then per test (in+small, echo) crew shm, crew pipe and Python's Pool.apply.
  void payload(io_thread& io) {
    const std::size_t R = n_.rounds;
    progress("payload: pools");
    auto shm = make_pool(io, crew::transport::shm);
    auto pipe = make_pool(io, crew::transport::pipe);
    // One cell per round: the median of `reps` round trips. byte_count: the argument goes to
    // the worker, 8 bytes come back. echo: the string is moved into each call and its result
    // is the next call's argument, so one comparison at the end checks them all.
    auto count_s = [](crew::process_pool& p, const std::vector<std::uint8_t>& bytes,
                      std::size_t reps) {
      std::vector<double> t;
      for (std::size_t i = 0; i < reps; ++i) {
        const double t0 = now();
        const auto k = p.submit(crew::demo::byte_count(bytes)).get();
        t.push_back(now() - t0);
        require(k == bytes.size(), "byte_count returned " + std::to_string(k) + ", not " +
                                       std::to_string(bytes.size()));
      }
      return median_of(t);
    };
    auto echo_s = [](crew::process_pool& p, std::string& cur, std::size_t reps) {
      std::vector<double> t;
      for (std::size_t i = 0; i < reps; ++i) {
        const double t0 = now();
        cur = p.submit(crew::demo::echo(std::move(cur))).get();
        t.push_back(now() - t0);
      }
      return median_of(t);
    };
    auto py_s = [&](std::size_t size, const char* mode, std::size_t reps) {
      return num(py_->call({{"cmd", "payload"}, {"size", size}, {"mode", mode}, {"reps", reps}}),
                 "median_s");
    };
    struct cell {
      const char* test;
      const char* py_mode;
      std::size_t size, moved, reps;
      std::vector<double> memcpy_s, shm_s, pipe_s, py_s;
    };
    std::vector<cell> cells;
    for (const auto& [n, reps] :
         {std::pair{4 * KiB, n_.payload_small}, std::pair{1 * MiB, n_.payload_mid},
          std::pair{64 * MiB, n_.payload_big}}) {
      progress("payload: " + size_name(n) + ", warm-up");
      const auto bytes = make_payload(n);
      const std::string text(bytes.begin(), bytes.end());
      std::string cur_shm = text, cur_pipe = text;
      cell in{"in+small", "in_small_out", n, n, reps, {}, {}, {}, {}};
      cell ec{"echo", "echo", n, 2 * n, reps, {}, {}, {}, {}};
      // Warm-up: touches this size's part of the segment, Python's buffers.
      count_s(*shm, bytes, 1);
      count_s(*pipe, bytes, 1);
      echo_s(*shm, cur_shm, 1);
      echo_s(*pipe, cur_pipe, 1);
      if (py_) {
        py_s(n, "in_small_out", 1);
        py_s(n, "echo", 1);
      }
      paired vs_py_in, vs_mc_in, vs_py_echo, vs_mc_echo;
      for (std::size_t r = 0; r < R; ++r) {
        progress("payload: " + size_name(n) + ", " + round_of(r, R));
        // memcpy of n bytes (warm buffers, best of 3); the bytes moved once: in, or in+out.
        const double mc = static_cast<double>(n) / (raw::memcpy_gb_per_s(n, 3) * 1e9);
        for (cell* c : {&in, &ec}) {
          const bool echo = c == &ec;
          const double m = mc * static_cast<double>(c->moved) / static_cast<double>(n);
          const double s = echo ? echo_s(*shm, cur_shm, reps) : count_s(*shm, bytes, reps);
          c->memcpy_s.push_back(m);
          c->shm_s.push_back(s);
          (echo ? vs_mc_echo : vs_mc_in).add(s, m, m / s);
          c->pipe_s.push_back(echo ? echo_s(*pipe, cur_pipe, reps) : count_s(*pipe, bytes, reps));
          if (py_) {
            const double p = py_s(n, c->py_mode, reps);
            c->py_s.push_back(p);
            (echo ? vs_py_echo : vs_py_in).add(s, p, p / s);
          }
        }
      }
      require(cur_shm == text && cur_pipe == text, "echo returned other bytes");
      if (n == 64 * MiB) {
        pairs_["big_in_vs_memcpy"] = vs_mc_in;
        pairs_["big_echo_vs_memcpy"] = vs_mc_echo;
        if (py_) {
          pairs_["big_in_vs_python"] = vs_py_in;
          pairs_["big_echo_vs_python"] = vs_py_echo;
        }
      }
      cells.push_back(std::move(in));
      cells.push_back(std::move(ec));
    }
    close_pool(shm);
    close_pool(pipe);

    say("\n3. Large payloads, 1 worker, one at a time. %zu rounds interleaved (memcpy, crew shm, "
        "crew pipe, Python, ...), each\n   the median of its round trips (4 KiB: %zu, 1 MiB: %zu, "
        "64 MiB: %zu); shown: median of the rounds (MB/s, bytes moved:\n   in, or in+out for "
        "echo); min-max of the rounds below\n%-7s %-10s %-20s %-20s %-20s %-20s\n",
        R, n_.payload_small, n_.payload_mid, n_.payload_big, "size", "test", "memcpy", "crew shm",
        "crew pipe", "Python Pool.apply");
    json::array rows;
    for (const auto& c : cells) {
      auto txt = [&](const std::vector<double>& v) {
        if (v.empty()) return std::string("-");
        const double s = median_of(v);
        return time_name(s) + " (" + fmt("%.0f", mbps(c.moved, s)) + ")";
      };
      auto range = [&](const std::vector<double>& v) {
        if (v.empty()) return std::string("-");
        const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        return time_name(*lo) + "-" + time_name(*hi);
      };
      json::object r{{"size", c.size},
                     {"test", c.test},
                     {"bytes_moved", c.moved},
                     {"rounds", c.shm_s.size()},
                     {"reps_per_round", c.reps},
                     {"memcpy_s", median_of(c.memcpy_s)},
                     {"shm_median_s", median_of(c.shm_s)},
                     {"pipe_median_s", median_of(c.pipe_s)},
                     {"memcpy", spread(c.memcpy_s)},
                     {"shm", spread(c.shm_s)},
                     {"pipe", spread(c.pipe_s)}};
      if (!c.py_s.empty()) {
        r["python_median_s"] = median_of(c.py_s);
        r["python"] = spread(c.py_s);
      } else {
        r["python_median_s"] = nullptr;
      }
      rows.push_back(std::move(r));
      say("%-7s %-10s %-20s %-20s %-20s %-20s\n", size_name(c.size).c_str(), c.test,
          txt(c.memcpy_s).c_str(), txt(c.shm_s).c_str(), txt(c.pipe_s).c_str(),
          py_ ? txt(c.py_s).c_str() : python_note_.c_str());
      say("%-7s %-10s %-20s %-20s %-20s %-20s\n", "", "", range(c.memcpy_s).c_str(),
          range(c.shm_s).c_str(), range(c.pipe_s).c_str(), range(c.py_s).c_str());
    }
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

  /// Median milliseconds of `k` start-ups of a process_pool of `workers`.
  double startup_ms(io_thread& io, std::size_t workers, std::size_t k) {
    std::vector<double> ms;
    for (std::size_t r = 0; r < k; ++r)
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
    const std::size_t rounds = std::max<std::size_t>(5, n_.rounds);
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
    rows.push_back({{"name", "crew process_pool(1) to first result, plain (interleaved)"},
                    {"small_ms", pm},
                    {"small", spread(plain)}});
    rows.push_back({{"name", "crew process_pool(1) to first result, sandboxed (interleaved)"},
                    {"small_ms", bm},
                    {"small", spread(boxed)},
                    {"ratio_median", rm},
                    {"ratio_min", *lo},
                    {"ratio_max", *hi},
                    {"rounds", rounds}});
  }

  // 4. Pool start-up, in interleaved rounds: crew process_pool(1) to its first result and
  // posix_spawn+wait of crew-worker --list (each the median of startup_per_round), then
  // process_pool(2), process_pool(8) and fork+exec once each; with a small coordinator, then
  // holding 1 GiB.
  void startup(io_thread& io) {
    const std::string worker = crew::default_worker_executable().string();
    const std::size_t R = n_.rounds, k = n_.startup_per_round;
    struct line {
      std::string name;
      std::vector<double> small, big;
    };
    std::vector<line> lines;
    for (std::size_t w : {1, 2, 8})
      lines.push_back({"crew process_pool(" + std::to_string(w) + ") to first result", {}, {}});
    lines.push_back({"raw posix_spawn + waitpid (crew-worker --list)", {}, {}});
    lines.push_back({"raw fork + exec + waitpid (crew-worker --list)", {}, {}});
    const std::vector<std::string> list{"--list"};
    for (bool big : {false, true}) {
      std::optional<raw::hold_heap> heap;
      if (big) {
        progress("startup: holding 1 GiB");
        heap.emplace(std::size_t{1} << 30);
      }
      const std::string what = big ? "1 GiB coordinator" : "small coordinator";
      progress("startup: " + what + " (RSS " + mib(rss_bytes()) + "), warm-up");
      first_result_ms(io, 1);
      raw::spawn_wait_samples_ms(worker, list, 1, true);
      paired p;
      auto at = [&](std::size_t i) -> std::vector<double>& {
        return big ? lines[i].big : lines[i].small;
      };
      for (std::size_t r = 0; r < R; ++r) {
        progress("startup: " + what + ", " + round_of(r, R));
        const double c = startup_ms(io, 1, k);
        const double s = median_of(raw::spawn_wait_samples_ms(worker, list, k, false));
        p.add(c, s);
        at(0).push_back(c);
        at(3).push_back(s);
        at(1).push_back(first_result_ms(io, 2));
        at(2).push_back(first_result_ms(io, 8));
        at(4).push_back(median_of(raw::fork_exec_wait_samples_ms(worker, list, k, false)));
      }
      pairs_[big ? "startup_big" : "startup_small"] = p;
    }
    say("\n4. Start-up: constructing process_pool(N) until the first result; raw: %s --list. %zu "
        "rounds interleaved\n   (crew(1), posix_spawn: each the median of %zu; crew(2), crew(8), "
        "fork+exec: %zu): median of the rounds (min-max)\n%-48s %10s %15s %10s %15s\n",
        fs::path(worker).filename().c_str(), R, k, k, "", "small", "min - max", "1 GiB",
        "min - max");
    json::array rows;
    for (const auto& l : lines) {
      rows.push_back({{"name", l.name},
                      {"small_ms", median_of(l.small)},
                      {"one_gib_ms", median_of(l.big)},
                      {"small", spread(l.small)},
                      {"one_gib", spread(l.big)},
                      {"rounds", l.small.size()}});
      say("%-48s %7.2f ms %15s %7.2f ms %15s\n", l.name.c_str(), median_of(l.small),
          min_max(l.small, "%.2f").c_str(), median_of(l.big), min_max(l.big, "%.2f").c_str());
    }
    sandbox_startup(io, rows);
    doc["startup"] = std::move(rows);
  }

  // 6. The notebook's CPU function (one run each side: seconds long, not a ratio target).
  void longcomp(io_thread& io) {
    progress("longcomp: one call");
    const double t0 = now();
    const double v = crew::demo::long_comp_value(0);
    const double one = now() - t0;
    require(v == long_comp_expected, "long_comp(0) = " + fmt("%.17g", v));
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
    std::optional<double> py_value, py_one, py_seq, py_pool;
    if (py_) {
      progress("longcomp: Python");
      const auto a = py_->call({{"cmd", "long_comp"}, {"quick", opt_.quick}});
      auto get = [&](const char* key) -> std::optional<double> {
        const auto* x = a.if_contains(key);
        return x && x->is_number() ? std::optional<double>(x->to_number<double>()) : std::nullopt;
      };
      py_value = get("value_0");
      py_one = get("one_call_s");
      py_seq = get("sequential_4_s");
      py_pool = get("pool_4_calls_s");
      require(py_value && *py_value == v, "long_comp(0) differs from Python's");
    }
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
    say("\n6. The notebook's CPU function long_comp (one run each): C++ %.17g, Python %s (%s)\n"
        "%-36s %12s %12s %10s\n",
        v, py_value ? fmt("%.17g", *py_value).c_str() : "-",
        py_value ? "equal" : python_note_.c_str(), "", "C++ (crew)", "Python", "speed-up");
    auto ln = [&](const char* what, double c, std::optional<double> p) {
      say("%-36s %12s %12s %10s\n", what, time_name(c).c_str(), s(p).c_str(),
          p ? fmt("%.1fx", *p / c).c_str() : "-");
    };
    ln("one call, in-process", one, py_one);
    ln("4 calls in sequence", seq, py_seq);
    ln("4 calls on 2 workers (map)", par, py_pool);
    say("%-36s %12s\n", "  parallel speed-up over sequential", fmt("%.2fx", seq / par).c_str());
  }

  // Heap allocations on the coordinator per trivial task (alloc_count.hpp: every thread of
  // this process, operator new and Asio's aligned_alloc alike), in rounds: process_pool(1,
  // pipe) async_submit(identity(i), handler) (a) many in flight, submitted from this thread,
  // (b) one at a time, each from the previous one's completion handler (chain); and
  // thread_pool(2)'s async_submit many in flight.
  void alloc(io_thread& io) {
    if (!allocation_hook_active()) {
      const std::string why =
          "not measured: no allocation hook in this build (sanitizers bring their own malloc)";
      say("\nAllocations per task: %s\n", why.c_str());
      doc["alloc"] = {{"skipped", why}};
      alloc_note_ = why;
      return;
    }
    const std::size_t R = n_.rounds;
    progress("alloc: process_pool(1, pipe), thread_pool(2)");
    auto pool = make_pool(io, crew::transport::pipe);
    crew::thread_pool tp(jobs_, 2);
    // The states live until the pools are done: a handler may still be returning from
    // set_value() when the waiting thread wakes up.
    struct state {
      std::atomic<std::size_t> left{0};
      std::atomic<bool> wrong{false};
      std::promise<void> done;
    };
    std::vector<std::unique_ptr<state>> states;
    auto many = [&](auto& p, std::size_t n) {
      auto* st = states.emplace_back(std::make_unique<state>()).get();
      st->left = n;
      auto f = st->done.get_future();
      const auto a0 = allocation_count();
      for (std::size_t i = 0; i < n; ++i) {
        const int v = static_cast<int>(i);
        p.async_submit(identity(v), [st, v](std::exception_ptr ep, int r) {
          if (ep || r != v) st->wrong = true;
          if (st->left.fetch_sub(1) == 1) st->done.set_value();
        });
      }
      f.get();
      const auto a1 = allocation_count();
      require(!st->wrong, "identity, many in flight (alloc)");
      return static_cast<double>(a1 - a0) / static_cast<double>(n);
    };
    auto one = [&](std::size_t n) {
      auto c = std::make_shared<chain<crew::process_pool>>(*pool, n);
      auto f = c->done.get_future();
      const auto a0 = allocation_count();
      boost::asio::post(io.context(), [c] { c->start(); });
      f.get();
      const auto a1 = allocation_count();
      return static_cast<double>(a1 - a0) / static_cast<double>(n);
    };
    many(*pool, n_.alloc_warm_up);
    one(n_.alloc_warm_up);
    many(tp, n_.alloc_warm_up);
    paired a, b, t;
    for (std::size_t r = 0; r < R; ++r) {
      progress("alloc: " + round_of(r, R));
      a.add_alone(many(*pool, n_.alloc_many));
      b.add_alone(one(n_.alloc_one));
      t.add_alone(many(tp, n_.alloc_many));
    }
    tp.join();
    close_pool(pool);
    pairs_["alloc_many"] = a;
    pairs_["alloc_one"] = b;
    pairs_["alloc_thread"] = t;
    say("\nAllocations per task on the coordinator (malloc family counted in this process, all "
        "threads), identity(i) with a\n   callback handler; %zu rounds: median (min-max)\n%-72s "
        "%9s %15s %9s\n",
        R, "what", "allocs", "min - max", "per round");
    json::array rows;
    auto row = [&](const std::string& name, const paired& p, std::size_t n) {
      rows.push_back({{"name", name},
                      {"tasks_per_round", n},
                      {"rounds", p.crew.size()},
                      {"allocations_per_task", median_of(p.crew)},
                      {"spread", spread(p.crew)}});
      say("%-72s %9.2f %15s %9zu\n", name.c_str(), median_of(p.crew),
          min_max(p.crew, "%.2f").c_str(), n);
    };
    row("process_pool(1, pipe) async_submit, many in flight (from this thread)", a, n_.alloc_many);
    row("process_pool(1, pipe) async_submit, one at a time (from the handler)", b, n_.alloc_one);
    row("thread_pool(2) async_submit, many in flight", t, n_.alloc_many);
    doc["alloc"] = {{"hook", "malloc, calloc, realloc, aligned_alloc, memalign, posix_memalign"},
                    {"rows", std::move(rows)}};
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
    const std::size_t rounds = n_.rounds, k = n_.remote_samples;
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
    const std::size_t rounds = n_.rounds, k = n_.connect_samples, m = n_.connect_pipelined,
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
      pairs_["connect_lat"] = lat;
      pairs_["connect_lat_relayed"] = lat_relayed;
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
      pairs_["connect_tput"] = tput;
      pairs_["connect_tput_per_msg"] = tput_per_msg;
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

  /// The target `key` of pairs_ names, or a target "not measured" (with `missing`).
  void add_target(const std::string& name, const std::string& key, double bound, bool at_least,
                  const std::string& unit, const std::string& missing = "not measured",
                  const std::string& note = "") {
    target t = unmeasured(name, bound, at_least, missing, unit);
    const auto it = pairs_.find(key);
    if (it != pairs_.end() && !it->second.ratio.empty()) {
      const auto& p = it->second;
      const auto [lo, hi] = std::minmax_element(p.ratio.begin(), p.ratio.end());
      t.ratio = median_of(p.ratio);
      t.ratio_min = *lo;
      t.ratio_max = *hi;
      t.rounds = p.ratio.size();
      t.round_ratios = p.ratio;
      t.crew_median = median_of(p.crew);
      if (!p.raw.empty()) t.peer_median = median_of(p.raw);
      t.figures = show(unit, *t.crew_median) +
                  (t.peer_median ? " vs " + show(unit, *t.peer_median) : std::string(" per task")) +
                  (note.empty() ? "" : "; " + note);
    }
    targets.push_back(std::move(t));
  }

  void evaluate() {
    // Why a Python target has no ratio: its section did not run, or Python did not.
    auto py_missing = [&](const char* section) {
      return py_ || !opt_.has(section) ? std::string("not measured")
                                       : "n/a: Python " + python_note_;
    };
    add_target("processes many-in-flight vs Pool.apply_async", "trivial_vs_python", 10, true,
               "per_s", py_missing("trivial"));
    add_target("processes many-in-flight vs raw pipelined pipe", "trivial_vs_pipe", 0.3, true,
               "per_s");
    add_target("map over a million ints vs Pool.map default chunksize", "map_default", 2, true,
               "per_s", py_missing("map"));
    add_target("map, default chunks vs Pool.map default chunksize (issue 17)", "map_default", 5,
               true, "per_s", py_missing("map"));
    add_target("map, best chunk size each side vs Pool.map's best (issue 17)", "map_best", 10, true,
               "per_s", py_missing("map"), map_best_note_);
    add_target("crew run vs process_pool::map, start-up included (issue 13)", "cli", 2, false, "s",
               cli_note_, count_name(n_.map_ints) + " tasks");
    {
      target t =
          unmeasured(cli_rss_name_, 1.5, false,
                     cli_rss_ratio_ ? cli_rss_figures_ + " (one big run)" : cli_note_, "bytes");
      t.ratio = cli_rss_ratio_;
      if (cli_rss_ratio_) {
        t.ratio_min = t.ratio_max = *cli_rss_ratio_;
        t.rounds = 1;
        t.crew_median = static_cast<double>(cli_rss_big_);
        t.peer_median = static_cast<double>(cli_rss_small_);
      }
      targets.push_back(std::move(t));
    }
    add_target("latency median crew pipe vs raw ping-pong, unpinned", "lat_unpinned", 1.5, false,
               "us");
    add_target("latency median crew pipe vs raw ping-pong, pinned", "lat_pinned", 1.5, false, "us");
    add_target("connect-back latency median vs raw TCP ping-pong (issue 16)", "connect_lat", 1.5,
               false, "us");
    add_target("  (info) same vs raw TCP ping-pong through a relay thread + pipe",
               "connect_lat_relayed", 1.5, false, "us");
    add_target("connect-back pipelined vs raw TCP pipelined, batched echo", "connect_tput", 0.5,
               true, "per_s");
    add_target("  (info) same vs raw TCP pipelined, one write per echo", "connect_tput_per_msg",
               0.5, true, "per_s");
    add_target("64 MiB in+small: crew shm vs Python Pool.apply", "big_in_vs_python", 20, true, "s",
               py_missing("payload"), "crew shm vs Python");
    add_target("64 MiB in+small: crew shm vs memcpy bandwidth", "big_in_vs_memcpy", 0.5, true, "s",
               "not measured", "crew shm vs memcpy of the same bytes");
    add_target("64 MiB echo: crew shm vs Python Pool.apply", "big_echo_vs_python", 20, true, "s",
               py_missing("payload"), "crew shm vs Python");
    add_target("64 MiB echo: crew shm vs memcpy bandwidth (issue 17: 0.3)", "big_echo_vs_memcpy",
               0.3, true, "s", "not measured", "crew shm vs memcpy of the same bytes");
    // The target is the pinned pair: unpinned, the ratio measures where this VM's scheduler
    // puts the waking thread (5 us on the caller's CPU, 15-70 us on the other, for rounds at
    // a time) more than either side's cost; it stays as information, with its spread.
    add_target("thread_pool per task (submit+future) vs bare asio, pinned 0 / 1",
               "thread_vs_asio_pinned", 1.5, false, "us");
    add_target("  (info) same, unpinned", "thread_vs_asio", 1.5, false, "us");
    add_target("  (info) same unpinned, async_submit, handler sets a promise",
               "thread_direct_vs_asio", 1.5, false, "us");
    add_target("start-up to first result vs posix_spawn+wait, small", "startup_small", 1.5, false,
               "ms");
    add_target("start-up to first result vs posix_spawn+wait, 1 GiB", "startup_big", 1.5, false,
               "ms");
    // Flat: RSS after the largest size within 10% (at least 4 MiB) of RSS after 10^4.
    {
      target t = unmeasured("RSS flat from 10^4 tasks (growth / allowance)", 1, false,
                            "not measured", "bytes");
      const auto base = std::find_if(scaling_rss_.begin(), scaling_rss_.end(),
                                     [](const auto& p) { return p.first == 10'000; });
      if (base != scaling_rss_.end() && scaling_rss_.back().first > base->first) {
        const double b = static_cast<double>(base->second),
                     e = static_cast<double>(scaling_rss_.back().second);
        const double allowed = std::max(0.1 * b, 4.0 * MiB);
        t.ratio = t.ratio_min = t.ratio_max = (e - b) / allowed;
        t.rounds = 1;
        t.crew_median = e;
        t.peer_median = b;
        t.figures = mib(base->second) + " at 10^4 -> " + mib(scaling_rss_.back().second) + " at " +
                    std::to_string(scaling_rss_.back().first) + " (allowed +" +
                    mib(static_cast<std::size_t>(allowed)) + ")";
      }
      targets.push_back(std::move(t));
    }
    add_target("allocations per trivial async_submit, many in flight (issue 17)", "alloc_many", 2,
               false, "allocations", alloc_note_);
    add_target("  (info) allocations per trivial async_submit, one at a time", "alloc_one", 2,
               false, "allocations", alloc_note_);
    add_target("  (info) same, thread_pool(2) async_submit, many in flight", "alloc_thread", 2,
               false, "allocations", alloc_note_);
    json::array arr;
    auto opt = [](std::optional<double> x) { return x ? json::value(*x) : json::value(nullptr); };
    for (const auto& t : targets)
      arr.push_back({{"target", t.name},
                     {"ratio", opt(t.ratio)},
                     {"ratio_min", t.ratio ? json::value(t.ratio_min) : json::value(nullptr)},
                     {"ratio_max", t.ratio ? json::value(t.ratio_max) : json::value(nullptr)},
                     {"rounds", t.rounds},
                     {"round_ratios", json::array(t.round_ratios.begin(), t.round_ratios.end())},
                     {"crew_median", opt(t.crew_median)},
                     {"peer_median", opt(t.peer_median)},
                     {"unit", t.unit},
                     {"bound", t.bound},
                     {"at_least", t.at_least},
                     {"verdict", verdict(t)},
                     {"figures", t.figures}});
    doc["targets"] = std::move(arr);
  }

  const options& opt_;
  const counts n_;
  python_peer* py_;
  std::string python_note_;
  crew::registry jobs_;

  /// Every paired measurement a target reads, by key (see evaluate()).
  std::map<std::string, paired> pairs_;
  std::optional<double> pipelined_per_s_;  // section 1's raw pipelined limit, for section 2
  std::string map_best_note_;
  std::vector<std::pair<std::size_t, std::size_t>> scaling_rss_;
  std::optional<double> cli_rss_ratio_;
  std::size_t cli_rss_big_ = 0, cli_rss_small_ = 0;
  std::string cli_rss_figures_, cli_note_ = "not measured",
                                cli_rss_name_ = "crew run peak RSS flat (issue 13)";
  std::string alloc_note_ = "not measured";
};

int usage() {
  std::cerr
      << "usage: crew-bench [--quick] [--json] [--skip-python] [--rounds N] [--sections a,b,...]\n"
         "                  [--svg FILE] [--remote-env FILE]\n"
         "sections: trivial, latency, payload, startup, scaling, longcomp, map, alloc, cli, "
         "connect (the default),\n"
         "          remote (workers through ssh and srun; run when a cluster is given)\n"
         "Every comparison runs in interleaved rounds (crew, peer, crew, peer, ...): 7 by "
         "default, 3 with --quick;\n"
         "a target's ratio is the median of the rounds' ratios, shown with their min-max, and "
         "every row is the\n"
         "median of its rounds (--json: {median, min, max}). Python's pools: peers.py --serve, "
         "one child for the run.\n"
         "--quick            small counts and 3 rounds: a smoke test (results checked, timings "
         "rough)\n"
         "--rounds N         rounds of every comparison (thread_pool vs Asio: 3N short "
         "blocks); at least 5 for\n"
         "                   numbers to quote\n"
         "--json             one JSON document on stdout (progress on stderr)\n"
         "--skip-python      no Python peers: their rows say so, their targets are n/a\n"
         "--svg FILE         a bar chart of throughput and payload bandwidth\n"
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
    else if (a == "--rounds" && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long r = std::strtoul(argv[++i], &end, 10);
      if (!end || *end != '\0' || r < 1 || r > 1000) {
        std::cerr << "crew-bench: --rounds wants a number from 1 to 1000\n";
        return usage();
      }
      opt.rounds = r;
    } else if (a == "--remote-env" && i + 1 < argc)
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
    // Python's pools: one peers.py --serve for the run, answering a command per round.
    std::unique_ptr<python_peer> py;
    std::string python_note;
    const bool wants_python = opt.has("trivial") || opt.has("latency") || opt.has("payload") ||
                              opt.has("longcomp") || opt.has("map");
    if (opt.skip_python)
      python_note = "skipped (--skip-python)";
    else if (!wants_python)
      python_note = "not needed by the sections asked for";
    else if (const auto python = find_on_path("python3"); !python)
      python_note = "skipped: python3 not found on PATH";
    else if (const auto script = find_peers(); !script)
      python_note = "skipped: peers.py not found (set $CREW_PEERS)";
    else {
      progress("Python peers: " + *python + " " + *script + " --serve --workers " +
               std::to_string(map_workers));
      py = std::make_unique<python_peer>(*python, *script, map_workers);
      python_note = "peers.py --serve: " + *script;
    }
    json::object doc;
    doc["machine"] = machine_info(py.get());
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
    bench b(opt, py.get(), python_note);
    b.run();
    for (auto& [k, v] : b.doc)
      doc[k] = v;
    if (py) {
      json::object p = py->hello();
      p.erase("ready");
      doc["python"] = std::move(p);
      py->finish();
    }
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
