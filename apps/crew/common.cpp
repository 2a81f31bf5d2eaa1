#include "common.hpp"

#include <crew/process_pool.hpp>

#include <boost/json/serialize.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
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

std::optional<std::vector<std::string>> split_words(std::string_view text, std::string& why) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      const auto end = text.find('\'', i + 1);
      if (end == std::string_view::npos) return why = "an unterminated ' quote", std::nullopt;
      word.append(text.substr(i + 1, end - i - 1));
      i = end;
      in_word = true;
    } else if (c == '"') {
      for (++i;; ++i) {
        if (i >= text.size()) return why = "an unterminated \" quote", std::nullopt;
        if (text[i] == '"') break;
        if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\'))
          ++i;
        word += text[i];
      }
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) return why = "a trailing backslash", std::nullopt;
      word += text[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::vector<launcher> parse_launchers(const std::vector<std::string>& texts, std::string& why) {
  std::vector<launcher> out;
  for (const auto& t : texts) {
    auto words = split_words(t, why);
    if (!words) return why = "--launcher '" + t + "': " + why, std::vector<launcher>{};
    if (words->empty())
      return why = "--launcher needs a command, e.g. 'ssh -T host'", std::vector<launcher>{};
    launcher l;
    l.command = std::move(*words);
    out.push_back(std::move(l));
  }
  return out;
}

std::string listen_address::text(std::uint16_t actual_port) const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(actual_port);
}

std::optional<listen_address> parse_listen_address(std::string_view text, std::string& why) {
  why =
      "--listen takes ADDR:PORT (127.0.0.1:0, 0.0.0.0:7000, [::1]:0; port 0: any free "
      "one), not '" +
      std::string(text) + "'";
  listen_address a;
  std::string_view port;
  if (text.starts_with('[')) {  // [IPv6]:PORT
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    a.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (a.host.find(':') != std::string::npos) {
      why += ": an IPv6 address goes in brackets, e.g. [::1]:0";
      return std::nullopt;
    }
  }
  if (a.host.empty() || a.host.find_first_of(" \t[]") != std::string::npos) return std::nullopt;
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || v > 65535)
    return std::nullopt;
  a.port = static_cast<std::uint16_t>(v);
  why.clear();
  return a;
}

std::string listen_secret(const std::string& secret_file) {
  if (!secret_file.empty()) return read_secret_file(secret_file);
  const char* env = std::getenv("CREW_SECRET");
  return env ? env : "";
}

}  // namespace crew::cli
