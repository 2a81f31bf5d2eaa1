// Private: the pool's strand, type-erased, over the pool's executor.
//
// Over an io_context's own executor (what a user most often passes) it is a
// strand<io_context::executor_type> held in an any_io_executor; over anything else a
// strand<any_io_executor>. The difference is allocations: Boost 1.81's
// strand<any_io_executor> queries its inner executor's blocking property on every
// execution, which a type-erased executor answers with a 4-byte heap object, and every
// asynchronous operation bound to it copies a strand too large for any_io_executor's small
// buffer (88 bytes on the heap); the concrete strand costs neither.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace crew::detail {

/// A new strand over `ex` (see above).
inline boost::asio::any_io_executor make_pool_strand(const boost::asio::any_io_executor& ex) {
  if (const auto* io = ex.target<boost::asio::io_context::executor_type>())
    return boost::asio::make_strand(*io);
  return boost::asio::make_strand(ex);
}

/// Whether the calling thread runs `strand` (one make_pool_strand made) now.
inline bool running_in(const boost::asio::any_io_executor& strand) {
  using io_strand = boost::asio::strand<boost::asio::io_context::executor_type>;
  using any_strand = boost::asio::strand<boost::asio::any_io_executor>;
  if (const auto* s = strand.target<io_strand>()) return s->running_in_this_thread();
  if (const auto* s = strand.target<any_strand>()) return s->running_in_this_thread();
  return false;
}

}  // namespace crew::detail
