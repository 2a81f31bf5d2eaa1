// An io_context run by one thread for a test, and the leak checks every process test
// ends with, and the error a failed task carries.
#pragma once

#include "test_support.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>

#include <crew/error.hpp>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace crew::test {

struct io_fixture {
  boost::asio::io_context ioc;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
      ioc.get_executor()};
  // Asio opens its reactor's descriptors (epoll, eventfd, timerfd) lazily: open them
  // now, so that the baseline below holds them.
  boost::asio::steady_timer warm_up{ioc};
  std::thread runner{[this] { ioc.run(); }};
  std::set<int> fds_before = open_fds();

  ~io_fixture() {
    guard.reset();
    ioc.stop();
    runner.join();
  }
};

/// Entries of /dev/shm named like crew's segments of process `pid`: crew-<pid>-*.
inline std::vector<std::string> shm_entries_of(int pid = ::getpid()) {
  std::vector<std::string> out;
  const std::string prefix = "crew-" + std::to_string(pid) + "-";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    auto name = e.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0) out.push_back(std::move(name));
  }
  return out;
}

/// No child process and no zombie remain, no fd leaked since `before`, and no /dev/shm
/// entry of this process is left.
inline void expect_no_leaks(const std::set<int>& before) {
  auto left = wait_for_no_children(5.0);
  BOOST_TEST(left.empty(), "child processes left: " << left.size());
  BOOST_TEST(zombies().empty());
  // The pool's last handlers may still be finishing on the io thread: give them a moment.
  std::set<int> after;
  for (int i = 0; i < 250; ++i) {
    after = open_fds();
    bool extra = false;
    for (int fd : after)
      extra = extra || before.count(fd) == 0;
    if (!extra) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int fd : after)
    BOOST_TEST(before.count(fd) == 1, "fd " << fd << " leaked");
  for (const auto& name : shm_entries_of())
    BOOST_TEST(false, "/dev/shm/" << name << " left behind");
}

/// The task_error a task failed with; a failed check if it succeeded.
template <class R>
crew::task_error failure_of(std::future<R> f) {
  try {
    f.get();
  } catch (const crew::task_error& e) {
    return e;
  }
  BOOST_FAIL("the task succeeded, an error was expected");
  throw;
}

}  // namespace crew::test
