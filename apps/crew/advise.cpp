// crew advise: runs a job a few times inline and says, from its CPU time against its wall
// time, whether it is IO-bound or CPU-bound and which crew pool fits it: the notebook's
// conclusion, computed for one job.
#include "common.hpp"
#include "demo_jobs.hpp"

#include <crew/inline_runner.hpp>

#include <boost/json.hpp>
#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

#include <sys/resource.h>
#include <time.h>

namespace crew::cli {
namespace po = boost::program_options;
namespace json = boost::json;
namespace {

double thread_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Seconds this thread has spent runnable but waiting for a CPU (the second field of
// /proc/thread-self/schedstat), or 0 if the kernel does not say: time lost to other work on
// the machine, which is neither the job's computing nor its waiting.
double run_delay_seconds() {
  std::FILE* f = std::fopen("/proc/thread-self/schedstat", "re");
  if (!f) return 0;
  unsigned long long run = 0, delay = 0;
  const int n = std::fscanf(f, "%llu %llu", &run, &delay);
  std::fclose(f);
  return n == 2 ? static_cast<double>(delay) * 1e-9 : 0;
}

long max_rss_kib() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// One call of the job in this thread, as crew's inline_runner runs it.
using one_call = std::function<void(int)>;

template <class R>
one_call caller(const registry& jobs, const job<R(int)>& j) {
  return [&jobs, &j](int arg) {
    inline_runner runner(jobs);
    (void)runner.submit(j(arg)).get();
  };
}

}  // namespace

int advise_main(const std::vector<std::string>& args) {
  po::options_description desc(
      "crew advise: is a job IO-bound or CPU-bound, and which crew pool fits it?\n\noptions");
  std::string job_name;
  int arg = 0, runs = 3;
  double io_scale = 1.0;
  desc.add_options()("help,h", "show this help")(
      "job", po::value(&job_name)->required(),
      "job to measure (long_io, long_comp, identity, chatty)")(
      "args", po::value(&arg)->default_value(arg), "its integer argument")(
      "runs", po::value(&runs)->default_value(runs), "calls to measure (the median is used)")(
      "io-scale", po::value(&io_scale)->default_value(io_scale), "scale long_io's 2 s sleep")(
      "json", "print one JSON document instead of text");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\nexample: crew advise --job long_comp --args 0\n";
      return ok;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "crew advise: " << e.what() << "\n(see crew advise --help)\n";
    return usage;
  }
  if (runs < 1 || runs > 1000 || io_scale < 0) {
    std::cerr << "crew advise: --runs must be 1..1000 and --io-scale not negative\n";
    return usage;
  }
  registry jobs;
  demo::register_jobs(jobs);
  demo::set_io_scale(io_scale);
  const std::map<std::string, one_call> calls{
      {demo::long_io.name(), caller(jobs, demo::long_io)},
      {demo::long_comp.name(), caller(jobs, demo::long_comp)},
      {demo::identity.name(), caller(jobs, demo::identity)},
      {demo::chatty.name(), caller(jobs, demo::chatty)}};
  const auto call = calls.find(job_name);
  if (call == calls.end()) {
    std::cerr << "crew advise: unknown job '" << job_name
              << "' (jobs that take one integer: chatty, identity, long_comp, long_io)\n";
    return usage;
  }

  const bool as_json = vm.count("json") > 0;
  stdout_to_stderr redirect(as_json);  // what the job prints stays out of the JSON
  struct sample {
    double wall, cpu, delayed;
  };
  std::vector<sample> samples;
  const long rss_before = max_rss_kib();
  for (int k = 0; k < runs; ++k) {
    const double cpu0 = thread_cpu_seconds();
    const double delay0 = run_delay_seconds();
    stopwatch clock;
    call->second(arg);
    samples.push_back({clock.seconds(), thread_cpu_seconds() - cpu0, run_delay_seconds() - delay0});
  }
  const long rss_growth = max_rss_kib() - rss_before;
  std::sort(samples.begin(), samples.end(),
            [](const sample& a, const sample& b) { return a.wall < b.wall; });
  const sample med = samples[samples.size() / 2];
  // The share of its own time the job computed: CPU time against wall time, less the time it
  // was ready but another process had the CPU (so a busy machine does not make a CPU-bound
  // job look like it waits).
  const double own = std::max(med.wall - med.delayed, med.cpu);
  const double busy = own > 0 ? med.cpu / own : 0;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());

  std::string verdict, pool, why;
  if (med.wall < 1e-4) {
    verdict = "too short to tell";
    pool = "inline (or batch it with map on any pool)";
    why = "a call takes " + std::to_string(med.wall * 1e6) +
          " us: any pool's per-task cost (~15 us on threads, ~30 us on processes, less with "
          "map's batches) would dominate";
  } else if (busy < 0.2) {
    verdict = "IO-bound";
    pool = "threads (crew::thread_pool), or an event loop (Asio timers/sockets)";
    why = "it used the CPU " + std::to_string(static_cast<int>(busy * 100 + 0.5)) +
          "% of its time: it waits, and waiting needs no core, so many calls overlap on a "
          "few threads; processes would only add a spawn and a pipe round trip per task";
  } else if (busy > 0.8) {
    verdict = "CPU-bound";
    pool = "processes (crew::process_pool) or threads, one per core (" + std::to_string(cores) +
           " here)";
    why = "it kept a core busy " + std::to_string(static_cast<int>(busy * 100 + 0.5)) +
          "% of its time: calls speed up only with more cores. In C++ (no GIL) threads "
          "use every core too and cost least; processes cost a spawn and a round trip per task "
          "and buy isolation (a crash, a leak or a hang kills one worker, which is replaced; "
          "deadlines can kill it). Use processes for code you do not trust, threads for code "
          "you do";
  } else {
    verdict = "mixed";
    pool = "threads, more of them than cores (or processes for isolation)";
    why = "it used the CPU " + std::to_string(static_cast<int>(busy * 100 + 0.5)) +
          "% of its time: part waiting, part computing; oversubscribing threads overlaps "
          "the waits while the cores stay busy";
  }
  if (as_json) {
    json::array walls, cpus;
    for (const auto& s : samples) {
      walls.push_back(s.wall);
      cpus.push_back(s.cpu);
    }
    redirect.json_out(json::object{{"job", job_name},
                                   {"args", json::array{arg}},
                                   {"runs", runs},
                                   {"wall_seconds", walls},
                                   {"cpu_seconds", cpus},
                                   {"median_wall_seconds", med.wall},
                                   {"median_cpu_seconds", med.cpu},
                                   {"median_run_delay_seconds", med.delayed},
                                   {"cpu_share", busy},
                                   {"max_rss_growth_kib", rss_growth},
                                   {"cores", cores},
                                   {"verdict", verdict},
                                   {"pool", pool},
                                   {"why", why}});
    return ok;
  }
  std::printf("%s(%d), %d run(s), inline in this thread:\n", job_name.c_str(), arg, runs);
  std::printf("  median wall time   %.6f s\n", med.wall);
  std::printf(
      "  median CPU time    %.6f s  (%.0f%% of its time; %.6f s waiting for a CPU "
      "another process had)\n",
      med.cpu, busy * 100, med.delayed);
  std::printf("  peak RSS growth    %ld KiB\n", rss_growth);
  std::printf("verdict: %s\npool:    %s\nwhy:     %s\n", verdict.c_str(), pool.c_str(),
              why.c_str());
  return ok;
}

}  // namespace crew::cli
