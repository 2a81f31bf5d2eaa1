// The connect-back handshake's messages and crypto (lib/src/connect/auth.hpp): the wire
// layouts and what decoding refuses, what the MACs cover (checked against HMAC-SHA256
// computed elsewhere), the secret's rules and its file's checks, and a real TLS 1.3
// handshake between the two contexts over a socket pair, whose exported binding both ends
// must agree on.
#include "connect/auth.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/test/unit_test.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace auth = crew::detail::auth;
namespace asio = boost::asio;
namespace fs = std::filesystem;

template <std::size_t N>
std::string hex(const std::array<std::byte, N>& bytes) {
  constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const std::byte b : bytes) {
    out += digits[std::to_integer<unsigned>(b) >> 4];
    out += digits[std::to_integer<unsigned>(b) & 0xf];
  }
  return out;
}

// Bytes first, first + 1, ... (mod 256).
template <std::size_t N>
std::array<std::byte, N> counting(unsigned first) {
  std::array<std::byte, N> out;
  for (std::size_t i = 0; i < N; ++i)
    out[i] = static_cast<std::byte>(first + i);
  return out;
}

// The transcript of the known-answer vectors below.
auth::transcript known_transcript() {
  auth::transcript t;
  t.pool_nonce = counting<auth::nonce_size>(0);     // 00 01 .. 1f
  t.worker_nonce = counting<auth::nonce_size>(32);  // 20 21 .. 3f
  t.tls = true;
  t.binding.fill(std::byte{0xa5});
  return t;
}
constexpr std::string_view known_secret = "crew-known-answer-secret";

// ---- messages -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_messages_have_the_documented_sizes) {
  BOOST_TEST(auth::greeting_size == 40u);
  BOOST_TEST(auth::proof_size == 68u);
  BOOST_TEST(auth::answer_size == 52u);
}

BOOST_AUTO_TEST_CASE(a_greeting_round_trips_with_and_without_tls) {
  for (const bool tls : {false, true}) {
    const auth::greeting g{.tls = tls, .pool_nonce = counting<auth::nonce_size>(7)};
    const auto bytes = auth::encode(g);
    const auto back = auth::decode_greeting(bytes);
    BOOST_TEST_REQUIRE(back.has_value(), "tls " << tls);
    BOOST_TEST(back->tls == tls);
    BOOST_TEST(hex(back->pool_nonce) == hex(g.pool_nonce));
  }
}

BOOST_AUTO_TEST_CASE(a_greeting_is_laid_out_as_documented) {
  const auto bytes = auth::encode({.tls = true, .pool_nonce = counting<auth::nonce_size>(0)});
  BOOST_TEST(hex(bytes) ==
             "43525747"  // "CRWG"
             "01"        // version
             "01"        // tls
             "0000"      // reserved
             "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
}

BOOST_AUTO_TEST_CASE(a_greeting_with_a_wrong_magic_version_tls_byte_or_reserved_byte_is_refused) {
  const auto good = auth::encode({.tls = false, .pool_nonce = counting<auth::nonce_size>(1)});
  BOOST_TEST_REQUIRE(auth::decode_greeting(good).has_value());
  const struct {
    std::size_t at;
    std::byte value;
    const char* what;
  } bad[] = {{0, std::byte{'X'}, "magic"},     {3, std::byte{'P'}, "magic (a proof's)"},
             {4, std::byte{0}, "version 0"},   {4, std::byte{2}, "version 2"},
             {5, std::byte{2}, "tls byte 2"},  {5, std::byte{0xff}, "tls byte 255"},
             {6, std::byte{1}, "reserved[0]"}, {7, std::byte{0x80}, "reserved[1]"}};
  for (const auto& b : bad) {
    auto bytes = good;
    bytes[b.at] = b.value;
    BOOST_TEST(!auth::decode_greeting(bytes).has_value(), b.what);
  }
}

BOOST_AUTO_TEST_CASE(a_proof_round_trips_and_a_wrong_magic_is_refused) {
  const auth::proof p{.worker_nonce = counting<auth::nonce_size>(3),
                      .tag = counting<auth::mac_size>(200)};
  const auto bytes = auth::encode(p);
  BOOST_TEST(hex(bytes).substr(0, 8) == "43525750");  // "CRWP"
  const auto back = auth::decode_proof(bytes);
  BOOST_TEST_REQUIRE(back.has_value());
  BOOST_TEST(hex(back->worker_nonce) == hex(p.worker_nonce));
  BOOST_TEST(hex(back->tag) == hex(p.tag));

  for (std::size_t at = 0; at < 4; ++at) {
    auto wrong = bytes;
    wrong[at] ^= std::byte{0x20};
    BOOST_TEST(!auth::decode_proof(wrong).has_value(), "magic byte " << at);
  }
}

BOOST_AUTO_TEST_CASE(an_answer_round_trips_with_either_verdict_and_extreme_settings) {
  const auth::answer answers[] = {{.verdict = auth::verdict::accepted,
                                   .heartbeat_timeout_ms = 0,
                                   .max_payload = 0,
                                   .tag = counting<auth::mac_size>(9)},
                                  {.verdict = auth::verdict::full,
                                   .heartbeat_timeout_ms = 0xffffffffu,
                                   .max_payload = 0xffffffffffffffffu,
                                   .tag = counting<auth::mac_size>(250)},
                                  {.verdict = auth::verdict::accepted,
                                   .heartbeat_timeout_ms = 30000,
                                   .max_payload = 256u << 20,
                                   .tag = {}}};
  for (const auto& a : answers) {
    const auto back = auth::decode_answer(auth::encode(a));
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST((back->verdict == a.verdict));
    BOOST_TEST(back->heartbeat_timeout_ms == a.heartbeat_timeout_ms);
    BOOST_TEST(back->max_payload == a.max_payload);
    BOOST_TEST(hex(back->tag) == hex(a.tag));
  }
}

BOOST_AUTO_TEST_CASE(an_answer_is_laid_out_as_documented_with_little_endian_integers) {
  const auto bytes = auth::encode({.verdict = auth::verdict::full,
                                   .heartbeat_timeout_ms = 0x11223344u,
                                   .max_payload = 0x0102030405060708u,
                                   .tag = counting<auth::mac_size>(0xe0)});
  BOOST_TEST(hex(bytes) ==
             "43525741"          // "CRWA"
             "02"                // verdict full
             "000000"            // reserved
             "44332211"          // heartbeat timeout, u32 LE
             "0807060504030201"  // max_payload, u64 LE
             "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
}

BOOST_AUTO_TEST_CASE(an_answer_with_a_wrong_magic_unknown_verdict_or_reserved_byte_is_refused) {
  const auto good = auth::encode({.verdict = auth::verdict::accepted,
                                  .heartbeat_timeout_ms = 5000,
                                  .max_payload = 1024,
                                  .tag = counting<auth::mac_size>(1)});
  BOOST_TEST_REQUIRE(auth::decode_answer(good).has_value());
  const struct {
    std::size_t at;
    std::byte value;
    const char* what;
  } bad[] = {{0, std::byte{'c'}, "magic"},        {3, std::byte{'G'}, "magic (a greeting's)"},
             {4, std::byte{0}, "verdict 0"},      {4, std::byte{3}, "verdict 3"},
             {4, std::byte{0xff}, "verdict 255"}, {5, std::byte{1}, "reserved[0]"},
             {6, std::byte{1}, "reserved[1]"},    {7, std::byte{0x80}, "reserved[2]"}};
  for (const auto& b : bad) {
    auto bytes = good;
    bytes[b.at] = b.value;
    BOOST_TEST(!auth::decode_answer(bytes).has_value(), b.what);
  }
}

// ---- MACs -----------------------------------------------------------------------------

// Computed independently, at test-writing time, with
//   python3 -c "import hmac,hashlib; t=bytes(range(64))+b'\x01'+b'\xa5'*32;
//     print(hmac.new(b'crew-known-answer-secret', b'crew worker proof v1'+t,
//     hashlib.sha256).hexdigest())"
// and confirmed with `openssl dgst -sha256 -mac HMAC -macopt key:crew-known-answer-secret`
// over the same bytes.
BOOST_AUTO_TEST_CASE(the_worker_mac_is_hmac_sha256_over_the_label_and_the_transcript) {
  BOOST_TEST(hex(auth::worker_mac(known_secret, known_transcript())) ==
             "e70747a72dde87a619f49b7273040b87e1e7ab05c5e6b3b8ff1f6062f479eaa5");
}

// As above, with the verdict as one byte, then the heartbeat timeout as a u32 and
// max_payload as a u64, little-endian:
//   python3 -c "import hmac,hashlib,struct; t=bytes(range(64))+b'\x01'+b'\xa5'*32;
//     print(hmac.new(b'crew-known-answer-secret', b'crew pool answer v1'+t
//     +struct.pack('<BIQ',2,1500,0x0102030405060708), hashlib.sha256).hexdigest())"
BOOST_AUTO_TEST_CASE(the_pool_mac_is_hmac_sha256_over_the_label_transcript_and_answer) {
  const auth::answer a{.verdict = auth::verdict::full,
                       .heartbeat_timeout_ms = 1500,
                       .max_payload = 0x0102030405060708u,
                       .tag = counting<auth::mac_size>(77)};  // ignored
  BOOST_TEST(hex(auth::pool_mac(known_secret, known_transcript(), a)) ==
             "28712a4075fbd0b6413bf16d9a520261b8c9c984d9c17897a05404ad974acf3d");
}

BOOST_AUTO_TEST_CASE(the_worker_mac_changes_with_every_transcript_field_and_the_secret) {
  const auth::transcript base = known_transcript();
  const std::string mac = hex(auth::worker_mac(known_secret, base));
  BOOST_TEST(hex(auth::worker_mac(known_secret, base)) == mac);  // deterministic

  auto t = base;
  t.pool_nonce[31] ^= std::byte{1};
  BOOST_TEST(hex(auth::worker_mac(known_secret, t)) != mac, "pool nonce");
  t = base;
  t.worker_nonce[0] ^= std::byte{1};
  BOOST_TEST(hex(auth::worker_mac(known_secret, t)) != mac, "worker nonce");
  t = base;
  std::swap(t.pool_nonce, t.worker_nonce);
  BOOST_TEST(hex(auth::worker_mac(known_secret, t)) != mac, "nonces swapped");
  t = base;
  t.tls = false;
  BOOST_TEST(hex(auth::worker_mac(known_secret, t)) != mac, "tls");
  t = base;
  t.binding[16] ^= std::byte{0x80};
  BOOST_TEST(hex(auth::worker_mac(known_secret, t)) != mac, "binding");
  BOOST_TEST(hex(auth::worker_mac("crew-known-answer-secreT", base)) != mac, "secret");
}

BOOST_AUTO_TEST_CASE(the_pool_mac_changes_with_every_transcript_field_and_setting) {
  const auth::transcript base = known_transcript();
  const auth::answer answer{
      .verdict = auth::verdict::accepted, .heartbeat_timeout_ms = 10000, .max_payload = 4096};
  const std::string mac = hex(auth::pool_mac(known_secret, base, answer));

  auto t = base;
  t.pool_nonce[0] ^= std::byte{1};
  BOOST_TEST(hex(auth::pool_mac(known_secret, t, answer)) != mac, "pool nonce");
  t = base;
  t.worker_nonce[31] ^= std::byte{1};
  BOOST_TEST(hex(auth::pool_mac(known_secret, t, answer)) != mac, "worker nonce");
  t = base;
  t.tls = false;
  BOOST_TEST(hex(auth::pool_mac(known_secret, t, answer)) != mac, "tls");
  t = base;
  t.binding[0] ^= std::byte{1};
  BOOST_TEST(hex(auth::pool_mac(known_secret, t, answer)) != mac, "binding");

  auto a = answer;
  a.verdict = auth::verdict::full;
  BOOST_TEST(hex(auth::pool_mac(known_secret, base, a)) != mac, "verdict");
  a = answer;
  a.heartbeat_timeout_ms += 1;
  BOOST_TEST(hex(auth::pool_mac(known_secret, base, a)) != mac, "heartbeat timeout");
  a = answer;
  a.max_payload += 1;
  BOOST_TEST(hex(auth::pool_mac(known_secret, base, a)) != mac, "max_payload");
  a = answer;
  a.tag = counting<auth::mac_size>(1);
  BOOST_TEST(hex(auth::pool_mac(known_secret, base, a)) == mac, "the tag is not covered");
}

// A worker's proof can never pass for a pool's answer, nor the other way round.
BOOST_AUTO_TEST_CASE(the_two_labels_give_different_macs_for_the_same_transcript) {
  for (const bool tls : {false, true}) {
    auth::transcript t = known_transcript();
    t.tls = tls;
    const auto worker = auth::worker_mac(known_secret, t);
    for (const auto v : {auth::verdict::accepted, auth::verdict::full}) {
      const auth::answer a{.verdict = v, .heartbeat_timeout_ms = 0, .max_payload = 0};
      BOOST_TEST(hex(auth::pool_mac(known_secret, t, a)) != hex(worker));
    }
  }
}

BOOST_AUTO_TEST_CASE(equal_compares_every_byte) {
  const auto a = counting<auth::mac_size>(10);
  BOOST_TEST(auth::equal(a, a));
  BOOST_TEST(auth::equal(a, counting<auth::mac_size>(10)));
  for (const std::size_t at : {std::size_t{0}, std::size_t{15}, auth::mac_size - 1}) {
    auto b = a;
    b[at] ^= std::byte{1};
    BOOST_TEST(!auth::equal(a, b), "byte " << at);
    BOOST_TEST(!auth::equal(b, a), "byte " << at);
  }
}

// ---- randomness and secrets -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(random_nonces_differ) {
  const auto a = auth::random_nonce();
  const auto b = auth::random_nonce();
  BOOST_TEST(hex(a) != hex(b));
  BOOST_TEST(hex(a) != hex(auth::nonce{}));
}

BOOST_AUTO_TEST_CASE(a_generated_secret_is_64_lowercase_hex_digits_and_acceptable) {
  const std::string s = auth::generate_secret();
  BOOST_TEST(s.size() == 64u);
  BOOST_TEST(std::all_of(s.begin(), s.end(),
                         [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }),
             s);
  BOOST_TEST(auth::check_secret(s) == "");
  BOOST_TEST(auth::generate_secret() != s);
}

BOOST_AUTO_TEST_CASE(check_secret_takes_16_to_4096_bytes) {
  BOOST_TEST(auth::check_secret(std::string(15, 'x')) ==
             "the secret is 15 bytes; at least 16 are needed");
  BOOST_TEST(auth::check_secret("") != "");
  BOOST_TEST(auth::check_secret(std::string(16, 'x')) == "");
  BOOST_TEST(auth::check_secret(std::string(4096, 'x')) == "");
  BOOST_TEST(auth::check_secret(std::string(4097, 'x')) ==
             "the secret is 4097 bytes; at most 4096 are allowed");
}

// A fresh directory for the secret files of one test, removed at its end.
struct secret_dir {
  fs::path path;
  secret_dir() {
    std::string templ = (fs::temp_directory_path() / "crew-test-auth-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = templ;
  }
  ~secret_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  secret_dir(const secret_dir&) = delete;
  secret_dir& operator=(const secret_dir&) = delete;

  fs::path write(const std::string& name, const std::string& content, mode_t mode) const {
    const fs::path file = path / name;
    std::ofstream(file, std::ios::binary) << content;
    if (::chmod(file.c_str(), mode) != 0) throw std::runtime_error("chmod failed");
    return file;
  }
};

std::string read_error(const fs::path& file) {
  try {
    auth::read_secret_file(file);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

BOOST_AUTO_TEST_CASE(a_private_secret_file_is_read_without_one_trailing_newline) {
  const secret_dir dir;
  const std::string secret = "0123456789abcdef0123";
  BOOST_TEST(auth::read_secret_file(dir.write("plain", secret, 0600)) == secret);
  BOOST_TEST(auth::read_secret_file(dir.write("lf", secret + "\n", 0600)) == secret);
  BOOST_TEST(auth::read_secret_file(dir.write("crlf", secret + "\r\n", 0600)) == secret);
  BOOST_TEST(auth::read_secret_file(dir.write("two", secret + "\n\n", 0600)) == secret + "\n");
  BOOST_TEST(auth::read_secret_file(dir.write("cr", secret + "\r", 0600)) == secret + "\r");
  BOOST_TEST(auth::read_secret_file(dir.write("owner-only", secret, 0400)) == secret);
}

// As ssh does for keys: the link is followed, the file it names is checked.
BOOST_AUTO_TEST_CASE(a_symbolic_link_to_a_private_secret_file_is_followed) {
  const secret_dir dir;
  const std::string secret = "0123456789abcdef0123";
  dir.write("target", secret + "\n", 0600);
  fs::create_symlink("target", dir.path / "link");
  BOOST_TEST(auth::read_secret_file(dir.path / "link") == secret);
  dir.write("open", secret, 0644);
  fs::create_symlink("open", dir.path / "link-to-open");
  BOOST_TEST(contains(read_error(dir.path / "link-to-open"), "(mode 0644)"));
}

BOOST_AUTO_TEST_CASE(a_secret_file_others_can_read_or_write_is_refused_by_name) {
  const secret_dir dir;
  const fs::path file = dir.write("shared", "0123456789abcdef0123", 0644);
  BOOST_TEST(read_error(file) ==
             "the secret file " + file.string() +
                 " is readable or writable by others (mode 0644): chmod 600 it");
  for (const mode_t mode : {0640, 0620, 0604, 0602, 0610}) {
    const fs::path f = dir.write("mode" + std::to_string(mode), "0123456789abcdef0123", mode);
    const std::string why = read_error(f);
    BOOST_TEST(contains(why, f.string()), why);
    BOOST_TEST(contains(why, "chmod 600"), why);
  }
}

BOOST_AUTO_TEST_CASE(a_directory_a_fifo_and_a_missing_file_are_refused_by_name) {
  const secret_dir dir;
  const fs::path sub = dir.path / "sub";
  fs::create_directory(sub);
  ::chmod(sub.c_str(), 0700);
  std::string why = read_error(sub);
  BOOST_TEST(contains(why, sub.string()), why);
  BOOST_TEST(contains(why, "directory"), why);

  // Refused at once: the open does not wait for a writer.
  const fs::path fifo = dir.path / "fifo";
  BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  why = read_error(fifo);
  BOOST_TEST(contains(why, fifo.string()), why);
  BOOST_TEST(contains(why, "not a regular file"), why);

  const fs::path missing = dir.path / "missing";
  why = read_error(missing);
  BOOST_TEST(contains(why, missing.string()), why);
  BOOST_TEST(contains(why, "No such file"), why);
}

BOOST_AUTO_TEST_CASE(a_secret_file_too_large_or_too_short_is_refused_by_name) {
  const secret_dir dir;
  BOOST_TEST(auth::read_secret_file(dir.write("max", std::string(4096, 's'), 0600)).size() ==
             4096u);
  const fs::path large = dir.write("large", std::string(4097, 's'), 0600);
  std::string why = read_error(large);
  BOOST_TEST(contains(why, large.string()), why);
  BOOST_TEST(contains(why, "4097 bytes"), why);

  const fs::path huge = dir.write("huge", std::string(1 << 20, 's'), 0600);
  why = read_error(huge);
  BOOST_TEST(contains(why, huge.string()), why);

  // The newline is not part of the secret: 15 characters and "\n" are too few.
  const fs::path short_one = dir.write("short", std::string(15, 's') + "\n", 0600);
  why = read_error(short_one);
  BOOST_TEST(why == "the secret file " + short_one.string() +
                        ": the secret is 15 bytes; at least 16 are needed");
  const fs::path empty = dir.write("empty", "", 0600);
  BOOST_TEST(contains(read_error(empty), empty.string()));
}

// ---- TLS ------------------------------------------------------------------------------

using tls_stream = asio::ssl::stream<asio::local::stream_protocol::socket>;

struct handshake_result {
  boost::system::error_code server, client;
};

// Both ends' handshakes over a socket pair, run to completion on one thread.
handshake_result handshake(tls_stream& server, tls_stream& client, asio::io_context& io) {
  handshake_result r;
  server.async_handshake(tls_stream::server,
                         [&](const boost::system::error_code& ec) { r.server = ec; });
  client.async_handshake(tls_stream::client,
                         [&](const boost::system::error_code& ec) { r.client = ec; });
  io.run();
  io.restart();
  return r;
}

struct tls_pair {
  asio::io_context io;
  std::shared_ptr<asio::ssl::context> server_ctx = auth::server_context();
  std::shared_ptr<asio::ssl::context> client_ctx = auth::client_context();
  tls_stream server{io, *server_ctx};
  tls_stream client{io, *client_ctx};
  tls_pair() { asio::local::connect_pair(server.next_layer(), client.next_layer()); }
};

BOOST_AUTO_TEST_CASE(both_ends_of_a_tls_13_handshake_export_the_same_binding) {
  tls_pair p;
  const auto r = handshake(p.server, p.client, p.io);
  BOOST_TEST_REQUIRE(!r.server.failed(), r.server.message());
  BOOST_TEST_REQUIRE(!r.client.failed(), r.client.message());
  BOOST_TEST(SSL_version(p.client.native_handle()) == TLS1_3_VERSION);
  BOOST_TEST(SSL_get0_peer_certificate(p.client.native_handle()) != nullptr);

  const auto server_binding = auth::tls_binding(p.server.native_handle());
  const auto client_binding = auth::tls_binding(p.client.native_handle());
  BOOST_TEST(hex(server_binding) == hex(client_binding));
  BOOST_TEST(hex(server_binding) != hex(auth::binding{}));

  // So both ends compute the same proof over it.
  auth::transcript t = known_transcript();
  t.binding = server_binding;
  auth::transcript u = t;
  u.binding = client_binding;
  BOOST_TEST(auth::equal(auth::worker_mac(known_secret, t), auth::worker_mac(known_secret, u)));
}

BOOST_AUTO_TEST_CASE(two_handshakes_export_different_bindings) {
  tls_pair first, second;
  BOOST_TEST_REQUIRE(!handshake(first.server, first.client, first.io).client.failed());
  BOOST_TEST_REQUIRE(!handshake(second.server, second.client, second.io).client.failed());
  BOOST_TEST(hex(auth::tls_binding(first.client.native_handle())) !=
             hex(auth::tls_binding(second.client.native_handle())));
}

BOOST_AUTO_TEST_CASE(two_pool_contexts_have_different_keys) {
  const auto a = auth::server_context();
  const auto b = auth::server_context();
  const X509* ca = SSL_CTX_get0_certificate(a->native_handle());
  const X509* cb = SSL_CTX_get0_certificate(b->native_handle());
  BOOST_TEST_REQUIRE(ca != nullptr);
  BOOST_TEST_REQUIRE(cb != nullptr);
  BOOST_TEST(X509_cmp(ca, cb) != 0);
}

BOOST_AUTO_TEST_CASE(a_client_without_tls_13_cannot_connect) {
  tls_pair p;
  SSL_set_max_proto_version(p.client.native_handle(), TLS1_2_VERSION);
  const auto r = handshake(p.server, p.client, p.io);
  BOOST_TEST(r.server.failed());
  BOOST_TEST(r.client.failed());
}

BOOST_AUTO_TEST_CASE(there_is_no_binding_before_the_handshake) {
  tls_pair p;
  BOOST_CHECK_THROW(auth::tls_binding(p.client.native_handle()), std::runtime_error);
  BOOST_CHECK_THROW(auth::tls_binding(nullptr), std::runtime_error);
}

}  // namespace
