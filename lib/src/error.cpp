#include <crew/error.hpp>

namespace crew {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "crew"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::job_failed:
        return "the job threw an exception";
      case errc::unknown_job:
        return "the worker does not serve this job";
      case errc::signature_mismatch:
        return "the worker serves this job with another signature";
      case errc::worker_crashed:
        return "the worker died while running the task";
      case errc::worker_boot_failed:
        return "the worker failed to start";
      case errc::protocol_error:
        return "the peer broke the crew protocol";
      case errc::decode_error:
        return "bytes did not decode as the declared type";
      case errc::payload_too_large:
        return "payload larger than the maximum frame size";
      case errc::shutting_down:
        return "the pool is closed";
      case errc::queue_full:
        return "the pool's queue is full";
      case errc::task_timeout:
        return "the task ran past its deadline";
      case errc::cancelled:
        return "the task was cancelled";
    }
    return "unknown crew error";
  }
};

}  // namespace

const boost::system::error_category& crew_category() noexcept {
  static const category instance;
  return instance;
}

const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::job_failed:
      return "job_failed";
    case errc::unknown_job:
      return "unknown_job";
    case errc::signature_mismatch:
      return "signature_mismatch";
    case errc::worker_crashed:
      return "worker_crashed";
    case errc::worker_boot_failed:
      return "worker_boot_failed";
    case errc::protocol_error:
      return "protocol_error";
    case errc::decode_error:
      return "decode_error";
    case errc::payload_too_large:
      return "payload_too_large";
    case errc::shutting_down:
      return "shutting_down";
    case errc::queue_full:
      return "queue_full";
    case errc::task_timeout:
      return "task_timeout";
    case errc::cancelled:
      return "cancelled";
  }
  return "unknown";
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

}  // namespace crew
