// Private: a worker that connected back (process_pool_options::listen): one authenticated
// TCP connection, plain or under TLS (socket_link.hpp), as a worker_channel. There is no
// local process: pid() is 0, the worker's pid is the one in its hello, and its output goes
// wherever whoever started it put it (the pool's listen.launch_once: the pool's output).
// Frames are read from the connection and written to it without blocking (under TLS,
// through a write buffer of its own: a TLS stream cannot write "what fits now"). The stop
// ladder: end of input is a shutdown of our sending side (a TCP FIN, under TLS too, without
// close_notify: both ends take a truncated stream as its end) — a worker exits at the end of
// its input, and its end of the connection closes; terminate and kill close the connection
// at once. When reading ends (the worker closed its side, the connection broke) the
// connection is closed at once, aborting a write in progress: a peer that stops reading
// cannot hold its slot. Bytes the worker has not read are known on plain TCP as those its
// host has not acknowledged (SIOCOUTQ: a lower bound). on_ended describes how the end came
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
