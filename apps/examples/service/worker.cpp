// The worker side of the example service: the service binary started with `--worker`.
#include "jobs.hpp"

#include <crew/registry.hpp>
#include <crew/worker_runtime.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace service {
namespace {

// Primes below n, by a sieve of Eratosthenes over the odd numbers.
std::int64_t primes_below(std::int64_t n) {
  if (n < 0 || n > max_primes_below) throw std::invalid_argument("N out of range");
  if (n <= 2) return 0;
  // composite[i] stands for 2i+1; the odd numbers below n are 2i+1 for i < n/2.
  const auto count = static_cast<std::size_t>(n / 2);
  std::vector<char> composite(count, 0);
  std::int64_t primes = 1;  // 2
  for (std::size_t i = 1; i < count; ++i) {
    if (composite[i]) continue;
    ++primes;
    const std::size_t p = 2 * i + 1;
    for (std::size_t j = (p * p) / 2; j < count; j += p)
      composite[j] = 1;
  }
  return primes;
}

// Keeps this CPU busy for `ms` milliseconds (a hash loop), stopping early if cancelled.
std::int64_t spin_for(std::int64_t ms) {
  if (ms < 0 || ms > max_spin_ms) throw std::invalid_argument("MS out of range");
  std::fprintf(stderr, "spin: started %lld ms\n", static_cast<long long>(ms));
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  auto next_poll = std::chrono::steady_clock::now();
  volatile std::uint64_t sink = 0;
  std::uint64_t h = 0xcbf29ce484222325u;  // FNV-1a over a counter
  for (std::uint64_t i = 0;; ++i) {
    h = (h ^ (i & 0xff)) * 0x100000001b3u;
    if ((i & 0xfffff) != 0) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) break;
    if (now >= next_poll) {  // cancel_requested costs a poll(2): every 10 ms at most
      if (crew::cancel_requested()) throw std::runtime_error("spin cancelled");
      next_poll = now + std::chrono::milliseconds(10);
    }
  }
  sink = h;
  (void)sink;
  return ms;
}

}  // namespace

int worker_main() {
  crew::registry jobs;
  jobs.add(count_primes, primes_below);
  jobs.add(spin, spin_for);
  return crew::serve(jobs);
}

}  // namespace service
