// crew notebook: parallel-computing-notebook.txt, cell by cell, in C++.
#include "common.hpp"
#include "demo_jobs.hpp"
#include "recorder.hpp"
#include "timeline.hpp"

#include <crew/inline_runner.hpp>
#include <crew/process_pool.hpp>
#include <crew/thread_pool.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <system_error>

namespace crew::cli {
namespace po = boost::program_options;
namespace json = boost::json;
namespace {

// A result dict as Python prints it, in insertion order (threads insert as they finish).
using py_dict = std::vector<std::pair<int, std::string>>;

std::string repr(const py_dict& d) {
  std::string one_line = "{";
  for (std::size_t k = 0; k < d.size(); ++k)
    one_line += (k ? ", " : "") + std::to_string(d[k].first) + ": " + d[k].second;
  one_line += "}";
  if (one_line.size() <= 79) return one_line;
  std::string s = "{";  // Jupyter's pretty printer: one item per line
  for (std::size_t k = 0; k < d.size(); ++k)
    s += (k ? ",\n " : "") + std::to_string(d[k].first) + ": " + d[k].second;
  return s + "}";
}

std::string value_text(int v) {
  return std::to_string(v);
}
std::string value_text(double v) {
  return py_float(v);
}

struct cell {
  std::string id, function, mode;
  double seconds = 0;
  py_dict res;
  json::value json_results() const {
    json::object o;
    for (const auto& [k, v] : res)
      o[std::to_string(k)] = json::parse(v);
    return o;
  }
};

struct settings {
  double scale = 1.0;
  std::size_t workers = 4;
  int tasks = 4;
  std::vector<std::string> transports{"pipe", "shm"};
  std::vector<timeline_section>* timeline = nullptr;  // --timeline: each cell adds its section
  bool sandbox = false;                               // --sandbox: the process cells' workers
  std::vector<launcher> launchers;  // --launcher: where the process cells' workers run
  std::string remote_worker;        // --remote-worker
  // --listen: every process cell's pool waits for `workers` workers to connect, started by
  // --launcher-once's command (once per pool) or by someone else.
  std::optional<listen_address> listen;
  listen_options listening;  // address, port, secret, tls, launch_once
};

// The process cells' pool options that come from the command line.
void place_workers(process_pool_options& o, const settings& s) {
  o.sandbox.enabled = s.sandbox;
  o.launchers = s.launchers;
  if (!s.remote_worker.empty()) o.remote_executable = s.remote_worker;
  if (s.listen) o.listen = s.listening;
}

// With --listen, says where a pool just made waits for its workers (never the secret).
void say_listening(const process_pool& pool, const settings& s) {
  if (!s.listen) return;
  std::cerr << "crew: listening on " << s.listen->text(pool.listen_port()) << " for " << s.workers
            << (s.workers == 1 ? " worker" : " workers") << std::endl;
}

task_options labelled(int i) {
  task_options o;
  o.label = std::to_string(i);
  return o;
}

// Adds a cell's tasks to the timeline, if one is drawn.
void add_section(const settings& s, const recorder& rec, const std::string& id,
                 const std::string& what) {
  if (s.timeline) s.timeline->push_back(rec.section(id + " " + what));
}

void title(const std::string& id, const std::string& text) {
  std::printf("\n=== %s %s ===\n", id.c_str(), text.c_str());
  std::fflush(stdout);
}

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// In [3] / In [5]: `[f(i, res) for i in range(4)]`, one call after the other.
template <class R>
cell sequential(const registry& jobs, const job<R(int)>& j, const std::string& id,
                const settings& s) {
  title(id, j.name() + ": sequentially, in this thread (crew::inline_runner)");
  cell c{id, j.name(), "sequential", 0, {}};
  recorder rec("main thread");
  inline_runner runner(jobs, boost::asio::system_executor(), rec.handler());
  stopwatch clock;
  for (int i = 0; i < s.tasks; ++i)
    c.res.emplace_back(i, value_text(runner.submit(j(i), labelled(i)).get()));
  c.seconds = clock.seconds();
  add_section(s, rec, id, j.name() + ", sequential");
  say(repr(c.res));
  return c;
}

// In [7] / In [8]: one thread per call; the threads share this process's memory, so
// their completion handlers write straight into `res`.
template <class R>
cell threads(const registry& jobs, const job<R(int)>& j, const std::string& id, const settings& s) {
  title(id, j.name() + ": " + std::to_string(s.tasks) + " calls on " + std::to_string(s.workers) +
                " threads (crew::thread_pool)");
  cell c{id, j.name(), "threads", 0, {}};
  std::mutex m;
  recorder rec("thread");
  stopwatch clock;
  {
    thread_pool pool(jobs, s.workers, rec.handler());
    for (int i = 0; i < s.tasks; ++i)
      pool.async_submit(j(i), labelled(i), [&, i](std::exception_ptr ep, R v) {
        std::lock_guard lock(m);
        c.res.emplace_back(i, ep ? describe(ep) : value_text(v));
      });
    say("all threads started at " + demo::ctime_now());
    pool.join();
  }
  c.seconds = clock.seconds();
  add_section(s, rec, id, j.name() + ", " + std::to_string(s.workers) + " threads");
  say("all threads finished at " + demo::ctime_now());
  // Python's dict keeps insertion order, which here is completion order; show the dict
  // by key, as the notebook's IO cell shows it, and say in which order the calls ended.
  std::string order;
  for (const auto& [k, v] : c.res)
    order += (order.empty() ? "" : ", ") + std::to_string(k);
  std::sort(c.res.begin(), c.res.end());
  say(repr(c.res));
  say("(the handlers, running on the pool's threads in this process, wrote into res as the "
      "calls finished: " +
      order + ")");
  return c;
}

// In [10] / In [12]: `pool.apply_async` per call, `pool.close(); pool.join()`.
template <class R>
cell processes(const job<R(int)>& j, const std::string& id, const settings& s,
               const std::string& transport) {
  title(id, j.name() + ": " + std::to_string(s.tasks) + " calls on " + std::to_string(s.workers) +
                " worker processes (crew::process_pool, " + transport + " transport)");
  cell c{id, j.name(), "processes (" + transport + ")", 0, {}};
  py_dict res;  // what Python passed to every call; nothing in a worker can reach it
  std::vector<std::future<R>> futures;
  recorder rec("worker");
  stopwatch clock;
  {
    io_thread io;
    process_pool_options o;
    o.on_event = rec.handler();
    o.workers = s.workers;
    o.args = {"--io-scale", std::to_string(s.scale)};
    o.transport = transport == "shm" ? crew::transport::shm : crew::transport::pipe;
    place_workers(o, s);
    process_pool pool(io.context().get_executor(), o);
    say_listening(pool, s);
    for (int i = 0; i < s.tasks; ++i)
      futures.push_back(pool.submit(j(i), labelled(i)));
    say("all processes started at " + demo::ctime_now());
    pool.close();  // close pool so that it does not accept further submissions
    pool.join();   // wait until all processes are finished
  }
  c.seconds = clock.seconds();
  add_section(
      s, rec, id,
      j.name() + ", " + std::to_string(s.workers) + " worker processes (" + transport + ")");
  say("all processes finished at " + demo::ctime_now());
  say("res = " + repr(res) +
      "   <- the workers are other processes: nothing they do reaches "
      "this process's memory");
  std::string got = "[";
  for (std::size_t i = 0; i < futures.size(); ++i) {
    std::string v;
    try {
      v = value_text(futures[i].get());
    } catch (...) {
      v = describe(std::current_exception());
    }
    c.res.emplace_back(static_cast<int>(i), v);
    got += (i ? ", " : "") + v;
  }
  say("[process.get() for process in processes] = " + got +
      "]   <- results come back as return values");
  say("{i: process.get() for i, process in enumerate(processes)} = " + repr(c.res));
  return c;
}

// The cell the notebook could not show: many IO waits need neither threads nor
// processes, only an event loop. Every wait is long_io's sleep, all on one thread.
cell asio_timers(int count, const settings& s) {
  title("In [+]", std::to_string(count) + " long_io-style waits on ONE thread (Asio timers)");
  cell c{"In [+]", "long_io wait", "asio timers, 1 thread", 0, {}};
  boost::asio::io_context ioc;
  std::vector<std::unique_ptr<boost::asio::steady_timer>> timers;
  long long sum = 0;
  int done = 0;
  stopwatch clock;
  for (int i = 0; i < count; ++i) {
    timers.push_back(std::make_unique<boost::asio::steady_timer>(
        ioc, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                 std::chrono::duration<double>(2.0 * s.scale))));
    timers.back()->async_wait([&, i](boost::system::error_code) {
      sum += i * 2;
      ++done;
    });
  }
  say("all " + std::to_string(count) + " waits started at " + demo::ctime_now());
  ioc.run();
  c.seconds = clock.seconds();
  say("all " + std::to_string(done) + " waits finished at " + demo::ctime_now() +
      "; sum of i*2 = " + std::to_string(sum));
  c.res.emplace_back(count, std::to_string(sum));
  return c;
}

std::string fixed(double v, int digits = 2) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(digits);
  o << v;
  return o.str();
}

// Start-up and per-task cost of worker processes, measured here, for the conclusion.
struct process_costs {
  double first_result_ms = 0;
  double round_trip_us = 0;
};

process_costs measure_process_costs(const settings& s) {
  process_costs pc;
  io_thread io;
  process_pool_options o;
  o.workers = s.workers;
  place_workers(o, s);
  stopwatch clock;
  process_pool pool(io.context().get_executor(), o);
  say_listening(pool, s);
  pool.submit(demo::identity(0)).get();
  pc.first_result_ms = clock.seconds() * 1e3;
  constexpr int n = 2000;
  stopwatch rt;
  for (int i = 0; i < n; ++i)
    pool.submit(demo::identity(i)).get();
  pc.round_trip_us = rt.seconds() * 1e6 / n;
  pool.join();
  return pc;
}

std::vector<std::string> conclude(const std::vector<cell>& c, const process_costs& pc,
                                  const settings& s) {
  // c: 0 io seq, 1 comp seq, 2 io threads, 3 comp threads, 4 io procs, 5 comp procs, 6 timers
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  auto seconds = [&](const std::string& function, const std::string& mode) {
    for (const auto& x : c)
      if (x.function == function && x.mode.rfind(mode, 0) == 0) return x.seconds;
    return 0.0;
  };
  const double io_t = seconds("long_io", "sequential") / seconds("long_io", "threads");
  const double io_p = seconds("long_io", "sequential") / seconds("long_io", "processes");
  const double cpu_t = seconds("long_comp", "sequential") / seconds("long_comp", "threads");
  const double cpu_p = seconds("long_comp", "sequential") / seconds("long_comp", "processes");
  const cell& timers = c.back();
  const double ideal_cpu = std::min<double>(
      {static_cast<double>(cores), static_cast<double>(s.workers), static_cast<double>(s.tasks)});
  std::vector<std::string> out;
  out.push_back(
      "IO-bound: threads ran the " + std::to_string(s.tasks) + " sleeps " + fixed(io_t, 1) +
      "x faster than one after the other, processes " + fixed(io_p, 1) +
      "x; as in Python, waiting needs no CPU, so both overlap the waits. One thread with " +
      "Asio timers did " + std::to_string(timers.res[0].first) + " such waits in " +
      fixed(timers.seconds) + " s: for IO, an event loop beats both.");
  std::string cpu = "CPU-bound: threads ran long_comp " + fixed(cpu_t, 1) +
                    "x faster than sequentially on " + std::to_string(cores) +
                    " core(s) (best possible here: " + fixed(ideal_cpu, 1) + "x). ";
  if (cpu_t >= 0.75 * ideal_cpu && ideal_cpu > 1)
    cpu +=
        "This is where C++ parts with the notebook: there is no GIL, so threads scale on CPU work "
        "too, and processes are not needed for speed.";
  else if (ideal_cpu <= 1)
    cpu += "With one core nothing can run in parallel, in C++ or in Python.";
  else
    cpu += "That is below what the cores allow: something else was using the CPU during this run.";
  out.push_back(cpu);
  out.push_back("Processes ran long_comp " + fixed(cpu_p, 1) +
                "x faster than sequentially, close to the "
                "threads' " +
                fixed(cpu_t, 1) + "x. What they cost: a pool of " + std::to_string(s.workers) +
                " workers gave its first result after " + fixed(pc.first_result_ms, 1) +
                " ms, and each task pays a round trip through pipes (" +
                fixed(pc.round_trip_us, 1) +
                " us for a trivial task here), against nothing for a thread.");
  out.push_back(
      "What processes buy in C++ is isolation, not speed: a job that crashes, leaks, hangs "
      "or is not thread-safe cannot take the coordinator down, can be killed on a deadline, "
      "and can be any executable. Use threads (or an event loop) for IO, threads for CPU work "
      "you trust, and processes for CPU work you do not.");
  return out;
}

}  // namespace

int notebook_main(const std::vector<std::string>& args) {
  settings s;
  std::string transport = "both";
  po::options_description desc("crew notebook: the parallel-computing notebook, in C++\n\noptions");
  desc.add_options()("help,h", "show this help")("scale",
                                                 po::value(&s.scale)->default_value(s.scale),
                                                 "scale long_io's 2 s sleep (0.1: 0.2 s)")(
      "workers", po::value(&s.workers)->default_value(s.workers),
      "threads and worker processes (the notebook: 4)")(
      "transport", po::value(&transport)->default_value(transport),
      "pipe | shm | both: how the process cells move arguments and results")(
      "timeline", po::value<std::string>(),
      "draw every cell's tasks as a Gantt chart (one lane per thread or worker) into FILE.svg")(
      "json", "print one JSON document (the narrative goes to stderr)")(
      "sandbox", "run the worker processes in a sandbox (bubblewrap; see crew run --help)")(
      "launcher", po::value<std::vector<std::string>>()->composing(),
      "CMD: run the worker processes through this command ('ssh -T host', 'srun -n1 -u ...'; "
      "repeat for more hosts; pipe transport only; docs/remote.md)")(
      "remote-worker", po::value(&s.remote_worker),
      "with --launcher or --launcher-once: crew-worker's path on the other side (default: the "
      "same as here)")(
      "listen", po::value<std::string>(),
      "ADDR:PORT: each process cell's pool waits for --workers workers to connect "
      "(crew-worker --connect HOST:PORT; port 0: any free one; pipe transport only; see "
      "crew run --help)")(
      "launcher-once", po::value<std::string>(),
      "with --listen: CMD run once per pool to start its workers, followed by crew-worker's "
      "command line, with CREW_CONNECT and CREW_SECRET in its environment")(
      "secret-file", po::value<std::string>(),
      "with --listen: the secret workers prove, from FILE (mode 600; default: $CREW_SECRET, "
      "else a fresh one per pool that only --launcher-once's workers get)")(
      "tls", "with --listen: encrypt every connection (TLS 1.3)");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "crew notebook: " << e.what() << "\n(see crew notebook --help)\n";
    return usage;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return ok;
  }
  if (s.scale < 0 || s.workers == 0) {
    std::cerr << "crew notebook: --scale must be >= 0 and --workers >= 1\n";
    return usage;
  }
  if (transport != "both" && transport != "pipe" && transport != "shm") {
    std::cerr << "crew notebook: --transport must be pipe, shm or both, not '" << transport
              << "'\n";
    return usage;
  }
  if (transport != "both") s.transports = {transport};
  s.sandbox = vm.count("sandbox") > 0;
  if (vm.count("launcher")) {
    std::string why;
    s.launchers = parse_launchers(vm["launcher"].as<std::vector<std::string>>(), why);
    if (s.launchers.empty()) {
      std::cerr << "crew notebook: " << why << "\n";
      return usage;
    }
    if (s.sandbox || transport == "shm") {
      std::cerr << "crew notebook: --launcher runs workers elsewhere: it does not go with "
                   "--sandbox or --transport shm (local workers only)\n";
      return usage;
    }
    s.transports = {"pipe"};  // shared memory is local-only
  }
  if (vm.count("listen")) {
    std::string why;
    s.listen = parse_listen_address(vm["listen"].as<std::string>(), why);
    if (!s.listen) {
      std::cerr << "crew notebook: " << why << "\n";
      return usage;
    }
    if (!s.launchers.empty() || s.sandbox || transport == "shm") {
      std::cerr << "crew notebook: --listen waits for workers to connect: it does not go with "
                   "--launcher, --sandbox or --transport shm\n";
      return usage;
    }
    s.transports = {"pipe"};  // shared memory is local-only
    s.listening.address = s.listen->host;
    s.listening.port = s.listen->port;
    s.listening.tls = vm.count("tls") > 0;
    if (vm.count("launcher-once")) {
      const auto text = vm["launcher-once"].as<std::string>();
      auto words = split_words(text, why);
      if (!words || words->empty()) {
        std::cerr << "crew notebook: --launcher-once '" << text
                  << "': " << (words ? std::string("needs a command") : why) << "\n";
        return usage;
      }
      s.listening.launch_once = std::move(*words);
    }
    try {
      s.listening.secret =
          listen_secret(vm.count("secret-file") ? vm["secret-file"].as<std::string>() : "");
    } catch (const std::exception& e) {
      std::cerr << "crew notebook: --secret-file: " << e.what() << "\n";
      return usage;
    }
    if (s.listening.secret.empty() && s.listening.launch_once.empty()) {
      std::cerr << "crew notebook: --listen without --launcher-once needs a secret the workers "
                   "also have: CREW_SECRET or --secret-file\n";
      return usage;
    }
  } else if (vm.count("launcher-once") || vm.count("secret-file") || vm.count("tls")) {
    std::cerr << "crew notebook: --launcher-once, --secret-file and --tls go with --listen\n";
    return usage;
  }
  if (!s.remote_worker.empty() && s.launchers.empty() && s.listening.launch_once.empty()) {
    std::cerr << "crew notebook: --remote-worker goes with --launcher or --launcher-once\n";
    return usage;
  }
  if (s.sandbox) {
    sandbox_options sb;
    sb.enabled = true;
    if (auto why = sandbox_unavailable(sb); !why.empty()) {
      std::cerr << "crew notebook: --sandbox: " << why << "\n";
      return cannot_run;
    }
  }
  const bool as_json = vm.count("json") > 0;
  stdout_to_stderr redirect(as_json);

  registry jobs;
  demo::register_jobs(jobs);
  demo::set_io_scale(s.scale);
  std::vector<timeline_section> sections;
  if (vm.count("timeline")) s.timeline = &sections;

  say("# Parallel Computing, in C++ with crew (long_io sleeps " + fixed(2 * s.scale) + " s; " +
      std::to_string(std::thread::hardware_concurrency()) + " hardware threads)");
  std::vector<cell> cells;
  process_costs costs;
  try {
    cells.push_back(sequential(jobs, demo::long_io, "In [3]", s));
    cells.push_back(sequential(jobs, demo::long_comp, "In [5]", s));
    cells.push_back(threads(jobs, demo::long_io, "In [7]", s));
    cells.push_back(threads(jobs, demo::long_comp, "In [8]", s));
    for (const auto& t : s.transports)
      cells.push_back(processes(demo::long_io, "In [10]", s, t));
    for (const auto& t : s.transports)
      cells.push_back(processes(demo::long_comp, "In [12]", s, t));
    cells.push_back(asio_timers(1000, s));
    costs = measure_process_costs(s);
  } catch (const std::invalid_argument& e) {  // options a pool refuses ($CREW_SECRET's length)
    std::string what = e.what();
    if (const std::string lib = "listen_options::secret: "; what.starts_with(lib))
      what = "CREW_SECRET: " + what.substr(lib.size());
    std::cerr << "crew notebook: " << what << "\n";
    return usage;
  } catch (const std::system_error& e) {  // --listen: the address cannot be listened on
    std::cerr << "crew notebook: " << e.what() << "\n";
    return cannot_run;
  }
  const auto conclusion = conclude(cells, costs, s);
  if (s.timeline) {
    const auto path = vm["timeline"].as<std::string>();
    std::ofstream svg(path);
    svg << render_timeline(sections);
    if (!svg) {
      std::cerr << "crew notebook: cannot write the timeline to '" << path << "'\n";
      return internal;
    }
    say("timeline of every cell's tasks: " + path);
  }

  title("Summary", "wall times of this run");
  std::printf("%-9s %-14s %-22s %9s %9s\n", "cell", "function", "mode", "seconds", "speed-up");
  for (std::size_t k = 0; k < cells.size(); ++k) {
    const auto& c = cells[k];
    const double base = c.function == "long_comp" ? cells[1].seconds : cells[0].seconds;
    std::printf("%-9s %-14s %-22s %9.3f %8.1fx\n", c.id.c_str(), c.function.c_str(), c.mode.c_str(),
                c.seconds, base / c.seconds);
  }
  title("Conclusion", "from the numbers above");
  for (const auto& line : conclusion)
    say("* " + line);

  if (as_json) {
    json::array jc;
    for (const auto& c : cells)
      jc.push_back(json::object{{"cell", c.id},
                                {"function", c.function},
                                {"mode", c.mode},
                                {"wall_seconds", c.seconds},
                                {"results", c.json_results()}});
    json::array concl;
    for (const auto& l : conclusion)
      concl.push_back(json::string(l));
    redirect.json_out(json::object{{"scale", s.scale},
                                   {"workers", s.workers},
                                   {"hardware_threads", std::thread::hardware_concurrency()},
                                   {"cells", std::move(jc)},
                                   {"process_first_result_ms", costs.first_result_ms},
                                   {"process_round_trip_us", costs.round_trip_us},
                                   {"conclusion", std::move(concl)}});
  }
  return ok;
}

}  // namespace crew::cli
