// Heap allocations per task on the coordinator, counted by interposing the malloc family (so
// that Asio's aligned_alloc counts too, not only operator new): a guard on the per-task cost.
// Issue 12 brought a trivial async_submit from 10 to 5 (tasks in a devector, one task_body);
// issue 17 to 1 with many in flight (submissions cross to the strand in batches, the strand
// over the io_context's concrete executor) and 3 one at a time
// (Asio's per-thread cache of posted functions misses under the nested posts of a chain).
// Not run under the sanitizers (label bench).
#include <crew/process_pool.hpp>

#include "demo_jobs.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstddef>
#include <functional>
#include <thread>

namespace {
std::atomic<long> allocations{0};
}  // namespace

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t align, std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(align, n);
}
void* memalign(std::size_t align, std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(align, n);
}
int posix_memalign(void** p, std::size_t align, std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  *p = __libc_memalign(align, n);
  return *p ? 0 : 12;  // ENOMEM
}
void free(void* p) {
  __libc_free(p);
}
}

BOOST_AUTO_TEST_CASE(a_trivial_task_costs_at_most_2_allocations_on_the_coordinator) {
  boost::asio::io_context ioc;
  auto guard = boost::asio::make_work_guard(ioc);
  std::thread runner([&] { ioc.run(); });
  {
    crew::process_pool_options o;
    o.workers = 1;
    o.executable = CREW_WORKER_PATH;
    crew::process_pool pool(ioc.get_executor(), o);
    for (int i = 0; i < 200; ++i)  // warm up: buffers and queues at their working size
      BOOST_TEST_REQUIRE(pool.submit(crew::demo::identity(i)).get() == i);
    constexpr int n = 4000;
    {  // many in flight, submitted from this thread
      std::atomic<int> left{n};
      std::atomic<long> sum{0};
      const long before = allocations.load();
      for (int i = 0; i < n; ++i)
        pool.async_submit(crew::demo::identity(i), [&](std::exception_ptr ep, int v) {
          if (!ep) sum += v;
          --left;
        });
      while (left.load() > 0)
        std::this_thread::yield();
      const double per_task = double(allocations.load() - before) / n;
      BOOST_TEST(sum.load() == long(n) * (n - 1) / 2);
      BOOST_TEST_MESSAGE("allocations per task, many in flight: " << per_task);
      BOOST_TEST(per_task <= 2.0, "allocations per task, many in flight: " << per_task);
    }
    {  // one at a time, each submitted from the previous one's handler
      std::atomic<int> left{n};
      std::atomic<long> sum{0};
      std::function<void(int)> next = [&](int i) {
        pool.async_submit(crew::demo::identity(i), [&, i](std::exception_ptr ep, int v) {
          if (!ep) sum += v;
          --left;
          if (i + 1 < n) next(i + 1);
        });
      };
      const long before = allocations.load();
      next(0);
      while (left.load() > 0)
        std::this_thread::yield();
      const double per_task = double(allocations.load() - before) / n;
      BOOST_TEST(sum.load() == long(n) * (n - 1) / 2);
      BOOST_TEST_MESSAGE("allocations per task, one at a time: " << per_task);
      BOOST_TEST(per_task <= 3.5, "allocations per task, one at a time: " << per_task);
    }
    pool.join();
  }
  guard.reset();
  runner.join();
}
