// crew run: one job over a range of integers, inline, on threads or on worker processes.
#include "common.hpp"
#include "demo_jobs.hpp"
#include "recorder.hpp"
#include "timeline.hpp"

#include <crew/inline_runner.hpp>
#include <crew/process_pool.hpp>
#include <crew/thread_pool.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <boost/program_options.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <unistd.h>

namespace crew::cli {
namespace po = boost::program_options;
namespace json = boost::json;
namespace {

struct outcome {
  int arg;
  std::exception_ptr error;
  json::value value;  // the result as JSON
  std::string text;   // the result as Python would print it
};

template <class R>
void set_value(outcome& o, const R& v) {
  if constexpr (std::is_floating_point_v<R>) {
    o.value = v;
    o.text = py_float(v);
  } else {
    o.value = v;
    o.text = std::to_string(v);
  }
}

// Submits job(i) for every i of `args` through `runner` (labelled with i, for the events)
// and waits for all of them, keeping each task's own outcome (map() would stop at the
// first failure).
template <class Runner, class R>
std::vector<outcome> run_args(Runner& runner, const job<R(int)>& j, const std::vector<int>& args) {
  std::vector<std::future<R>> futures;
  for (int i : args) {
    task_options o;
    o.label = std::to_string(i);
    futures.push_back(runner.submit(j(i), std::move(o)));
  }
  std::vector<outcome> out;
  for (std::size_t k = 0; k < args.size(); ++k) {
    outcome o{args[k], nullptr, nullptr, {}};
    try {
      set_value(o, futures[k].get());
    } catch (...) {
      o.error = std::current_exception();
    }
    out.push_back(std::move(o));
  }
  return out;
}

struct run_config {
  std::string mode = "processes";
  std::size_t workers = 0;
  double io_scale = 1.0;
  std::string transport = "pipe";
  long timeout_ms = 0;   // processes: each task's deadline; 0 = none
  int retries = 0;       // processes: runs again after the worker died under the task
  long grace_ms = 5000;  // processes: after SIGINT/SIGTERM, how long running tasks may go on
  std::function<void(const output_line&)> on_output;  // processes: workers' lines (empty: default)
};

// The signal that interrupted a processes run (SIGINT or SIGTERM), or 0.
std::atomic<int> interrupted{0};

// SIGINT/SIGTERM during a processes run: a graceful drain. Queued tasks are cancelled,
// running ones get `grace` to finish, then they are cancelled and the workers stopped;
// the results so far are still reported. A second signal ends the process at once (its
// workers die with it: parent-death signal and end of input).
class drain_on_signal {
 public:
  drain_on_signal(boost::asio::io_context& ioc, process_pool& pool, std::chrono::milliseconds grace)
      : ioc_(ioc), signals_(ioc, SIGINT, SIGTERM) {
    signals_.async_wait([this, &pool, grace](boost::system::error_code ec, int sig) {
      if (ec) return;
      interrupted = sig;
      std::cerr << "crew run: " << sigdescr_np(sig) << ": stopping; queued tasks are cancelled, "
                << "running ones get " << grace.count() << " ms (a second signal exits now)\n";
      pool.async_shutdown(grace, [] {});
      signals_.async_wait([](boost::system::error_code e, int again) {
        if (!e) std::_Exit(128 + again);
      });
    });
  }
  ~drain_on_signal() {  // the signal_set belongs to the io thread: cancel it there
    std::promise<void> done;
    boost::asio::post(ioc_, [&] {
      signals_.cancel();
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  boost::asio::io_context& ioc_;
  boost::asio::signal_set signals_;
};

using range_runner = std::function<std::vector<outcome>(
    const run_config& c, const std::vector<int>& args, recorder& rec)>;

template <class R>
range_runner make_runner(const job<R(int)>& j) {
  return [&j](const run_config& c, const std::vector<int>& args, recorder& rec) {
    registry jobs;
    demo::register_jobs(jobs);
    demo::set_io_scale(c.io_scale);
    if (c.mode == "inline") {
      inline_runner r(jobs, boost::asio::system_executor(), rec.handler());
      return run_args(r, j, args);
    }
    if (c.mode == "threads") {
      thread_pool pool(jobs, c.workers, rec.handler());
      return run_args(pool, j, args);
    }
    io_thread io;
    process_pool_options o;
    o.on_event = rec.handler();
    if (c.on_output) o.on_output = c.on_output;
    o.workers = c.workers;
    o.args = {"--io-scale", std::to_string(c.io_scale)};
    o.transport = c.transport == "shm" ? crew::transport::shm : crew::transport::pipe;
    o.task_timeout = std::chrono::milliseconds(c.timeout_ms);
    o.retries = static_cast<unsigned>(c.retries);
    process_pool pool(io.context().get_executor(), o);
    std::vector<outcome> out;
    {
      // Until every worker is reaped: a signal during join() still means a drain.
      drain_on_signal drain(io.context(), pool, std::chrono::milliseconds(c.grace_ms));
      out = run_args(pool, j, args);
      pool.join();
    }
    return out;
  };
}

// The jobs `crew run` can drive: those that take a single int.
const std::map<std::string, range_runner>& runnable_jobs() {
  static const std::map<std::string, range_runner> jobs{
      {demo::long_io.name(), make_runner(demo::long_io)},
      {demo::long_comp.name(), make_runner(demo::long_comp)},
      {demo::identity.name(), make_runner(demo::identity)},
      {demo::chatty.name(), make_runner(demo::chatty)},
  };
  return jobs;
}

json::object failures_json(const std::map<std::string, std::size_t>& by_cause) {
  json::object o;
  for (const auto& [cause, n] : by_cause)
    o[cause] = n;
  return o;
}

bool parse_range(const std::string& s, int& first, int& last) {
  std::istringstream in(s);
  char colon = 0;
  if (!(in >> first >> colon >> last) || colon != ':' || !in.eof()) return false;
  return first <= last;
}

// The tasks of a job log (--joblog): the last record of each argument, for --resume and
// --retry-failed. A line that does not parse (a run killed mid-write) is skipped.
struct logged {
  std::map<int, bool> ok_by_arg;  // argument -> its last outcome was ok
  std::string job;
  std::size_t lines = 0, skipped = 0;
};

std::optional<logged> read_joblog(const std::string& path, std::string& why) {
  std::ifstream in(path);
  if (!in) {
    why = "cannot open job log '" + path + "'";
    return std::nullopt;
  }
  logged out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ++out.lines;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    const auto* o = ec ? nullptr : v.if_object();
    const auto* args = o ? o->if_contains("args") : nullptr;
    const auto* outcome = o ? o->if_contains("outcome") : nullptr;
    const auto* job = o ? o->if_contains("job") : nullptr;
    if (!args || !args->is_array() || args->as_array().size() != 1 ||
        !args->as_array()[0].is_int64() || !outcome || !outcome->is_string() || !job ||
        !job->is_string()) {
      ++out.skipped;
      continue;
    }
    if (out.job.empty()) out.job = job->as_string().c_str();
    if (out.job != job->as_string().c_str()) {
      why = "job log '" + path + "' holds more than one job ('" + out.job + "', '" +
            job->as_string().c_str() + "')";
      return std::nullopt;
    }
    out.ok_by_arg[static_cast<int>(args->as_array()[0].as_int64())] = outcome->as_string() == "ok";
  }
  return out;
}

// The live progress line on a terminal: done/total, rate, ETA, failures so far.
class progress_line {
 public:
  progress_line(std::size_t total, bool active) : total_(total), active_(active) {}
  void update(std::size_t done, std::size_t failed, bool force = false) {
    if (!active_) return;
    const double t = clock_.seconds();
    if (!force && t - last_ < 0.1) return;
    last_ = t;
    const double rate = t > 0 ? static_cast<double>(done) / t : 0;
    char eta[32] = "-";
    if (rate > 0 && done < total_)
      std::snprintf(eta, sizeof eta, "%.1fs", static_cast<double>(total_ - done) / rate);
    std::fprintf(stdout, "\r\033[K[%zu/%zu] %.1f/s ETA %s, %zu failed", done, total_, rate, eta,
                 failed);
    std::fflush(stdout);
  }
  void clear() {
    if (!active_) return;
    std::fprintf(stdout, "\r\033[K");
    std::fflush(stdout);
  }
  bool active() const noexcept { return active_; }
  /// Shows the last state again (after other output cleared it).
  void redraw(std::size_t done, std::size_t failed) { update(done, failed, true); }

 private:
  std::size_t total_;
  bool active_;
  stopwatch clock_;
  double last_ = -1;
};

}  // namespace

int run_main(const std::vector<std::string>& args) {
  po::options_description desc("crew run: run a job over a range of integers\n\noptions");
  std::string job_name, range, joblog, resume, retry_failed, timeline;
  run_config c;
  auto& mode = c.mode;
  auto& workers = c.workers;
  auto& io_scale = c.io_scale;
  desc.add_options()("help,h", "show this help")(
      "job", po::value(&job_name)->required(), "job to run (long_io, long_comp, identity, chatty)")(
      "range", po::value(&range), "A:B runs job(i) for A <= i < B")(
      "mode", po::value(&mode)->default_value(mode), "inline | threads | processes")(
      "workers", po::value(&workers)->default_value(workers),
      "threads or processes (0: one per CPU)")(
      "io-scale", po::value(&io_scale)->default_value(io_scale), "scale long_io's 2 s sleep")(
      "timeout", po::value(&c.timeout_ms)->default_value(c.timeout_ms),
      "processes: milliseconds each task may run before its worker is stopped (0: none)")(
      "retries", po::value(&c.retries)->default_value(c.retries),
      "processes: run a task again, up to this many times, when its worker dies under it")(
      "grace", po::value(&c.grace_ms)->default_value(c.grace_ms),
      "processes: on SIGINT/SIGTERM, milliseconds running tasks get to finish before they "
      "are cancelled (exit code 130 / 143)")("transport",
                                             po::value(&c.transport)->default_value(c.transport),
                                             "pipe | shm: how processes get arguments and results")(
      "joblog", po::value(&joblog),
      "append one JSON line per finished task to FILE (schema: docs/cli.md)")(
      "resume", po::value(&resume),
      "skip the tasks FILE (a job log) records as done; new records go to FILE too unless "
      "--joblog names another")(
      "retry-failed", po::value(&retry_failed),
      "run only the tasks FILE (a job log) records as failed (no --range needed)")(
      "timeline", po::value(&timeline), "draw the tasks as a Gantt chart into FILE.svg")(
      "quiet,q", "no progress line")("json", "print one JSON document instead of text");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc
                << "\nexample: crew run --job long_comp --range 0:4 --mode processes --json\n";
      return ok;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "crew run: " << e.what() << "\n(see crew run --help)\n";
    return usage;
  }
  if (!resume.empty() && !retry_failed.empty()) {
    std::cerr << "crew run: --resume and --retry-failed do not go together\n";
    return usage;
  }
  int first = 0, last = 0;
  if (range.empty() && retry_failed.empty()) {
    std::cerr << "crew run: --range is required (or --retry-failed FILE)\n";
    return usage;
  }
  if (!range.empty() && !parse_range(range, first, last)) {
    std::cerr << "crew run: --range must be A:B with integers A <= B, not '" << range << "'\n";
    return usage;
  }
  if (mode != "inline" && mode != "threads" && mode != "processes") {
    std::cerr << "crew run: --mode must be inline, threads or processes, not '" << mode << "'\n";
    return usage;
  }
  if (c.timeout_ms < 0 || c.grace_ms < 0 || c.retries < 0) {
    std::cerr << "crew run: --timeout, --grace and --retries must not be negative\n";
    return usage;
  }
  if (c.transport != "pipe" && c.transport != "shm") {
    std::cerr << "crew run: --transport must be pipe or shm, not '" << c.transport << "'\n";
    return usage;
  }
  if (io_scale < 0) {
    std::cerr << "crew run: --io-scale must not be negative\n";
    return usage;
  }
  const auto& jobs = runnable_jobs();
  auto it = jobs.find(job_name);
  if (it == jobs.end()) {
    std::string names;
    for (const auto& [name, _] : jobs)
      names += (names.empty() ? "" : ", ") + name;
    std::cerr << "crew run: unknown job '" << job_name << "' (jobs that take one integer: " << names
              << ")\n";
    return usage;
  }

  // The arguments to run: the range, less what a job log says is done (--resume), or what
  // a job log says failed (--retry-failed).
  std::vector<int> todo;
  std::size_t skipped = 0;
  for (int i = first; i < last; ++i)
    todo.push_back(i);
  for (const std::string& path : {resume, retry_failed}) {
    if (path.empty()) continue;
    std::string why;
    auto log = read_joblog(path, why);
    if (!log) {
      std::cerr << "crew run: " << why << "\n";
      return usage;
    }
    if (!log->job.empty() && log->job != job_name) {
      std::cerr << "crew run: job log '" << path << "' is of job '" << log->job << "', not '"
                << job_name << "'\n";
      return usage;
    }
    if (log->skipped)
      std::cerr << "crew run: " << log->skipped << " line(s) of '" << path
                << "' do not parse (a run killed while writing?); ignored\n";
    if (path == resume) {
      std::vector<int> rest;
      for (int i : todo)
        if (auto f = log->ok_by_arg.find(i); f != log->ok_by_arg.end() && f->second)
          ++skipped;
        else
          rest.push_back(i);
      todo = std::move(rest);
      if (joblog.empty()) joblog = resume;
    } else {
      std::vector<int> failed;
      for (const auto& [arg, was_ok] : log->ok_by_arg)
        if (!was_ok && (range.empty() || (arg >= first && arg < last))) failed.push_back(arg);
      todo = std::move(failed);
    }
  }

  std::FILE* log_out = nullptr;
  if (!joblog.empty()) {
    log_out = std::fopen(joblog.c_str(), "a");
    if (!log_out) {
      std::cerr << "crew run: cannot open job log '" << joblog
                << "' for appending: " << std::strerror(errno) << "\n";
      return usage;
    }
  }
  struct closer {
    std::FILE* f;
    ~closer() {
      if (f) std::fclose(f);
    }
  } close_log{log_out};

  const bool as_json = vm.count("json") > 0;
  stdout_to_stderr redirect(as_json);
  recorder rec(mode == "processes" ? "worker" : mode == "threads" ? "thread" : "main thread");
  progress_line progress(todo.size(), !as_json && !vm.count("quiet") && ::isatty(1) == 1);
  std::size_t seen = 0, seen_failed = 0;
  rec.on_finished = [&](const task_record& r) {
    ++seen;
    if (r.failed) ++seen_failed;
    if (log_out) {  // one line per task, flushed: a killed run leaves every finished task
      const auto line = json::serialize(to_json(r, json::array{std::stoi(r.label)}));
      std::fprintf(log_out, "%s\n", line.c_str());
      std::fflush(log_out);
    }
    progress.update(seen, seen_failed, seen == todo.size());
  };
  if (progress.active() && mode == "processes") {
    // Workers' lines go above the progress line, which is drawn again below them.
    c.on_output = [&](const output_line& l) {
      progress.clear();
      std::FILE* to = l.source == output_line::stream::err ? stderr : stdout;
      std::fprintf(to, "[worker %zu pid %d] %.*s\n", l.worker, l.pid,
                   static_cast<int>(l.text.size()), l.text.data());
      std::fflush(to);
      progress.redraw(seen, seen_failed);
    };
  }
  stopwatch clock;
  auto outcomes = it->second(c, todo, rec);
  const double seconds = clock.seconds();
  progress.clear();

  // Each task's record (worker, pid, start, duration, ...) by argument, for --json.
  std::map<int, task_record> record_of;
  for (const auto& r : rec.finished())
    record_of[std::stoi(r.label)] = r;
  std::size_t failed = 0;
  std::map<std::string, std::size_t> by_cause;  // errc name -> count
  json::array results;
  for (const auto& o : outcomes) {
    json::object r;
    if (auto f = record_of.find(o.arg); f != record_of.end())
      r = to_json(f->second, json::array{o.arg});
    r["arg"] = o.arg;
    if (o.error) {
      ++failed;
      ++by_cause[error_name(o.error)];
      r["outcome"] = "failed";
      r["error"] = error_name(o.error);
      r["message"] = describe(o.error);
      if (!as_json)
        std::cout << job_name << "(" << o.arg << ") failed: " << describe(o.error) << "\n";
    } else {
      r["value"] = o.value;
      if (!as_json) std::cout << job_name << "(" << o.arg << ") = " << o.text << "\n";
    }
    results.push_back(std::move(r));
  }
  if (!timeline.empty()) {
    std::ofstream svg(timeline);
    svg << render_timeline({rec.section("crew run --job " + job_name + " (" + mode + ")")});
    if (!svg) std::cerr << "crew run: cannot write the timeline to '" << timeline << "'\n";
  }
  if (as_json) {
    redirect.json_out(
        json::object{{"job", job_name},
                     {"mode", mode},
                     {"transport", c.transport},
                     {"range", range.empty() ? json::value(nullptr) : json::array{first, last}},
                     {"wall_seconds", seconds},
                     {"tasks", outcomes.size()},
                     {"skipped", skipped},
                     {"failed", failed},
                     {"interrupted_by", interrupted ? json::value(sigabbrev_np(interrupted.load()))
                                                    : json::value(nullptr)},
                     {"failures_by_cause", failures_json(by_cause)},
                     {"results", std::move(results)}});
  } else {
    std::cout << outcomes.size() << " tasks, " << failed << " failed, " << seconds << " s (" << mode
              << ")";
    if (skipped) std::cout << "; " << skipped << " skipped, done in " << resume;
    std::cout << "\n";
    for (const auto& [cause, n] : by_cause)
      std::cout << "  " << n << " " << cause << "\n";
    if (interrupted) std::cout << "interrupted by SIG" << sigabbrev_np(interrupted.load()) << "\n";
  }
  if (interrupted) return 128 + interrupted.load();
  return failed ? tasks_failed : ok;
}

}  // namespace crew::cli
