#include "test_support.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <signal.h>
#include <unistd.h>

namespace crew::test {
namespace {

struct proc_stat {
  int pid = 0;
  char state = '?';
  int ppid = 0;
  int pgrp = 0;
};

bool read_stat(int pid, proc_stat& out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  // pid (comm) state ppid pgrp ... ; comm may contain spaces and parentheses.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 2));
  out.pid = pid;
  rest >> out.state >> out.ppid >> out.pgrp;
  return static_cast<bool>(rest);
}

template <class Pred>
std::vector<int> scan(Pred pred) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    proc_stat st;
    if (read_stat(std::stoi(name), st) && pred(st)) out.push_back(st.pid);
  }
  return out;
}

}  // namespace

std::vector<int> children() {
  const int self = ::getpid();
  return scan([&](const proc_stat& s) { return s.ppid == self; });
}

std::vector<int> children_of(int pid) {
  return scan([&](const proc_stat& s) { return s.ppid == pid; });
}

std::vector<int> zombies() {
  const int self = ::getpid();
  return scan([&](const proc_stat& s) { return s.ppid == self && s.state == 'Z'; });
}

std::set<int> open_fds() {
  std::set<int> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec))
    out.insert(std::stoi(e.path().filename().string()));
  return out;
}

bool process_exists(int pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

bool process_alive(int pid) {
  proc_stat st;
  return read_stat(pid, st) && st.state != 'Z';
}

std::vector<int> wait_for_no_children(double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    auto left = children();
    if (left.empty() || std::chrono::steady_clock::now() > deadline) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace crew::test
