#include "common.hpp"

#include <boost/json/serialize.hpp>

#include <charconv>
#include <cstdio>
#include <ctime>

#include <unistd.h>

namespace crew::cli {

io_thread::io_thread() : guard_(ioc_.get_executor()), thread_([this] { ioc_.run(); }) {
}

io_thread::~io_thread() {
  guard_.reset();
  ioc_.stop();
  thread_.join();
}

std::string py_float(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  // Python always shows a float as a float: 2.0, not 2; 1e+16, not 1e16.
  if (s.find_first_of(".einn") == std::string::npos) s += ".0";
  return s;
}

std::string error_name(const std::exception_ptr& ep) {
  const auto ec = error_of(ep);
  if (ec.category() == crew_category()) return to_string(static_cast<errc>(ec.value()));
  return ec.message();
}

std::string describe(const std::exception_ptr& ep) {
  return error_name(ep) + ": " + describe_failure(ep).message;
}

stdout_to_stderr::stdout_to_stderr(bool active) {
  if (!active) return;
  std::fflush(stdout);
  saved_ = ::dup(STDOUT_FILENO);
  ::dup2(STDERR_FILENO, STDOUT_FILENO);
}

stdout_to_stderr::~stdout_to_stderr() {
  if (saved_ < 0) return;
  std::fflush(stdout);
  ::dup2(saved_, STDOUT_FILENO);
  ::close(saved_);
}

void stdout_to_stderr::json_out(const boost::json::value& v) const {
  const std::string s = boost::json::serialize(v) + "\n";
  std::fflush(stdout);
  const int fd = saved_ >= 0 ? saved_ : STDOUT_FILENO;
  [[maybe_unused]] auto w = ::write(fd, s.data(), s.size());
}

}  // namespace crew::cli
