// crew-bench-transport: what a round trip costs through the shared-memory transport and
// through the pipes, next to a plain memcpy of the same bytes; and where shared memory
// starts to beat the pipe (the justification of the default shm_inline_max).
//
//   crew-bench-transport [--quick] [--json]
#include "bench_common.hpp"

#include <crew/process_pool.hpp>

#include <boost/json.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using namespace crew::bench;

json::object to_json(const stats& s, std::size_t bytes) {
  return {{"median_s", s.median},
          {"min_s", s.min},
          {"iterations", s.iters},
          {"mb_per_s", mbps(bytes, s.median)}};
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, as_json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--json")
      as_json = true;
    else {
      std::cerr << "usage: crew-bench-transport [--quick] [--json]\n";
      return 2;
    }
  }
  const config cfg = quick ? config{2, 0.02} : config{5, 0.3};
  const std::vector<std::size_t> sizes = {4 * KiB, 1 * MiB, 64 * MiB};
  const std::vector<std::size_t> sweep_sizes = {1 * KiB,  4 * KiB,   16 * KiB, 32 * KiB,
                                                64 * KiB, 128 * KiB, 256 * KiB};
  json::object doc;
  doc["machine"] = {{"nproc", cpu_count()}, {"cpu", cpu_model()}, {"loadavg", loadavg()}};
  doc["quick"] = quick;
  doc["shm_area_bytes"] = 64 * MiB + 64 * KiB;
  doc["default_shm_inline_max"] = crew::process_pool_options{}.shm_inline_max;
  if (!as_json)
    std::printf("machine: nproc %d, CPU %s, load %s%s\n\n", cpu_count(), cpu_model().c_str(),
                loadavg().c_str(), quick ? "  (--quick: numbers are rough)" : "");
  try {
    io_thread io;
    // 1. memcpy vs shm vs pipe, per size.
    json::array cells;
    {
      auto shm = make_pool(io, crew::transport::shm);
      auto pipe = make_pool(io, crew::transport::pipe);
      std::vector<char> src(64 * MiB, 'x'), dst(64 * MiB, 'y');
      if (!as_json)
        std::printf(
            "round trips, 1 worker, one task at a time; median per round trip (MB/s, payload "
            "counted once)\nshm: default shm_inline_max (%s): smaller payloads travel inline "
            "in the pipe frame\n%-7s %-18s %-20s %-20s %-20s %10s %9s\n",
            size_name(crew::process_pool_options{}.shm_inline_max).c_str(), "size", "test",
            "memcpy", "shm", "pipe", "shm/memcpy", "shm/pipe");
      for (const auto n : sizes) {
        const auto bytes = make_payload(n);
        const std::string text(bytes.begin(), bytes.end());
        const auto mc = bench_memcpy(cfg, dst, src, n);
        struct row {
          const char* test;
          stats s, p;
        };
        const row rows[] = {
            {"in + small result", bench_count(cfg, *shm, bytes), bench_count(cfg, *pipe, bytes)},
            {"echo", bench_echo(cfg, *shm, text), bench_echo(cfg, *pipe, text)}};
        for (const auto& r : rows) {
          const double vs_memcpy = mc.median / r.s.median, speedup = r.p.median / r.s.median;
          cells.push_back({{"size", n},
                           {"test", r.test},
                           {"memcpy", to_json(mc, n)},
                           {"shm", to_json(r.s, n)},
                           {"pipe", to_json(r.p, n)},
                           {"shm_over_memcpy_bandwidth", vs_memcpy},
                           {"shm_over_pipe_speedup", speedup}});
          if (as_json) continue;
          auto cell = [&](const stats& s) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%s (%.0f)", time_name(s.median).c_str(),
                          mbps(n, s.median));
            return std::string(buf);
          };
          std::printf("%-7s %-18s %-20s %-20s %-20s %9.3g%% %8.2fx\n", size_name(n).c_str(), r.test,
                      cell(mc).c_str(), cell(r.s).c_str(), cell(r.p).c_str(), 100 * vs_memcpy,
                      speedup);
        }
      }
      close_pool(shm);
      close_pool(pipe);
    }
    doc["cells"] = std::move(cells);

    // 2. Inline-threshold sweep: byte_count always through the segment vs the pipe.
    json::array sweep;
    std::size_t crossover = 0;  // 0: shm never wins for good
    {
      auto shm = make_pool(io, crew::transport::shm, 0);
      auto pipe = make_pool(io, crew::transport::pipe);
      if (!as_json)
        std::printf(
            "\ninline-threshold sweep: byte_count, median round trip\n%-9s %-12s %-12s %s\n",
            "size", "shm inline=0", "pipe", "shm/pipe");
      for (const auto n : sweep_sizes) {
        const auto bytes = make_payload(n);
        const auto s = bench_count(cfg, *shm, bytes);
        const auto p = bench_count(cfg, *pipe, bytes);
        const bool wins = s.median < p.median;
        // The crossover: the smallest size from which shm wins at every larger size too.
        if (!wins)
          crossover = 0;
        else if (crossover == 0)
          crossover = n;
        sweep.push_back({{"size", n},
                         {"shm_inline0", to_json(s, n)},
                         {"pipe", to_json(p, n)},
                         {"shm_wins", wins}});
        if (!as_json)
          std::printf("%-9s %-12s %-12s %.2fx%s\n", size_name(n).c_str(),
                      time_name(s.median).c_str(), time_name(p.median).c_str(), p.median / s.median,
                      wins ? "  shm wins" : "");
      }
      close_pool(shm);
      close_pool(pipe);
    }
    doc["sweep"] = std::move(sweep);
    doc["shm_wins_from_bytes"] = crossover ? json::value(crossover) : json::value(nullptr);
    if (as_json) {
      std::cout << json::serialize(doc) << '\n';
    } else {
      std::printf("shm wins from: %s (default shm_inline_max: %s)\n",
                  crossover ? size_name(crossover).c_str() : "never in this range",
                  size_name(crew::process_pool_options{}.shm_inline_max).c_str());
    }
  } catch (const std::exception& e) {
    std::cerr << "crew-bench-transport: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
