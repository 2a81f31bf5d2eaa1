// Integration test of the example service (apps/examples/service): starts it as a child
// process, talks to it over TCP with concurrent clients, kills one of its workers in the
// middle of a request, and stops it with a signal.
//
// Client threads never use Boost.Test macros: they record what they sent and received, and
// the main thread checks afterwards. Timeouts are hang guards only; nothing is timed.
#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
constexpr auto hang_guard = 60s;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::vector<std::string_view> words_of(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto b = s.find_first_not_of(' ');
    if (b == std::string_view::npos) break;
    s.remove_prefix(b);
    const auto e = s.find(' ');
    out.push_back(s.substr(0, e));
    s.remove_prefix(e == std::string_view::npos ? s.size() : e);
  }
  return out;
}

/// Primes below n, to check the service's answers to `cpu n`.
long long primes_below(long long n) {
  if (n <= 2) return 0;
  std::vector<bool> composite(static_cast<std::size_t>(n), false);
  long long count = 0;
  for (long long i = 2; i < n; ++i) {
    if (composite[static_cast<std::size_t>(i)]) continue;
    ++count;
    for (long long j = i * i; j < n; j += i)
      composite[static_cast<std::size_t>(j)] = true;
  }
  return count;
}

/// The pids in a `ok pids ...` response.
std::vector<int> parse_pids(const std::string& response) {
  std::vector<int> pids;
  const auto w = words_of(response);
  if (w.size() < 2 || w[0] != "ok" || w[1] != "pids") return pids;
  for (std::size_t i = 2; i < w.size(); ++i)
    pids.push_back(std::stoi(std::string(w[i])));
  return pids;
}

/// A line `[worker N pid P] spin: started MS ms` forwarded by the service: P, or 0.
int spin_started_pid(const std::string& line, long long ms) {
  std::size_t slot = 0;
  int pid = 0;
  long long got = -1;
  if (std::sscanf(line.c_str(), "[worker %zu pid %d] spin: started %lld ms", &slot, &pid, &got) !=
      3)
    return 0;
  return got == ms ? pid : 0;
}

/// The service as a child process, its stdout and stderr read line by line by two threads.
class service_process {
 public:
  explicit service_process(std::vector<std::string> args) {
    args.insert(args.begin(), CREW_EXAMPLE_SERVICE_PATH);
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    if (rc != 0) {
      ::close(out[0]);
      ::close(err[0]);
      throw std::runtime_error(std::string("posix_spawn: ") + std::strerror(rc));
    }
    out_reader_ = std::thread([this, fd = out[0]] { read_lines(fd, out_lines_); });
    err_reader_ = std::thread([this, fd = err[0]] { read_lines(fd, err_lines_); });
  }

  ~service_process() {
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    out_reader_.join();
    err_reader_.join();
  }

  int pid() const { return pid_; }

  /// The port from `listening on 127.0.0.1:PORT` (0 if the line did not come).
  unsigned short port() {
    const auto line = wait_for(
        out_lines_, [](const std::string& l) { return starts_with(l, "listening on 127.0.0.1:"); });
    if (!line) return 0;
    return static_cast<unsigned short>(std::stoi(line->substr(line->rfind(':') + 1)));
  }

  /// The first stderr line from index `from` on that satisfies `pred`, waiting for it.
  std::optional<std::string> wait_for_stderr(const std::function<bool(const std::string&)>& pred,
                                             std::size_t from = 0) {
    return wait_for(err_lines_, pred, from);
  }

  std::vector<std::string> stderr_lines() {
    std::lock_guard lock(mutex_);
    return err_lines_;
  }

  /// Sends `sig` and waits for the exit; the wait status, or nullopt if it did not exit.
  std::optional<int> stop(int sig) {
    ::kill(pid_, sig);
    const auto deadline = clock_type::now() + hang_guard;
    while (clock_type::now() < deadline) {
      int status = 0;
      const int r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return status;
      }
      std::this_thread::sleep_for(10ms);
    }
    return std::nullopt;
  }

 private:
  void read_lines(int fd, std::vector<std::string>& lines) {
    std::string partial;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      partial.append(buf, static_cast<std::size_t>(n));
      std::size_t nl;
      while ((nl = partial.find('\n')) != std::string::npos) {
        {
          std::lock_guard lock(mutex_);
          lines.push_back(partial.substr(0, nl));
        }
        changed_.notify_all();
        partial.erase(0, nl + 1);
      }
    }
    ::close(fd);
  }

  std::optional<std::string> wait_for(std::vector<std::string>& lines,
                                      const std::function<bool(const std::string&)>& pred,
                                      std::size_t from = 0) {
    std::unique_lock lock(mutex_);
    std::size_t next = from;
    const auto deadline = clock_type::now() + hang_guard;
    for (;;) {
      for (; next < lines.size(); ++next)
        if (pred(lines[next])) return lines[next];
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return std::nullopt;
    }
  }

  pid_t pid_ = 0;
  bool exited_ = false;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> out_lines_, err_lines_;
  std::thread out_reader_, err_reader_;
};

/// A blocking line client; every read and write gives up after the hang guard.
class client {
 public:
  explicit client(unsigned short port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    timeval tv{};
    tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(hang_guard).count();
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
  }
  ~client() { ::close(fd_); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Sends `line` and a newline; false if the connection failed.
  bool send(std::string line) {
    line += '\n';
    std::size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// The next line (without its newline); nullopt at end of input, on error or timeout.
  std::optional<std::string> read_line() {
    for (;;) {
      const auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }

  /// One request, one response; `<none>` if no line came.
  std::string request(const std::string& line) {
    if (!send(line)) return "<none: send failed>";
    return read_line().value_or("<none>");
  }

  /// True if the service has closed the connection and sent nothing more.
  bool closed_by_peer() {
    if (!buffer_.empty()) return false;
    char c;
    for (;;) {
      const ssize_t n = ::recv(fd_, &c, 1, 0);
      if (n < 0 && errno == EINTR) continue;
      return n == 0;
    }
  }

  /// Ends our side and checks that the service answers with end of input and nothing more:
  /// with closed_by_peer, the proof that no request got a second response line.
  bool finish() {
    ::shutdown(fd_, SHUT_WR);
    return closed_by_peer();
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

struct exchange {
  std::string request;
  std::string response;
  bool after_kill = false;  // sent once the worker had been killed
};

struct client_log {
  std::vector<exchange> exchanges;
  bool clean_end = false;
  std::string failure;
};

/// The response `request` must get when no worker dies under it.
bool answer_ok(const std::string& request, const std::string& response) {
  const auto w = words_of(request);
  const bool numeric = w.size() == 2 && w[1].find_first_not_of("0123456789") == w[1].npos;
  if (numeric && w[0] == "cpu")
    return response == "ok cpu " + std::to_string(primes_below(std::stoll(std::string(w[1]))));
  if (numeric && (w[0] == "io" || w[0] == "spin"))
    return response == "ok " + std::string(w[0]) + " " + std::string(w[1]);
  return starts_with(response, "error bad_request: ");
}

/// Requests each load client sends before the victim's, and after the kill.
constexpr unsigned warm_up = 10;
constexpr std::size_t after_kill = 15;

/// A client of the load: a mix of cpu, io and bad requests, counted in `warmed` once it has
/// sent `warm_up`, until it has sent `after_kill` more after `killed` was set.
void run_load(unsigned short port, unsigned seed, std::atomic<unsigned>& warmed,
              const std::atomic<bool>& killed, client_log& out) {
  try {
    client c(port);
    std::size_t after = 0;
    for (unsigned i = 0; i < 100000; ++i) {  // the cap is a hang guard: the kill comes first
      const bool k = killed.load();
      const unsigned r = (seed * 7919u + i * 104729u) % 1000u;
      std::string req;
      switch (i % 5) {
        case 0:
        case 2:
          req = "cpu " + std::to_string(1000 + r * 200);  // up to ~200k: a few ms
          break;
        case 1:
        case 3:
          req = "io " + std::to_string(r % 15);
          break;
        default:
          req = (r % 2) ? "frobnicate " + std::to_string(r) : "cpu many";
      }
      out.exchanges.push_back({req, c.request(req), k});
      if (i + 1 == warm_up) ++warmed;
      if (k && ++after >= after_kill) break;
    }
    out.clean_end = c.finish();
  } catch (const std::exception& e) {
    out.failure = e.what();
  }
}

void check_load(const std::vector<client_log>& logs) {
  for (std::size_t i = 0; i < logs.size(); ++i) {
    const auto& log = logs[i];
    BOOST_TEST_INFO("client " << i);
    BOOST_TEST(log.failure.empty());
    BOOST_TEST(log.clean_end);
    std::size_t after = 0;
    for (const auto& x : log.exchanges) {
      BOOST_TEST_INFO("client " << i << ": " << x.request << " -> " << x.response);
      BOOST_TEST(answer_ok(x.request, x.response));
      after += x.after_kill;
    }
    BOOST_TEST(after == after_kill);
    BOOST_TEST(log.exchanges.size() - after >= warm_up);
  }
}

void dump_stderr(service_process& svc) {
  for (const auto& l : svc.stderr_lines())
    BOOST_TEST_MESSAGE("service stderr: " << l);
}

/// Sends `sig`, expects exit status 0, and that none of `workers` is left running.
void stop_and_check(service_process& svc, int sig, const std::vector<int>& workers) {
  const auto status = svc.stop(sig);
  BOOST_REQUIRE_MESSAGE(status, "the service did not exit after signal " << sig);
  BOOST_TEST(WIFEXITED(*status));
  BOOST_TEST(WEXITSTATUS(*status) == 0);
  // The service reaps its workers before it exits; PID 1 here reaps no orphans, so a
  // worker it left behind would show as alive, or as a zombie under PID 1.
  for (int pid : workers) {
    BOOST_TEST_INFO("worker " << pid);
    BOOST_TEST(!crew::test::process_alive(pid));
  }
  BOOST_TEST(crew::test::children().empty());
  BOOST_TEST(!svc.wait_for_stderr([](const std::string& l) {
                   return starts_with(l, "stopped: every task resolved");
                 })
                  .value_or("")
                  .empty());
}

/// Two worker pids that are children of the service.
std::vector<int> check_pids(service_process& svc, client& c) {
  const auto pids = parse_pids(c.request("pids"));
  BOOST_TEST(pids.size() == 2u);
  const auto children = crew::test::children_of(svc.pid());
  for (int pid : pids) {
    BOOST_TEST_INFO("worker " << pid);
    BOOST_TEST(std::count(children.begin(), children.end(), pid) == 1);
  }
  return pids;
}

/// The kill scenario: load clients, a spin of `spin_ms` killed on its worker.
void kill_a_worker_under_load(unsigned retries) {
  service_process svc({"--port", "0", "--retries", std::to_string(retries)});
  const auto port = svc.port();
  BOOST_REQUIRE(port != 0);

  client control(port);
  auto workers = check_pids(svc, control);

  std::atomic<bool> killed{false};
  std::atomic<unsigned> warmed{0};
  std::vector<client_log> logs(6);
  struct load_threads {  // joined on every path, a failed REQUIRE included
    std::atomic<bool>& killed;
    std::vector<std::thread> threads;
    void join() {
      killed = true;
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
    ~load_threads() { join(); }
  } load{killed, {}};
  for (unsigned i = 0; i < logs.size(); ++i)
    load.threads.emplace_back([&, i] { run_load(port, i + 1, warmed, killed, logs[i]); });
  // The kill lands in the middle of the load: every client has had answers before it, and
  // goes on sending while the victim runs and after it is killed.
  const auto warm_deadline = clock_type::now() + hang_guard;
  while (warmed.load() < logs.size() && clock_type::now() < warm_deadline)
    std::this_thread::sleep_for(1ms);
  BOOST_REQUIRE(warmed.load() == logs.size());

  // With retries the spin must end on its own after the retry: 3 s is long enough for the
  // kill to land during the first attempt, which the second "started" line proves (the
  // only time-dependent step: it would take this thread 3 s to react to the first line).
  const long long spin_ms = retries == 0 ? 600000 : 3000;
  client victim(port);
  BOOST_REQUIRE(victim.send("spin " + std::to_string(spin_ms)));
  const auto started =
      svc.wait_for_stderr([&](const std::string& l) { return spin_started_pid(l, spin_ms) != 0; });
  BOOST_REQUIRE(started);
  const int pid = spin_started_pid(*started, spin_ms);
  BOOST_TEST(std::count(workers.begin(), workers.end(), pid) == 1);
  BOOST_TEST_MESSAGE("killing worker " << pid << " in the middle of spin " << spin_ms);
  BOOST_REQUIRE(::kill(pid, SIGKILL) == 0);
  killed = true;

  const auto response = victim.read_line().value_or("<none>");
  BOOST_TEST_INFO("response to the killed request: " << response);
  if (retries == 0) {
    BOOST_TEST(starts_with(response, "error worker_crashed: "));
    BOOST_TEST(response.find("pid " + std::to_string(pid)) != std::string::npos);
    BOOST_TEST(response.find("SIGKILL") != std::string::npos);
  } else {
    BOOST_TEST(response == "ok spin " + std::to_string(spin_ms));
    // It ran again on another worker: a second start, by another process.
    const auto again = svc.wait_for_stderr([&](const std::string& l) {
      const int p = spin_started_pid(l, spin_ms);
      return p != 0 && p != pid;
    });
    BOOST_TEST(again.has_value());
    if (again) workers.push_back(spin_started_pid(*again, spin_ms));
  }
  // The connection of the failed request stays usable.
  BOOST_TEST(victim.request("cpu 1000") == "ok cpu 168");

  load.join();
  check_load(logs);

  // The pool replaced the killed worker: two workers, the killed one not among them.
  std::vector<int> now;
  const auto deadline = clock_type::now() + hang_guard;
  do {
    now = parse_pids(control.request("pids"));
    if (now.size() == 2u && std::count(now.begin(), now.end(), pid) == 0) break;
    std::this_thread::sleep_for(20ms);
  } while (clock_type::now() < deadline);
  BOOST_TEST(now.size() == 2u);
  BOOST_TEST(std::count(now.begin(), now.end(), pid) == 0);
  BOOST_TEST(control.request("io 1") == "ok io 1");
  BOOST_TEST(crew::test::process_alive(svc.pid()));
  workers.insert(workers.end(), now.begin(), now.end());

  stop_and_check(svc, SIGTERM, workers);
  BOOST_TEST(victim.closed_by_peer());
  BOOST_TEST(control.closed_by_peer());
  dump_stderr(svc);
}

}  // namespace

BOOST_AUTO_TEST_CASE(answers_the_protocol) {
  service_process svc({"--port", "0", "--max-line", "100"});
  const auto port = svc.port();
  BOOST_REQUIRE(port != 0);
  client c(port);
  BOOST_TEST(starts_with(c.request("help"), "ok commands: cpu N"));
  BOOST_TEST(c.request("cpu 1000000") == "ok cpu 78498");
  BOOST_TEST(c.request("cpu 0") == "ok cpu 0");
  BOOST_TEST(c.request("cpu 3") == "ok cpu 1");
  BOOST_TEST(c.request("cpu 100000000") == "ok cpu 5761455");
  BOOST_TEST(c.request("  cpu   10\r") == "ok cpu 4");  // spaces and CRLF
  BOOST_TEST(c.request("io 20") == "ok io 20");
  BOOST_TEST(c.request("spin 20") == "ok spin 20");
  const auto workers = check_pids(svc, c);
  // Errors keep the connection open.
  BOOST_TEST(starts_with(c.request("frobnicate"), "error bad_request: unknown request"));
  BOOST_TEST(starts_with(c.request(""), "error bad_request: empty request"));
  BOOST_TEST(starts_with(c.request("cpu"), "error bad_request: cpu takes one argument"));
  BOOST_TEST(starts_with(c.request("cpu 1 2"), "error bad_request: cpu takes one argument"));
  BOOST_TEST(starts_with(c.request("cpu -1"), "error bad_request: cpu: argument must be"));
  BOOST_TEST(starts_with(c.request("cpu 100000001"), "error bad_request: cpu: argument must"));
  BOOST_TEST(starts_with(c.request("io 1e3"), "error bad_request: io: argument must be"));
  BOOST_TEST(starts_with(c.request("spin 600001"), "error bad_request: spin: argument must"));
  BOOST_TEST(c.request("cpu 100") == "ok cpu 25");

  // Pipelined requests on one connection: answered in order, one line each.
  {
    client p(port);
    for (const char* r : {"io 30", "cpu 100", "nope", "io 0", "cpu 1000"})
      BOOST_TEST(p.send(r));
    BOOST_TEST(p.read_line().value_or("") == "ok io 30");
    BOOST_TEST(p.read_line().value_or("") == "ok cpu 25");
    BOOST_TEST(starts_with(p.read_line().value_or(""), "error bad_request: "));
    BOOST_TEST(p.read_line().value_or("") == "ok io 0");
    BOOST_TEST(p.read_line().value_or("") == "ok cpu 168");
    BOOST_TEST(p.finish());
  }
  // A line over --max-line: an error, then the service closes the connection, even though
  // more requests follow.
  {
    client longer(port);
    BOOST_TEST(longer.send(std::string(5000, 'x') + "\ncpu 10\ncpu 10"));
    BOOST_TEST(longer.read_line().value_or("") ==
               "error line_too_long: a request line is limited to 100 bytes");
    BOOST_TEST(longer.closed_by_peer());
  }
  // quit: a last line, then the end; requests behind it are not answered.
  {
    client q(port);
    BOOST_TEST(q.send("quit\ncpu 10"));
    BOOST_TEST(q.read_line().value_or("") == "ok bye");
    BOOST_TEST(q.closed_by_peer());
  }
  BOOST_TEST(c.request("io 0") == "ok io 0");
  stop_and_check(svc, SIGINT, workers);
  BOOST_TEST(c.closed_by_peer());
  dump_stderr(svc);
}

BOOST_AUTO_TEST_CASE(a_killed_worker_fails_only_its_request) {
  kill_a_worker_under_load(0);
}

BOOST_AUTO_TEST_CASE(with_retries_the_killed_request_runs_again) {
  kill_a_worker_under_load(1);
}

BOOST_AUTO_TEST_CASE(a_signal_answers_every_request_then_exits) {
  // A short grace: running tasks are cancelled shortly after the signal.
  service_process svc({"--port", "0", "--grace", "200"});
  const auto port = svc.port();
  BOOST_REQUIRE(port != 0);
  client control(port);
  const auto workers = check_pids(svc, control);

  client io(port), spin1(port), spin2(port), queued(port), idle(port);
  BOOST_TEST(io.send("io 60000"));
  BOOST_TEST(spin1.send("spin 600000"));
  BOOST_TEST(spin2.send("spin 600000"));
  // Both workers busy: wait for both starts.
  const auto first =
      svc.wait_for_stderr([](const std::string& l) { return spin_started_pid(l, 600000) != 0; });
  BOOST_REQUIRE(first);
  const auto second = svc.wait_for_stderr(
      [&](const std::string& l) { return spin_started_pid(l, 600000) != 0 && l != *first; });
  BOOST_REQUIRE(second);
  BOOST_TEST(queued.send("cpu 1000"));  // no free worker: it waits in the pool's queue
  BOOST_TEST(idle.request("io 0") == "ok io 0");

  ::kill(svc.pid(), SIGTERM);
  BOOST_REQUIRE(svc.wait_for_stderr(
      [](const std::string& l) { return starts_with(l, "signal 15: stopping"); }));
  // A request during the grace is refused (or, had the stop already ended, the
  // connection is closed without an answer): never run.
  const auto late = idle.request("cpu 10");
  BOOST_TEST_INFO("late: " << late);
  BOOST_TEST((starts_with(late, "error shutting_down: ") || starts_with(late, "<none")));

  // Running tasks past the grace, and queued ones, fail with `cancelled` (a request that
  // reached the service after the signal: `shutting_down`).
  const auto spin_a = spin1.read_line().value_or("<none>");
  const auto spin_b = spin2.read_line().value_or("<none>");
  BOOST_TEST_INFO(spin_a << " / " << spin_b);
  BOOST_TEST(starts_with(spin_a, "error cancelled: "));
  BOOST_TEST(starts_with(spin_b, "error cancelled: "));
  const auto io_answer = io.read_line().value_or("<none>");
  BOOST_TEST_INFO(io_answer);
  BOOST_TEST((io_answer == "error cancelled: the service stopped before the wait ended" ||
              starts_with(io_answer, "error shutting_down: ")));
  const auto queued_answer = queued.read_line().value_or("<none>");
  BOOST_TEST_INFO(queued_answer);
  BOOST_TEST((starts_with(queued_answer, "error cancelled: ") ||
              starts_with(queued_answer, "error shutting_down: ")));

  stop_and_check(svc, SIGTERM, workers);  // a second signal is harmless
  for (client* c : {&io, &spin1, &spin2, &queued, &idle, &control})
    BOOST_TEST(c->closed_by_peer());
  dump_stderr(svc);
}
