#include "run_options.hpp"

#include "common.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

namespace crew::cli {
namespace po = boost::program_options;
namespace {

constexpr std::size_t crew_max_workers = 1024;
// Descriptors the coordinator holds per worker: stdin, stdout and stderr pipes, the pidfd,
// the shared-memory segment, and a spare.
constexpr std::size_t fds_per_worker = 6;
constexpr long long max_timeout_ms = 7LL * 24 * 3600 * 1000;  // a week
constexpr long long max_grace_ms = 3600LL * 1000;             // an hour
constexpr long long max_retries = 100;
constexpr long long max_chunk = 65536;
constexpr double max_io_scale = 1000;

// Threads (Linux counts them against RLIMIT_NPROC) of processes owned by this user.
std::size_t threads_of_this_user() {
  std::size_t n = 0;
  const auto uid = ::getuid();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(e.path() / "status");
    std::string line;
    bool mine = false;
    while (std::getline(in, line)) {
      if (line.rfind("Uid:", 0) == 0) mine = std::stoul(line.substr(4)) == uid;
      if (line.rfind("Threads:", 0) == 0 && mine) n += std::stoul(line.substr(8));
    }
  }
  return n;
}

long long read_number_file(const char* path) {
  std::ifstream in(path);
  long long v = -1;
  in >> v;
  return in ? v : -1;
}

bool bad(const std::string& message) {
  std::cerr << "crew run: " << message << "\n";
  return false;
}

// Parses an integer option held as text into `out`, within [lo, hi].
template <class T>
bool integer_option(const po::variables_map& vm, const char* name, long long lo, long long hi,
                    const char* unit, T& out) {
  if (!vm.count(name)) return true;
  const auto& text = vm[name].as<std::string>();
  const auto v = parse_integer(text, lo, hi);
  if (!v)
    return bad("--" + std::string(name) + " must be an integer from " + std::to_string(lo) +
               " to " + std::to_string(hi) + unit + ", not '" + text + "'");
  out = static_cast<T>(*v);
  return true;
}

}  // namespace

std::optional<long long> parse_integer(std::string_view text, long long lo, long long hi) {
  long long v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end || v < lo || v > hi) return std::nullopt;
  return v;
}

worker_limit max_workers(std::string_view mode) {
  worker_limit l{crew_max_workers, "crew's maximum"};
  auto tighten = [&](std::size_t v, std::string why) {
    if (v < l.max) l = {v, std::move(why)};
  };
  rlimit r{};
  if (::getrlimit(RLIMIT_NPROC, &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
    const std::size_t used = threads_of_this_user();
    const std::size_t cap = static_cast<std::size_t>(r.rlim_cur);
    // Leave room for the coordinator's own threads and the user's other work.
    const std::size_t headroom = 16 + cap / 10;
    tighten(cap > used + headroom ? cap - used - headroom : 0,
            "RLIMIT_NPROC (ulimit -u " + std::to_string(cap) + ", " + std::to_string(used) +
                " in use by this user, " + std::to_string(headroom) + " kept free)");
  }
  if (const long long threads_max = read_number_file("/proc/sys/kernel/threads-max");
      threads_max > 0)
    tighten(static_cast<std::size_t>(threads_max / 4),
            "a quarter of the kernel's threads-max (" + std::to_string(threads_max) + ")");
  if (mode == "processes" && ::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
    const std::size_t cap = static_cast<std::size_t>(r.rlim_cur);
    tighten(cap > 64 ? (cap - 64) / fds_per_worker : 0,
            "the open-file limit (ulimit -n " + std::to_string(cap) + ", " +
                std::to_string(fds_per_worker) + " per worker)");
  }
  return l;
}

std::variant<run_options, int> parse_run_options(const std::vector<std::string>& args) {
  run_options o;
  po::options_description desc(
      "crew run: run a job of a worker over JSON-lines input or a range of integers\n\n"
      "usage: crew run --job NAME [--range A:B | --input FILE] [options]\n"
      "       (without --range or --input, the tasks are read from standard input)\n\noptions");
  std::string range, format_text, workers, chunk, timeout, retries, grace, io_scale;
  std::vector<std::string> launcher_texts;
  std::string listen_text, launcher_once_text, secret_file;
  desc.add_options()("help,h", "show this help")("version", "print crew's version")(
      "job", po::value(&o.job), "the job to run (crew jobs [--worker EXE] lists them)")(
      "worker", po::value(&o.worker),
      "the worker executable (default: crew's demo worker); searched in PATH")(
      "worker-arg", po::value(&o.worker_args)->composing(),
      "an argument for the worker (repeat for more): --worker python3 --worker-arg w.py")(
      "env", po::value(&o.env)->composing(), "K=V: set in the workers' environment (repeatable)")(
      "env-allow", po::value(&o.env_allow)->composing(),
      "NAME or PREFIX*: a variable of this environment the workers inherit (repeatable; "
      "default: PATH, HOME, locale and a few more, never secrets; '*': all)")(
      "cwd", po::value(&o.cwd), "the workers' working directory")(
      "sandbox",
      "run each worker in a sandbox (bubblewrap): it sees no other process, no terminal, no "
      "network, a read-only file system (it can still read your files: --sandbox-hide)")(
      "sandbox-write", po::value(&o.sandbox_write)->composing(),
      "with --sandbox: a PATH the workers may write (repeatable)")(
      "sandbox-hide", po::value(&o.sandbox_hide)->composing(),
      "with --sandbox: a PATH the workers see empty, e.g. ~/.ssh (repeatable)")(
      "sandbox-network",
      "with --sandbox: the workers keep the network (without it they have none, not even "
      "127.0.0.1)")(
      "launcher", po::value(&launcher_texts)->composing(),
      "CMD: run workers through this command, e.g. 'ssh -T host1' or 'srun -n1 -u "
      "--jobid=J --overlap -w node1' (repeat for more hosts; workers are spread over them; "
      "docs/remote.md)")(
      "remote-worker", po::value(&o.remote_worker),
      "with --launcher or --launcher-once: the worker's path on the other side (default: "
      "--worker, or crew's demo worker at the same path as here)")(
      "heartbeat-timeout", po::value<std::string>(),
      "with --launcher or --listen: milliseconds of silence after which a remote worker is "
      "lost (default 10000)")(
      "listen", po::value(&listen_text),
      "ADDR:PORT: wait for --workers N workers to connect (crew-worker --connect HOST:PORT) "
      "instead of starting them; port 0: any free one ([::1]:0 for IPv6; docs/remote.md)")(
      "launcher-once", po::value(&launcher_once_text),
      "with --listen: CMD run once to start the workers, followed by the worker's command "
      "line, with CREW_CONNECT and CREW_SECRET in its environment, e.g. 'srun -N2 -n8 "
      "--input=none'")(
      "secret-file", po::value(&secret_file),
      "with --listen: the secret workers must prove, from FILE (mode 600; default: "
      "$CREW_SECRET, else a fresh one that only --launcher-once's workers get)")(
      "tls", "with --listen: encrypt every connection (TLS 1.3)")(
      "connect-timeout", po::value<std::string>(),
      "with --listen: milliseconds the pool waits while it has no worker before it gives up "
      "(default 60000)")(
      "input", po::value(&o.input),
      "FILE of JSON lines, one task per line: the JSON array of the job's arguments "
      "(- for standard input)")("range", po::value(&range),
                                "A:B runs job(i) for A <= i < B (a job of one integer)")(
      "mode", po::value(&o.mode),
      "inline | threads | processes (default); inline and threads "
      "run the demo jobs in this process")(
      "workers", po::value(&workers),
      "threads or processes (default: one per CPU; with --launcher, one per launcher; with "
      "--listen, required: how many workers connect)")(
      "chunk", po::value(&chunk),
      "processes: tasks sent to a worker at once (default: adapted to the tasks' length; 1 "
      "with --timeout)")("keep-order", "write results in input order (default: as they finish)")(
      "timeout", po::value(&timeout),
      "processes: milliseconds each task may run before its worker is stopped (0: none)")(
      "retries", po::value(&retries),
      "processes: run a task again, up to this many times, when its worker dies under it")(
      "grace", po::value(&grace),
      "on SIGINT/SIGTERM/SIGHUP, milliseconds running tasks get to finish (default 5000)")(
      "transport", po::value(&o.transport), "pipe | shm: how processes get arguments and results")(
      "io-scale", po::value(&io_scale), "demo jobs: scale long_io's 2 s sleep")(
      "joblog", po::value(&o.joblog),
      "append one JSON line per finished task, with its value, to FILE (docs/cli.md)")(
      "resume", po::value(&o.resume),
      "skip the tasks FILE (a job log) records as done, print their logged results, and log "
      "the new ones to FILE (or --joblog)")(
      "retry-failed", po::value(&o.retry_failed),
      "run only the tasks FILE (a job log) records as failed")(
      "timeline", po::value(&o.timeline), "draw the tasks as a Gantt chart into FILE.svg")(
      "format", po::value(&format_text),
      "text (default) | jsonl: one JSON record per task | "
      "json: one document at the end (small runs)")("jsonl", "the same as --format jsonl")(
      "json", "the same as --format json")(
      "progress", "draw the progress line even when stderr is not a terminal")(
      "no-progress", "never draw the progress line")("quiet,q", "no progress line and no summary");
  po::variables_map vm;
  try {
    const auto style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;
    auto parsed = po::command_line_parser(args).options(desc).style(style).run();
    const auto extra = po::collect_unrecognized(parsed.options, po::include_positional);
    if (!extra.empty()) {
      std::cerr << "crew run: unexpected argument '" << extra.front()
                << "' (options only; tasks come from --input, standard input or --range)\n"
                   "(see crew run --help)\n";
      return usage;
    }
    po::store(parsed, vm);
    if (vm.count("help")) {
      std::cout << desc << "\nexit codes: " << exit_codes_text
                << "\nexamples:\n  crew run --job long_comp --range 0:4\n"
                   "  crew run --worker python3 --worker-arg my_worker.py --job add --input "
                   "tasks.jsonl --jsonl\n";
      return ok;
    }
    if (vm.count("version")) {
      std::cout << "crew " << crew_version << "\n";
      return ok;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "crew run: " << e.what() << "\n(see crew run --help)\n";
    return usage;
  }
  auto fail = [] { return usage; };
  if (o.job.empty()) return bad("--job NAME is required (crew jobs lists them)"), fail();
  if (o.mode != "inline" && o.mode != "threads" && o.mode != "processes")
    return bad("--mode must be inline, threads or processes, not '" + o.mode + "'"), fail();
  if (o.transport != "pipe" && o.transport != "shm")
    return bad("--transport must be pipe or shm, not '" + o.transport + "'"), fail();
  if (!o.worker.empty() && o.mode != "processes")
    return bad("--worker runs in processes: --mode " + o.mode +
               " runs only crew's demo jobs, in this process"),
           fail();
  if (o.worker.empty() && (!o.worker_args.empty() || !o.env.empty() || !o.cwd.empty()) &&
      o.mode != "processes")
    return bad("--worker-arg, --env and --cwd are for worker processes"), fail();
  for (const auto& kv : o.env)
    if (kv.find('=') == std::string::npos || kv.front() == '=')
      return bad("--env takes K=V, not '" + kv + "'"), fail();
  for (const auto& name : o.env_allow)
    if (name.empty() || name.find('=') != std::string::npos || name.find('*') < name.size() - 1)
      return bad("--env-allow takes a NAME or a PREFIX* (e.g. LC_*), not '" + name + "'"), fail();
  o.sandbox = vm.count("sandbox") > 0;
  o.sandbox_network = vm.count("sandbox-network") > 0;
  if (!o.sandbox && (!o.sandbox_write.empty() || !o.sandbox_hide.empty() || o.sandbox_network))
    return bad("--sandbox-write, --sandbox-hide and --sandbox-network go with --sandbox"), fail();
  if ((o.sandbox || !o.env_allow.empty()) && o.mode != "processes")
    return bad("--sandbox and --env-allow are for worker processes, not --mode " + o.mode), fail();
  if (!launcher_texts.empty()) {
    std::string why;
    for (const auto& text : launcher_texts) {
      auto words = split_words(text, why);
      if (!words) return bad("--launcher '" + text + "': " + why), fail();
      if (words->empty()) return bad("--launcher needs a command, e.g. 'ssh -T host'"), fail();
      o.launchers.push_back(std::move(*words));
    }
    if (o.mode != "processes")
      return bad("--launcher runs worker processes, not --mode " + o.mode), fail();
    if (o.sandbox)
      return bad("--sandbox is for local workers: it does not go with --launcher"), fail();
    if (o.transport == "shm")
      return bad("--transport shm needs local workers (shared memory): it does not go with "
                 "--launcher"),
             fail();
  }
  if (vm.count("listen")) {
    std::string why;
    const auto at = parse_listen_address(listen_text, why);
    if (!at) return bad(why), fail();
    o.listen_host = at->host;
    o.listen_port = at->port;
    if (o.mode != "processes")
      return bad("--listen waits for worker processes, not --mode " + o.mode), fail();
    if (!o.launchers.empty())
      return bad("--listen and --launcher do not go together: workers either connect back "
                 "(--listen, --launcher-once) or are started one by one (--launcher)"),
             fail();
    if (o.sandbox)
      return bad("--sandbox is for local workers: it does not go with --listen"), fail();
    if (o.transport == "shm")
      return bad("--transport shm needs local workers (shared memory): it does not go with "
                 "--listen"),
             fail();
    if (vm.count("launcher-once")) {
      auto words = split_words(launcher_once_text, why);
      if (!words) return bad("--launcher-once '" + launcher_once_text + "': " + why), fail();
      if (words->empty())
        return bad("--launcher-once needs a command, e.g. 'srun -N2 -n8 --input=none'"), fail();
      o.launcher_once = std::move(*words);
    }
    o.tls = vm.count("tls") > 0;
    try {
      o.secret = listen_secret(secret_file);
    } catch (const std::exception& e) {
      return bad(std::string("--secret-file: ") + e.what()), fail();
    }
    if (o.secret.empty() && o.launcher_once.empty())
      return bad("--listen without --launcher-once needs a secret the workers also have: "
                 "CREW_SECRET or --secret-file"),
             fail();
  } else if (vm.count("launcher-once") || vm.count("secret-file") || vm.count("tls") ||
             vm.count("connect-timeout")) {
    return bad("--launcher-once, --secret-file, --tls and --connect-timeout go with --listen"),
           fail();
  }
  if (o.launchers.empty() && o.launcher_once.empty() && !o.remote_worker.empty())
    return bad("--remote-worker goes with --launcher or --launcher-once"), fail();
  if (o.launchers.empty() && !o.listening() && vm.count("heartbeat-timeout"))
    return bad("--heartbeat-timeout goes with --launcher or --listen"), fail();
  if (!range.empty()) {
    const auto colon = range.find(':');
    const auto a =
        colon == std::string::npos
            ? std::nullopt
            : parse_integer(std::string_view(range).substr(0, colon), INT64_MIN, INT64_MAX);
    const auto b =
        colon == std::string::npos
            ? std::nullopt
            : parse_integer(std::string_view(range).substr(colon + 1), INT64_MIN, INT64_MAX);
    if (!a || !b || *a > *b)
      return bad("--range must be A:B with integers A <= B, not '" + range + "'"), fail();
    if (*a < 0 && *b > INT64_MAX + *a)  // B - A would overflow
      return bad("--range holds at most " + std::to_string(INT64_MAX) + " tasks"), fail();
    o.has_range = true;
    o.first = *a;
    o.last = *b;
  }
  if (o.has_range && !o.input.empty()) return bad("--range and --input do not go together"), fail();
  if (!o.resume.empty() && !o.retry_failed.empty())
    return bad("--resume and --retry-failed do not go together"), fail();
  if (!integer_option(vm, "timeout", 0, max_timeout_ms, " ms", o.timeout_ms) ||
      !integer_option(vm, "grace", 0, max_grace_ms, " ms", o.grace_ms) ||
      !integer_option(vm, "retries", 0, max_retries, "", o.retries) ||
      !integer_option(vm, "chunk", 0, max_chunk, "", o.chunk) ||
      !integer_option(vm, "heartbeat-timeout", 100, max_timeout_ms, " ms",
                      o.heartbeat_timeout_ms) ||
      !integer_option(vm, "connect-timeout", 100, max_timeout_ms, " ms", o.connect_timeout_ms))
    return usage;
  if (vm.count("io-scale")) {
    double v = -1;
    const char* end = io_scale.data() + io_scale.size();
    auto [p, ec] = std::from_chars(io_scale.data(), end, v);
    if (io_scale.empty() || ec != std::errc() || p != end || !std::isfinite(v) || v < 0 ||
        v > max_io_scale)
      return bad("--io-scale must be a number from 0 to " + std::to_string(int(max_io_scale)) +
                 ", not '" + io_scale + "'"),
             fail();
    if (!o.worker.empty()) return bad("--io-scale is for crew's demo jobs, not --worker"), fail();
    o.io_scale = v;
  }
  if (o.mode != "processes" &&
      (o.timeout_ms != 0 || o.retries != 0 || vm.count("chunk") || vm.count("transport")))
    return bad("--timeout, --retries, --chunk and --transport need --mode processes (a job in "
               "this process cannot be stopped or retried)"),
           fail();
  const int formats = (vm.count("jsonl") > 0) + (vm.count("json") > 0) + (vm.count("format") > 0);
  if (formats > 1) return bad("give one of --format, --jsonl and --json"), fail();
  if (vm.count("jsonl") || format_text == "jsonl")
    o.output = run_options::format::jsonl;
  else if (vm.count("json") || format_text == "json")
    o.output = run_options::format::json;
  else if (!format_text.empty() && format_text != "text")
    return bad("--format must be text, jsonl or json, not '" + format_text + "'"), fail();
  if (vm.count("progress") && vm.count("no-progress"))
    return bad("--progress and --no-progress do not go together"), fail();
  o.quiet = vm.count("quiet") > 0;
  o.progress = !o.quiet && !vm.count("no-progress") && (vm.count("progress") || ::isatty(2) == 1);
  o.keep_order = vm.count("keep-order") > 0;

  const std::size_t cpus = std::max(1u, std::thread::hardware_concurrency());
  if (vm.count("workers")) {
    const auto v = parse_integer(workers, 0, INT64_MAX);
    if (!v)
      return bad("--workers must be a whole number (0: one per CPU), not '" + workers + "'"),
             fail();
    o.workers = static_cast<std::size_t>(*v);
  }
  if (o.listening() && o.workers == 0)
    return bad("--listen needs --workers N: how many workers are to connect"), fail();
  if (o.mode == "inline") o.workers = 1;  // one task at a time, in this thread
  if (o.workers == 0) o.workers = o.launchers.empty() ? cpus : o.launchers.size();
  if (o.mode != "inline") {
    const auto limit = max_workers(o.mode);
    if (o.workers > limit.max)
      return bad("--workers " + std::to_string(o.workers) +
                 " is more than this machine allows: " + "at most " + std::to_string(limit.max) +
                 " (" + limit.why + "; " + std::to_string(cpus) + " CPUs)"),
             fail();
  }
  return o;
}

}  // namespace crew::cli
