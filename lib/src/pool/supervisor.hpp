// Private: the pool's workers over their lives — one slot per worker. It starts a worker
// in a slot (launcher → channel → session), backs off after a slot's boot failures, reports
// a slot that cannot start while others serve (worker_unavailable; it keeps trying at the
// capped back-off), stops respawning when no worker can start at all (the boot breaker;
// rules in policy.hpp, "starting workers"), recycles a worker between tasks
// (task count, resident memory), and judges each worker's end: tasks it never started go
// back to the queue as they were, the one it died under is retried or failed, crashes in a
// row trip the crash-loop breaker, and the slot is filled again while the pool serves.
// A pool that tripped a breaker is "broken": it fails queued and later tasks with the
// reason. The rules themselves are in policy.hpp; this unit carries them out.
// A listening pool (listen_options) starts no worker itself: its connect_listener hands it
// authenticated connections, each taking a free slot (adopt); a slot whose worker ended
// waits for the next connection instead of respawning, and the boot breakers do not apply
// (a worker that never says hello just frees its slot). Instead the pool stops serving
// when it has had no worker for `connect_timeout`, or when its launch_once command ends
// before any worker connected. It runs that command, and stops it after the last worker.
// On the pool's strand (broken_reason() from any thread).
#pragma once

#include "connect_listener.hpp"
#include "dispatcher.hpp"
#include "event_emitter.hpp"
#include "local_launcher.hpp"
#include "policy.hpp"
#include "worker_session.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace crew::detail {

/// What the supervisor needs from the pool that owns it.
class supervisor_host {
 public:
  virtual void dispatch() = 0;
  virtual void check_join() = 0;
  virtual bool closed() const noexcept = 0;      ///< close/join/shutdown/destructor began
  virtual bool terminated() const noexcept = 0;  ///< the destructor began
  virtual std::weak_ptr<session_owner> as_owner() = 0;
  /// A line of listen_options::launch_once's output.
  virtual void once_output(output_line::stream which, std::string_view text, int pid) = 0;

 protected:
  ~supervisor_host() = default;
};

class once_launcher;

class supervisor final : public listener_host {
 public:
  using strand_type = boost::asio::any_io_executor;  // make_pool_strand's
  using slot_list = std::vector<std::shared_ptr<worker_session>>;

  supervisor(const strand_type& strand, const process_pool_options& opts,
             const session_settings& settings, const event_emitter& events, dispatcher& tasks,
             supervisor_host& host);

  ~supervisor();

  /// Starts the pool's workers: spawns every slot, or, listening, starts accepting, the
  /// start-up deadline and the launch_once command.
  void start();
  /// Starts a worker in `slot` (a boot failure if it cannot be started); listening: none.
  void spawn(std::size_t slot);
  /// Listening: the port, the connections refused so far; else 0.
  std::uint16_t listen_port() const noexcept { return listener_ ? listener_->port() : 0; }
  std::uint64_t peers_refused() const noexcept { return listener_ ? listener_->refused() : 0; }

  // listener_host
  std::size_t free_slots() const override;
  void adopt(std::shared_ptr<worker_channel> channel) override;
  void refused(const std::string& peer, const std::string& why, std::uint64_t count) override;
  std::shared_ptr<void> keep_alive() override { return host_.as_owner().lock(); }
  const slot_list& slots() const noexcept { return slots_; }
  /// Workers alive now (local processes).
  std::vector<int> pids() const { return launcher_.registry()->pids(); }
  local_registry& registry() const { return *launcher_.registry(); }

  /// A worker said hello: its slot's run of boot failures is over, and slots that reached
  /// the limit while no worker was alive are reported now.
  void worker_ready(worker_session& s);
  /// A live task was answered: the run of crashes (on that worker's launcher) is over.
  void reply_received(const worker_session& s) noexcept { crashes_[group_of(s.slot())].on_reply(); }
  /// After any reply: recycles the worker if it is due and nothing else runs on it.
  void task_answered(worker_session& s);
  /// A worker is gone: judges its tasks, counts the crash, fills the slot again.
  void worker_ended(worker_session& s, session_end end);

  /// Whether the pool stopped serving (a breaker tripped), and why.
  bool broken() const noexcept { return broken_; }
  errc broken_code() const noexcept { return broken_code_; }
  const std::string& broken_reason() const noexcept { return broken_reason_; }
  std::string broken_reason_copy() const;
  /// Any worker with tasks, or any worker at all.
  bool any_busy() const;
  /// Asks idle and booting workers to go; true if any worker (or retiring one) is left.
  bool stop_idle();
  /// Cancels pending respawns.
  void cancel_respawns();
  /// The destructor: fails in-flight tasks with shutting_down, stops every worker at once.
  void terminate_all();

 private:
  void boot_failed(std::size_t slot, std::string reason);
  policy::boot_view boot_view(std::size_t failing_slot) const;
  bool other_alive(std::size_t slot) const;
  void report_unavailable(std::size_t slot);
  void trip(errc code, std::string why);
  std::optional<std::string> judge_running(session_end& end);
  bool listening() const noexcept { return static_cast<bool>(listener_); }
  bool takes_workers() const;
  void connected_ended();
  void arm_alone();
  void launch_once();
  void once_ended(const std::string& how, const std::string& tail);
  void stop_once();
  bool any_booted() const;

  strand_type strand_;
  const process_pool_options& opts_;
  const session_settings& settings_;
  const event_emitter& events_;
  dispatcher& tasks_;
  supervisor_host& host_;
  local_launcher launcher_;
  slot_list slots_;
  slot_list retiring_;  // recycled workers on their way out
  std::vector<std::unique_ptr<boost::asio::steady_timer>> respawn_timers_;
  // Per slot: its boot failures in a row (since its last hello), whether it was ever started,
  // whether it was reported unavailable in this run, and its last boot failure's text.
  struct slot_record {
    unsigned failures = 0;
    bool started = false;
    bool reported = false;
    std::string last_failure;
  };
  std::vector<slot_record> records_;
  unsigned boot_failures_ = 0;  // failed starts in the pool so far
  bool ever_alive_ = false;     // a worker of this pool has said hello
  // The crash-loop breaker, one per launcher (one for local workers): a host whose workers
  // all die (a cut link: ssh exits 255 under every task) must not stop the pool while the
  // other hosts answer. The pool trips when every launcher's breaker has.
  std::vector<policy::crash_loop_breaker> crashes_;
  std::size_t group_of(std::size_t slot) const noexcept { return slot % crashes_.size(); }
  bool broken_ = false;
  errc broken_code_ = errc::worker_boot_failed;
  std::string broken_reason_;
  mutable std::mutex reason_mutex_;
  std::string broken_reason_copy_;  // for broken_reason() on any thread
  // Listening (listen_options): the listener, the launch_once command, the start-up
  // deadline (armed while no worker is connected), the once command's stop ladder.
  std::shared_ptr<connect_listener> listener_;
  std::shared_ptr<once_launcher> once_;
  std::string once_end_;  // how the once command ended, for messages
  boost::asio::steady_timer alone_timer_;
  bool alone_armed_ = false;
  boost::asio::steady_timer once_stop_timer_;
  bool once_stopping_ = false;
};

}  // namespace crew::detail
