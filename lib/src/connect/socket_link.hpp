// Private: one TCP connection of connect-back, plain or under TLS, as the pool's listener
// (listener.cpp) hands it to its channel (socket_channel.cpp) once the peer is
// authenticated. Only those two include this header: it brings in Asio's SSL (OpenSSL's
// headers).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>

#include <memory>
#include <optional>
#include <string>

namespace crew::detail {

using tls_stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

struct socket_link {
  /// The connection without TLS; empty with TLS.
  std::optional<boost::asio::ip::tcp::socket> plain;
  /// The connection under TLS (it owns the socket), with the context it was made from.
  std::unique_ptr<tls_stream> tls;
  std::shared_ptr<boost::asio::ssl::context> context;
  /// The peer's address, "127.0.0.1:45678", for messages.
  std::string peer;

  boost::asio::ip::tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
};

/// Sets what every connect-back socket gets, on both ends: TCP_NODELAY (frames are small
/// and answered), and TCP keepalive probing after 10 s of silence, every 5 s, 3 times (a
/// peer whose host vanished is noticed even between heartbeats). Errors are ignored.
void tune_socket(int fd) noexcept;

}  // namespace crew::detail
