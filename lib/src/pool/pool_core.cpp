#include "pool_core.hpp"

#include "../connect/auth.hpp"
#include "../spawn.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <stdexcept>
#include <thread>

#include <unistd.h>

namespace crew::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// The options as the pool uses them: defaults filled in, the executable resolved, and
// those that cannot work refused.
process_pool_options settled(process_pool_options o) {
  if (o.transport == transport::shm && o.shm_area_bytes == 0)
    throw std::invalid_argument(
        "process_pool_options::shm_area_bytes is 0: with transport::shm each worker needs "
        "areas of at least one byte (they are rounded up to 4 KiB)");
  if (o.heartbeat_interval.count() > 0 && o.heartbeat_timeout.count() > 0 &&
      o.heartbeat_timeout < 3 * o.heartbeat_interval)
    throw std::invalid_argument(
        "process_pool_options: heartbeat_timeout (" + std::to_string(o.heartbeat_timeout.count()) +
        " ms) must be at least 3 x heartbeat_interval (" +
        std::to_string(o.heartbeat_interval.count()) +
        " ms): pings go out every 1 to 1.5 intervals, and a worker takes its coordinator for "
        "gone after heartbeat_timeout without one");
  const bool listening = !o.listen.address.empty();
  if (listening) {
    if (!o.launchers.empty())
      throw std::invalid_argument(
          "process_pool_options: launchers and listen are both set: a pool either starts its "
          "workers through launchers or waits for them to connect (listen)");
    if (o.workers == 0)
      throw std::invalid_argument(
          "process_pool_options::workers is 0 with listen set: say how many workers are to "
          "connect");
    if (o.listen.secret.empty())
      o.listen.secret = auth::generate_secret();
    else if (auto why = auth::check_secret(o.listen.secret); !why.empty())
      throw std::invalid_argument("listen_options::secret: " + why);
    if (o.listen.connect_timeout.count() <= 0 || o.listen.auth_timeout.count() <= 0)
      throw std::invalid_argument(
          "listen_options: connect_timeout and auth_timeout must be positive");
  }
  if (!o.launchers.empty() || listening) {
    // What only a local worker can have is refused, never silently dropped.
    auto refuse = [listening](const char* what) {
      throw std::invalid_argument(std::string("process_pool_options: ") + what +
                                  " applies to local workers only, and " +
                                  (listening ? "listen is" : "launchers are") +
                                  " set: remote workers cannot have it (docs/remote.md)");
    };
    if (o.transport == transport::shm) refuse("transport::shm (shared memory)");
    if (o.max_worker_rss > 0) refuse("max_worker_rss (recycling by resident memory)");
    if (o.limit_address_space > 0) refuse("limit_address_space");
    if (o.limit_cpu.count() > 0) refuse("limit_cpu");
    if (o.sandbox.enabled) refuse("sandbox");
    // They become words of `env` on the remote side: an entry that is not NAME=value would
    // be taken for env's command or one of its options.
    for (const auto& e : o.env)
      if (e.find('=') == std::string::npos || e.front() == '=' || e.front() == '-')
        throw std::invalid_argument("process_pool_options::env: '" + e +
                                    "' is not NAME=value (with launchers it goes on the remote "
                                    "command line, after env)");
    for (const auto& l : o.launchers)
      if (l.command.empty() || l.command[0].empty())
        throw std::invalid_argument("process_pool_options: a launcher with an empty command");
    if (o.remote_executable.empty())
      o.remote_executable = o.executable.empty() ? default_worker_executable() : o.executable;
    if (o.remote_executable.string().find('=') != std::string::npos)
      throw std::invalid_argument("process_pool_options: the remote worker's path '" +
                                  o.remote_executable.string() +
                                  "' holds '=': env would take it for a variable");
  }
  if (o.workers == 0)
    o.workers = o.launchers.empty() ? std::max(1u, std::thread::hardware_concurrency())
                                    : o.launchers.size();
  if (o.executable.empty()) o.executable = default_worker_executable();
  if (o.max_result_memory == 0)  // twice max_payload (see process_pool_options), saturated
    o.max_result_memory =
        o.max_payload > decoder::unlimited / 2 ? decoder::unlimited : 2 * o.max_payload;
  o.executable = resolve_executable(o.executable);
  return o;
}

session_settings settings_of(const process_pool_options& o) {
  return {o.max_payload,  o.shm_inline_max, o.handshake_timeout,  o.frame_timeout,
          o.cancel_grace, o.shutdown_grace, o.heartbeat_interval, o.heartbeat_timeout};
}

// Tasks in flight per worker. One request and one response area per worker: shared-memory
// tasks cannot overlap.
std::size_t depth_of(const process_pool_options& o) {
  return o.transport == transport::shm ? 1 : std::max<std::size_t>(1, o.pipeline_depth);
}

}  // namespace

pool_core::pool_core(asio::any_io_executor ex, process_pool_options o)
    : ex_(ex),
      strand_(make_pool_strand(ex)),
      opts_(settled(std::move(o))),
      settings_(settings_of(opts_)),
      events_(opts_.on_event),
      gate_(opts_.max_queue, opts_.when_full, ex_, strand_),
      tasks_(opts_, depth_of(opts_), events_, gate_),
      workers_(strand_, opts_, settings_, events_, tasks_, *this),
      output_(opts_.on_output) {
}

void pool_core::start() {
  asio::post(strand_, [self = shared_from_this()] { self->workers_.start(); });
}

// --- taking tasks in --------------------------------------------------------------------

void pool_core::submit(raw_task t) {
  if (t.body) t.body->result_memory = opts_.max_result_memory;
  if (gate_.closed())
    return tasks_.fail_now(std::move(t), errc::shutting_down, "the pool is closed");
  const bool fits_pipe = t.args_size + 4 <= opts_.max_payload;
  const bool fits_shm = opts_.transport == transport::shm && t.batch_items == 0 &&
                        t.args_size <= opts_.shm_area_bytes;
  if (!fits_pipe && !fits_shm)
    return tasks_.fail_now(std::move(t), errc::payload_too_large,
                           "arguments of " + t.job + " take " + std::to_string(t.args_size) +
                               " bytes; the limit is " + std::to_string(opts_.max_payload));
  const bool admitted = gate_.bounded();
  if (admitted) {
    std::string why;
    if (!gate_.admit(why)) return tasks_.fail_now(std::move(t), errc::queue_full, std::move(why));
  }
  {
    std::lock_guard lock(intake_mutex_);
    intake_.push_back({std::move(t), admitted});
    if (intake_posted_) return;
    intake_posted_ = true;
  }
  asio::post(strand_, [self = shared_from_this()] { self->take_intake(); });
}

// On the strand: every task submitted since the last take joins the queue, in order, and the
// queue is dispatched once.
void pool_core::take_intake() {
  {
    std::lock_guard lock(intake_mutex_);
    std::swap(intake_, taking_);  // both keep their capacity
    intake_posted_ = false;
  }
  std::size_t i = 0;
  try {
    for (; i < taking_.size(); ++i)
      accept(std::move(taking_[i].task), taking_[i].admitted);
  } catch (...) {  // std::bad_alloc: the tasks after it wait for the next take
    bool post = false;
    {
      std::lock_guard lock(intake_mutex_);
      intake_.insert(intake_.begin(), std::make_move_iterator(taking_.begin() + i + 1),
                     std::make_move_iterator(taking_.end()));
      if (!intake_.empty() && !intake_posted_) post = intake_posted_ = true;
    }
    taking_.clear();
    if (post) asio::post(strand_, [self = shared_from_this()] { self->take_intake(); });
    throw;
  }
  taking_.clear();
  dispatch();
}

// On the strand: the task joins the queue, unless the pool or the task says no.
void pool_core::accept(raw_task t, bool admitted) {
  pending_task p;
  p.id = t.id;
  p.admitted = admitted;
  p.timeout = policy::task_deadline(t.options.timeout, opts_.task_timeout, t.batch_items);
  p.retries = policy::retries_for(t.job, t.options.retries, opts_.job_retries, opts_.retries);
  p.task = std::move(t);
  if (closed_) return tasks_.fail(p, errc::shutting_down, "the pool is closed");
  if (workers_.broken()) return tasks_.fail(p, workers_.broken_code(), workers_.broken_reason());
  if (p.task.options.stop.stop_requested() || (p.task.cancelled && p.task.cancelled->load()))
    return tasks_.fail(p, errc::cancelled, "cancelled before it was queued");
  if (p.task.options.stop.stop_possible())
    p.on_stop = std::make_unique<std::stop_callback<std::function<void()>>>(
        p.task.options.stop,
        std::function<void()>([core = weak_from_this(), id = p.id] { cancel_task(core, id); }));
  tasks_.enqueue(std::move(p));
}

// --- cancellation -----------------------------------------------------------------------

void pool_core::cancel(std::uint64_t id) {
  asio::post(strand_, [self = shared_from_this(), id] { self->cancel_on_strand(id); });
}

void pool_core::cancel_on_strand(std::uint64_t id) {
  if (tasks_.cancel_queued(id)) return check_join();
  for (auto w : workers_.slots()) {  // a copy: cancelling may end the worker
    if (!w) continue;
    for (auto& t : w->inflight())
      if (t.id == id && !t.discarded) {
        tasks_.fail(t, errc::cancelled, "cancelled on " + w->who());
        return w->cancel_sent(t);
      }
  }
}

// Shutdown's grace has run out: every queued and running task is cancelled.
void pool_core::cancel_everything(const std::string& why) {
  tasks_.fail_queued(errc::cancelled, why);
  for (auto w : workers_.slots()) {  // a copy: cancelling may end the worker
    if (!w) continue;
    auto& inflight = w->inflight();
    for (std::size_t i = inflight.size(); i-- > 0;)  // the running one last
      if (i < inflight.size() && !inflight[i].discarded) {
        tasks_.fail(inflight[i], errc::cancelled, why);
        w->cancel_sent(inflight[i]);
      }
  }
  check_join();
}

// --- the pool's life --------------------------------------------------------------------

void pool_core::close() {
  gate_.close();
  asio::post(strand_, [self = shared_from_this()] {
    self->closed_ = true;
    self->check_join();
  });
}

void pool_core::join(std::function<void()> done) {
  gate_.close();
  asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
    self->closed_ = true;
    self->joiners_.push_back(std::move(done));
    self->check_join();
  });
}

void pool_core::shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  gate_.close();
  asio::post(strand_, [self = shared_from_this(), grace, done = std::move(done)]() mutable {
    self->closed_ = true;
    self->joiners_.push_back(std::move(done));
    // Tasks not started yet are dropped now; running ones get the grace period.
    self->tasks_.fail_queued(errc::cancelled, "the pool shut down before the task started");
    if (!self->shutdown_armed_) {
      self->shutdown_armed_ = true;
      self->shutdown_timer_.expires_after(grace);
      self->shutdown_timer_.async_wait([self](error_code ec) {
        if (!ec) self->cancel_everything("the pool shut down before the task finished");
      });
    }
    self->check_join();
  });
}

void pool_core::jobs(std::function<void(std::exception_ptr, std::vector<job_info>)> done) {
  asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
    self->job_queries_.push_back(std::move(done));
    if (self->announced_)
      self->answer_job_queries(errc::worker_boot_failed, {});
    else if (self->workers_.broken())
      self->answer_job_queries(self->workers_.broken_code(), self->workers_.broken_reason());
    else if (self->closed_)
      self->check_join();
  });
}

// With the first hello's jobs if there are any, else with `code` and `why`.
void pool_core::answer_job_queries(errc code, const std::string& why) {
  auto queries = std::move(job_queries_);
  job_queries_.clear();
  for (auto& q : queries) {
    if (announced_)
      q(nullptr, *announced_);
    else
      q(make_task_error(code, why), {});
  }
}

void pool_core::check_join() {
  if (!job_queries_.empty() && workers_.broken())
    answer_job_queries(workers_.broken_code(), workers_.broken_reason());
  if (!closed_) return;
  if ((!tasks_.idle() || workers_.any_busy()) && !workers_.broken()) return;
  if (workers_.stop_idle()) return;
  workers_.cancel_respawns();
  shutdown_timer_.cancel();
  answer_job_queries(errc::shutting_down, "the pool closed before any worker said hello");
  auto joiners = std::move(joiners_);
  joiners_.clear();
  for (auto& j : joiners)
    j();
}

void pool_core::terminate() {
  gate_.close();
  terminated_ = true;
  const auto grace = opts_.shutdown_grace;
  // The strand can do the orderly shutdown (fail tasks, end of input, TERM, KILL, reap)
  // unless the executor is a stopped io_context, or we are on the strand ourselves.
  const auto* ioc_ex = ex_.target<asio::io_context::executor_type>();
  const bool on_strand = running_in(strand_);
  if (on_strand) {
    terminate_on_strand();
  } else {
    // On a stopped io_context this runs if the loop comes back (every task then fails
    // once), or is dropped with the loop; waiting for it would only last the full bound.
    asio::post(strand_, [self = shared_from_this()] { self->terminate_on_strand(); });
    if (ioc_ex == nullptr || !ioc_ex->context().stopped())
      workers_.registry().wait_empty(std::chrono::steady_clock::now() + 2 * grace +
                                     std::chrono::milliseconds(500));
  }
  // Whatever is still alive belongs to an executor that is not running (or to the strand
  // we are blocking): stop and reap it here, so that no child outlives the pool.
  workers_.registry().reap_now(on_strand ? grace : std::chrono::milliseconds(0));
  // A user's sink is never called after this returns; the default one gets a bounded moment
  // to write what is queued (a paused terminal must not hold the destructor).
  if (opts_.on_output)
    output_.stop(std::nullopt);
  else
    output_.stop(grace);
}

void pool_core::terminate_on_strand() {
  closed_ = true;
  answer_job_queries(errc::shutting_down, "the pool was destroyed before any worker said hello");
  tasks_.fail_queued(errc::shutting_down, "the pool was destroyed");
  workers_.terminate_all();
  shutdown_timer_.cancel();
}

// --- what sessions report ---------------------------------------------------------------

void pool_core::session_ready(worker_session& s) {
  if (!announced_) {
    announced_ = s.announced();
    answer_job_queries(errc::worker_boot_failed, {});
  }
  workers_.worker_ready(s);
  dispatch();
  check_join();
}

void pool_core::task_started(const worker_session& s, const pending_task& p) {
  if (!events_.enabled()) return;
  event e = event_emitter::about(event_kind::task_started, p);
  const std::string host = s.host();
  e.host = host;
  events_.emit(e);
}

void pool_core::output(const worker_session& s, output_line::stream which, std::string_view text) {
  // Queued for the output thread: a slow reader of the lines never blocks the strand.
  if (!terminated_) output_.push(s.slot(), s.pid(), which, text);
}

void cancel_task(const std::weak_ptr<pool_core>& core, std::uint64_t id) {
  if (auto c = core.lock()) c->cancel(id);
}

}  // namespace crew::detail
