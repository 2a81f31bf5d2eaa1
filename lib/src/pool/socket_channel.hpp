// Private: a worker that connected back (process_pool_options::listen): one authenticated
// TCP connection, plain or under TLS (socket_link.hpp), as a worker_channel. There is no
// local process: pid() is 0, the worker's pid is the one in its hello, and its output goes
// wherever whoever started it put it (the pool's listen.launch_once: the pool's output).
// Frames are read from the connection and written to it without blocking (under TLS,
// through a write buffer of its own: a TLS stream cannot write "what fits now"). The stop
// ladder: end of input is a shutdown of our sending side (TLS: close_notify) — a worker
// exits at the end of its input, and its end of the connection closes; terminate and kill
// close the connection at once. The channel ends when the worker closed its side (or the
// connection broke) and, after our own close, at once: on_ended describes how
// ("closed its connection", "its connection broke: Connection reset by peer", "was
// disconnected by crew").
#pragma once

#include "channel.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>

namespace crew::detail {

struct socket_link;

/// The channel of a worker connected as `link` (authenticated), on `strand`.
std::shared_ptr<worker_channel> make_socket_channel(const boost::asio::any_io_executor& strand,
                                                    std::unique_ptr<socket_link> link);

}  // namespace crew::detail
