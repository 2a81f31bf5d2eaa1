#include "connector.hpp"

#include "../connect/auth.hpp"
#include "../connect/socket_link.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <optional>
#include <random>
#include <thread>

#include <csignal>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace crew::detail {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {

void say(const std::string& s) {
  std::fprintf(stderr, "crew worker: %s\n", s.c_str());
}

// Runs the asynchronous operation `start` begins on `io` for at most `limit`: its error, or
// timed_out (the operation is then cancelled by closing `socket`).
template <class Start>
error_code within(asio::io_context& io, std::chrono::milliseconds limit, tcp::socket& socket,
                  Start start) {
  std::optional<error_code> result;
  start([&](error_code ec, auto&&...) { result = ec; });
  io.restart();
  io.run_for(limit);
  if (result) return *result;
  error_code ignored;
  socket.close(ignored);
  io.restart();
  io.run();  // the cancelled operation completes
  return asio::error::timed_out;
}

// A descriptor of the same open file numbered 10 or more, close-on-exec and blocking (Asio
// leaves sockets it used asynchronously non-blocking), or -1.
int handoff_fd(int fd) {
  const int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  if (d < 0) return -1;
  const int flags = ::fcntl(d, F_GETFL);
  if (flags >= 0) ::fcntl(d, F_SETFL, flags & ~O_NONBLOCK);
  return d;
}

// The TLS pump: bytes from the TLS stream to the relay's end of a socketpair, and back. At
// the end of either side it ends the other's sending direction: the relay sees the end of
// its input when the pool goes, the pool when the worker's frames end.
class tls_pump : public std::enable_shared_from_this<tls_pump> {
 public:
  tls_pump(std::shared_ptr<asio::io_context> io, std::unique_ptr<tls_stream> tls,
           std::shared_ptr<asio::ssl::context> context, asio::local::stream_protocol::socket local)
      : io_(std::move(io)), context_(std::move(context)), tls_(std::move(tls)),
        local_(std::move(local)) {}

  void start() {
    from_pool();
    to_pool();
  }
  asio::io_context& io() { return *io_; }
  /// Everything the worker wrote has gone to the pool (or cannot go any more).
  bool sent_all() const noexcept { return sent_all_.load(); }

 private:
  void from_pool() {
    tls_->async_read_some(asio::buffer(in_), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec) {
        error_code ignored;
        self->local_.shutdown(asio::socket_base::shutdown_send, ignored);
        return;
      }
      asio::async_write(self->local_, asio::buffer(self->in_.data(), n),
                        [self](error_code e, std::size_t) {
                          if (!e) self->from_pool();
                        });
    });
  }
  void to_pool() {
    local_.async_read_some(asio::buffer(out_), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec) {
        error_code ignored;
        self->tls_->next_layer().shutdown(asio::socket_base::shutdown_send, ignored);
        self->sent_all_ = true;
        return;
      }
      asio::async_write(*self->tls_, asio::buffer(self->out_.data(), n),
                        [self](error_code e, std::size_t) {
                          if (e) {
                            error_code ignored;
                            self->local_.close(ignored);
                            self->sent_all_ = true;
                            return;
                          }
                          self->to_pool();
                        });
    });
  }

  std::shared_ptr<asio::io_context> io_;
  std::shared_ptr<asio::ssl::context> context_;
  std::unique_ptr<tls_stream> tls_;
  asio::local::stream_protocol::socket local_;
  std::array<char, 64 * 1024> in_{}, out_{};
  std::atomic<bool> sent_all_{false};
};

// The TLS pump of this process, if it connected under TLS (end_connection waits for it).
std::shared_ptr<tls_pump> the_pump;
int pump_local_fd = -1;  // the relay's end of the socketpair

// Connects to host:port and reads the pool's greeting, retrying with back-off (100 ms,
// doubling to 2 s, each with up to a quarter more at random: workers started together do not
// knock in step) until `give_up`: while nobody listens there yet, and while the pool closes
// connections before greeting them (it has max_pending handshakes in progress already).
// False after a message.
bool connect_and_greet(asio::io_context& io, tcp::socket& socket, const connect_settings& s,
                       const std::string& host, const std::string& port,
                       std::array<std::byte, auth::greeting_size>& greeting) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + s.give_up;
  auto delay = std::chrono::milliseconds(100);
  // Not seeded by pid: every pod of a Kubernetes Job may have the same one.
  std::minstd_rand jitter(std::random_device{}());
  std::string last;
  for (int attempt = 1;; ++attempt) {
    tcp::resolver resolver(io);
    error_code ec;
    const auto endpoints = resolver.resolve(host, port, ec);
    if (!ec) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      ec = within(io, std::clamp(left, std::chrono::milliseconds(100), std::chrono::milliseconds(5000)),
                  socket, [&](auto h) { asio::async_connect(socket, endpoints, std::move(h)); });
      if (!ec) {
        ec = within(io, s.handshake_timeout, socket, [&](auto h) {
          asio::async_read(socket, asio::buffer(greeting), std::move(h));
        });
        if (!ec) return true;
        if (ec == asio::error::eof || ec == asio::error::connection_reset)
          ec = asio::error::connection_refused;  // closed before a word: the pool is busy
        last = "no greeting (" + ec.message() + ")";
      } else {
        last = ec.message();
      }
    } else {
      last = ec.message();
    }
    error_code ignored;
    socket.close(ignored);
    const auto wait = delay + std::chrono::milliseconds(jitter() % (delay.count() / 4 + 1));
    if (std::chrono::steady_clock::now() + wait > deadline) {
      say("cannot reach the pool at " + s.address + ": " + last + " (" +
          std::to_string(attempt) + " attempts in " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count()) +
          " ms; CREW_CONNECT_TIMEOUT_MS)");
      return false;
    }
    std::this_thread::sleep_for(wait);
    delay = std::min(delay * 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace

bool split_address(const std::string& address, std::string& host, std::string& port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return false;  // an IPv6 literal needs its brackets
  }
  for (char c : port)
    if (c < '0' || c > '9') return false;
  return port.size() <= 5 && std::stoul(port) <= 65535 && std::stoul(port) > 0;
}

bool connect_back(const connect_settings& s, connection& out) {
  std::string host, port;
  if (!split_address(s.address, host, port)) {
    say("the pool's address '" + s.address + "' is not HOST:PORT (an IPv6 address in brackets)");
    return false;
  }
  if (auto why = auth::check_secret(s.secret); !why.empty()) {
    say("cannot connect to the pool: " + why);
    return false;
  }
  // OpenSSL's exit-time clean-up must not run under a pump thread still using it.
  OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, nullptr);
  auto io = std::make_shared<asio::io_context>();
  tcp::socket socket(*io);
  std::array<std::byte, auth::greeting_size> greeting_bytes{};
  if (!connect_and_greet(*io, socket, s, host, port, greeting_bytes)) return false;
  // Asio opens sockets inheritable: no program a job runs may hold the connection open.
  ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
  tune_socket(socket.native_handle());
  const auto limit = s.handshake_timeout;
  auto failed = [&](const std::string& what, const error_code& ec) {
    std::string text = "the handshake with the pool at " + s.address + " failed: " + what;
    if (ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::ssl::error::stream_truncated)
      text += ": the pool closed the connection (a wrong secret? the pool reports why)";
    else if (ec)
      text += ": " + ec.message();
    say(text);
    return false;
  };

  error_code ec;
  const auto greeting = auth::decode_greeting(greeting_bytes);
  if (!greeting) return failed("it is not a crew pool (its first bytes are not a greeting)", {});
  auth::transcript t;
  t.pool_nonce = greeting->pool_nonce;
  t.tls = greeting->tls;
  std::shared_ptr<asio::ssl::context> context;
  std::unique_ptr<tls_stream> tls;
  try {
    t.worker_nonce = auth::random_nonce();
    if (t.tls) {
      context = auth::client_context();
      tls = std::make_unique<tls_stream>(std::move(socket), *context);
      ec = within(*io, limit, tls->next_layer(), [&](auto h) {
        tls->async_handshake(asio::ssl::stream_base::client, std::move(h));
      });
      if (ec) return failed("TLS", ec);
      t.binding = auth::tls_binding(tls->native_handle());
    }
  } catch (const std::exception& e) {
    return failed(e.what(), {});
  }
  tcp::socket& raw = tls ? tls->next_layer() : socket;
  const auto proof = auth::encode(auth::proof{t.worker_nonce, auth::worker_mac(s.secret, t)});
  ec = within(*io, limit, raw, [&](auto h) {
    if (tls)
      asio::async_write(*tls, asio::buffer(proof), std::move(h));
    else
      asio::async_write(socket, asio::buffer(proof), std::move(h));
  });
  if (ec) return failed("sending our proof", ec);
  std::array<std::byte, auth::answer_size> answer_bytes{};
  ec = within(*io, limit, raw, [&](auto h) {
    if (tls)
      asio::async_read(*tls, asio::buffer(answer_bytes), std::move(h));
    else
      asio::async_read(socket, asio::buffer(answer_bytes), std::move(h));
  });
  if (ec) return failed("no answer", ec);
  const auto answer = auth::decode_answer(answer_bytes);
  if (!answer) return failed("its answer is malformed", {});
  if (!auth::equal(auth::pool_mac(s.secret, t, *answer), answer->tag))
    return failed("its answer does not prove the secret: not our pool, or another secret", {});
  out.heartbeat_timeout = std::chrono::milliseconds(answer->heartbeat_timeout_ms);
  out.max_payload = static_cast<std::size_t>(answer->max_payload);
  if (answer->verdict == auth::verdict::full) {
    out.full = true;
    return true;
  }

  if (!tls) {
    const int fd = socket.release(ec);
    if (ec) return failed("taking the socket", ec);
    out.frames_in = handoff_fd(fd);
    out.frames_out = handoff_fd(fd);
    ::close(fd);
    if (out.frames_in < 0 || out.frames_out < 0) return failed("no descriptors left", {});
    return true;
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return failed("no socketpair for the TLS pump", {});
  out.frames_in = handoff_fd(pair[0]);
  out.frames_out = handoff_fd(pair[0]);
  ::close(pair[0]);
  asio::local::stream_protocol::socket local(*io);
  local.assign(asio::local::stream_protocol(), pair[1], ec);
  if (ec || out.frames_in < 0 || out.frames_out < 0) return failed("no descriptors left", {});
  auto pump = std::make_shared<tls_pump>(io, std::move(tls), std::move(context), std::move(local));
  pump->start();
  the_pump = pump;
  pump_local_fd = out.frames_out;
  // The pump's thread blocks every signal: they stay with the thread running the jobs.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    std::thread([pump] {
      pump->io().restart();
      pump->io().run();
    }).detach();
  } catch (const std::exception& e) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return failed(std::string("no thread for the TLS pump: ") + e.what(), {});
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return true;
}

void end_connection() noexcept {
  if (!the_pump) return;
  // The end of what we send: the pump passes it on after the last bytes (bounded wait).
  ::shutdown(pump_local_fd, SHUT_WR);
  for (int i = 0; i < 500 && !the_pump->sent_all(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace crew::detail
