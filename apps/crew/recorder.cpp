#include "recorder.hpp"

#include <algorithm>
#include <utility>

#include <sys/wait.h>

namespace crew::cli {

recorder::recorder(std::string lane_prefix) : lane_prefix_(std::move(lane_prefix)) {
}

event_handler recorder::handler() {
  return [this](const event& e) { on_event(e); };
}

void recorder::on_event(const event& e) {
  std::lock_guard lock(mutex_);
  const double at = std::chrono::duration<double>(e.steady - origin_).count();
  switch (e.kind) {
    case event_kind::worker_spawned:
    case event_kind::worker_unavailable:
    case event_kind::peer_refused:
      return;
    case event_kind::worker_exited:
      // Kept while a task may still fail on it: the pids of the workers that ended last.
      if (exit_status_.size() > 4096) exit_status_.erase(exit_status_.begin());
      exit_status_[{std::string(e.host), e.pid}] = e.exit_status;
      return;
    case event_kind::task_queued: {
      auto& r = live_[e.task];
      r.id = e.task;
      r.job = e.job;
      r.label = e.label;
      r.bytes_in = e.bytes_in;
      return;
    }
    case event_kind::task_started: {
      auto& r = live_[e.task];
      r.id = e.task;
      if (r.job.empty()) r.job = e.job, r.label = e.label;
      r.started = true;
      r.start = at;
      r.start_epoch = std::chrono::duration<double>(e.time.time_since_epoch()).count();
      r.worker = e.worker;
      r.pid = e.pid;
      r.host = e.host;
      r.bytes_in = e.bytes_in;
      return;
    }
    case event_kind::task_retried:
      ++live_[e.task].attempts;
      return;
    case event_kind::task_finished:
    case event_kind::task_failed: {
      auto it = live_.find(e.task);
      task_record r = it != live_.end() ? it->second : task_record{};
      if (it != live_.end()) live_.erase(it);
      r.id = e.task;
      if (r.job.empty()) r.job = e.job, r.label = e.label;
      if (!r.started) {  // failed before it started: a zero-length bar where it ended
        r.start = at;
        r.start_epoch = std::chrono::duration<double>(e.time.time_since_epoch()).count();
      }
      r.end = at;
      r.finished = true;
      r.bytes_out = e.bytes_out;
      if (e.kind == event_kind::task_failed) {
        r.failed = true;
        r.error = to_string(e.error);
        r.message = e.message;
        if (e.error == errc::worker_crashed || e.error == errc::protocol_error ||
            e.error == errc::task_timeout) {
          if (auto s = exit_status_.find({r.host, r.pid});
              s != exit_status_.end() && s->second >= 0) {
            if (WIFEXITED(s->second)) r.exit_code = WEXITSTATUS(s->second);
            if (WIFSIGNALED(s->second)) r.signal = WTERMSIG(s->second);
          }
        }
        ++failed_;
      }
      if (on_finished) on_finished(r);
      if (keep_finished) finished_.push_back(std::move(r));
      return;
    }
  }
}

std::vector<task_record> recorder::finished() const {
  std::lock_guard lock(mutex_);
  return finished_;
}

std::size_t recorder::done_count() const {
  std::lock_guard lock(mutex_);
  return finished_.size();
}

std::size_t recorder::failed_count() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

timeline_section recorder::section(std::string title) const {
  std::lock_guard lock(mutex_);
  timeline_section s;
  s.title = std::move(title);
  // A lane per (host, worker): local ones (no host) first, then host by host. A slot's
  // workers may run on different hosts over time (a slot filled again by another host's
  // worker): each host gets its own lane for it.
  std::map<std::pair<std::string, std::size_t>, std::size_t> lane_of;
  bool hosts = false;
  for (const auto& r : finished_) {
    lane_of[{r.host, r.worker}] = 0;
    hosts = hosts || !r.host.empty();
  }
  for (auto& [key, lane] : lane_of) {
    const auto& [host, w] = key;
    lane = s.lanes.size();
    s.lanes.push_back(w == event::no_worker           ? std::string("not started")
                      : lane_prefix_ == "main thread" ? lane_prefix_
                                                      : lane_prefix_ + " " + std::to_string(w));
    if (hosts) s.lane_groups.push_back(host);
  }
  for (const auto& r : finished_) {
    timeline_bar b;
    b.lane = lane_of[{r.host, r.worker}];
    b.start = std::max(0.0, r.start);
    b.end = std::max(b.start, r.end);
    b.label = r.job + "(" + r.label + ")";
    b.failed = r.failed;
    b.detail = "pid " + std::to_string(r.pid) + (r.host.empty() ? "" : " on " + r.host) +
               (r.failed ? "; " + r.error + ": " + r.message : "");
    s.bars.push_back(std::move(b));
  }
  return s;
}

boost::json::object to_json(const task_record& r, const boost::json::value& args) {
  boost::json::object o{{"id", r.id},
                        {"job", r.job},
                        {"args", args},
                        {"worker", r.worker == event::no_worker ? boost::json::value(nullptr)
                                                                : boost::json::value(r.worker)},
                        {"pid", r.pid},
                        {"start", r.start_epoch},
                        {"duration", r.end - r.start},
                        {"outcome", r.failed ? "failed" : "ok"},
                        {"attempts", r.attempts},
                        {"bytes_in", r.bytes_in},
                        {"bytes_out", r.bytes_out}};
  if (!r.host.empty()) o["host"] = r.host;
  if (r.failed) {
    o["error"] = r.error;
    o["message"] = r.message;
    o["exit_code"] = r.exit_code >= 0 ? boost::json::value(r.exit_code) : nullptr;
    o["signal"] = r.signal >= 0 ? boost::json::value(r.signal) : nullptr;
  }
  return o;
}

}  // namespace crew::cli
