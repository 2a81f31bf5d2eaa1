// `crew run`'s command line: every option, checked before anything starts.
//
// Contract: parse_run_options either returns options that are all within their documented
// bounds (numbers range-checked, --workers against what this machine allows, no unknown or
// positional argument, no abbreviated option) or prints one clear message to stderr and
// gives the exit code (usage, 2). Nothing is started or opened here but for reading
// /proc, the resource limits and --secret-file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace crew::cli {

struct run_options {
  std::string job;
  // The worker: empty = the built-in demo worker (crew-worker next to crew).
  std::string worker;
  std::vector<std::string> worker_args, env;  // env: "K=V"
  std::vector<std::string> env_allow;         // empty: the library's default allow-list
  std::string cwd;
  // Isolation (processes only): bubblewrap, paths granted, network.
  bool sandbox = false;
  std::vector<std::string> sandbox_write, sandbox_hide;
  bool sandbox_network = false;
  // Workers elsewhere: one launcher command per --launcher (split into words), the
  // worker's path on the other side, and the heartbeat deadline (0: the library's).
  std::vector<std::vector<std::string>> launchers;
  std::string remote_worker;
  long long heartbeat_timeout_ms = 0;
  // Workers that connect back (--listen): where the pool listens (empty host: it does not),
  // the command that starts them (--launcher-once, split into words; empty: someone else
  // does), the secret they prove (--secret-file, else $CREW_SECRET; empty: the pool makes
  // one, which only --launcher-once's workers get; never printed), TLS, and the start-up
  // deadline (0: the library's).
  std::string listen_host;
  std::uint16_t listen_port = 0;
  std::vector<std::string> launcher_once;
  std::string secret;
  bool tls = false;
  long long connect_timeout_ms = 0;
  bool listening() const noexcept { return !listen_host.empty(); }
  // The tasks: a range of integers, or JSON lines from `input` ("-" or empty: stdin).
  bool has_range = false;
  std::int64_t first = 0, last = 0;
  std::string input;
  std::string mode = "processes";  // inline | threads | processes
  std::size_t workers = 0;         // resolved: never 0 after parsing
  std::size_t chunk = 0;           // 0: adaptive
  bool keep_order = false;
  double io_scale = 1.0;
  long long timeout_ms = 0, grace_ms = 5000;
  unsigned retries = 0;
  std::string transport = "pipe";
  std::string joblog, resume, retry_failed, timeline;
  enum class format { text, jsonl, json } output = format::text;
  bool progress = false;  // resolved: only when stderr is a terminal, unless forced
  bool quiet = false;
};

/// The options, or the exit code to return at once (0 for --help/--version, 2 for a bad
/// command line, after printing why).
std::variant<run_options, int> parse_run_options(const std::vector<std::string>& args);

/// The most workers `mode` may have on this machine now, and why (the tightest of crew's
/// own maximum, RLIMIT_NPROC less the processes this user already runs, the open-file limit
/// at the descriptors a worker takes, and the kernel's thread maximum).
struct worker_limit {
  std::size_t max;
  std::string why;
};
worker_limit max_workers(std::string_view mode);

/// Parses all of `text` as a decimal integer within [lo, hi]; nullopt if it is not one
/// (sign, spaces, overflow and trailing characters included).
std::optional<long long> parse_integer(std::string_view text, long long lo, long long hi);

}  // namespace crew::cli
