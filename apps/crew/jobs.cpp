// crew jobs: the jobs a worker serves and their signatures, from its hello.
#include "backends.hpp"
#include "common.hpp"
#include "value_json.hpp"

#include <boost/program_options.hpp>

#include <iostream>

namespace crew::cli {
namespace po = boost::program_options;

int jobs_main(const std::vector<std::string>& args) {
  run_options o;
  o.workers = 1;
  po::options_description desc(
      "crew jobs: list the jobs a worker serves, with their signatures (from its hello)\n\n"
      "usage: crew jobs [--worker EXE [--worker-arg A]...] [--json]\n\noptions");
  desc.add_options()("help,h", "show this help")(
      "worker", po::value(&o.worker), "the worker executable (default: crew's demo worker)")(
      "worker-arg", po::value(&o.worker_args)->composing(), "an argument for the worker")(
      "env", po::value(&o.env)->composing(), "K=V: set in the worker's environment")(
      "cwd", po::value(&o.cwd), "the worker's working directory")(
      "json", "print a JSON array of {name, signature}");
  po::variables_map vm;
  try {
    const auto style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;
    auto parsed = po::command_line_parser(args).options(desc).style(style).run();
    const auto extra = po::collect_unrecognized(parsed.options, po::include_positional);
    if (!extra.empty()) {
      std::cerr << "crew jobs: unexpected argument '" << extra.front() << "'\n";
      return usage;
    }
    po::store(parsed, vm);
    if (vm.count("help")) {
      std::cout << desc;
      return ok;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "crew jobs: " << e.what() << "\n(see crew jobs --help)\n";
    return usage;
  }
  io_thread io;
  try {
    auto be = make_backend(o, io, {}, [](const output_line& l) {
      std::cerr << "[worker pid " << l.pid << "] " << l.text << "\n";
    });
    const auto jobs = be->jobs();
    std::string out;
    if (vm.count("json")) {
      out = "[";
      for (const auto& [name, sig] : jobs) {
        if (out.size() > 1) out += ',';
        out += "{\"name\":";
        append_json_string(name, out);
        out += ",\"signature\":";
        append_json_string(sig, out);
        out += '}';
      }
      out += "]\n";
    } else {
      for (const auto& [name, sig] : jobs)
        out += escape_controls(escape_invalid_utf8(name)) + "  " +
               escape_controls(escape_invalid_utf8(sig)) + "\n";
    }
    std::cout << out << std::flush;
    be->finish();
    return std::cout ? ok : output_failed;
  } catch (const cannot_run_error& e) {
    std::cerr << "crew jobs: " << e.what() << "\n";
    return cannot_run;
  }
}

}  // namespace crew::cli
