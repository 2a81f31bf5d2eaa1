#include "joblog.hpp"

#include "value_json.hpp"

#include <boost/json.hpp>

#include <fstream>

namespace crew::cli {
namespace json = boost::json;

std::string task_key(std::int64_t line, const std::string& args_json) {
  return (line > 0 ? std::to_string(line) : std::string()) + "|" + args_json;
}

std::optional<job_log> read_job_log(const std::string& path, std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = "cannot open job log '" + path + "'";
    return std::nullopt;
  }
  job_log out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ++out.lines;
    boost::system::error_code ec;
    const json::value v = parse_json(line, ec);
    if (ec) {
      ++out.unreadable;
      continue;
    }
    const auto* o = v.if_object();
    const auto* args = o ? o->if_contains("args") : nullptr;
    const auto* outcome = o ? o->if_contains("outcome") : nullptr;
    const auto* job = o ? o->if_contains("job") : nullptr;
    const auto* input = o ? o->if_contains("input") : nullptr;
    // `args` is null for an input line that was not a JSON array (a failed task).
    if (!args || !(args->is_array() || args->is_null()) || !outcome || !outcome->is_string() ||
        !job || !job->is_string()) {
      ++out.unreadable;
      continue;
    }
    std::int64_t input_line = 0;
    if (input && input->is_int64() && input->as_int64() > 0) input_line = input->as_int64();
    if (out.job.empty()) out.job = job->as_string().c_str();
    if (out.job != job->as_string().c_str()) {
      why = "job log '" + path + "' holds more than one job ('" + out.job + "', '" +
            job->as_string().c_str() + "')";
      return std::nullopt;
    }
    logged_task t;
    t.ok = outcome->as_string() == "ok";
    t.line = input_line;
    t.args = json::serialize(*args);
    if (t.ok) {
      const auto* value = o->if_contains("value");
      // A log written before values were logged cannot give the result back: rerun it.
      if (!value) continue;
      t.value = json::serialize(*value);
    }
    t.record = std::move(line);
    t.order = out.lines;
    auto key = task_key(t.line, t.args);
    out.tasks[std::move(key)] = std::move(t);
  }
  return out;
}

}  // namespace crew::cli
