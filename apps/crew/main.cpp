// crew: the coordinator's command line.
#include "common.hpp"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace {

const char* usage = R"(crew — run work in isolated worker processes (or threads, or inline)

usage: crew <command> [options]

commands:
  notebook   play the parallel-computing notebook in C++: IO and CPU functions run
             sequentially, on threads and on worker processes, with measured times
  run        run a job over a range of integers: crew run --job long_comp --range 0:4
             (--joblog, --resume, --retry-failed, --timeline; a progress line on a terminal)
  advise     measure a job inline and say whether it is IO- or CPU-bound and which pool
             fits it: crew advise --job long_io --args 0

Run `crew <command> --help` for a command's options.

exit codes: 0 success, 1 some tasks failed, 2 bad command line, 3 internal error,
  130 / 143 crew run stopped by SIGINT / SIGTERM (after a graceful drain, see --grace)
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(usage, args.empty() ? stderr : stdout);
    return args.empty() ? crew::cli::usage : crew::cli::ok;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "notebook") return crew::cli::notebook_main(args);
    if (command == "run") return crew::cli::run_main(args);
    if (command == "advise") return crew::cli::advise_main(args);
  } catch (const std::exception& e) {
    std::cerr << "crew " << command << ": " << e.what() << "\n";
    return crew::cli::internal;
  }
  std::cerr << "crew: unknown command '" << command
            << "' (commands: notebook, run, advise; see crew --help)\n";
  return crew::cli::usage;
}
