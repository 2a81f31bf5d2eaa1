// Private: the protocol conversation with one worker, over any worker_channel. It owns:
//  - the handshake and its deadline (handshake_timeout), the worker's job table and flags
//    (shared memory mapped, batches taken);
//  - the tasks sent, in order (`inflight`: the front runs, the rest wait in the channel),
//    their frames (arguments encoded straight into the write buffer or the shared request
//    area) and the write buffering (non-blocking writes, waiting for writability);
//  - reply validation: order and ids, a reply only after the whole task was written, result
//    vs batch_result, shared-memory descriptors, batch results, error frames; any breach is a
//    protocol violation (the worker is killed, its task fails with protocol_error);
//  - deadlines: a begun frame must end within frame_timeout; each task's own deadline from
//    the moment it reaches the front; a cancelled running task's cancel_grace;
//  - cancel frames, and the stop ladder (policy.hpp), climbed through the channel: the
//    session asks its channel to stop; it never signals a process;
//  - heartbeats, with a worker that answers pings (flag_heartbeat on its hello; a worker
//    through a launcher): a ping after heartbeat_interval of silence, and the worker lost
//    (worker_lost) after heartbeat_timeout with nothing from it at all.
// What the conversation means for the pool — a task succeeded or failed, a worker is ready,
// answered, or gone — it reports to its session_owner (the pool's core), which decides.
// Everything runs on the pool's strand.
#pragma once

#include "channel.hpp"
#include "task.hpp"

#include <crew/process_pool.hpp>
#include <crew/protocol.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace crew::detail {

class worker_session;

/// Why a task failed: a code and its text.
using failure_t = std::pair<errc, std::string>;

/// What a session leaves behind when its worker is gone.
struct session_end {
  std::string who;                      ///< "worker 2 (pid 4242)"
  std::string how;                      ///< how it ended ("exited with code 1", ...)
  std::string stderr_tail;              ///< its last stderr lines, or empty
  int status = -1;                      ///< the wait status, -1 if unknown or no process
  bool booted = false;                  ///< it had said hello
  bool worked = false;                  ///< it answered a task, read some of one, or crew
                                        ///< ended it for a cause (deadline, cancel, violation)
  bool head_unread = false;             ///< the first of `unstarted` was next in line, and
                                        ///< the worker ended without reading a byte of it
  bool stopping = false;                ///< it had been asked to go
  std::optional<failure_t> failure;     ///< why crew gave up on it, if crew did
  task_list unstarted;                  ///< tasks it never started, in order (cancelled dropped)
  std::optional<pending_task> running;  ///< the task it ended under (not a cancelled one)
};

/// What a session reports to. Called on the strand; the owner may call back into the session.
class session_owner {
 public:
  virtual void session_ready(worker_session& s) = 0;  ///< its hello was accepted
  /// A reply to a live (not cancelled) task arrived from `s`.
  virtual void reply_received(worker_session& s) = 0;
  /// `p` reached the front of `s`.
  virtual void task_started(const worker_session& s, const pending_task& p) = 0;
  virtual void task_succeeded(pending_task& p, std::span<const std::byte> result) = 0;
  virtual void task_failed(pending_task& p, errc code, std::string message) = 0;
  virtual void task_answered(worker_session& s) = 0;  ///< after any reply, the next started
  virtual void session_ended(worker_session& s, session_end end) = 0;
  virtual void output(const worker_session& s, output_line::stream which,
                      std::string_view text) = 0;
  /// Around the handling of the frames of one read: writes wait for its end.
  virtual void replies_begin() = 0;
  virtual void replies_end() = 0;

 protected:
  ~session_owner() = default;
};

/// The settings a session reads (from process_pool_options).
struct session_settings {
  std::size_t max_payload = 0;
  std::size_t shm_inline_max = 0;
  std::chrono::milliseconds handshake_timeout{0}, frame_timeout{0}, cancel_grace{0},
      shutdown_grace{0}, heartbeat_interval{0}, heartbeat_timeout{0};
};

class worker_session final : public channel_listener,
                             public std::enable_shared_from_this<worker_session> {
 public:
  enum class state { booting, idle, busy, stopping };

  worker_session(const boost::asio::any_io_executor& strand, std::size_t slot,
                 std::shared_ptr<worker_channel> channel, std::weak_ptr<session_owner> owner,
                 const session_settings& settings);

  /// Starts the channel and the handshake deadline.
  void start();

  std::size_t slot() const noexcept { return slot_; }
  int pid() const noexcept { return pid_; }
  /// "worker 2 (pid 4242)"; through a launcher "worker 2 on node1 (pid 777 there; launcher
  /// pid 4242)".
  std::string who() const;
  /// Where it runs, for events (event::host): its placement from its hello (node, pod or
  /// host), else its launcher's name; empty for a local worker.
  std::string host() const { return placement_.empty() ? where_ : placement_; }
  state current() const noexcept { return st_; }
  void set_idle() noexcept { st_ = state::idle; }
  bool booted() const noexcept { return booted_; }
  bool takes_batches() const noexcept { return batch_ok_; }
  std::size_t tasks_done() const noexcept { return tasks_done_; }
  bool retire_due() const noexcept { return retire_due_; }
  void mark_retire_due() noexcept { retire_due_ = true; }
  task_list& inflight() noexcept { return inflight_; }
  worker_channel& channel() noexcept { return *channel_; }

  /// False once the worker is known to be ending: it must get no new task.
  bool alive() const noexcept;
  /// Whether it takes one more task now, within `depth` in flight.
  bool accepts(std::size_t depth) const noexcept;

  /// The worker's index and signature for `job`, or null; and the list of its jobs.
  const std::pair<std::uint32_t, std::string>* find_job(const std::string& job) const;
  const std::string& job_list() const noexcept { return job_list_; }
  /// The jobs of its hello, in order (empty before the hello).
  const std::vector<job_info>& announced() const noexcept { return announced_; }

  /// Writes the task's frame into the write buffer (or its arguments into the shared
  /// request area); false, with `error` set and nothing written, if they do not fit.
  bool encode_task(pending_task& p, std::uint32_t job_index, std::string& error);
  /// The task just encoded is now in flight; it starts at once if it is the first.
  void push_sent(pending_task&& p);
  /// Sends what is buffered, unless a wait for writability is pending.
  void flush();

  /// `t` (in flight here) was cancelled and already failed: a cancel frame goes out; a
  /// running one gets cancel_grace before the worker is killed.
  void cancel_sent(pending_task& t);
  /// Asked to go: the graceful stop ladder. Idempotent.
  void stop();
  /// One stop step now, outside any ladder (the pool's destructor).
  void signal(policy::stop_step step) { channel_->stop(step); }

  // channel_listener
  std::span<std::byte> read_buffer() override;
  bool on_read(std::size_t n) override;
  void on_input_end() override;
  void on_writable(bool ok) override;
  void on_output(output_line::stream which, std::string_view text) override;
  void on_ended(channel_end end) override;
  std::shared_ptr<void> keep_alive() override { return owner_.lock(); }

 private:
  bool on_frame(const std::shared_ptr<session_owner>& owner, const protocol::frame_view& f);
  bool on_hello(const std::shared_ptr<session_owner>& owner, const protocol::frame_view& f);
  bool on_reply(const std::shared_ptr<session_owner>& owner, const protocol::frame_view& f);
  void answered(const std::shared_ptr<session_owner>& owner);
  void start_head(const std::shared_ptr<session_owner>& owner);
  void violation(std::string what);
  void watch_frame(bool frame_began);
  void write_pending();
  void arm_task_deadline(std::uint64_t id, std::chrono::milliseconds timeout);
  void arm_cancel_grace(std::uint64_t id);
  template <class Expired>
  void arm_deadline(std::chrono::milliseconds after, Expired expired);
  void climb(boost::asio::steady_timer& timer, policy::stop_ladder ladder, std::size_t rung);
  void arm_heartbeat();
  void beat();

  std::size_t slot_;
  std::shared_ptr<worker_channel> channel_;
  std::weak_ptr<session_owner> owner_;
  session_settings settings_;
  int pid_;
  state st_ = state::booting;
  bool booted_ = false;
  bool shm_ok_ = false;    // the worker mapped the segment (flag on its hello)
  bool batch_ok_ = false;  // the worker takes batch frames (flag on its hello)
  std::unordered_map<std::string, std::pair<std::uint32_t, std::string>> jobs_;
  std::vector<job_info> announced_;
  std::string job_list_;
  protocol::frame_reader reader_;
  std::vector<std::byte> result_buf_;  // results read out of the segment, reused
  std::vector<std::byte> wbuf_;
  std::size_t woff_ = 0;
  std::uint64_t appended_ = 0;  // bytes ever put in wbuf
  std::uint64_t written_ = 0;   // bytes ever written to the worker
  bool writing_ = false;        // a wait for the channel to take more is pending
  // Tasks sent, in order. The worker runs them one after another, so front() is the one
  // running; the others wait in its channel (pipeline_depth > 1). A discarded entry is a
  // cancelled task whose reply is still due and will be dropped.
  task_list inflight_;
  bool retire_due_ = false;  // recycle once its in-flight tasks are done
  std::size_t tasks_done_ = 0;
  bool task_sent_ = false;  // a task was ever sent (pings are not work)
  bool frame_armed_ = false;
  bool cut_frame_ = false;  // its channel ended in the middle of a frame
  std::optional<failure_t> failure_;
  boost::asio::steady_timer linger_;       // a peer that closed its replies must end soon
  boost::asio::steady_timer stop_timer_;   // the graceful stop ladder
  boost::asio::steady_timer deadline_;     // the handshake's, then each task's (or cancel grace)
  boost::asio::steady_timer frame_timer_;  // a begun frame must end in time
  // Heartbeats (a worker that set flag_heartbeat): when we last heard from it, pings sent.
  bool heartbeat_ = false;
  // When we last heard from it, last sent to it, and sent the first ping not answered since.
  std::chrono::steady_clock::time_point heard_, sent_at_, unanswered_since_;
  std::uint64_t pings_ = 0;
  boost::asio::steady_timer heartbeat_timer_;
  std::uint32_t remote_pid_ = 0;  // its pid in its hello, for a worker elsewhere
  std::string where_;             // where it runs, if elsewhere
  std::string placement_;         // where it says it runs (its hello's placement), if it did
};

}  // namespace crew::detail
