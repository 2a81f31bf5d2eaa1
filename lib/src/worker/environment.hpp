// Private: what a worker process takes from the coordinator that started it, and the
// arrangements it makes with the operating system before serving (and, on stdio, after).
// This is the only part of the worker runtime that reads or unsets `$CREW_*` variables,
// installs signal handlers, moves standard descriptors or maps memory: the serve loop
// (serve.cpp) calls it once at the start, the task runner only reads the segment it mapped.
// See docs/protocol.md for the variables, the segment (section 8) and stdio (section 10).
#pragma once

#include "connector.hpp"

#include <crew/protocol.hpp>
#include <crew/worker_runtime.hpp>

#include <chrono>
#include <cstddef>
#include <span>
#include <string>

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

/// Whether to speak the protocol on stdio (docs/protocol.md §10): `options.stdio`, or if
/// that is empty `$CREW_STDIO` == "1". Unsets the variable either way, so that a worker a
/// job starts does not inherit the mode.
bool take_stdio_setting(const worker_options& options);

/// How long a worker on stdio may hear nothing from its coordinator before it takes it for
/// gone: `$CREW_HEARTBEAT_TIMEOUT_MS` (the pool's heartbeat_timeout; it pings at least every
/// heartbeat_interval), else 0 (no limit). Unsets the variable.
std::chrono::milliseconds take_heartbeat_timeout();

/// Whether to connect back (worker_options::connect, else `$CREW_CONNECT`), and with what:
/// fills `out` (the secret from worker_options::secret, `$CREW_SECRET`, secret_file or
/// `$CREW_SECRET_FILE`; the give-up time from `$CREW_CONNECT_TIMEOUT_MS`) and unsets every
/// one of these variables, so that no job's child inherits the secret. Returns false if
/// the worker is not to connect. `error` is set (and `out` incomplete) when it is but
/// cannot: no secret, or an unreadable secret file.
bool take_connect_setting(const worker_options& options, connect_settings& out, std::string& error);

/// Where this worker runs (protocol::placement): gethostname(), `$SLURMD_NODENAME`, and the
/// pod's name (`$CREW_POD_NAME`, else `$HOSTNAME` when `$KUBERNETES_SERVICE_HOST` says we
/// are in a pod), each cut to max_placement_name bytes.
protocol::placement local_placement();

/// Prepares a worker that serves on a connection (connect): leads a process group of its
/// own where it can, and catches SIGPIPE as take_stdio does; its standard descriptors stay.
void take_connection_mode();

/// The descriptors of a worker on stdio, once take_stdio has moved them.
struct stdio_fds {
  int frames_in = -1;   ///< a private copy of what fd 0 was (close-on-exec)
  int frames_out = -1;  ///< a private copy of what fd 1 was (close-on-exec)
};

/// Sets up a worker on stdio: takes private copies of fd 0 and fd 1 (numbered 10 or more,
/// close-on-exec) for the frames, points fd 1 at fd 2 (a job's stdout becomes log lines and
/// cannot corrupt the frame stream) and fd 0 at /dev/null, makes the process the leader of
/// a process group of its own where it can (so that the job's children are in it), and,
/// if SIGPIPE has its default disposition, catches it with a handler that does nothing: a
/// write to a vanished coordinator then fails with EPIPE (serve ends and cleans up, below)
/// instead of killing the worker and leaving its children behind; a caught signal is
/// reset to its default across exec, so the programs a job runs are not affected. Returns
/// false, after a message on stderr and with nothing changed, if fd 0 or fd 1 is not open.
bool take_stdio(stdio_fds& out);

/// Kills every other process of the caller's process group (the job's children and
/// theirs): finds them in /proc (pgrp equal to ours, pid not ours; when the caller does
/// not lead its group, only its descendants), stops each with SIGSTOP so that none can
/// fork meanwhile, then SIGKILLs them, and looks again until none is left (bounded). For a
/// worker on stdio, whose group nobody else cleans up. Not async-signal-safe (it reads
/// /proc and allocates); never throws.
void kill_rest_of_group() noexcept;

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
