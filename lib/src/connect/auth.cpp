// The connect-back handshake's messages and crypto (auth.hpp has the contract and the
// handshake's steps): the fixed-size messages encoded byte by byte (little-endian, so the
// bytes on the wire do not depend on the host), HMAC-SHA256 over the transcript, a secret
// file checked as ssh checks a private key, and the TLS 1.3 contexts with a throw-away P-256
// key and self-signed certificate made in memory. OpenSSL's headers are included here only.
#include "auth.hpp"

#include <boost/asio/ssl.hpp>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crew::detail::auth {
namespace {

constexpr std::string_view greeting_magic = "CRWG";
constexpr std::string_view proof_magic = "CRWP";
constexpr std::string_view answer_magic = "CRWA";
constexpr std::string_view worker_label = "crew worker proof v1";
constexpr std::string_view pool_label = "crew pool answer v1";
constexpr std::string_view exporter_label = "EXPORTER-crew-connect-back";

// The layouts, as auth.hpp gives them.
static_assert(greeting_size == 4 + 1 + 1 + 2 + nonce_size);
static_assert(proof_size == 4 + nonce_size + mac_size);
static_assert(answer_size == 4 + 1 + 3 + 4 + 8 + mac_size);

// Little-endian integers at `p`, whatever the host's byte order.
template <class T>
void store_le(std::byte* p, T v) noexcept {
  for (std::size_t i = 0; i < sizeof v; ++i)
    p[i] = static_cast<std::byte>(v >> (8 * i));
}
template <class T>
T load_le(const std::byte* p) noexcept {
  T v = 0;
  for (std::size_t i = 0; i < sizeof v; ++i)
    v |= static_cast<T>(static_cast<T>(p[i]) << (8 * i));
  return v;
}

void store_magic(std::byte* p, std::string_view magic) noexcept {
  std::memcpy(p, magic.data(), 4);
}
bool has_magic(const std::byte* p, std::string_view magic) noexcept {
  return std::memcmp(p, magic.data(), 4) == 0;
}
bool all_zero(const std::byte* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != std::byte{0}) return false;
  return true;
}

// OpenSSL's error queue (this thread's) as text, emptied.
std::string openssl_errors() {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    char line[256];
    ERR_error_string_n(e, line, sizeof line);
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text;
}
[[noreturn]] void throw_openssl(const std::string& what) {
  const std::string why = openssl_errors();
  throw std::runtime_error(what + (why.empty() ? " (OpenSSL gave no reason)" : ": " + why));
}

struct key_free {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct cert_free {
  void operator()(X509* c) const noexcept { X509_free(c); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, key_free>;
using cert_ptr = std::unique_ptr<X509, cert_free>;

// The bytes a MAC covers: the label, then the transcript (auth.hpp's encoding).
std::vector<std::byte> mac_input(std::string_view label, const transcript& t) {
  std::vector<std::byte> m;
  m.reserve(label.size() + 2 * nonce_size + 1 + binding_size + 1 + 4 + 8);
  const auto label_bytes = std::as_bytes(std::span(label));
  m.insert(m.end(), label_bytes.begin(), label_bytes.end());
  m.insert(m.end(), t.pool_nonce.begin(), t.pool_nonce.end());
  m.insert(m.end(), t.worker_nonce.begin(), t.worker_nonce.end());
  m.push_back(std::byte{t.tls ? std::uint8_t{1} : std::uint8_t{0}});
  m.insert(m.end(), t.binding.begin(), t.binding.end());
  return m;
}

mac hmac_sha256(std::string_view secret, std::span<const std::byte> message) {
  if (secret.size() > INT_MAX) throw std::runtime_error("HMAC-SHA256: the secret is too long");
  // An empty key is valid HMAC, but OpenSSL wants a pointer for it.
  static const char no_key = 0;
  const void* key = secret.empty() ? &no_key : secret.data();
  mac out;
  unsigned int length = 0;
  ERR_clear_error();
  if (HMAC(EVP_sha256(), key, static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(),
           reinterpret_cast<unsigned char*>(out.data()), &length) == nullptr ||
      length != out.size())
    throw_openssl("HMAC-SHA256 failed");
  return out;
}

std::string bytes_text(std::size_t n) {
  return std::to_string(n) + (n == 1 ? " byte" : " bytes");
}

// Closes a descriptor at the end of its scope.
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

void require_tls13(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
    throw_openssl("cannot restrict the TLS context to TLS 1.3");
}

// A certificate for `key`, signed by it (SHA-256), valid from now for a day. Its names say
// only what it is: nothing checks them (the worker's context verifies no certificate).
cert_ptr self_signed(EVP_PKEY* key) {
  cert_ptr cert(X509_new());
  if (!cert) throw_openssl("cannot make the TLS certificate");
  std::uint64_t serial = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial) != 1)
    throw_openssl("cannot make the TLS certificate's serial number");
  serial = (serial >> 1) | 1;                           // positive and nonzero
  X509_NAME* name = X509_get_subject_name(cert.get());  // the certificate's own
  const auto* common_name = reinterpret_cast<const unsigned char*>("crew connect-back");
  const bool ok =
      X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
      ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial) == 1 &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24L * 60 * 60) != nullptr &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, common_name, -1, -1, 0) == 1 &&
      X509_set_issuer_name(cert.get(), name) == 1 && X509_set_pubkey(cert.get(), key) == 1 &&
      X509_sign(cert.get(), key, EVP_sha256()) > 0;
  if (!ok) throw_openssl("cannot make the TLS certificate");
  return cert;
}

}  // namespace

nonce random_nonce() {
  nonce n;
  ERR_clear_error();
  if (RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), static_cast<int>(n.size())) != 1)
    throw_openssl("no random bytes from OpenSSL (RAND_bytes)");
  return n;
}

std::string generate_secret() {
  constexpr char digits[] = "0123456789abcdef";
  const nonce bytes = random_nonce();
  std::string out;
  out.reserve(2 * bytes.size());
  for (const std::byte b : bytes) {
    const auto v = std::to_integer<unsigned>(b);
    out += digits[v >> 4];
    out += digits[v & 0xf];
  }
  return out;
}

std::string check_secret(std::string_view secret) {
  if (secret.empty())
    return "the secret is empty; at least " + std::to_string(min_secret) + " bytes are needed";
  if (secret.size() < min_secret)
    return "the secret is " + bytes_text(secret.size()) + "; at least " +
           std::to_string(min_secret) + " are needed";
  if (secret.size() > max_secret)
    return "the secret is " + bytes_text(secret.size()) + "; at most " +
           std::to_string(max_secret) + " are allowed";
  return {};
}

std::string read_secret_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  // Symbolic links are followed (as ssh does for keys); the checks are on what was opened,
  // not on the name, so the file cannot be swapped between them. O_NONBLOCK: a FIFO is
  // opened without waiting for a writer, and then refused as not a regular file.
  const fd_guard file{::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (file.fd < 0) {
    const int err = errno;
    throw std::runtime_error("cannot open the secret file " + name + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) {
    const int err = errno;
    throw std::runtime_error("cannot stat the secret file " + name + ": " + std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) throw std::runtime_error("the secret file " + name + " is a directory");
  if (!S_ISREG(st.st_mode))
    throw std::runtime_error("the secret file " + name + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw std::runtime_error("the secret file " + name +
                             " is readable or writable by others (mode " + mode +
                             "): chmod 600 it");
  }
  const auto too_large = [&](const std::string& size) {
    return std::runtime_error("the secret file " + name + " is " + size +
                              "; a secret file holds at most " + bytes_text(max_secret));
  };
  if (st.st_size > static_cast<off_t>(max_secret))
    throw too_large(bytes_text(static_cast<std::size_t>(st.st_size)));

  // Read to the end, but never more than max_secret + 1 bytes: the file may have grown
  // since fstat.
  std::string content(max_secret + 1, '\0');
  std::size_t have = 0;
  while (have < content.size()) {
    const ssize_t n = ::read(file.fd, content.data() + have, content.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      throw std::runtime_error("cannot read the secret file " + name + ": " + std::strerror(err));
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  if (have > max_secret) throw too_large("more than " + bytes_text(max_secret));
  content.resize(have);

  if (content.ends_with("\r\n"))
    content.resize(content.size() - 2);
  else if (content.ends_with('\n'))
    content.pop_back();
  if (const std::string why = check_secret(content); !why.empty())
    throw std::runtime_error("the secret file " + name + ": " + why);
  return content;
}

std::array<std::byte, greeting_size> encode(const greeting& g) {
  std::array<std::byte, greeting_size> out{};
  store_magic(out.data(), greeting_magic);
  store_le(out.data() + 4, version);
  store_le(out.data() + 5, std::uint8_t{g.tls ? std::uint8_t{1} : std::uint8_t{0}});
  // out[6..8): reserved, zero
  std::memcpy(out.data() + 8, g.pool_nonce.data(), nonce_size);
  return out;
}

std::optional<greeting> decode_greeting(std::span<const std::byte, greeting_size> bytes) {
  const std::byte* p = bytes.data();
  if (!has_magic(p, greeting_magic)) return std::nullopt;
  if (load_le<std::uint8_t>(p + 4) != version) return std::nullopt;
  const auto tls = load_le<std::uint8_t>(p + 5);
  if (tls > 1) return std::nullopt;
  if (!all_zero(p + 6, 2)) return std::nullopt;
  greeting g;
  g.tls = tls == 1;
  std::memcpy(g.pool_nonce.data(), p + 8, nonce_size);
  return g;
}

mac worker_mac(std::string_view secret, const transcript& t) {
  return hmac_sha256(secret, mac_input(worker_label, t));
}

std::array<std::byte, proof_size> encode(const proof& p) {
  std::array<std::byte, proof_size> out{};
  store_magic(out.data(), proof_magic);
  std::memcpy(out.data() + 4, p.worker_nonce.data(), nonce_size);
  std::memcpy(out.data() + 4 + nonce_size, p.tag.data(), mac_size);
  return out;
}

std::optional<proof> decode_proof(std::span<const std::byte, proof_size> bytes) {
  const std::byte* in = bytes.data();
  if (!has_magic(in, proof_magic)) return std::nullopt;
  proof p;
  std::memcpy(p.worker_nonce.data(), in + 4, nonce_size);
  std::memcpy(p.tag.data(), in + 4 + nonce_size, mac_size);
  return p;
}

mac pool_mac(std::string_view secret, const transcript& t, const answer& a) {
  std::vector<std::byte> m = mac_input(pool_label, t);
  std::byte settings[1 + 4 + 8];
  store_le(settings, static_cast<std::uint8_t>(a.verdict));
  store_le(settings + 1, a.heartbeat_timeout_ms);
  store_le(settings + 5, a.max_payload);
  m.insert(m.end(), std::begin(settings), std::end(settings));
  return hmac_sha256(secret, m);
}

std::array<std::byte, answer_size> encode(const answer& a) {
  std::array<std::byte, answer_size> out{};
  store_magic(out.data(), answer_magic);
  store_le(out.data() + 4, static_cast<std::uint8_t>(a.verdict));
  // out[5..8): reserved, zero
  store_le(out.data() + 8, a.heartbeat_timeout_ms);
  store_le(out.data() + 12, a.max_payload);
  std::memcpy(out.data() + 20, a.tag.data(), mac_size);
  return out;
}

std::optional<answer> decode_answer(std::span<const std::byte, answer_size> bytes) {
  const std::byte* p = bytes.data();
  if (!has_magic(p, answer_magic)) return std::nullopt;
  const auto v = load_le<std::uint8_t>(p + 4);
  if (v != static_cast<std::uint8_t>(verdict::accepted) &&
      v != static_cast<std::uint8_t>(verdict::full))
    return std::nullopt;
  if (!all_zero(p + 5, 3)) return std::nullopt;
  answer a;
  a.verdict = static_cast<auth::verdict>(v);
  a.heartbeat_timeout_ms = load_le<std::uint32_t>(p + 8);
  a.max_payload = load_le<std::uint64_t>(p + 12);
  std::memcpy(a.tag.data(), p + 20, mac_size);
  return a;
}

bool equal(const mac& a, const mac& b) noexcept {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::shared_ptr<boost::asio::ssl::context> server_context() {
  namespace ssl = boost::asio::ssl;
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  require_tls13(native);
  // Every connection is a fresh, full handshake: no session tickets to resume from.
  if (SSL_CTX_set_num_tickets(native, 0) != 1) throw_openssl("cannot turn off TLS tickets");
  const key_ptr key(EVP_EC_gen("P-256"));
  if (!key) throw_openssl("cannot make a P-256 key for TLS");
  const cert_ptr cert = self_signed(key.get());
  // Both calls take their own reference: `key` and `cert` can go at the end of the scope.
  if (SSL_CTX_use_certificate(native, cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(native, key.get()) != 1 || SSL_CTX_check_private_key(native) != 1)
    throw_openssl("cannot give the TLS context its key and certificate");
  return ctx;
}

std::shared_ptr<boost::asio::ssl::context> client_context() {
  namespace ssl = boost::asio::ssl;
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  require_tls13(ctx->native_handle());
  // The pool's certificate is a throw-away: the proof over the binding authenticates it.
  ctx->set_verify_mode(ssl::verify_none);
  return ctx;
}

binding tls_binding(SSL* ssl) {
  if (ssl == nullptr || SSL_is_init_finished(ssl) != 1)
    throw std::runtime_error("no TLS binding: the TLS handshake has not finished");
  if (SSL_version(ssl) != TLS1_3_VERSION)
    throw std::runtime_error("no TLS binding: the TLS session is not TLS 1.3");
  binding out;
  ERR_clear_error();
  if (SSL_export_keying_material(ssl, reinterpret_cast<unsigned char*>(out.data()), out.size(),
                                 exporter_label.data(), exporter_label.size(), nullptr, 0, 0) != 1)
    throw_openssl("cannot export the TLS binding (" + std::string(exporter_label) + ")");
  return out;
}

}  // namespace crew::detail::auth
