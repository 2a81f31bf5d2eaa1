#include "bench_common.hpp"

#include "demo_jobs.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace crew::bench {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

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

std::unique_ptr<crew::process_pool> make_pool(io_thread& io, crew::transport tr,
                                              std::optional<std::size_t> inline_max,
                                              std::size_t workers, std::size_t pipeline_depth,
                                              std::size_t map_chunk) {
  crew::process_pool_options o;
  o.workers = workers;
  o.pipeline_depth = pipeline_depth;
  o.map_chunk = map_chunk;
  o.transport = tr;
  o.shm_area_bytes = 64 * MiB + 64 * KiB;
  if (inline_max) o.shm_inline_max = *inline_max;
  o.on_output = [](const crew::output_line& l) { std::cerr << l.text << '\n'; };
  auto p = std::make_unique<crew::process_pool>(io.context().get_executor(), std::move(o));
  for (std::size_t i = 0; i < 2 * workers; ++i)
    p->submit(crew::demo::identity(static_cast<int>(i))).get();
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

stats bench_count(const config& c, crew::process_pool& pool,
                  const std::vector<std::uint8_t>& payload) {
  auto once = [&] {
    const double t0 = now();
    const auto n = pool.submit(crew::demo::byte_count(payload)).get();
    const double t = now() - t0;
    if (n != payload.size())
      throw std::runtime_error("byte_count returned " + std::to_string(n) + ", not " +
                               std::to_string(payload.size()));
    return t;
  };
  once();  // warm-up: touches this size's part of the segment
  return measure(c, once);
}

// The string is moved into each call and its result is the next call's argument, so one
// comparison at the end checks them all.
stats bench_echo(const config& c, crew::process_pool& pool, const std::string& payload) {
  std::string cur = payload;
  auto once = [&] {
    const double t0 = now();
    cur = pool.submit(crew::demo::echo(std::move(cur))).get();
    return now() - t0;
  };
  once();
  const auto s = measure(c, once);
  if (cur != payload) throw std::runtime_error("echo returned other bytes");
  return s;
}

// Batched so that the clock's own cost does not count for small sizes.
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

}  // namespace crew::bench
