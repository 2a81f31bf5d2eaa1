// crew-worker: serves the demo jobs to a crew coordinator over fd 3 and fd 4, on stdio
// (--stdio), or on a connection to a pool that listens (--connect HOST:PORT).
#include "demo_jobs.hpp"

#include <crew/worker_runtime.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>

int main(int argc, char** argv) {
  crew::registry jobs;
  crew::demo::register_jobs(jobs);
  crew::worker_options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--io-scale" && i + 1 < argc) {
      crew::demo::set_io_scale(std::strtod(argv[++i], nullptr));
    } else if (arg == "--stdio") {
      options.stdio = true;
    } else if (arg == "--connect" && i + 1 < argc) {
      options.connect = argv[++i];
    } else if (arg == "--secret-file" && i + 1 < argc) {
      options.secret_file = argv[++i];
    } else if (arg == "--secret" || arg.starts_with("--secret=")) {
      std::fprintf(stderr,
                   "crew-worker: no --secret: a command line is visible to every user (ps); "
                   "give it in CREW_SECRET or a file (--secret-file FILE, mode 600)\n");
      return 64;
    } else if (arg == "--list") {
      for (const auto& j : jobs.jobs())
        std::printf("%s %s\n", j.name.c_str(), j.signature.c_str());
      return 0;
    } else {
      std::fprintf(stderr,
                   "usage: crew-worker [--io-scale F] [--stdio | --connect HOST:PORT\n"
                   "                   [--secret-file FILE]] [--list]\n"
                   "Started by a crew coordinator; speaks the crew protocol on fd 3/4, or\n"
                   "with --stdio (or CREW_STDIO=1) on stdin/stdout, log lines on stderr\n"
                   "(a remote worker behind ssh or srun; docs/protocol.md section 10), or\n"
                   "with --connect (or CREW_CONNECT) on a connection to a pool listening\n"
                   "there, proving the secret from CREW_SECRET, CREW_SECRET_FILE or\n"
                   "--secret-file (docs/remote.md, \"Connect-back\").\n");
      return 64;
    }
  }
  return crew::serve(jobs, options);
}
