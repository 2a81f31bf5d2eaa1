// Private: what a worker process takes from the coordinator that started it, and the
// arrangements it makes with the operating system before serving. This is the only part of
// the worker runtime that reads or unsets `$CREW_*` variables, installs signal handlers or
// maps memory: the serve loop (serve.cpp) calls it once at the start, the task runner only
// reads the segment it mapped. See docs/protocol.md for the variables and the segment.
#pragma once

#include <crew/protocol.hpp>
#include <crew/worker_runtime.hpp>

#include <cstddef>
#include <span>

namespace crew::detail {

/// The worker's view of the shared memory the coordinator handed it: the request file
/// (read-only, header + request area) and the response file. Empty (false) without one.
struct worker_segment {
  const std::byte* request_base = nullptr;
  std::byte* response_base = nullptr;
  protocol::shm_header layout;

  explicit operator bool() const noexcept { return request_base && response_base; }
  std::span<const std::byte> request() const {
    return {request_base + layout.request_offset, layout.request_size};
  }
  std::span<std::byte> response() const {
    return {response_base + layout.response_offset, layout.response_size};
  }
};

/// What serve runs with: each setting from worker_options, or, where that is empty, from
/// the environment the coordinator set up.
struct worker_settings {
  worker_segment segment;
  /// Frame payload limit, both ways (`$CREW_MAX_PAYLOAD`, else the protocol default).
  std::size_t max_payload = 0;
  /// Results up to this size stay inline even with a segment (`$CREW_SHM_INLINE`, else 0).
  std::size_t inline_max = 0;
};

/// Dies with the coordinator, even while a job runs and nobody reads the channel: if
/// `$CREW_COORDINATOR_PID` is set (a pool sets it), installs a SIGHUP handler that kills the
/// process group, asks for it on parent death, checks that the coordinator is still there,
/// and unsets the variable. Without the variable (a test speaking the protocol) it does
/// nothing.
void arrange_parent_death();

/// Makes stdout line-buffered: the coordinator reads it through a pipe, where stdio would
/// otherwise buffer whole blocks and a job's lines would arrive late.
void line_buffer_stdout();

/// Flushes what a job printed (iostreams and stdio), after each task.
void flush_stdio();

/// Fills `out` from `options` and, for the settings left empty there, `$CREW_*`. Maps the
/// shared-memory segment if both of its descriptors are given (>= 0); then closes both
/// descriptors and unsets the variables read, so that neither reaches a job's children or a
/// pool a job starts. Returns false, after a message on stderr and with nothing closed or
/// unset, if a segment is given but cannot be mapped or its header is malformed.
bool take_settings(const worker_options& options, worker_settings& out);

}  // namespace crew::detail
