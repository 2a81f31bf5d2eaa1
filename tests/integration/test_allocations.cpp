// Heap allocations per task on the coordinator, counted with a replaced operator new: a
// guard on the per-task cost (issue 12 brought a trivial async_submit from 10 to 5: tasks in
// a devector instead of a std::deque node each, and the handler, its work guard and the
// arguments in one task_body instead of four objects). Not run under the sanitizers (label
// bench).
#include <crew/process_pool.hpp>

// The replacement operators below pair malloc with free; GCC cannot see that through inlining.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "demo_jobs.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

namespace {
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

BOOST_AUTO_TEST_CASE(a_trivial_task_costs_at_most_5_allocations_on_the_coordinator) {
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
    BOOST_TEST_MESSAGE("allocations per task: " << per_task);
    BOOST_TEST(per_task <= 5.5, "allocations per task: " << per_task);
    pool.join();
  }
  guard.reset();
  runner.join();
}
