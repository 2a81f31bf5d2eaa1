// The demo jobs: the notebook's two functions and a few that the tests and benchmarks
// use. Shared by crew-worker (which serves them) and the crew CLI (which calls them).
#pragma once

#include <crew/job.hpp>
#include <crew/registry.hpp>

#include <string>
#include <vector>

namespace crew::demo {

/// The notebook's IO function: prints `function i started at <ctime>`, sleeps
/// 2 s x io_scale(), prints `function i finished at <ctime>`, returns i*2.
inline const job<int(int)> long_io{"long_io"};
/// The notebook's CPU function (printing the same started/finished lines) with Python's semantics:
/// integer arithmetic while x is an integer, then floating point `pow`, 5,000,000 iterations.
/// long_comp(0..3) is 2236.5678097446853, bit for bit as in CPython.
inline const job<double(int)> long_comp{"long_comp"};
/// Returns its argument unchanged (bytes in, bytes out).
inline const job<std::string(std::string)> echo{"echo"};
/// The sum of a vector.
inline const job<double(std::vector<double>)> sum{"sum"};
/// The sum of an array read in place (no copy out of shared memory).
inline const job<double(array_view<double>)> sum_view{"sum_view"};
/// The number of bytes it was given, without reading them: the cost of the transport alone.
inline const job<std::uint64_t(array_view<std::uint8_t>)> byte_count{"byte_count"};
/// Throws std::runtime_error with the given message.
inline const job<int(std::string)> fail{"fail"};
/// Returns its argument: the trivial task of the benchmarks.
inline const job<int(int)> identity{"identity"};
/// Prints `lines` lines to stdout (some look like protocol frames) and one to stderr,
/// then returns `lines`.
inline const job<int(int)> chatty{"chatty"};

/// Registers every demo job in `r`.
void register_jobs(registry& r);

/// The sleep of long_io is 2 s times this factor (default 1). Not thread-safe: set it
/// before running jobs.
void set_io_scale(double factor);
double io_scale();

/// The current time as Python's time.ctime() prints it ("Wed Nov 25 23:45:33 2026").
std::string ctime_now();

/// The notebook's CPU loop, callable directly.
double long_comp_value(int i);

}  // namespace crew::demo
