// Where `crew run` runs its tasks: worker processes (a process_pool over the user's worker
// or crew's demo worker), threads (crew::thread_pool) or inline (crew::inline_runner, the
// tasks one after the other in the submitting thread), all behind one interface on
// encoded bytes, so that the run itself never sees a C++ type.
//
// Contract: `submit` completes `done` exactly once, on some thread of the backend's, with
// an error for the whole submission or the encoded result (a batch_result payload when
// `batch` >= 2; only the processes backend takes batches). `drain` stops the backend
// taking work and gives running tasks `grace` (processes; a thread's job cannot be
// stopped); `finish` waits until everything submitted has completed and the workers are
// gone. Events (task_started, ...) reach `on_event` before the task's `done`.
#pragma once

#include "common.hpp"
#include "run_options.hpp"

#include <crew/events.hpp>
#include <crew/process_pool.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace crew::cli {

/// Why a run cannot start (exit code cannot_run): no worker starts, the job is unknown.
class cannot_run_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class backend {
 public:
  using completion = std::function<void(std::exception_ptr, std::span<const std::byte>)>;
  virtual ~backend() = default;
  /// The signature of `job` as its worker announces it. Blocks until a worker has said
  /// hello; throws cannot_run_error if none can, or if no job has that name (the message
  /// lists the jobs).
  virtual std::string signature_of(const std::string& job) = 0;
  /// Every job and its signature, in the worker's order. Throws as signature_of.
  virtual std::vector<std::pair<std::string, std::string>> jobs() = 0;
  /// Runs `args` (encoded; a batch of `batch` calls when >= 2). `label` names it in events.
  virtual void submit(const std::string& job, const std::string& signature,
                      std::vector<std::byte> args, std::uint32_t batch, std::string label,
                      completion done) = 0;
  virtual void drain(std::chrono::milliseconds grace) = 0;
  virtual void finish() = 0;
  /// Whether submissions may be batches.
  virtual bool takes_batches() const = 0;
  /// With --listen: the port the pool listens on (the one chosen for port 0); else 0.
  virtual std::uint16_t listen_port() const { return 0; }
};

/// The sandbox `o` asks for (--sandbox and its options).
sandbox_options sandbox_of(const run_options& o);

/// The backend for `o.mode`. `io` runs the pool (processes) and the completions (inline).
/// Workers' output lines go to `on_output` (processes). Throws what process_pool's
/// constructor throws: std::invalid_argument for options it refuses, std::system_error for
/// a --listen address it cannot listen on.
std::unique_ptr<backend> make_backend(const run_options& o, io_thread& io, event_handler on_event,
                                      std::function<void(const output_line&)> on_output);

}  // namespace crew::cli
