#include "socket_channel.hpp"

#include "../connect/socket_link.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <vector>

#include <linux/sockios.h>
#include <sys/ioctl.h>

namespace crew::detail {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {

// Under TLS a write is a whole async_write of a copy: at most this much at a time, so that
// a large task goes out in pieces and the session keeps its own buffer.
constexpr std::size_t tls_write_chunk = std::size_t{1} << 20;

bool would_block(const error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}

class socket_channel final : public worker_channel,
                             public std::enable_shared_from_this<socket_channel> {
 public:
  socket_channel(const asio::any_io_executor& strand, std::unique_ptr<socket_link> link)
      : strand_(strand), link_(std::move(link)) {}

  std::string start(std::weak_ptr<channel_listener> listener) override {
    listener_ = std::move(listener);
    if (link_->plain) {
      error_code ec;
      link_->plain->non_blocking(true, ec);
      if (ec) {
        end_reading({});
        asio::post(strand_, [h = holding()] { h.self->maybe_end(); });
        return "cannot make the connection non-blocking: " + ec.message();
      }
    }
    read_frames();
    return {};
  }

  int pid() const noexcept override { return 0; }
  std::string where() const override { return link_->peer; }
  std::string peer_address() const override { return link_->peer; }

  long write_some(std::span<const std::byte> bytes, int& error) override {
    if (closed_ || output_closed_) {
      error = EPIPE;
      return -1;
    }
    if (link_->plain) {
      error_code ec;
      const std::size_t n = link_->plain->write_some(asio::buffer(bytes.data(), bytes.size()), ec);
      if (!ec) return static_cast<long>(n);
      error = would_block(ec) ? EAGAIN : (ec.value() ? ec.value() : EPIPE);
      if (!would_block(ec)) write_failed_ = true;
      return -1;
    }
    if (write_failed_) {
      error = EPIPE;
      return -1;
    }
    if (writing_) {
      error = EAGAIN;
      return -1;
    }
    const std::size_t n = std::min(bytes.size(), tls_write_chunk);
    wbuf_.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    writing_ = true;
    asio::async_write(*link_->tls, asio::buffer(wbuf_), [h = holding()](error_code ec, std::size_t) {
      auto& self = h.self;
      self->writing_ = false;
      if (ec) self->write_failed_ = true;
      if (self->shutdown_after_write_) self->shutdown_send();
      if (self->want_writable_) {
        self->want_writable_ = false;
        if (h.listener && !self->ended_) h.listener->on_writable(!ec);
      }
      self->maybe_end();
    });
    return static_cast<long>(n);
  }

  void wait_writable() override {
    if (link_->plain) {
      link_->plain->async_wait(tcp::socket::wait_write, [h = holding()](error_code ec) {
        if (h.listener && !h.self->ended_) h.listener->on_writable(!ec && !h.self->closed_);
      });
      return;
    }
    if (writing_) {
      want_writable_ = true;
      return;
    }
    asio::post(strand_, [h = holding()] {
      if (h.listener && !h.self->ended_)
        h.listener->on_writable(!h.self->write_failed_ && !h.self->closed_);
    });
  }

  bool input_open() const noexcept override { return !closed_ && !output_closed_; }

  void stop_reading() override {
    end_reading({});
    maybe_end();
  }

  bool reading() const noexcept override { return !frames_done_; }

  void stop(policy::stop_step step) override {
    if (closed_) return;
    if (step == policy::stop_step::close_input) {
      if (output_closed_) return;
      output_closed_ = true;
      // The worker's end of input: it exits, and closes its side. Under TLS what is
      // being written goes out first.
      if (writing_)
        shutdown_after_write_ = true;
      else
        shutdown_send();
      return;
    }
    // terminate, kill: there is no process here to signal; the connection is all we have.
    disconnected_by_crew_ = true;
    if (!closed_) unread_at_end_ = queued();
    close_now();
    // The read pending (if any) completes with an error and ends the channel; if none is,
    // the end is posted (stop never calls back).
    if (frames_done_)
      asio::post(strand_, [h = holding()] { h.self->maybe_end(); });
  }

  bool peer_gone() const noexcept override { return frames_done_ || closed_; }

  // Bytes of ours not yet acknowledged by the worker's host (SIOCOUTQ, plain TCP): a lower
  // bound of what the worker has not read; kept from the moment reading ended.
  std::optional<std::size_t> unread_by_peer() const override {
    if (closed_) return unread_at_end_;
    return queued();
  }

  std::optional<std::size_t> unread_by_us() const override {
    if (closed_) return {};
    int n = 0;
    auto& s = const_cast<socket_link&>(*link_).socket();
    if (::ioctl(s.native_handle(), FIONREAD, &n) != 0 || n < 0) return {};
    return static_cast<std::size_t>(n);
  }

 private:
  struct hold {
    std::shared_ptr<socket_channel> self;
    std::shared_ptr<channel_listener> listener;
    std::shared_ptr<void> owner;
  };
  hold holding() {
    auto l = listener_.lock();
    auto owner = l ? l->keep_alive() : nullptr;
    return {shared_from_this(), std::move(l), std::move(owner)};
  }

  void read_frames() {
    auto h = holding();
    if (!h.listener) return;
    auto space = h.listener->read_buffer();
    auto done = [h = std::move(h)](error_code ec, std::size_t n) {
      auto& self = h.self;
      if (self->frames_done_) return self->maybe_end();
      if (n > 0 && !h.listener->on_read(n)) return;
      if (ec) {
        self->end_reading(ec);
        h.listener->on_input_end();
        return self->maybe_end();
      }
      self->read_frames();
    };
    if (link_->tls)
      link_->tls->async_read_some(asio::buffer(space.data(), space.size()), std::move(done));
    else
      link_->plain->async_read_some(asio::buffer(space.data(), space.size()), std::move(done));
  }

  std::optional<std::size_t> queued() const {
    if (!link_->plain || closed_) return {};
    int n = 0;
    auto& sock = const_cast<socket_link&>(*link_).socket();
    if (::ioctl(sock.native_handle(), SIOCOUTQ, &n) != 0 || n < 0) return {};
    return static_cast<std::size_t>(n);
  }

  // Reading is over (the worker closed its side, the connection broke, or we gave up): the
  // connection is closed now — a write pending (TLS) is aborted, so the end cannot wait on
  // a peer that stopped reading.
  void end_reading(const error_code& ec) {
    if (frames_done_) return;
    frames_done_ = true;
    read_error_ = ec;
    if (!closed_) unread_at_end_ = queued();
    close_now();
  }

  void shutdown_send() {
    error_code ignored;
    link_->socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  void close_now() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    link_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    link_->socket().close(ignored);
  }

  // Once reading is over and no write is pending: the worker is gone.
  void maybe_end() {
    if (ended_ || !frames_done_ || writing_) return;
    ended_ = true;
    close_now();
    channel_end end;
    if (disconnected_by_crew_)
      end.how = "was disconnected by crew";
    else if (!read_error_ || read_error_ == asio::error::eof ||
             read_error_ == asio::ssl::error::stream_truncated)
      end.how = "closed its connection";
    else if (read_error_ == asio::error::operation_aborted)
      end.how = "was disconnected by crew";
    else
      end.how = "lost its connection: " + read_error_.message();
    if (auto l = listener_.lock()) l->on_ended(std::move(end));
  }

  asio::any_io_executor strand_;
  std::unique_ptr<socket_link> link_;
  std::weak_ptr<channel_listener> listener_;
  std::vector<std::byte> wbuf_;  // under TLS: the bytes being written
  error_code read_error_;
  std::optional<std::size_t> unread_at_end_;
  bool frames_done_ = false, closed_ = false, output_closed_ = false, ended_ = false;
  bool writing_ = false, want_writable_ = false, write_failed_ = false;
  bool shutdown_after_write_ = false, disconnected_by_crew_ = false;
};

}  // namespace

std::shared_ptr<worker_channel> make_socket_channel(const asio::any_io_executor& strand,
                                                    std::unique_ptr<socket_link> link) {
  return std::make_shared<socket_channel>(strand, std::move(link));
}

}  // namespace crew::detail
