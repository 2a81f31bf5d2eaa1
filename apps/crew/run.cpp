// crew run: one job over a range of integers, inline, on threads or on worker processes.
#include "common.hpp"
#include "demo_jobs.hpp"

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
#include <cstring>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <sstream>

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

// Submits job(i) for every i through `runner` and waits for all of them, keeping each
// task's own outcome (map() would stop at the first failure).
template <class Runner, class R>
std::vector<outcome> run_range(Runner& runner, const job<R(int)>& j, int first, int last) {
  std::vector<std::future<R>> futures;
  for (int i = first; i < last; ++i)
    futures.push_back(runner.submit(j(i)));
  std::vector<outcome> out;
  for (int i = first; i < last; ++i) {
    outcome o{i, nullptr, nullptr, {}};
    try {
      set_value(o, futures[static_cast<std::size_t>(i - first)].get());
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

using range_runner = std::function<std::vector<outcome>(const run_config& c, int first, int last)>;

template <class R>
range_runner make_runner(const job<R(int)>& j) {
  return [&j](const run_config& c, int first, int last) {
    registry jobs;
    demo::register_jobs(jobs);
    demo::set_io_scale(c.io_scale);
    if (c.mode == "inline") {
      inline_runner r(jobs);
      return run_range(r, j, first, last);
    }
    if (c.mode == "threads") {
      thread_pool pool(jobs, c.workers);
      return run_range(pool, j, first, last);
    }
    io_thread io;
    process_pool_options o;
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
      out = run_range(pool, j, first, last);
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

}  // namespace

int run_main(const std::vector<std::string>& args) {
  po::options_description desc("crew run: run a job over a range of integers\n\noptions");
  std::string job_name, range;
  run_config c;
  auto& mode = c.mode;
  auto& workers = c.workers;
  auto& io_scale = c.io_scale;
  desc.add_options()("help,h", "show this help")(
      "job", po::value(&job_name)->required(), "job to run (long_io, long_comp, identity, chatty)")(
      "range", po::value(&range)->required(), "A:B runs job(i) for A <= i < B")(
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
      "json", "print one JSON document instead of text");
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
  int first = 0, last = 0;
  if (!parse_range(range, first, last)) {
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

  const bool as_json = vm.count("json") > 0;
  stdout_to_stderr redirect(as_json);
  stopwatch clock;
  auto outcomes = it->second(c, first, last);
  const double seconds = clock.seconds();

  std::size_t failed = 0;
  std::map<std::string, std::size_t> by_cause;  // errc name -> count
  json::array results;
  for (const auto& o : outcomes) {
    json::object r{{"arg", o.arg}};
    if (o.error) {
      ++failed;
      ++by_cause[error_name(o.error)];
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
  if (as_json) {
    redirect.json_out(
        json::object{{"job", job_name},
                     {"mode", mode},
                     {"transport", c.transport},
                     {"range", json::array{first, last}},
                     {"wall_seconds", seconds},
                     {"failed", failed},
                     {"interrupted_by", interrupted ? json::value(sigabbrev_np(interrupted.load()))
                                                    : json::value(nullptr)},
                     {"failures_by_cause", failures_json(by_cause)},
                     {"results", std::move(results)}});
  } else {
    std::cout << outcomes.size() << " tasks, " << failed << " failed, " << seconds << " s (" << mode
              << ")\n";
    for (const auto& [cause, n] : by_cause)
      std::cout << "  " << n << " " << cause << "\n";
    if (interrupted) std::cout << "interrupted by SIG" << sigabbrev_np(interrupted.load()) << "\n";
  }
  if (interrupted) return 128 + interrupted.load();
  return failed ? tasks_failed : ok;
}

}  // namespace crew::cli
