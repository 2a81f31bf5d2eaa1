// crew-example-service — a line-protocol TCP server on loopback that answers requests by
// running CPU jobs on a crew::process_pool and IO jobs on a crew::thread_pool, written with
// Asio coroutines. It uses crew as any outside project would: public headers and crew::crew.
//
// Protocol (one request per line, one response line per request, in order):
//   cpu N     ok cpu <primes below N>       count_primes on a worker process
//   spin MS   ok spin MS                    a worker process busy for MS ms (CPU)
//   io MS     ok io MS                      a wait of MS ms on the thread pool (IO)
//   pids      ok pids P1 P2 ...             the worker processes alive now
//   help      ok commands: ...
//   quit      ok bye                        and the service closes the connection
// Failures answer `error <name>: <message>`, where <name> is crew's errc name for a failed
// task (`error worker_crashed: worker 1 (pid 123) killed by signal 9 (SIGKILL) ...`) or
// bad_request for a malformed one; the connection stays open. A line longer than
// --max-line bytes gets `error line_too_long: ...` and the connection is closed.
//
// Design:
// - One io_context run by the main thread. Every pool call is
//   `co_await pool.async_submit(job(args), use_awaitable)`: the coroutine is suspended
//   while the job runs, so the io_context never blocks. The process_pool runs on that
//   same io_context (its only own thread carries worker output); the thread_pool has its own
//   threads and its completions come back on the coroutine's executor.
// - One coroutine per connection (co_spawn). Requests on one connection are answered one
//   after the other; connections are served concurrently.
// - Workers are this binary started with `--worker` (executable /proc/self/exe): one
//   program to build and ship, the job declarations (jobs.hpp) cannot drift between the
//   two sides, and no path lookup is needed. The worker side is worker.cpp.
// - Worker output is forwarded to stderr as `[worker N pid P] line`.
// - SIGINT/SIGTERM: stop accepting; requests still queued fail with `cancelled`, running
//   ones get --grace ms to finish (then are cancelled); IO waits are interrupted after the
//   grace; new requests meanwhile are answered `error shutting_down: ...`; every worker is
//   reaped; then idle connections are closed and the process exits 0.
//
// Usage: crew-example-service [--port N] [--workers N] [--retries N] [--io-threads N]
//                             [--grace MS] [--max-line BYTES]
#include "jobs.hpp"

#include <crew/error.hpp>
#include <crew/process_pool.hpp>
#include <crew/registry.hpp>
#include <crew/thread_pool.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(use_awaitable);

struct options {
  unsigned short port = 0;
  std::size_t workers = 2;
  unsigned retries = 0;
  std::size_t io_threads = 4;
  std::chrono::milliseconds grace{5000};
  std::size_t max_line = 1024;
};

const char* const usage =
    "usage: crew-example-service [--port N] [--workers N] [--retries N] [--io-threads N]\n"
    "                            [--grace MS] [--max-line BYTES]\n"
    "Listens on 127.0.0.1:N (0: any free port), prints `listening on 127.0.0.1:PORT` and\n"
    "answers lines: cpu N | spin MS | io MS | pids | help | quit. SIGINT/SIGTERM stop it.\n";

template <class T>
std::optional<T> parse_number(std::string_view s, T lo, T hi) {
  T v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi) return std::nullopt;
  return v;
}

std::optional<options> parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%.*s: missing value\n%s", static_cast<int>(flag.size()), flag.data(),
                   usage);
      return std::nullopt;
    }
    const std::string_view value = argv[++i];
    bool ok = true;
    auto set = [&](auto& field, auto lo, auto hi) {
      const auto v = parse_number<decltype(lo)>(value, lo, hi);
      if (v) field = static_cast<std::remove_reference_t<decltype(field)>>(*v);
      ok = v.has_value();
    };
    if (flag == "--port") {
      set(o.port, 0u, 65535u);
    } else if (flag == "--workers") {
      set(o.workers, std::size_t{1}, std::size_t{256});
    } else if (flag == "--retries") {
      set(o.retries, 0u, 100u);
    } else if (flag == "--io-threads") {
      set(o.io_threads, std::size_t{1}, std::size_t{256});
    } else if (flag == "--grace") {
      std::int64_t ms = 0;
      set(ms, std::int64_t{0}, std::int64_t{3'600'000});
      o.grace = std::chrono::milliseconds(ms);
    } else if (flag == "--max-line") {
      set(o.max_line, std::size_t{16}, std::size_t{1} << 20);
    } else {
      std::fprintf(stderr, "unknown option %.*s\n%s", static_cast<int>(flag.size()), flag.data(),
                   usage);
      return std::nullopt;
    }
    if (!ok) {
      std::fprintf(stderr, "bad value for %.*s: %.*s\n", static_cast<int>(flag.size()), flag.data(),
                   static_cast<int>(value.size()), value.data());
      return std::nullopt;
    }
  }
  return o;
}

/// A request the service refuses before running anything.
struct bad_request : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  while (!line.empty()) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    line.remove_prefix(start);
    const auto end = line.find_first_of(" \t");
    words.push_back(line.substr(0, end));
    line.remove_prefix(end == std::string_view::npos ? line.size() : end);
  }
  return words;
}

/// The single integer argument of `words`, in [lo, hi].
std::int64_t int_argument(const std::vector<std::string_view>& words, std::int64_t lo,
                          std::int64_t hi) {
  if (words.size() != 2)
    throw bad_request(std::string(words[0]) + " takes one argument, an integer");
  const auto v = parse_number<std::int64_t>(words[1], lo, hi);
  if (!v)
    throw bad_request(std::string(words[0]) + ": argument must be an integer in " +
                      std::to_string(lo) + ".." + std::to_string(hi));
  return *v;
}

/// One line, whatever the message holds.
std::string one_line(std::string s) {
  for (auto& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

/// `error <errc name>: <message>` for a failed task.
std::string error_line(const crew::task_error& e) {
  const char* name = e.code().category() == crew::crew_category()
                         ? crew::to_string(static_cast<crew::errc>(e.code().value()))
                         : "error";
  return one_line("error " + std::string(name) + ": " + e.message());
}

/// The IO job: waits `ms` milliseconds unless the service stops first.
std::int64_t wait_for(std::int64_t ms, const std::stop_token& stop) {
  if (ms < 0 || ms > service::max_io_ms) throw std::invalid_argument("MS out of range");
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, stop, std::chrono::milliseconds(ms), [] { return false; });
  // A task_error passes through thread_pool as thrown: the client sees `error cancelled`.
  if (stop.stop_requested())
    throw crew::task_error(crew::make_error_code(crew::errc::cancelled),
                           "the service stopped before the wait ended");
  return ms;
}

class server {
 public:
  server(asio::io_context& ioc, const options& o)
      : ioc_(ioc),
        opts_(o),
        acceptor_(listen(ioc, o.port)),
        signals_(ioc, SIGINT, SIGTERM),
        drain_(ioc),
        io_(make_io_jobs(), o.io_threads),
        cpu_(ioc.get_executor(), pool_options(o)) {}

  /// Starts serving; returns the port.
  unsigned short start() {
    wait_for_signal();
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    return acceptor_.local_endpoint().port();
  }

 private:
  struct connection {
    explicit connection(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    bool busy = false;  // between reading a request and writing its response
  };

  static tcp::acceptor listen(asio::io_context& ioc, unsigned short port) {
    try {
      return tcp::acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), port));
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port) + ": " +
                               e.code().message());
    }
  }

  const crew::registry& make_io_jobs() {
    io_jobs_.add(service::io_wait,
                 [stop = io_stop_.get_token()](std::int64_t ms) { return wait_for(ms, stop); });
    return io_jobs_;
  }

  // [options]
  static crew::process_pool_options pool_options(const options& o) {
    crew::process_pool_options p;
    p.workers = o.workers;
    p.executable = "/proc/self/exe";  // this binary, as its own worker
    p.args = {"--worker"};
    p.retries = o.retries;
    p.on_output = [](const crew::output_line& l) {
      std::fprintf(stderr, "[worker %zu pid %d] %.*s\n", l.worker, l.pid,
                   static_cast<int>(l.text.size()), l.text.data());
    };
    return p;
  }
  // [/options]

  void wait_for_signal() {
    signals_.async_wait([this](boost::system::error_code ec, int signo) {
      if (ec) return;  // cancelled: the service has stopped
      if (stopping_) {
        std::fprintf(stderr, "signal %d: already stopping\n", signo);
      } else {
        std::fprintf(stderr, "signal %d: stopping (grace %lld ms)\n", signo,
                     static_cast<long long>(opts_.grace.count()));
        asio::co_spawn(ioc_, stop(), asio::detached);
      }
      wait_for_signal();
    });
  }

  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (stopping_) co_return;
      if (ec) {  // e.g. out of descriptors: wait a little rather than spin
        std::fprintf(stderr, "accept: %s\n", ec.message().c_str());
        asio::steady_timer pause(ioc_, 100ms);
        co_await pause.async_wait(use_tuple);
        continue;
      }
      asio::co_spawn(ioc_, session(std::make_shared<connection>(std::move(socket))),
                     asio::detached);
    }
  }

  awaitable<void> session(std::shared_ptr<connection> c) {
    connections_.insert(c);
    std::string buffer;
    bool linger = false;  // the service ends the connection: let the client read our last line
    for (;;) {
      auto [ec, n] = co_await asio::async_read_until(
          c->socket, asio::dynamic_buffer(buffer, opts_.max_line + 1), '\n', use_tuple);
      if (stopped_) break;
      if (ec == asio::error::not_found) {  // the buffer is full and holds no newline
        co_await write_line(*c, "error line_too_long: a request line is limited to " +
                                    std::to_string(opts_.max_line) + " bytes");
        linger = true;
        break;
      }
      if (ec) break;  // end of input, or closed by stop()
      std::string line = buffer.substr(0, n - 1);
      buffer.erase(0, n);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      c->busy = true;
      bool close = false;
      const std::string response = co_await handle(line, close);
      const bool written = co_await write_line(*c, response);
      c->busy = false;
      if (!written) break;
      if (close || stopped_) {
        linger = true;
        break;
      }
    }
    connections_.erase(c);
    if (linger) co_await linger_close(c);
    boost::system::error_code ignored;
    c->socket.close(ignored);
  }

  awaitable<bool> write_line(connection& c, std::string line) {
    line += '\n';
    auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(line), use_tuple);
    co_return !ec;
  }

  /// Ends our side, then reads and drops what the client still sends (for up to a second),
  /// so that closing does not reset the connection before the client has read our last line.
  awaitable<void> linger_close(std::shared_ptr<connection> c) {
    boost::system::error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_send, ignored);
    asio::steady_timer deadline(ioc_, 1s);
    deadline.async_wait([c](boost::system::error_code ec) {
      boost::system::error_code e;
      if (!ec) c->socket.close(e);
    });
    char scratch[4096];
    for (std::size_t total = 0; total < (std::size_t{1} << 20);) {
      auto [ec, n] = co_await c->socket.async_read_some(asio::buffer(scratch), use_tuple);
      if (ec) break;
      total += n;
    }
    deadline.cancel();
  }

  awaitable<std::string> handle(std::string_view line, bool& close) {
    const auto words = split_words(line);
    if (words.empty()) co_return "error bad_request: empty request";
    const std::string_view cmd = words[0];
    try {
      // [await]
      if (cmd == "cpu") {
        const auto n = int_argument(words, 0, service::max_primes_below);
        const auto primes = co_await cpu_.async_submit(service::count_primes(n), use_awaitable);
        co_return "ok cpu " + std::to_string(primes);
      }
      // [/await]
      if (cmd == "spin") {
        const auto ms = int_argument(words, 0, service::max_spin_ms);
        co_return "ok spin " +
            std::to_string(co_await cpu_.async_submit(service::spin(ms), use_awaitable));
      }
      if (cmd == "io") {
        const auto ms = int_argument(words, 0, service::max_io_ms);
        ++io_in_flight_;
        struct done {
          server& s;
          ~done() {
            if (--s.io_in_flight_ == 0 && s.stopping_) s.drain_.cancel();
          }
        } guard{*this};
        co_return "ok io " +
            std::to_string(co_await io_.async_submit(service::io_wait(ms), use_awaitable));
      }
      if (cmd == "pids" && words.size() == 1) {
        std::string out = "ok pids";
        for (int pid : cpu_.pids())
          out += " " + std::to_string(pid);
        co_return out;
      }
      if (cmd == "help" && words.size() == 1)
        co_return "ok commands: cpu N | spin MS | io MS | pids | help | quit";
      if (cmd == "quit" && words.size() == 1) {
        close = true;
        co_return "ok bye";
      }
      throw bad_request("unknown request '" + std::string(line.substr(0, 64)) + "' (try help)");
    } catch (const bad_request& e) {
      co_return one_line(std::string("error bad_request: ") + e.what());
    } catch (const crew::task_error& e) {
      co_return error_line(e);
    } catch (const std::exception& e) {
      co_return one_line(std::string("error internal: ") + e.what());
    }
  }

  /// Graceful stop, on the first SIGINT or SIGTERM.
  awaitable<void> stop() {
    // [stop]
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    io_.close();  // new IO requests fail with shutting_down; running ones go on
    drain_.expires_after(opts_.grace);  // the IO waits' grace starts now, as the CPU tasks'
    co_await cpu_.async_shutdown(opts_.grace, use_awaitable);
    // [/stop]
    while (io_in_flight_ > 0) {
      auto [ec] = co_await drain_.async_wait(use_tuple);
      if (!ec) {  // the grace is over: interrupt the waits still running
        io_stop_.request_stop();
        drain_.expires_at(std::chrono::steady_clock::time_point::max());
      }
    }
    stopped_ = true;
    // Every request has been answered or is being written; idle connections end now,
    // busy ones after their response.
    for (const auto& c : connections_)
      if (!c->busy) c->socket.close(ignored);
    signals_.cancel();
    std::fprintf(stderr, "stopped: every task resolved, every worker reaped\n");
  }

  asio::io_context& ioc_;
  options opts_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::steady_timer drain_;  // wakes stop() when the last IO wait ends, or at the grace
  std::set<std::shared_ptr<connection>> connections_;
  std::size_t io_in_flight_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  // Destroyed in reverse order: the process pool (already shut down), then the thread
  // pool (joined), then the registry its jobs live in.
  std::stop_source io_stop_;
  crew::registry io_jobs_;
  crew::thread_pool io_;
  crew::process_pool cpu_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "--worker") return service::worker_main();
  const auto opts = parse_options(argc, argv);
  if (!opts) return 2;
  try {
    asio::io_context ioc(1);
    server srv(ioc, *opts);
    const auto port = srv.start();
    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    ioc.run();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crew-example-service: %s\n", e.what());
    return 1;
  }
}
