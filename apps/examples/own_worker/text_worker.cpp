// The worker executable of the own-worker example: crew's runtime serving this project's
// jobs. Everything a worker needs is a registry and `crew::serve`; the coordinator starts
// it with the task channel on fd 3 and fd 4 (docs/protocol.md), so it is not run by hand.
// [worker]
#include "text_jobs.hpp"

#include <crew/registry.hpp>
#include <crew/worker_runtime.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace {

text::stats count_text(const std::string& s) {
  text::stats out;
  std::istringstream lines(s);
  for (std::string line; std::getline(lines, line);) {
    ++out.lines;
    std::istringstream words(line);
    for (std::string w; words >> w; ++out.words)
      if (w.size() > out.longest_word.size()) out.longest_word = w;
  }
  return out;
}

}  // namespace

int main() {
  crew::registry jobs;
  jobs.add(text::count, count_text);
  jobs.add(text::count_file, [](const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);  // reaches the caller
    std::ostringstream all;
    all << in.rdbuf();
    return count_text(all.str());
  });
  return crew::serve(jobs);  // until the coordinator is done; returns the exit code
}
// [/worker]
