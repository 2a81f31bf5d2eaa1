// The job log of `crew run` (--joblog, --resume, --retry-failed): one JSON line per finished
// task, with its input, its arguments and its value or error (docs/cli.md, "A task
// record"). This unit reads a log back; run.cpp writes it (each record one write).
//
// A task is known by its key: its input line (null for --range) and its arguments as
// canonical JSON. The last record of a key is what counts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace crew::cli {

/// A task's key in a job log: "<line>|<args>" (line empty for --range).
std::string task_key(std::int64_t line, const std::string& args_json);

/// What a job log says of one task: its last record.
struct logged_task {
  bool ok = false;
  std::int64_t line = 0;    ///< input line, 0 for --range
  std::string args;         ///< the arguments, canonical JSON
  std::string value;        ///< ok: the value, as JSON text
  std::string record;       ///< the record's line itself
  std::uint64_t order = 0;  ///< position of the record in the log
};

struct job_log {
  std::string job;                                     ///< the job of its records (empty if none)
  std::unordered_map<std::string, logged_task> tasks;  ///< by task_key
  std::size_t lines = 0;
  std::size_t unreadable = 0;  ///< lines that do not parse as a record (torn, foreign)
};

/// Reads the log at `path`. nullopt with `why` set if it cannot be read or holds records of
/// more than one job.
std::optional<job_log> read_job_log(const std::string& path, std::string& why);

}  // namespace crew::cli
