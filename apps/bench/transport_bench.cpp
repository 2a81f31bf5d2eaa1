// crew-bench-transport: what a round trip costs through the shared-memory transport and
// through the pipes, next to a plain memcpy of the same bytes; and where shared memory
// starts to beat the pipe (the justification of the default shm_inline_max).
//
//   crew-bench-transport [--quick] [--json]
#include "demo_jobs.hpp"

#include <crew/process_pool.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace json = boost::json;
using crew::demo::byte_count;
using crew::demo::echo;

constexpr std::size_t KiB = 1024, MiB = 1024 * KiB;

/// An io_context run by one background thread while the main thread waits on futures.
class io_thread {
 public:
  io_thread() : guard_(ioc_.get_executor()), thread_([this] { ioc_.run(); }) {}
  ~io_thread() {
    guard_.reset();
    ioc_.stop();
    thread_.join();
  }
  boost::asio::io_context& context() noexcept { return ioc_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct config {
  std::size_t min_iters;
  double target_s;
};

/// The statistics of one cell: seconds per round trip.
struct stats {
  double median = 0, min = 0;
  std::size_t iters = 0;
};

/// Runs `once` (which returns the seconds one round trip took) at least `min_iters` times
/// and until `target_s` seconds of wall-clock time have passed.
stats measure(const config& c, const std::function<double()>& once) {
  std::vector<double> t;
  const double start = now();
  while (t.size() < c.min_iters || (now() - start < c.target_s && t.size() < 1000000))
    t.push_back(once());
  std::sort(t.begin(), t.end());
  const std::size_t n = t.size();
  return {n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2, t.front(), n};
}

std::string size_name(std::size_t b) {
  return b >= MiB ? std::to_string(b / MiB) + " MiB" : std::to_string(b / KiB) + " KiB";
}

std::string time_name(double s) {
  char buf[32];
  if (s < 1e-6)
    std::snprintf(buf, sizeof buf, "%.0f ns", s * 1e9);
  else if (s < 1e-3)
    std::snprintf(buf, sizeof buf, "%.1f us", s * 1e6);
  else if (s < 1)
    std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

double mbps(std::size_t bytes, double s) {
  return static_cast<double>(bytes) / s / 1e6;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

int cpu_count() {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0
             ? CPU_COUNT(&set)
             : static_cast<int>(std::thread::hardware_concurrency());
}

/// One worker; warmed up with a couple of tasks so that start-up is not measured.
std::unique_ptr<crew::process_pool> make_pool(io_thread& io, crew::transport tr,
                                              std::optional<std::size_t> inline_max = {}) {
  crew::process_pool_options o;
  o.workers = 1;
  o.transport = tr;
  o.shm_area_bytes = 64 * MiB + 64 * KiB;
  if (inline_max) o.shm_inline_max = *inline_max;
  o.on_output = [](const crew::output_line& l) { std::cerr << l.text << '\n'; };
  auto p = std::make_unique<crew::process_pool>(io.context().get_executor(), std::move(o));
  for (int i = 0; i < 2; ++i)
    p->submit(crew::demo::identity(i)).get();
  return p;
}

void close_pool(std::unique_ptr<crew::process_pool>& p) {
  p->join();
  p.reset();
}

std::vector<std::uint8_t> make_payload(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<std::uint8_t>(i * 131 + 7);
  return v;
}

/// byte_count over `payload`: the argument goes to the worker, 8 bytes come back.
stats bench_count(const config& c, crew::process_pool& pool,
                  const std::vector<std::uint8_t>& payload) {
  auto once = [&] {
    const double t0 = now();
    const auto n = pool.submit(byte_count(payload)).get();
    const double t = now() - t0;
    if (n != payload.size())
      throw std::runtime_error("byte_count returned " + std::to_string(n) + ", not " +
                               std::to_string(payload.size()));
    return t;
  };
  once();  // warm-up: touches this size's part of the segment
  return measure(c, once);
}

/// echo of `payload`: the same bytes there and back. The string is moved into each call
/// and its result is the next call's argument, so one comparison at the end checks them all.
stats bench_echo(const config& c, crew::process_pool& pool, const std::string& payload) {
  std::string cur = payload;
  auto once = [&] {
    const double t0 = now();
    cur = pool.submit(echo(std::move(cur))).get();
    return now() - t0;
  };
  once();
  const auto s = measure(c, once);
  if (cur != payload) throw std::runtime_error("echo returned other bytes");
  return s;
}

/// memcpy between two preallocated, touched buffers; batched so that the clock's own
/// cost does not count for small sizes.
stats bench_memcpy(const config& c, std::vector<char>& dst, const std::vector<char>& src,
                   std::size_t n) {
  std::size_t batch = 1;
  auto run = [&](std::size_t k) {
    const double t0 = now();
    for (std::size_t i = 0; i < k; ++i) {
      std::memcpy(dst.data(), src.data(), n);
      asm volatile("" : : "r"(dst.data()) : "memory");
    }
    return now() - t0;
  };
  while (run(batch) < 50e-6)
    batch *= 2;
  return measure(c, [&] { return run(batch) / static_cast<double>(batch); });
}

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
