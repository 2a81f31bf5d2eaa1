#include "supervisor.hpp"

#include "once_launcher.hpp"
#include "remote_command.hpp"

#include <algorithm>

namespace crew::detail {

using boost::system::error_code;

namespace {
// How a worker's end reads in a boot failure's or a task's message: who, why crew gave up on
// it (if it did), how it ended, `after_how`, and its stderr tail.
std::string end_text(const session_end& end, std::string_view after_how = {}) {
  std::string s = end.failure ? end.who + ": " + end.failure->second + "; it " + end.how
                              : end.who + " " + end.how;
  s += after_how;
  if (!end.stderr_tail.empty()) s += "; stderr: " + end.stderr_tail;
  return s;
}
}  // namespace

supervisor::supervisor(const strand_type& strand, const process_pool_options& opts,
                       const session_settings& settings, const event_emitter& events,
                       dispatcher& tasks, supervisor_host& host)
    : strand_(strand),
      opts_(opts),
      settings_(settings),
      events_(events),
      tasks_(tasks),
      host_(host),
      launcher_(opts),
      slots_(opts.workers),
      records_(opts.workers),
      crashes_(std::max<std::size_t>(1, opts.launchers.size()),
               policy::crash_loop_breaker(opts.crash_loop_limit)),
      alone_timer_(strand_),
      once_stop_timer_(strand_) {
  for (std::size_t i = 0; i < opts.workers; ++i)
    respawn_timers_.push_back(std::make_unique<boost::asio::steady_timer>(strand_));
  if (!opts.listen.address.empty())
    listener_ = std::make_shared<connect_listener>(
        strand_, opts.listen, opts.listen.secret,
        opts.heartbeat_interval.count() > 0 ? opts.heartbeat_timeout : std::chrono::milliseconds(0),
        opts.max_payload, *this);
}

supervisor::~supervisor() {
  if (listener_) listener_->close();
}

void supervisor::start() {
  if (!listening()) {
    for (std::size_t i = 0; i < slots_.size(); ++i)
      spawn(i);
    return;
  }
  listener_->start();
  arm_alone();
  if (!opts_.listen.launch_once.empty()) launch_once();
}

void supervisor::spawn(std::size_t slot) {
  if (host_.terminated() || broken_) return;  // the pool's destructor has run, or it gave up
  if (listening()) return;                    // the slot waits for a worker to connect
  records_[slot].started = true;
  std::string why;
  auto channel = launcher_.launch(strand_, slot, why);
  if (!channel) return boot_failed(slot, std::move(why));
  auto w = std::make_shared<worker_session>(strand_, slot, channel, host_.as_owner(), settings_);
  slots_[slot] = w;
  if (events_.enabled()) {
    event e = event_emitter::make(event_kind::worker_spawned);
    e.worker = slot;
    e.pid = w->pid();
    const std::string host = w->host();
    e.host = host;
    events_.emit(e);
  }
  w->start();
}

void supervisor::boot_failed(std::size_t slot, std::string reason) {
  slots_[slot].reset();
  auto& r = records_[slot];
  ++r.failures;
  r.last_failure = reason;
  ++boot_failures_;
  if (host_.closed() && tasks_.idle()) return host_.check_join();
  if (auto why = policy::boot_breaker_reason(boot_view(slot), opts_.max_boot_failures))
    return trip(errc::worker_boot_failed, *why + "; last: " + reason);
  if (policy::reports_unavailable(r.failures, opts_.max_boot_failures, other_alive(slot),
                                  r.reported))
    report_unavailable(slot);
  // Back off before trying again, so that a broken worker cannot cause a fork storm; a slot
  // past the limit tries again at the capped back-off, so that a lifted limit heals it.
  auto& timer = *respawn_timers_[slot];
  timer.expires_after(policy::boot_retry_delay(r.failures, opts_.max_boot_failures));
  timer.async_wait([this, keep = host_.as_owner().lock(), slot](error_code ec) {
    if (ec || slots_[slot] || broken_) return;
    if (host_.closed() && tasks_.idle()) return host_.check_join();
    spawn(slot);
  });
}

void supervisor::worker_ready(worker_session& s) {
  ever_alive_ = true;
  if (listening()) {
    alone_timer_.cancel();
    alone_armed_ = false;
    if (events_.enabled()) {  // a connected worker is "spawned" once it says who it is
      event e = event_emitter::make(event_kind::worker_spawned);
      e.worker = s.slot();
      e.pid = s.pid();
      const std::string host = s.host();
      e.host = host;
      events_.emit(e);
    }
  }
  // The slot's run of failures ends with its first answer (task_answered), not here: a
  // worker that says hello and dies idle, or as its task arrives, must not respawn forever.
  if (broken_) return;
  // Slots that reached the limit while no worker was alive are reported now.
  for (std::size_t i = 0; i < records_.size(); ++i)
    if (i != s.slot() && policy::reports_unavailable(records_[i].failures, opts_.max_boot_failures,
                                                     true, records_[i].reported))
      report_unavailable(i);
}

// What the boot breaker looks at after `failing_slot`'s start failed (its worker is gone).
policy::boot_view supervisor::boot_view(std::size_t failing_slot) const {
  policy::boot_view v;
  v.slots = slots_.size();
  v.ever_alive = ever_alive_;
  v.failures = boot_failures_;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i] && slots_[i]->booted())
      ++v.alive;
    else if (i != failing_slot && (slots_[i] || !records_[i].started))
      ++v.starting;
    if (policy::slot_at_limit(records_[i].failures, opts_.max_boot_failures)) ++v.at_limit;
  }
  return v;
}

// Whether a worker of another slot has said hello and still runs.
bool supervisor::other_alive(std::size_t slot) const {
  for (std::size_t i = 0; i < slots_.size(); ++i)
    if (i != slot && slots_[i] && slots_[i]->booted()) return true;
  return false;
}

// The slot cannot start a worker while others serve: one event per run of failures.
void supervisor::report_unavailable(std::size_t slot) {
  auto& r = records_[slot];
  r.reported = true;
  if (!events_.enabled()) return;
  event e = event_emitter::make(event_kind::worker_unavailable);
  e.worker = slot;
  e.error = errc::worker_boot_failed;
  e.message = r.last_failure;
  events_.emit(e);
}

// The pool stops serving: no respawn; queued and later tasks fail with `code` and `why`.
void supervisor::trip(errc code, std::string why) {
  broken_ = true;
  broken_code_ = code;
  broken_reason_ = std::move(why);
  {
    std::lock_guard lock(reason_mutex_);
    broken_reason_copy_ = broken_reason_;
  }
  tasks_.fail_queued(broken_code_, broken_reason_);
  host_.check_join();
}

std::string supervisor::broken_reason_copy() const {
  std::lock_guard lock(reason_mutex_);
  return broken_reason_copy_;
}

void supervisor::task_answered(worker_session& s) {
  if (s.tasks_done() == 1) {  // the slot works: its run of boot failures is over
    auto& r = records_[s.slot()];
    r.failures = 0;
    r.reported = false;
    r.last_failure.clear();
  }
  // Only asked when there is a limit: reading /proc costs a few microseconds.
  const auto rss = opts_.max_worker_rss > 0 ? s.channel().resident_bytes() : std::nullopt;
  if (policy::recycle_reason(s.tasks_done(), opts_.max_tasks_per_worker, rss, opts_.max_worker_rss))
    s.mark_retire_due();  // it takes no new task from now on
  if (s.retire_due() && s.inflight().empty() && !host_.closed() && !broken_ &&
      !host_.terminated()) {
    // Recycled between tasks: it is asked to go, and a fresh worker takes its slot now.
    auto w = s.shared_from_this();
    retiring_.push_back(w);
    if (slots_[w->slot()] == w) slots_[w->slot()].reset();
    w->stop();
    spawn(w->slot());
  }
  host_.dispatch();
  host_.check_join();
}

void supervisor::worker_ended(worker_session& s, session_end end) {
  const auto w = s.shared_from_this();
  if (slots_[w->slot()] == w) slots_[w->slot()].reset();
  std::erase(retiring_, w);
  if (events_.enabled()) {
    event e = event_emitter::make(event_kind::worker_exited);
    e.worker = w->slot();
    e.pid = w->pid();
    e.exit_status = end.status;
    const std::string what = end.who + " " + end.how;
    e.message = what;
    const std::string host = w->host();
    e.host = host;
    events_.emit(e);
  }
  // A task next in line whose worker ended before reading it: counted, and failed at the
  // bound, so that a worker that dies whenever a task arrives cannot hold it forever.
  if (end.head_unread && !end.unstarted.empty() && !host_.terminated()) {
    auto& t = end.unstarted.front();
    if (++t.unread_deaths >= policy::max_unread_deaths) {
      tasks_.fail(t, errc::worker_crashed,
                  "its worker ended before reading it, " + std::to_string(t.unread_deaths) +
                      " times in a row; last: " + end_text(end));
      end.unstarted.pop_front();
    }
  }
  // Tasks it never started go back to the front of the queue in their order, as they were.
  for (std::size_t i = end.unstarted.size(); i-- > 0;) {
    if (host_.terminated())
      tasks_.fail(end.unstarted[i], errc::shutting_down, "the pool was destroyed");
    else
      tasks_.requeue_front(std::move(end.unstarted[i]));
  }
  if (listening()) {
    // A connected worker: the task it ran is judged as anywhere; its slot waits for the
    // next connection (no respawn, no boot breaker).
    if (end.running) {
      const auto crash = judge_running(end);
      if (crash && crashes_[0].on_worker_killed())
        return trip(errc::worker_crashed,
                    "crash loop: the last " + std::to_string(crashes_[0].count()) +
                        " tasks each killed their worker, so the pool stopped serving "
                        "(crash_loop_limit); last: " + *crash);
    }
    return connected_ended();
  }
  if (end.stopping && !end.running) return host_.check_join();  // asked to go
  if (!end.booted)
    return boot_failed(w->slot(), end_text(end, end.failure ? "" : " before its handshake"));
  if (!end.worked && !end.running)  // said hello, then did nothing: it does not work either
    return boot_failed(w->slot(), end_text(end, " after its handshake, before answering any task"));
  std::optional<std::string> crash;  // set when the task killed its worker
  if (end.running) crash = judge_running(end);
  if (crash && crashes_[group_of(w->slot())].on_worker_killed() &&
      std::all_of(crashes_.begin(), crashes_.end(), [&](const auto& b) { return b.tripped(); }))
    return trip(errc::worker_crashed,
                "crash loop: the last " + std::to_string(crashes_[group_of(w->slot())].count()) +
                    " tasks each killed their worker" +
                    (crashes_.size() > 1 ? std::string(", on every launcher,") : std::string()) +
                    " so the pool stopped respawning (crash_loop_limit); last: " + *crash);
  if ((!host_.closed() || !tasks_.idle()) && !broken_ && !host_.terminated())
    spawn(w->slot());  // replace it and go on serving
  host_.dispatch();    // tasks put back may go to the other workers now
  host_.check_join();
}

// The task a worker ended under: run again (first in line) if its policy says so, else
// failed with the worker's end. Returns the message if the task killed its worker.
std::optional<std::string> supervisor::judge_running(session_end& end) {
  pending_task& p = *end.running;
  const errc code = end.failure ? end.failure->first : errc::worker_crashed;
  std::string msg = end_text(end);
  std::optional<std::string> crash;
  if (policy::killed_its_worker(code)) crash = msg;
  if (policy::should_retry(code, p.attempts, p.retries, !broken_ && !host_.terminated())) {
    ++p.attempts;  // run it again, first in line, on a fresh worker
    if (events_.enabled()) {
      event e = event_emitter::about(event_kind::task_retried, p);
      e.error = code;
      e.message = msg;
      e.attempt = p.attempts + 1;
      events_.emit(e);
    }
    tasks_.requeue_front(std::move(p));
    return crash;
  }
  if (p.attempts > 0)
    msg += " (after " + std::to_string(p.attempts + 1) + " attempts, each killing its worker)";
  tasks_.fail(p, code, msg);
  return crash;
}

bool supervisor::any_busy() const {
  for (auto& w : slots_)
    if (w && (!w->inflight().empty() || w->current() == worker_session::state::busy)) return true;
  return false;
}

bool supervisor::stop_idle() {
  bool any_alive = false;
  for (auto& w : slots_) {
    if (!w) continue;
    any_alive = true;
    const auto st = w->current();
    if (st == worker_session::state::idle || st == worker_session::state::booting) w->stop();
  }
  if (listening()) {
    listener_->close();  // no worker joins a pool that is done
    alone_timer_.cancel();
    alone_armed_ = false;
    if (!any_alive && retiring_.empty() && once_ && once_->running()) {
      stop_once();
      return true;
    }
  }
  return any_alive || !retiring_.empty();
}

void supervisor::cancel_respawns() {
  for (auto& t : respawn_timers_)
    t->cancel();
}

void supervisor::terminate_all() {
  for (auto& w : slots_) {
    if (!w) continue;
    for (auto& t : w->inflight())
      if (!t.discarded)
        tasks_.fail(t, errc::shutting_down, "the pool was destroyed while the task ran");
    w->inflight().clear();
    w->set_idle();
    w->stop();
    w->signal(policy::stop_step::terminate);
  }
  for (auto& w : retiring_)
    w->signal(policy::stop_step::terminate);
  cancel_respawns();
  if (listener_) listener_->close();
  alone_timer_.cancel();
  alone_armed_ = false;
  if (once_) once_->stop(policy::stop_step::terminate);
}

// --- a listening pool ---------------------------------------------------------------------

// A closed pool still takes workers while it has tasks to run (close, then join, with the
// workers still on their way); once it has none, it is done with workers.
bool supervisor::takes_workers() const {
  return !host_.terminated() && !broken_ && (!host_.closed() || !tasks_.idle());
}

std::size_t supervisor::free_slots() const {
  if (!takes_workers()) return 0;
  return static_cast<std::size_t>(std::count(slots_.begin(), slots_.end(), nullptr));
}

void supervisor::adopt(std::shared_ptr<worker_channel> channel) {
  const auto free = std::find(slots_.begin(), slots_.end(), nullptr);
  if (free == slots_.end() || !takes_workers()) {
    // Told it had a slot, which went meanwhile (the pool closed or broke): it just goes.
    channel->stop(policy::stop_step::kill);
    return;
  }
  const auto slot = static_cast<std::size_t>(free - slots_.begin());
  records_[slot].started = true;
  auto w = std::make_shared<worker_session>(strand_, slot, std::move(channel), host_.as_owner(),
                                            settings_);
  *free = w;
  w->start();
}

void supervisor::refused(const std::string& peer, const std::string& why, std::uint64_t count) {
  if (!events_.enabled()) return;
  event e = event_emitter::make(event_kind::peer_refused);
  const std::string text = peer + ": " + why;
  e.message = text;
  e.items = count;
  events_.emit(e);
}

bool supervisor::any_booted() const {
  return std::any_of(slots_.begin(), slots_.end(), [](const auto& w) { return w && w->booted(); });
}

// A connected worker is gone; its slot is free for the next connection.
void supervisor::connected_ended() {
  if (!any_booted() && takes_workers()) arm_alone();
  host_.dispatch();
  host_.check_join();
}

// The start-up deadline: the pool has had no worker for connect_timeout.
void supervisor::arm_alone() {
  // Armed once per spell without workers: workers that come and go before their hello do
  // not push the deadline back.
  if (alone_armed_) return;
  alone_armed_ = true;
  alone_timer_.expires_after(opts_.listen.connect_timeout);
  alone_timer_.async_wait([this, keep = host_.as_owner().lock()](error_code ec) {
    if (ec) return;  // cancelled (whoever cancels clears alone_armed_), or re-armed
    alone_armed_ = false;
    if (broken_ || host_.terminated() || any_booted()) return;
    std::string why = "no worker connected to " + listener_->connect_address() + " within " +
                      std::to_string(opts_.listen.connect_timeout.count()) +
                      " ms (listen_options::connect_timeout)";
    if (!ever_alive_ && listener_->refused() > 0)
      why += "; " + std::to_string(listener_->refused()) + " connection(s) were refused";
    if (!once_end_.empty()) why += "; " + once_end_;
    trip(errc::worker_boot_failed, why);
  });
}

void supervisor::launch_once() {
  // The command, the worker's command line after it; CREW_CONNECT and CREW_SECRET in its
  // environment, which srun passes on to every task.
  std::vector<std::string> command = opts_.listen.launch_once;
  if (!opts_.working_directory.empty() || !opts_.env.empty()) {
    command.push_back("env");
    if (!opts_.working_directory.empty()) {
      command.push_back("-C");
      command.push_back(opts_.working_directory.string());
    }
    command.insert(command.end(), opts_.env.begin(), opts_.env.end());
  }
  command.push_back(opts_.remote_executable.string());
  command.insert(command.end(), opts_.args.begin(), opts_.args.end());
  std::vector<std::string> allow =
      opts_.inherit_env ? opts_.env_allow : std::vector<std::string>{};
  for (const auto& name : launcher_env_allow())
    allow.push_back(name);
  child_setup setup{{"CREW_CONNECT=" + listener_->connect_address(),
                     "CREW_SECRET=" + opts_.listen.secret},
                    true,
                    std::move(allow),
                    {},
                    false};
  std::string why;
  auto owner = host_.as_owner().lock();
  once_ = once_launcher::start(
      strand_, command, setup, launcher_.registry(), owner,
      [this](output_line::stream which, std::string_view text) {
        host_.once_output(which, text, once_ ? once_->pid() : 0);
      },
      [this](const std::string& how, const std::string& tail) { once_ended(how, tail); }, why);
  if (!once_) trip(errc::worker_boot_failed, why);
}

void supervisor::once_ended(const std::string& how, const std::string& tail) {
  once_stop_timer_.cancel();
  const bool anyone = std::any_of(slots_.begin(), slots_.end(), [](const auto& w) { return w; });
  const bool early = !anyone && !ever_alive_;
  once_end_ = "the workers' launcher '" + once_->text() + "' " + how;
  if (early) once_end_ += " before any worker connected";
  if (!tail.empty()) once_end_ += "; its last lines: " + tail;
  if (early && !broken_ && !host_.terminated() && !host_.closed())
    return trip(errc::worker_boot_failed, once_end_);
  host_.check_join();
}

// After the last worker: the once command gets shutdown_grace to end by itself (its tasks
// have exited), then SIGTERM, then SIGKILL after as long again.
void supervisor::stop_once() {
  if (once_stopping_) return;
  once_stopping_ = true;
  const auto grace = opts_.shutdown_grace;
  once_stop_timer_.expires_after(grace);
  once_stop_timer_.async_wait([this, keep = host_.as_owner().lock(), grace](error_code ec) {
    if (ec || !once_->running()) return;
    once_->stop(policy::stop_step::terminate);
    once_stop_timer_.expires_after(grace);
    once_stop_timer_.async_wait([this, keep](error_code e) {
      if (!e) once_->stop(policy::stop_step::kill);
    });
  });
}

}  // namespace crew::detail
