// crew/detail/map_chunks.hpp — internal: how process_pool::async_map cuts its items into
// chunks and reads a chunk's reply. Not part of the API: it changes without notice.
//
// Contract: a chunk of several items travels as one batch frame and comes back as one
// batch_result (docs/protocol.md §9), which the pool has checked to hold exactly that many
// items before `decode_chunk` sees it; a chunk of one item travels as a plain task and comes
// back as a plain result. `decode_chunk` writes the chunk's results, in order, into its
// slots, and throws the first item's error as the task_error it describes (the items
// before it are written, the ones after it are not), or decode_error for a result that
// does not decode as `R`. Pure: no IO, no shared state.
#pragma once

#include <crew/codec.hpp>
#include <crew/error.hpp>
#include <crew/protocol.hpp>

#include <algorithm>
#include <cstddef>
#include <span>

namespace crew::detail {

/// Largest encoded arguments of one map batch when process_pool_options::map_chunk is 0.
inline constexpr std::size_t map_batch_bytes = std::size_t{1} << 20;

/// Items per chunk for a map of `items` items over `workers` workers: `map_chunk` when set,
/// else about a quarter of the items per worker, at least 1 (as Python's Pool.map).
inline std::size_t map_chunk_size(std::size_t items, std::size_t workers,
                                  std::size_t map_chunk) noexcept {
  if (map_chunk != 0) return map_chunk;
  const std::size_t parts = 4 * std::max<std::size_t>(workers, 1);
  return std::max<std::size_t>(1, (items + parts - 1) / parts);
}

/// Decodes a chunk's reply into `out`, one slot per item (see the contract above): a
/// batch_result's payload when `batch`, else one encoded result. The results together may
/// take at most `memory_limit` bytes in memory (decoder::claim).
template <class R, class Slot>
void decode_chunk(std::span<const std::byte> reply, bool batch, std::span<Slot> out,
                  std::size_t memory_limit = decoder::unlimited) {
  if (!batch) {
    decoder d(reply.data(), reply.size(), memory_limit);
    out[0] = d.get<R>();
    d.expect_end();
    return;
  }
  protocol::batch_result_reader items(reply, out.size());
  for (auto& slot : out) {
    const auto item = items.next();
    if (item.kind == protocol::frame_type::error) {
      auto e = protocol::decode_error_payload(item.bytes);
      throw task_error(make_error_code(e.code), e.message);
    }
    decoder d(item.bytes.data(), item.bytes.size(), memory_limit);
    slot = d.get<R>();
    d.expect_end();
    memory_limit = d.memory_left();  // one budget for the chunk
  }
}

}  // namespace crew::detail
