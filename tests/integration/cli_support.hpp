// What the CLI tests share: running `crew` as a user does, reading its files back.
#pragma once

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace cli_test {
namespace json = boost::json;

struct run_result {
  int exit_code = -1;
  std::string out;  // stdout only; stderr is captured into err
  std::string err;
};

// Runs `crew <args>` with stdout and stderr captured.
// `prefix` runs crew through another command (e.g. "prlimit --nproc=40").
inline run_result crew(const std::string& args, const std::string& prefix = "") {
  // stderr goes to a file of this test process's own in the temporary directory.
  const std::string err_file = (std::filesystem::temp_directory_path() /
                                ("crew-cli-test-stderr-" + std::to_string(::getpid()) + ".txt"))
                                   .string();
  std::string cmd = prefix.empty() ? std::string() : prefix + " ";
  cmd += CREW_CLI_PATH;  // appended piecewise: GCC 12 warns falsely on a + chain
  cmd.append(" ").append(args).append(" 2>").append(err_file);
  run_result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  BOOST_REQUIRE(p != nullptr);
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (FILE* e = std::fopen(err_file.c_str(), "r")) {
    while ((n = std::fread(buf.data(), 1, buf.size(), e)) > 0)
      r.err.append(buf.data(), n);
    std::fclose(e);
  }
  std::filesystem::remove(err_file);
  return r;
}

// The stdout of a shell command.
inline std::string crew_shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

inline bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

inline std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size()))
    ++n;
  return n;
}

inline std::string slurp_binary(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A process still running (not gone, not a zombie: PID 1 here may not reap orphans).
inline bool alive(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

inline std::vector<json::object> joblog_lines(const std::filesystem::path& p) {
  std::vector<json::object> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line).as_object());
  return out;
}

inline std::filesystem::path scratch(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("crew-cli-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace cli_test
