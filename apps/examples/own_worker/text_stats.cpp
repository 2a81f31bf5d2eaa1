// The coordinator of the own-worker example: counts the words of the files named on its
// command line on a pool of its own worker (crew-example-text-worker, found next to this
// program), and shows a job's error arriving as a typed exception.
//   crew-example-text-stats FILE...
#include "text_jobs.hpp"

#include <crew/process_pool.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE...\n", argv[0]);
    return 2;
  }
  // [pool]
  boost::asio::io_context ioc;
  auto work = boost::asio::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });  // the pool runs on this executor

  crew::process_pool_options options;
  options.workers = 2;
  // Your worker, its arguments, environment and working directory.
  const auto here = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  options.executable = here / "crew-example-text-worker";
  options.args = {};
  options.env = {"LC_ALL=C"};
  options.working_directory = std::filesystem::current_path();
  options.task_timeout = std::chrono::seconds(30);  // then the worker is killed and replaced
  options.retries = 1;  // a task whose worker died under it runs once more
  crew::process_pool pool(ioc.get_executor(), options);

  const text::stats s = pool.submit(text::count("one two\nthree")).get();
  std::printf("inline text: %llu lines, %llu words\n", static_cast<unsigned long long>(s.lines),
              static_cast<unsigned long long>(s.words));

  std::vector<std::string> files(argv + 1, argv + argc);
  int failed = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    try {
      const auto r = pool.submit(text::count_file(files[i])).get();
      std::printf("%s: %llu lines, %llu words, longest word \"%s\"\n", files[i].c_str(),
                  static_cast<unsigned long long>(r.lines),
                  static_cast<unsigned long long>(r.words), r.longest_word.c_str());
    } catch (const crew::task_error& e) {  // a job's exception, or the worker's death
      std::printf("%s: %s (%s)\n", files[i].c_str(), e.message().c_str(),
                  crew::to_string(static_cast<crew::errc>(e.code().value())));
      ++failed;
    }
  }
  pool.close();
  pool.join();  // every task resolved, every worker exited and reaped
  work.reset();
  io.join();
  // [/pool]
  return failed == 0 ? 0 : 1;
}
