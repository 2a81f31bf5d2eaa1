#include "demo_jobs.hpp"

#include <crew/worker_runtime.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>

#include <sys/syscall.h>
#include <unistd.h>

namespace crew::demo {
namespace {

double scale = 1.0;

// One line, one write: lines from concurrent threads never interleave.
void say(const std::string& line) {
  const std::string s = line + "  (pid " + std::to_string(::getpid()) + ", thread " +
                        std::to_string(::syscall(SYS_gettid)) + ")\n";
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

int run_long_io(int i) {
  say("function " + std::to_string(i) + " started at " + ctime_now());
  // The notebook's time.sleep(2), in slices: on a worker process, a cancelled task stops
  // at the next slice instead of waiting to be killed.
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(2.0 * scale));
  for (auto now = std::chrono::steady_clock::now(); now < end;
       now = std::chrono::steady_clock::now()) {
    if (cancel_requested()) throw std::runtime_error("cancelled");
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(end - now, std::chrono::milliseconds(20)));
  }
  say("function " + std::to_string(i) + " finished at " + ctime_now());
  return i * 2;
}

}  // namespace

std::string ctime_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  ::ctime_r(&t, buf);
  std::string s(buf);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

__extension__ typedef __int128 int128;  // GCC and Clang; exact for every int32 input

double long_comp_value(int i) {
  // Python starts with an int x and keeps exact integer arithmetic while x % 2 == 0
  // ((x - y) ** 2 stays an int); the first odd x goes through ** 0.5 and x is a float
  // from then on. An even x is squared at most twice before it turns odd, so 128 bits
  // hold every int32 input exactly.
  constexpr int iterations = 5'000'000;
  int128 xi = i;
  int y = 0;
  double x = 0;
  for (; y < iterations; ++y) {
    int128 m = xi % 2;
    if (m < 0) m += 2;  // Python's % takes the sign of the divisor
    if (m == 0) {
      xi = (xi - y) * (xi - y);
      continue;
    }
    if (xi + y < 0)
      throw std::domain_error("long_comp(" + std::to_string(i) +
                              "): Python would take the square root of a negative number here "
                              "and return a complex number");
    x = std::pow(static_cast<double>(xi + y), 0.5);
    ++y;
    break;
  }
  if (y == iterations && x == 0) return static_cast<double>(xi);
  // x >= 0 from here on, where Python's float % equals fmod, and CPython's float ** is
  // libm pow: the same calls give the same bits.
  for (; y < iterations; ++y) {
    if (std::fmod(x, 2.0) == 0.0) {
      x = std::pow(x - y, 2.0);
      if (std::isinf(x))  // CPython checks errno == ERANGE here and raises
        throw std::overflow_error("long_comp(" + std::to_string(i) +
                                  "): (34, 'Numerical result out of range'), as Python's "
                                  "OverflowError");
    } else
      x = std::pow(x + y, 0.5);
  }
  return x;
}

void set_io_scale(double factor) {
  scale = factor;
}
double io_scale() {
  return scale;
}

void register_jobs(registry& r) {
  r.add(long_io, run_long_io);
  r.add(long_comp, [](int i) {
    say("function " + std::to_string(i) + " started at " + ctime_now());
    const double x = long_comp_value(i);
    say("function " + std::to_string(i) + " finished at " + ctime_now());
    return x;
  });
  r.add(echo, [](std::string s) { return s; });
  r.add(sum, [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); });
  r.add(sum_view,
        [](const array_view<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); });
  r.add(byte_count, [](const array_view<std::uint8_t>& v) { return std::uint64_t{v.size()}; });
  r.add(fail, [](const std::string& message) -> int { throw std::runtime_error(message); });
  r.add(identity, [](int i) { return i; });
  r.add(chatty, [](int lines) {
    for (int k = 0; k < lines; ++k)
      std::printf("chatty line %d: CREW\x01\x03 looks like a frame header but is not one\n", k);
    std::fflush(stdout);
    std::fprintf(stderr, "chatty wrote %d lines\n", lines);
    return lines;
  });
}

}  // namespace crew::demo
