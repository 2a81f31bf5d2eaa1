// Private: the connect-back handshake's messages and crypto (docs/protocol.md §11), shared
// by the pool (listener.hpp) and the worker (connector.hpp). Pure functions over byte
// arrays, plus the TLS contexts: no sockets here.
//
// The handshake, after the TCP connection is made (the worker connects, the pool accepts):
//   1. pool -> worker, in the clear: a greeting (greeting_size bytes): magic "CRWG", the
//      handshake version, whether TLS follows, and the pool's fresh random nonce Np.
//   2. With TLS: a TLS 1.3 handshake (the worker is the client). `binding` is then 32
//      bytes exported from the TLS session (RFC 5705/8446 exporter, label
//      "EXPORTER-crew-connect-back"): both ends get the same value only if no one sits
//      between them. Without TLS it is 32 zero bytes.
//   3. worker -> pool: its proof (proof_size bytes): magic "CRWP", its fresh nonce Nw, and
//      HMAC-SHA256(secret, "crew worker proof v1" | Np | Nw | tls | binding).
//   4. pool -> worker: its answer (answer_size bytes): magic "CRWA", the verdict (accepted,
//      or every slot taken), the settings the worker must run with (heartbeat timeout, max
//      payload), and HMAC-SHA256(secret, "crew pool answer v1" | Np | Nw | tls | binding |
//      verdict | settings). Then the protocol proper: the worker's hello (docs/protocol.md).
// Nonces are fresh per connection on both sides, so a recorded handshake replayed by
// someone without the secret fails either way; the secret never crosses the wire; MACs are
// compared in constant time (CRYPTO_memcmp). Every message has a fixed size: before the
// proof is checked the pool reads exactly proof_size bytes, nothing more.
//
// Encoding: each message starts with its 4 ASCII magic bytes; integers are little-endian,
// as in the frames (lib/src/protocol.cpp). A MAC's input is its label's ASCII bytes (no
// NUL), then the fields in the order above: the nonces' 32 bytes each, tls as one byte (0
// or 1), the binding's 32 bytes; for the answer then the verdict as one byte, the
// heartbeat timeout as a u32 and max_payload as a u64.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

using SSL = struct ssl_st;  // OpenSSL's, without its headers here

namespace boost::asio::ssl {
class context;
}

namespace crew::detail::auth {

inline constexpr std::uint8_t version = 1;
inline constexpr std::size_t nonce_size = 32;
inline constexpr std::size_t mac_size = 32;  // HMAC-SHA256
inline constexpr std::size_t binding_size = 32;
inline constexpr std::size_t greeting_size = 40;  // "CRWG" u8 version, u8 tls, u16 0, Np
inline constexpr std::size_t proof_size = 68;     // "CRWP" Nw, mac
inline constexpr std::size_t answer_size = 52;    // "CRWA" u8 verdict, 3 x 0, u32 hb, u64 max, mac
/// The shortest secret accepted: shorter ones could be guessed.
inline constexpr std::size_t min_secret = 16;
/// The longest secret accepted (a file of more is refused, not read).
inline constexpr std::size_t max_secret = 4096;

using nonce = std::array<std::byte, nonce_size>;
using mac = std::array<std::byte, mac_size>;
using binding = std::array<std::byte, binding_size>;

/// Fresh bytes from OpenSSL's CSPRNG (RAND_bytes). Throws std::runtime_error if it fails.
nonce random_nonce();
/// A new secret: 32 random bytes as 64 lowercase hex digits. Throws as random_nonce.
std::string generate_secret();
/// Why `secret` cannot be used (too short, too long), or empty.
std::string check_secret(std::string_view secret);
/// Reads a secret from `path`: the file's content without one trailing newline ("\n" or
/// "\r\n"). Refuses (std::runtime_error, naming the file and why) a file that cannot be
/// read, is not a regular file, is larger than max_secret, can be read or written by group
/// or others (mode & 077, as ssh does for keys), or whose secret check_secret refuses.
std::string read_secret_file(const std::filesystem::path& path);

/// Step 1.
struct greeting {
  bool tls = false;
  nonce pool_nonce{};
};
std::array<std::byte, greeting_size> encode(const greeting& g);
/// Empty for a wrong magic, version, tls byte (neither 0 nor 1) or nonzero reserved bytes.
std::optional<greeting> decode_greeting(std::span<const std::byte, greeting_size> bytes);

/// The inputs both MACs cover.
struct transcript {
  nonce pool_nonce{};
  nonce worker_nonce{};
  bool tls = false;
  auth::binding binding{};  ///< zeros without TLS
};

/// Step 3.
struct proof {
  nonce worker_nonce{};
  mac tag{};
};
/// The worker's MAC over `t`.
mac worker_mac(std::string_view secret, const transcript& t);
std::array<std::byte, proof_size> encode(const proof& p);
/// Empty for a wrong magic.
std::optional<proof> decode_proof(std::span<const std::byte, proof_size> bytes);

/// Step 4.
enum class verdict : std::uint8_t {
  accepted = 1,  ///< the worker has a slot: its hello comes next
  full = 2,      ///< every slot is taken: the worker exits 0
};
struct answer {
  auth::verdict verdict = verdict::accepted;
  std::uint32_t heartbeat_timeout_ms = 0;  ///< the worker's silence limit (0: none)
  std::uint64_t max_payload = 0;           ///< the pool's max_payload
  mac tag{};
};
/// The pool's MAC over `t` and the answer's verdict and settings (its `tag` ignored).
mac pool_mac(std::string_view secret, const transcript& t, const answer& a);
std::array<std::byte, answer_size> encode(const answer& a);
/// Empty for a wrong magic, an unknown verdict or nonzero reserved bytes.
std::optional<answer> decode_answer(std::span<const std::byte, answer_size> bytes);

/// Whether two MACs are equal, in time independent of where they differ.
bool equal(const mac& a, const mac& b) noexcept;

/// TLS 1.3 only. The pool's context: a fresh P-256 key and a self-signed certificate for
/// it, made in memory (nothing on disk), valid for a day. The worker's: no certificate
/// check (the proof over `binding` authenticates both ends instead). Throws
/// std::runtime_error with OpenSSL's error text if OpenSSL fails.
std::shared_ptr<boost::asio::ssl::context> server_context();
std::shared_ptr<boost::asio::ssl::context> client_context();
/// The exporter value of an established TLS session (step 2). Throws std::runtime_error if
/// OpenSSL cannot export it.
binding tls_binding(SSL* ssl);

}  // namespace crew::detail::auth
