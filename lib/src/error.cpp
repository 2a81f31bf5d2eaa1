#include <crew/detail/inproc_events.hpp>
#include <crew/error.hpp>
#include <crew/events.hpp>

#include <array>

#include <unistd.h>

namespace crew {

int detail::this_process_id() noexcept {
  return static_cast<int>(::getpid());
}

const char* to_string(event_kind k) noexcept {
  switch (k) {
    case event_kind::task_queued:
      return "task_queued";
    case event_kind::task_started:
      return "task_started";
    case event_kind::task_finished:
      return "task_finished";
    case event_kind::task_failed:
      return "task_failed";
    case event_kind::task_retried:
      return "task_retried";
    case event_kind::worker_spawned:
      return "worker_spawned";
    case event_kind::worker_exited:
      return "worker_exited";
    case event_kind::worker_unavailable:
      return "worker_unavailable";
    case event_kind::peer_refused:
      return "peer_refused";
  }
  return "unknown";
}
namespace {

struct errc_text {
  const char* name;
  const char* message;
};

// Indexed by errc value - 1; the order is the enum's.
constexpr std::array<errc_text, 13> texts{{
    {"job_failed", "the job threw an exception"},
    {"unknown_job", "the worker does not serve this job"},
    {"signature_mismatch", "the worker serves this job with another signature"},
    {"worker_crashed", "the worker died while running the task"},
    {"worker_boot_failed", "the worker failed to start"},
    {"protocol_error", "the peer broke the crew protocol"},
    {"decode_error", "bytes did not decode as the declared type"},
    {"payload_too_large", "payload larger than the maximum frame size"},
    {"shutting_down", "the pool is closed"},
    {"queue_full", "the pool's queue is full"},
    {"task_timeout", "the task ran past its deadline"},
    {"cancelled", "the task was cancelled"},
    {"worker_lost", "the worker stopped answering (heartbeat deadline)"},
}};
static_assert(texts.size() == static_cast<std::size_t>(errc::worker_lost));

const errc_text* text_of(int ev) noexcept {
  if (ev < 1 || ev > static_cast<int>(texts.size())) return nullptr;
  return &texts[static_cast<std::size_t>(ev - 1)];
}

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "crew"; }
  std::string message(int ev) const override {
    const auto* t = text_of(ev);
    return t ? t->message : "unknown crew error";
  }
};

}  // namespace

const boost::system::error_category& crew_category() noexcept {
  static const category instance;
  return instance;
}

const char* to_string(errc e) noexcept {
  const auto* t = text_of(static_cast<int>(e));
  return t ? t->name : "unknown";
}

boost::system::error_code error_of(const std::exception_ptr& ep) noexcept {
  if (!ep) return {};
  try {
    std::rethrow_exception(ep);
  } catch (const boost::system::system_error& e) {
    return e.code();
  } catch (...) {
    return make_error_code(errc::job_failed);
  }
}

failure describe_failure(const std::exception_ptr& ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const boost::system::system_error& e) {
    if (e.code().category() != crew_category()) return {errc::job_failed, e.what()};
    const auto* te = dynamic_cast<const task_error*>(&e);
    return {static_cast<errc>(e.code().value()), te ? te->message() : std::string(e.what())};
  } catch (const std::exception& e) {
    return {errc::job_failed, e.what()};
  } catch (...) {
    return {errc::job_failed, "unknown exception"};
  }
}

}  // namespace crew
