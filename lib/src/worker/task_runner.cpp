// Running one task or batch and encoding its reply. Contract in task_runner.hpp.
#include "task_runner.hpp"

#include "cancel_watch.hpp"

#include <crew/worker_runtime.hpp>

#include <cstring>
#include <exception>
#include <span>
#include <utility>

namespace crew::detail {
namespace {

// What a job's exception means: it failed, unless it is how the job stopped after
// cancel_requested() said true.
errc job_error() noexcept {
  return cancel_seen() ? errc::cancelled : errc::job_failed;
}

}  // namespace

void task_runner::run(const protocol::frame_view& f, std::vector<std::byte>& reply) {
  std::uint32_t job_index;
  if (!begin(f, reply, job_index)) return;
  std::span<const std::byte> args = f.payload.subspan(4);
  // With a segment, any task's result may come back through it; its generation is the
  // task id, which the coordinator checks.
  generation_.reset();
  if (seg_) generation_ = id_;
  if (f.header.flags & protocol::flag_shm) {
    protocol::shm_descriptor d;
    if (!seg_ || protocol::check_descriptor(args, seg_.layout.request_size, id_, d))
      return fail(errc::decode_error, "bad shared-memory descriptor in task");
    args = seg_.request().subspan(d.offset, d.length);
  }
  const registry::entry& e = *index_[job_index];
  decoder in(args.data(), args.size());
  running_task_guard guard(id_);
  try {
    e.call_encoded(in, [this](std::size_t size) { return sink(size); });
    finish_result();
  } catch (const decode_error& ex) {
    fail(errc::decode_error, e.info.name + ": " + ex.message());
  } catch (const capacity_exceeded& ex) {
    fail(errc::payload_too_large, e.info.name + ": " + ex.message());
  } catch (const std::exception& ex) {
    fail(job_error(), ex.what());
  } catch (...) {
    fail(job_error(), "unknown exception");
  }
}

void task_runner::run_batch(const protocol::frame_view& f, std::vector<std::byte>& reply) {
  std::uint32_t job_index;
  if (!begin(f, reply, job_index)) return;
  generation_.reset();
  std::optional<protocol::batch_reader> items;
  try {
    items.emplace(f.payload.subspan(4));
  } catch (const decode_error& ex) {
    return fail(errc::decode_error, ex.message());
  }
  const registry::entry& e = *index_[job_index];
  running_task_guard guard(id_);
  const std::size_t frame_at =
      protocol::begin_frame(reply, protocol::frame_type::batch_result, id_);
  const std::uint32_t count = items->count();
  reply.resize(reply.size() + 4);
  std::memcpy(reply.data() + reply.size() - 4, &count, 4);
  batch_entry_ = &e;
  registry::batch_run run{*items,
                          reply,
                          frame_at + protocol::header_size,
                          max_payload_,
                          [](void*) { return cancel_requested(); },
                          [](void* self, std::size_t item_at, std::exception_ptr error) {
                            static_cast<task_runner*>(self)->item_failed(item_at, error);
                          },
                          this};
  registry::batch_end end;
  try {
    end = e.call_batch(run);
    items->expect_end();
  } catch (const decode_error& ex) {
    return fail(errc::decode_error, ex.message());
  } catch (const std::exception& ex) {  // std::bad_alloc: room for the batch's results
    return fail(errc::job_failed, e.info.name + ": " + ex.what());
  }
  using why = registry::batch_end::reason;
  if (end.why == why::cancelled)
    return fail(errc::cancelled, "cancelled after " + std::to_string(end.at) + " of " +
                                     std::to_string(count) + " items");
  if (end.why == why::too_large)
    return fail(errc::payload_too_large,
                "the results of the first " + std::to_string(end.at + 1) + " of " +
                    std::to_string(count) + " items already exceed the frame limit of " +
                    std::to_string(max_payload_) + " bytes: map with smaller chunks");
  protocol::finish_frame(reply, frame_at);
}

void task_runner::refuse(std::uint64_t id, std::vector<std::byte>& reply) {
  protocol::append_frame(reply, protocol::frame_type::error, id,
                         protocol::encode_error({errc::cancelled, "cancelled before it started"}));
}

// Starts the reply to frame `f` and reads its job index; false (the error reply written)
// if there is none or it is out of range.
bool task_runner::begin(const protocol::frame_view& f, std::vector<std::byte>& reply,
                        std::uint32_t& job_index) {
  reply_ = &reply;
  base_ = reply.size();
  id_ = f.header.task_id;
  if (f.payload.size() < 4)
    return fail(errc::decode_error, "frame shorter than its job index"), false;
  std::memcpy(&job_index, f.payload.data(), 4);
  if (job_index >= index_.size())
    return fail(errc::unknown_job, "job index " + std::to_string(job_index) + " out of range"),
           false;
  return true;
}

// An item of the batch being run failed (`error`): its error item goes at `item_at`.
void task_runner::item_failed(std::size_t item_at, const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const decode_error& ex) {
    item_error(item_at, errc::decode_error, batch_entry_->info.name + ": " + ex.message());
  } catch (const std::exception& ex) {
    item_error(item_at, job_error(), ex.what());
  } catch (...) {
    item_error(item_at, job_error(), "unknown exception");
  }
}

void task_runner::item_error(std::size_t item_at, errc code, const std::string& message) {
  reply_->resize(item_at);
  const auto payload = protocol::encode_error({code, message});
  std::byte* to = protocol::append_batch_item(*reply_, payload.size(), protocol::frame_type::error);
  std::memcpy(to, payload.data(), payload.size());
}

// Large results of shm tasks go straight into the response area; everything else is
// written straight into the reply frame after its header.
encoder task_runner::sink(std::size_t size) {
  in_shm_ = generation_ && size > inline_max_ && size <= seg_.layout.response_size;
  size_ = size;
  if (in_shm_) return encoder(seg_.response().data(), size);
  // Too large for a frame the coordinator accepts: the task fails, the worker lives on.
  if (size > max_payload_)
    throw capacity_exceeded("the result is " + std::to_string(size) +
                            " bytes, over the frame limit of " + std::to_string(max_payload_) +
                            " bytes (max_payload)");
  reply_->resize(base_);
  return encoder(protocol::append_frame_for(*reply_, protocol::frame_type::result, id_, size),
                 size);
}

// An inline result is complete once encoded; a shared one still needs its descriptor.
void task_runner::finish_result() {
  if (!in_shm_) return;
  reply_->resize(base_);
  std::vector<std::byte> d;
  protocol::append_descriptor(d, {0, size_, *generation_});
  protocol::append_frame(*reply_, protocol::frame_type::result, id_, d, protocol::flag_shm);
}

// Replaces whatever the task had written of its reply with an error frame.
void task_runner::fail(errc code, std::string message) {
  reply_->resize(base_);
  protocol::append_frame(*reply_, protocol::frame_type::error, id_,
                         protocol::encode_error({code, std::move(message)}));
}

}  // namespace crew::detail
