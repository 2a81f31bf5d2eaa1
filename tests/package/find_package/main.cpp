// A user's program built against an installed crew: it is its own worker (started with
// --worker, serving its own job) and it also drives the stock crew-worker.
#include <crew/process_pool.hpp>
#include <crew/worker_runtime.hpp>
// Every public header, and so every crew/detail/ header they use, is installed.
#include <crew/crew.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <string>
#include <thread>

// Its own job, and one of crew-worker's demo jobs, declared with the same name and signature.
const crew::job<std::string(std::string, int)> repeat{"repeat"};
const crew::job<double(int)> long_comp{"long_comp"};

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
  bool ok = true;
  {
    crew::process_pool own(ioc.get_executor(),
                           {.workers = 2, .executable = "/proc/self/exe", .args = {"--worker"}});
    const std::string got = own.submit(repeat("ab", 3)).get();
    std::printf("repeat(\"ab\", 3) = \"%s\" from its own worker\n", got.c_str());
    ok = ok && got == "ababab";
    crew::process_pool stock(ioc.get_executor(), {.workers = 1, .executable = CREW_WORKER});
    const double x = stock.submit(long_comp(0)).get();
    std::printf("long_comp(0) = %.17g from %s\n", x, CREW_WORKER);
    ok = ok && x == 2236.5678097446853;
    own.join();
    stock.join();
  }
  guard.reset();
  io.join();
  return ok ? 0 : 1;
}
