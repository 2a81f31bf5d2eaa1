#include "connect_listener.hpp"

#include "../connect/auth.hpp"
#include "../connect/socket_link.hpp"
#include "socket_channel.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace crew::detail {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {

std::string address_text(const tcp::endpoint& e) {
  const auto a = e.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

tcp::endpoint resolve(const listen_options& o) {
  error_code ec;
  const auto a = asio::ip::make_address(o.address, ec);
  if (!ec) return {a, o.port};
  asio::io_context io;
  tcp::resolver r(io);
  auto results = r.resolve(o.address, std::to_string(o.port), tcp::resolver::passive, ec);
  if (ec || results.empty())
    throw std::invalid_argument("listen_options::address '" + o.address +
                                "' does not resolve: " + (ec ? ec.message() : "no address"));
  return results.begin()->endpoint();
}

}  // namespace

// One peer from its accept to its verdict. Each step checks that the listener is still
// open; any failure closes the connection and refuses the peer once.
class connect_listener::handshake : public std::enable_shared_from_this<handshake> {
 public:
  handshake(std::shared_ptr<connect_listener> owner, tcp::socket socket, std::string peer)
      : owner_(std::move(owner)),
        keep_(owner_->host_.keep_alive()),
        deadline_(owner_->strand_),
        link_(std::make_unique<socket_link>()) {
    link_->plain.emplace(std::move(socket));
    link_->peer = std::move(peer);
  }

  void begin() {
    tune_socket(link_->socket().native_handle());
    deadline_.expires_after(owner_->auth_timeout_);
    deadline_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec)
        self->fail("did not complete the handshake within " +
                   std::to_string(self->owner_->auth_timeout_.count()) + " ms");
    });
    transcript_.tls = owner_->tls_;
    try {
      transcript_.pool_nonce = auth::random_nonce();
    } catch (const std::exception& e) {
      return fail(std::string("no random nonce: ") + e.what());
    }
    greeting_ = auth::encode(auth::greeting{owner_->tls_, transcript_.pool_nonce});
    asio::async_write(*link_->plain, asio::buffer(greeting_),
                      [self = shared_from_this()](error_code ec, std::size_t) {
                        if (ec) return self->fail(self->lost(ec));
                        if (self->owner_->tls_) return self->tls_handshake();
                        self->read_proof();
                      });
  }

  void abandon() {  // the listener closed: no refusal, just gone
    if (done_) return;  // refused already, or handed over (link_ is gone then)
    done_ = true;
    deadline_.cancel();
    error_code ignored;
    link_->socket().close(ignored);
  }

 private:
  bool over() const { return done_ || owner_->closed_; }

  std::string lost(const error_code& ec) const {
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
      return "disconnected during the handshake";
    return "the connection failed during the handshake: " + ec.message();
  }

  void tls_handshake() {
    if (over()) return;
    link_->context = owner_->tls_context_;
    link_->tls = std::make_unique<tls_stream>(std::move(*link_->plain), *link_->context);
    link_->plain.reset();
    link_->tls->async_handshake(asio::ssl::stream_base::server,
                                [self = shared_from_this()](error_code ec) {
                                  if (self->over()) return;
                                  if (ec) return self->fail("TLS handshake failed: " + ec.message());
                                  try {
                                    self->transcript_.binding =
                                        auth::tls_binding(self->link_->tls->native_handle());
                                  } catch (const std::exception& e) {
                                    return self->fail(e.what());
                                  }
                                  self->read_proof();
                                });
  }

  template <class Handler>
  void read_exactly(asio::mutable_buffer b, Handler h) {
    if (link_->tls)
      asio::async_read(*link_->tls, b, std::move(h));
    else
      asio::async_read(*link_->plain, b, std::move(h));
  }
  template <class Handler>
  void write_all(asio::const_buffer b, Handler h) {
    if (link_->tls)
      asio::async_write(*link_->tls, b, std::move(h));
    else
      asio::async_write(*link_->plain, b, std::move(h));
  }

  void read_proof() {
    if (over()) return;
    read_exactly(asio::buffer(proof_), [self = shared_from_this()](error_code ec, std::size_t) {
      if (self->over()) return;
      if (ec) return self->fail(self->lost(ec));
      self->check_proof();
    });
  }

  void check_proof() {
    const auto p = auth::decode_proof(proof_);
    if (!p) return fail("not a crew worker: its first bytes are not a handshake");
    transcript_.worker_nonce = p->worker_nonce;
    if (!auth::equal(auth::worker_mac(owner_->secret_, transcript_), p->tag))
      return fail("wrong secret: its proof does not match");
    auth::answer a;
    accepted_ = owner_->host_.free_slots() > owner_->promised_;
    a.verdict = accepted_ ? auth::verdict::accepted : auth::verdict::full;
    a.heartbeat_timeout_ms = owner_->heartbeat_timeout_ms_;
    a.max_payload = owner_->max_payload_;
    a.tag = auth::pool_mac(owner_->secret_, transcript_, a);
    answer_ = auth::encode(a);
    if (accepted_) ++owner_->promised_;
    write_all(asio::buffer(answer_), [self = shared_from_this()](error_code ec, std::size_t) {
      if (self->accepted_) --self->owner_->promised_;
      if (self->over()) return;
      if (ec) return self->fail(self->lost(ec));
      if (!self->accepted_)
        return self->fail("every slot is taken (it was told so, and exits)");
      self->finish();
    });
  }

  void finish() {
    done_ = true;
    deadline_.cancel();
    --owner_->pending_;
    owner_->host_.adopt(make_socket_channel(owner_->strand_, std::move(link_)));
  }

  void fail(const std::string& why) {
    if (done_) return;
    done_ = true;
    deadline_.cancel();
    error_code ignored;
    link_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    link_->socket().close(ignored);
    if (owner_->closed_) return;
    --owner_->pending_;
    owner_->refuse(link_->peer, why);
  }

  std::shared_ptr<connect_listener> owner_;
  std::shared_ptr<void> keep_;
  asio::steady_timer deadline_;
  std::unique_ptr<socket_link> link_;
  auth::transcript transcript_;
  std::array<std::byte, auth::greeting_size> greeting_{};
  std::array<std::byte, auth::proof_size> proof_{};
  std::array<std::byte, auth::answer_size> answer_{};
  bool accepted_ = false;
  bool done_ = false;
};

connect_listener::connect_listener(const asio::any_io_executor& strand, const listen_options& opts,
                                   std::string secret, std::chrono::milliseconds heartbeat_timeout,
                                   std::uint64_t max_payload, listener_host& host)
    : strand_(strand),
      acceptor_(strand),
      retry_(strand),
      secret_(std::move(secret)),
      tls_(opts.tls),
      auth_timeout_(opts.auth_timeout),
      max_pending_(std::max<std::size_t>(1, opts.max_pending)),
      heartbeat_timeout_ms_(static_cast<std::uint32_t>(std::clamp<long long>(
          heartbeat_timeout.count(), 0, std::numeric_limits<std::uint32_t>::max()))),
      max_payload_(max_payload),
      host_(host) {
  const tcp::endpoint at = resolve(opts);
  try {
    acceptor_.open(at.protocol());
    ::fcntl(acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);  // Asio opens it inheritable
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    throw std::system_error(e.code().value(), std::system_category(),
                            "cannot listen on " + address_text(at) + " for workers");
  }
  port_ = acceptor_.local_endpoint().port();
  const auto a = at.address();
  const std::string host_part =
      a.is_unspecified() ? this_host() : (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string());
  connect_address_ = host_part + ":" + std::to_string(port_);
  if (tls_) tls_context_ = auth::server_context();
}

connect_listener::~connect_listener() = default;

void connect_listener::start() {
  accept_next();
}

void connect_listener::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
  for (auto& w : live_)
    if (auto h = w.lock()) h->abandon();
  live_.clear();
}

void connect_listener::accept_next() {
  if (closed_) return;
  acceptor_.async_accept(strand_, [self = shared_from_this(), keep = host_.keep_alive()](
                                      error_code ec, tcp::socket socket) {
    if (self->closed_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors (EMFILE, ENFILE) or a connection reset while queued: the
      // listener goes on after a pause instead of spinning.
      self->retry_.expires_after(std::chrono::milliseconds(100));
      self->retry_.async_wait([self](error_code e) {
        if (!e) self->accept_next();
      });
      return;
    }
    // No program the host application runs inherits a worker's connection.
    ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
    error_code pe;
    const auto remote = socket.remote_endpoint(pe);
    const std::string peer = pe ? std::string("an unknown peer") : address_text(remote);
    if (self->pending_ >= self->max_pending_) {
      error_code ignored;
      socket.close(ignored);
      self->refuse(peer, "more than " + std::to_string(self->max_pending_) +
                             " handshakes at once (listen_options::max_pending)");
    } else {
      ++self->pending_;
      auto h = std::make_shared<handshake>(self, std::move(socket), peer);
      if (self->live_.size() >= 2 * self->max_pending_)
        std::erase_if(self->live_, [](const auto& w) { return w.expired(); });
      self->live_.push_back(h);
      h->begin();
    }
    self->accept_next();
  });
}

void connect_listener::refuse(const std::string& peer, const std::string& why) {
  const auto n = ++refused_;
  host_.refused(peer, why, n);
}

}  // namespace crew::detail
