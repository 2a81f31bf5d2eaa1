#include "dispatcher.hpp"

#include <crew/codec.hpp>

namespace crew::detail {

void dispatcher::enqueue(pending_task&& p) {
  if (events_.enabled()) events_.emit(event_emitter::about(event_kind::task_queued, p));
  queue_.push_back(std::move(p));
}

void dispatcher::fail_queued(errc code, const std::string& why) {
  while (!queue_.empty()) {
    pending_task p = std::move(queue_.front());
    queue_.pop_front();
    fail(p, code, why);
  }
}

bool dispatcher::cancel_queued(std::uint64_t id) {
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->id != id) continue;
    pending_task p = std::move(*it);
    queue_.erase(it);
    fail(p, errc::cancelled, "cancelled before it started");
    return true;
  }
  return false;
}

void dispatcher::dispatch(const std::vector<std::shared_ptr<worker_session>>& slots) {
  while (!queue_.empty()) {
    // The worker with the fewest tasks in flight, within the pipeline depth.
    worker_session* best = nullptr;
    for (auto& w : slots)
      if (w && w->accepts(depth_) && (!best || w->inflight().size() < best->inflight().size()))
        best = w.get();
    if (!best) break;
    pending_task p = std::move(queue_.front());
    queue_.pop_front();
    if (p.task.batch_items > 0 && !best->takes_batches()) {
      expand_batch(std::move(p));
      continue;
    }
    send(*best, p);  // or failed there
  }
  if (!reading_batch_) replies_end(slots);
}

void dispatcher::replies_end(const std::vector<std::shared_ptr<worker_session>>& slots) {
  reading_batch_ = false;
  for (auto& w : slots)
    if (w) w->flush();
}

// Checks that `w` serves the task's job as the caller knows it and puts the task in
// flight there; false if the task failed instead.
bool dispatcher::send(worker_session& w, pending_task& p) {
  const auto* job = w.find_job(p.task.job);
  if (!job) {
    fail(p, errc::unknown_job,
         "worker " + opts_.executable.filename().string() + " does not serve job '" + p.task.job +
             "'; it serves: " + w.job_list());
    return false;
  }
  if (job->second != p.task.signature) {
    fail(p, errc::signature_mismatch,
         "job '" + p.task.job + "' is " + job->second + " in the worker but " + p.task.signature +
             " in the caller: rebuild both from the same header");
    return false;
  }
  std::string error;
  if (!w.encode_task(p, job->first, error)) {
    fail(p, errc::payload_too_large, std::move(error));
    return false;
  }
  gate_.release(p);  // on its way to a worker: its place in the queue is free
  w.push_sent(std::move(p));
  return true;
}

void dispatcher::succeed(pending_task& p, std::span<const std::byte> bytes) {
  p.on_stop.reset();
  gate_.release(p);
  if (events_.enabled()) {
    event e = event_emitter::about(event_kind::task_finished, p);
    e.bytes_out = bytes.size();
    events_.emit(e);
  }
  p.task.done(nullptr, bytes);
}

void dispatcher::fail(pending_task& p, errc code, std::string message) {
  p.on_stop.reset();
  gate_.release(p);
  if (events_.enabled()) {
    event e = event_emitter::about(event_kind::task_failed, p);
    e.error = code;
    e.message = message;
    events_.emit(e);
  }
  p.task.done(make_task_error(code, message), {});
}

void dispatcher::fail_now(raw_task t, errc code, std::string message) {
  if (events_.enabled()) {
    event e = event_emitter::about(event_kind::task_failed, t.id, t);
    e.error = code;
    e.message = message;
    events_.emit(e);
  }
  t.done(make_task_error(code, message), {});
}

// A worker that did not say it takes batch frames (one written from sections 1-8 of the
// protocol alone) gets a batch's items as tasks of their own, first in line; their outcomes
// are gathered into the batch_result payload the batch's caller decodes.
void dispatcher::expand_batch(pending_task p) {
  gate_.release(p);
  p.on_stop.reset();
  std::vector<std::byte> body(p.task.args_size);
  encoder e(body.data(), body.size());
  p.task.encode_args(e);
  std::vector<std::span<const std::byte>> items;  // our own encoding: it reads back
  protocol::batch_reader reader(body);
  for (std::uint32_t i = 0; i < reader.count(); ++i)
    items.push_back(reader.next());
  if (items.empty()) return p.task.done(nullptr, protocol::batch_result_builder{}.finish());
  struct gathered {
    std::vector<std::vector<std::byte>> items;
    std::vector<bool> is_error;
    std::size_t left = 0;
    std::unique_ptr<task_body> body;  // the batch's caller
  };
  auto g = std::make_shared<gathered>();
  g->items.resize(items.size());
  g->is_error.resize(items.size());
  g->left = items.size();
  g->body = std::move(p.task.body);
  for (std::size_t i = items.size(); i-- > 0;) {
    pending_task s;
    s.id = next_task_id();
    s.timeout = p.task.options.timeout.value_or(opts_.task_timeout);
    s.retries = p.retries;
    s.task.job = p.task.job;
    s.task.signature = p.task.signature;
    s.task.id = s.id;
    s.task.args_size = items[i].size();
    auto encode = [bytes = std::vector<std::byte>(items[i].begin(), items[i].end())](encoder& out) {
      out.write(bytes.data(), bytes.size());
    };
    auto gather = [g, i](std::exception_ptr ep, std::span<const std::byte> bytes) {
      if (ep) {
        auto [code, message] = describe_failure(ep);
        g->items[i] = protocol::encode_error({code, message});
        g->is_error[i] = true;
      } else {
        g->items[i].assign(bytes.begin(), bytes.end());
      }
      if (--g->left > 0) return;
      protocol::batch_result_builder out;
      for (std::size_t k = 0; k < g->items.size(); ++k)
        out.add(g->is_error[k] ? protocol::frame_type::error : protocol::frame_type::result,
                std::span<const std::byte>(g->items[k]));
      g->body->complete(nullptr, out.finish());
    };
    s.task.body = make_task_body(std::move(encode), std::move(gather));
    queue_.push_front(std::move(s));
  }
}

}  // namespace crew::detail
