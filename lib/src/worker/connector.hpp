// Private: a worker that connects back to its pool (docs/protocol.md §11; the pool side is
// pool/connect_listener.hpp). It connects to HOST:PORT — retrying with back-off while
// nobody listens there yet (the pool may start after its workers: a Kubernetes Job, a
// batch script) — runs the handshake (connect/auth.hpp: it proves the secret, and checks
// the pool's proof in turn; under TLS over the TLS session), and hands the connection to
// the serve loop as two descriptors for the stdio relay (stdio_relay.hpp), which answers
// pings and ends the worker when the pool goes silent or away, as on stdio. Without TLS
// they are the socket itself; with TLS a thread of its own (signals blocked, detached)
// pumps bytes between the TLS stream and a socketpair, whose other end the relay gets.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace crew::detail {

/// How to reach the pool.
struct connect_settings {
  std::string address;  ///< "HOST:PORT", "[::1]:PORT"
  std::string secret;   ///< checked (auth::check_secret) before connecting
  /// How long to keep trying to connect (`$CREW_CONNECT_TIMEOUT_MS`, default 60 s).
  std::chrono::milliseconds give_up{60000};
  /// Each step of the handshake must complete within this long.
  std::chrono::milliseconds handshake_timeout{10000};
};

/// What the pool said, and where the frames go.
struct connection {
  bool full = false;      ///< every slot was taken: the worker should exit 0
  int frames_in = -1;     ///< for the relay: read frames here (close-on-exec, >= 10)
  int frames_out = -1;    ///< write frames here
  std::chrono::milliseconds heartbeat_timeout{0};  ///< the worker's silence limit
  std::size_t max_payload = 0;                     ///< the pool's
};

/// Splits "HOST:PORT" (IPv6 in brackets); false if it is not that shape.
bool split_address(const std::string& address, std::string& host, std::string& port);

/// Connects and authenticates. False after a message on stderr ("crew worker: ...") if
/// the pool could not be reached within give_up, the handshake failed (a wrong secret, a
/// peer that is not a crew pool, a pool whose proof is wrong), or a step timed out. A
/// refusal by the pool is not retried: a wrong secret stays wrong.
bool connect_back(const connect_settings& settings, connection& out);

/// serve is returning (a shutdown frame, a protocol error): under TLS, ends what the worker
/// sends and gives the pump up to 500 ms to pass the last bytes on. Nothing without TLS.
void end_connection() noexcept;

}  // namespace crew::detail
