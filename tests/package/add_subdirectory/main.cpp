// A user's program: it is its own worker (started with --worker) and its own coordinator.
#include <crew/process_pool.hpp>
#include <crew/worker_runtime.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <string>
#include <thread>

const crew::job<std::string(std::string, int)> repeat{"repeat"};

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--worker") {
    crew::registry jobs;
    jobs.add(repeat, [](const std::string& s, int n) {
      std::string out;
      for (int i = 0; i < n; ++i)
        out += s;
      return out;
    });
    return crew::serve(jobs);
  }
  boost::asio::io_context ioc;
  auto guard = boost::asio::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });
  int rc = 1;
  {
    crew::process_pool_options options;
    options.workers = 2;
    options.executable = "/proc/self/exe";
    options.args = {"--worker"};
    crew::process_pool pool(ioc.get_executor(), options);
    const std::string got = pool.submit(repeat("ab", 3)).get();
    std::printf("repeat(\"ab\", 3) = \"%s\" from a worker process\n", got.c_str());
    rc = got == "ababab" ? 0 : 1;
    pool.join();
  }
  guard.reset();
  io.join();
  return rc;
}
