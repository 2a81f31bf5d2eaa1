// What the CLI makes of a pool's event stream (crew/events.hpp): one record per task, from
// which come the progress line, the job log (--joblog, one JSON line per task), the results
// of `crew run --json` (the same schema, docs/cli.md) and the timeline picture.
#pragma once

#include "timeline.hpp"

#include <crew/events.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace crew::cli {

/// One task as the job log records it.
struct task_record {
  std::uint64_t id = 0;
  std::string job, label;  ///< label: the task's argument(s) as text
  std::size_t worker = event::no_worker;
  int pid = 0;                ///< on `host` when that is set
  std::string host;           ///< where its worker ran (event::host); empty for a local worker
  double start = 0, end = 0;  ///< seconds since the recorder was made (steady clock)
  double start_epoch = 0;     ///< the start, in seconds since the Unix epoch
  bool started = false, finished = false, failed = false;
  std::string error, message;       ///< errc name and text, when failed
  int exit_code = -1, signal = -1;  ///< how its worker ended, when that failed it
  std::size_t bytes_in = 0, bytes_out = 0;
  unsigned attempts = 1;
};

/// Collects task records from events. Thread safety: `handler()` may be called from any
/// thread; the other members from any thread too (they lock).
class recorder {
 public:
  /// `lane_name` names a worker index in the timeline: "worker 0", "thread 1", ...
  explicit recorder(std::string lane_prefix);

  /// The handler to give a pool.
  event_handler handler();
  /// Called (under the recorder's lock) with each task that has just finished or failed.
  std::function<void(const task_record&)> on_finished;
  /// Whether finished tasks are kept (finished(), section()); false keeps memory flat.
  bool keep_finished = true;

  /// The finished tasks, in the order they finished.
  std::vector<task_record> finished() const;
  std::size_t done_count() const;
  std::size_t failed_count() const;

  /// The tasks as a timeline section: one lane per worker or thread; when workers ran
  /// elsewhere, the lanes grouped by host (timeline_section::lane_groups).
  timeline_section section(std::string title) const;

 private:
  void on_event(const event& e);

  mutable std::mutex mutex_;
  std::string lane_prefix_;
  std::chrono::steady_clock::time_point origin_ = std::chrono::steady_clock::now();
  std::map<std::uint64_t, task_record> live_;
  std::vector<task_record> finished_;
  std::map<std::pair<std::string, int>, int> exit_status_;  // (host, pid) -> wait status
  std::size_t failed_ = 0;
};

/// A record as a job-log line / a `results` entry of `crew run --json` (docs/cli.md).
boost::json::object to_json(const task_record& r, const boost::json::value& args);

}  // namespace crew::cli
