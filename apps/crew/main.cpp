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
  run        run a job of a worker over JSON-lines input or a range of integers, results
             streamed: crew run --job long_comp --range 0:4
             crew run --worker python3 --worker-arg w.py --job add --input tasks.jsonl --jsonl
             (--joblog, --resume, --retry-failed, --keep-order, --timeline; a progress line)
  jobs       list the jobs a worker serves: crew jobs [--worker EXE]
  advise     measure a job inline and say whether it is IO- or CPU-bound and which pool
             fits it: crew advise --job long_io --args 0

Run `crew <command> --help` for a command's options.

)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(usage, args.empty() ? stderr : stdout);
    std::fprintf(args.empty() ? stderr : stdout, "\nexit codes: %s\n", crew::cli::exit_codes_text);
    return args.empty() ? crew::cli::usage : crew::cli::ok;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::printf("crew %s\n", crew::cli::crew_version);
    return crew::cli::ok;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "notebook") return crew::cli::notebook_main(args);
    if (command == "run") return crew::cli::run_main(args);
    if (command == "advise") return crew::cli::advise_main(args);
    if (command == "jobs") return crew::cli::jobs_main(args);
  } catch (const std::exception& e) {
    std::cerr << "crew " << command << ": " << e.what() << "\n";
    return crew::cli::internal;
  }
  std::cerr << "crew: unknown command '" << command
            << "' (commands: notebook, run, jobs, advise; see crew --help)\n";
  return crew::cli::usage;
}
