// The jobs of the example service, declared once for the service and its workers.
//
// CPU jobs run in worker processes (crew::process_pool); their implementations are in
// worker.cpp, which only the worker side (`crew-example-service --worker`) calls. The IO
// job runs on crew::thread_pool inside the service; its implementation is in service.cpp.
#pragma once

#include <crew/job.hpp>

#include <cstdint>

namespace service {

/// `cpu N`: how many primes are below N (a sieve; N up to max_primes_below).
inline const crew::job<std::int64_t(std::int64_t)> count_primes{"service.count_primes"};
inline constexpr std::int64_t max_primes_below = 100'000'000;

/// `spin MS`: keeps one CPU busy for MS milliseconds and returns MS. It writes
/// `spin: started MS ms` on stderr first, which the service forwards with the worker's pid,
/// so that a client (the integration test) can tell which worker runs it. It polls
/// crew::cancel_requested() and stops early when the task is cancelled.
inline const crew::job<std::int64_t(std::int64_t)> spin{"service.spin"};
inline constexpr std::int64_t max_spin_ms = 600'000;

/// `io MS`: waits MS milliseconds, standing in for a slow backend; returns MS. Runs on the
/// service's thread pool, not in a worker.
inline const crew::job<std::int64_t(std::int64_t)> io_wait{"service.io_wait"};
inline constexpr std::int64_t max_io_ms = 60'000;

/// The worker process's main(): serves count_primes and spin until the pool closes it.
int worker_main();

}  // namespace service
