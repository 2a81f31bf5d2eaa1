// Private: the pool's listening socket for workers that connect back (listen_options), and
// the handshake with each peer (docs/protocol.md §11, connect/auth.hpp) up to the moment it
// is an authenticated worker with a slot — then its connection becomes a socket_channel
// handed to the host (the supervisor), which starts a session on it. Everything a peer can
// do before that is bounded: at most `max_pending` handshakes at once (a connection beyond
// is closed at once), each must finish within `auth_timeout`, and reads exactly the fixed
// size of the proof (and, under TLS, the TLS handshake OpenSSL bounds). A peer that fails
// is closed and reported to the host (`refused`), and counted; nothing else changes. An
// accept that fails (out of descriptors) is retried after 100 ms. On the pool's strand.
#pragma once

#include <crew/process_pool.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace crew::detail {

class worker_channel;

/// What the listener needs from the pool.
class listener_host {
 public:
  /// Slots an authenticated worker could take now (0: answer "full").
  virtual std::size_t free_slots() const = 0;
  /// An authenticated worker that was told it has a slot.
  virtual void adopt(std::shared_ptr<worker_channel> channel) = 0;
  /// A connection was refused: `peer` ("127.0.0.1:4567"), why, and how many so far.
  virtual void refused(const std::string& peer, const std::string& why, std::uint64_t count) = 0;
  /// What must outlive a pending handshake (the pool's core).
  virtual std::shared_ptr<void> keep_alive() = 0;

 protected:
  ~listener_host() = default;
};

class connect_listener : public std::enable_shared_from_this<connect_listener> {
 public:
  /// Binds and listens on `opts.address`:`opts.port` now (throws std::system_error naming
  /// the address, e.g. for a port in use; std::invalid_argument for an address that does
  /// not resolve). `secret` must be set; with `opts.tls` the TLS context is made here.
  /// The worker is told `heartbeat_timeout` and `max_payload` in the pool's answer.
  connect_listener(const boost::asio::any_io_executor& strand, const listen_options& opts,
                   std::string secret, std::chrono::milliseconds heartbeat_timeout,
                   std::uint64_t max_payload, listener_host& host);
  ~connect_listener();

  /// Begins accepting.
  void start();
  /// Stops accepting and drops the handshakes in progress (not refused: the pool is
  /// closing). Idempotent.
  void close();

  /// The port listened on.
  std::uint16_t port() const noexcept { return port_; }
  /// How a worker reaches it: "HOST:PORT" (`CREW_CONNECT`): the address given, or this
  /// host's name when that is a wildcard (0.0.0.0, ::); an IPv6 literal in brackets.
  const std::string& connect_address() const noexcept { return connect_address_; }
  /// Connections refused so far. Any thread.
  std::uint64_t refused() const noexcept { return refused_.load(); }

 private:
  class handshake;
  void accept_next();
  void refuse(const std::string& peer, const std::string& why);

  boost::asio::any_io_executor strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  const std::string secret_;
  const bool tls_;
  const std::chrono::milliseconds auth_timeout_;
  const std::size_t max_pending_;
  const std::uint32_t heartbeat_timeout_ms_;
  const std::uint64_t max_payload_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  listener_host& host_;
  std::uint16_t port_ = 0;
  std::string connect_address_;
  std::size_t pending_ = 0;   // handshakes in progress
  std::size_t promised_ = 0;  // "accepted" answers on their way: slots spoken for
  bool closed_ = false;
  std::atomic<std::uint64_t> refused_{0};
  std::vector<std::weak_ptr<handshake>> live_;  // handshakes begun (some ended since)
};

}  // namespace crew::detail
