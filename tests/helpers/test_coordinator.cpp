// crew-test-coordinator: a coordinator for tests to kill. Usage:
//   crew-test-coordinator FAULT_WORKER WORKERS pipe|shm|listen
// Starts a pool of WORKERS fault workers, each running grandchild_and_sleep, then prints
// "worker PID" and "grandchild PID" lines and "ready" on stdout, and waits to be killed.
// With `listen` the workers connect back (over 127.0.0.1, brought by a launch_once shell
// loop); their pids are those of their hellos.
#include "fault_jobs.hpp"

#include <crew/process_pool.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s FAULT_WORKER WORKERS pipe|shm|listen\n", argv[0]);
    return 2;
  }
  const std::size_t workers = std::strtoul(argv[2], nullptr, 10);
  boost::asio::io_context ioc;
  auto guard = boost::asio::make_work_guard(ioc);
  std::thread runner([&] { ioc.run(); });

  std::mutex m;
  std::condition_variable cv;
  std::vector<int> grandchildren;
  std::vector<int> connected;  // listen: the workers' pids from their hellos
  crew::process_pool_options o;
  o.workers = workers;
  o.executable = argv[1];
  o.transport = std::string(argv[3]) == "shm" ? crew::transport::shm : crew::transport::pipe;
  o.shm_area_bytes = 1 << 20;
  const bool listen = std::string(argv[3]) == "listen";
  if (listen) {
    o.listen.address = "127.0.0.1";
    o.listen.launch_once = {"sh", "-c",
                            "i=0; while [ $i -lt " + std::to_string(workers) +
                                " ]; do \"$0\" & i=$((i+1)); done; wait"};
    o.on_event = [&](const crew::event& e) {
      if (e.kind != crew::event_kind::worker_spawned) return;
      std::lock_guard lock(m);
      connected.push_back(e.pid);
    };
  }
  o.on_output = [&](const crew::output_line& l) {
    const std::string_view prefix = "grandchild ";
    if (l.text.substr(0, prefix.size()) != prefix) return;
    std::lock_guard lock(m);
    grandchildren.push_back(std::atoi(std::string(l.text.substr(prefix.size())).c_str()));
    cv.notify_all();
  };
  crew::process_pool pool(ioc.get_executor(), o);
  for (std::size_t i = 0; i < workers; ++i)
    pool.async_submit(crew::test::grandchild_and_sleep(0), [](std::exception_ptr, int) {});
  {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, std::chrono::seconds(30),
                     [&] { return grandchildren.size() == workers; })) {
      std::fprintf(stderr, "crew-test-coordinator: the grandchildren did not start\n");
      std::_Exit(1);
    }
    for (int pid : listen ? connected : pool.pids())
      std::printf("worker %d\n", pid);
    for (int pid : grandchildren)
      std::printf("grandchild %d\n", pid);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;)
    std::this_thread::sleep_for(std::chrono::hours(1));
}
