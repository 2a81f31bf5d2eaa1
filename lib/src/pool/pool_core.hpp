// Private: a process pool's core — where the parts meet, on one strand. It takes tasks in
// (the admission gate, then the strand), runs the pool's life (close, join, graceful
// shutdown, the destructor's bounded end) and carries what worker sessions report to the
// dispatcher (tasks) and the supervisor (workers). It decides nothing itself that one of
// them owns:
//   admission   the bounded queue's gate                     admission.hpp
//   dispatcher  the queue, which task goes where, completion dispatcher.hpp
//   supervisor  workers' lives: spawn, breakers, recycling    supervisor.hpp
//   session     the protocol with one worker                  worker_session.hpp
//   channel     how a worker is reached (a local process)     channel.hpp, local_channel.hpp
//   policy      the rules, pure                               policy.hpp
#pragma once

#include "pool_strand.hpp"

#include "admission.hpp"
#include "dispatcher.hpp"
#include "event_emitter.hpp"
#include "supervisor.hpp"
#include "worker_session.hpp"

#include "output_queue.hpp"

#include <crew/process_pool.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <mutex>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace crew::detail {

class pool_core final : public std::enable_shared_from_this<pool_core>,
                        public session_owner,
                        public supervisor_host {
 public:
  /// Throws std::invalid_argument for options that cannot work (see process_pool_options).
  pool_core(boost::asio::any_io_executor ex, process_pool_options o);

  /// Starts the workers (on the strand).
  void start();
  std::size_t size() const noexcept { return opts_.workers; }
  std::vector<int> pids() const { return workers_.pids(); }
  std::uint64_t next_task_id() noexcept { return tasks_.next_task_id(); }
  std::string broken_reason() const { return workers_.broken_reason_copy(); }
  std::uint64_t output_dropped() const noexcept { return output_.dropped(); }
  std::uint16_t listen_port() const noexcept { return workers_.listen_port(); }
  const std::string& secret() const noexcept { return opts_.listen.secret; }
  std::uint64_t peers_refused() const noexcept { return workers_.peers_refused(); }

  /// Any thread: see process_pool.
  void submit(raw_task t);
  void cancel(std::uint64_t id);
  void close();
  void join(std::function<void()> done);
  void shutdown(std::chrono::milliseconds grace, std::function<void()> done);
  /// Any thread: `done` gets the jobs of the first hello, or the reason none will come
  /// (see process_pool::async_jobs); called on the strand.
  void jobs(std::function<void(std::exception_ptr, std::vector<job_info>)> done);
  /// The destructor's path: see ~process_pool.
  void terminate();

  // session_owner
  void session_ready(worker_session& s) override;
  void reply_received(worker_session& s) override { workers_.reply_received(s); }
  void task_started(const worker_session& s, const pending_task& p) override;
  void task_succeeded(pending_task& p, std::span<const std::byte> result) override {
    tasks_.succeed(p, result);
  }
  void task_failed(pending_task& p, errc code, std::string message) override {
    tasks_.fail(p, code, std::move(message));
  }
  void task_answered(worker_session& s) override { workers_.task_answered(s); }
  void session_ended(worker_session& s, session_end end) override {
    workers_.worker_ended(s, std::move(end));
  }
  void output(const worker_session& s, output_line::stream which, std::string_view text) override;
  void replies_begin() override { tasks_.replies_begin(); }
  void replies_end() override { tasks_.replies_end(workers_.slots()); }

  // supervisor_host
  void dispatch() override { tasks_.dispatch(workers_.slots()); }
  void check_join() override;
  bool closed() const noexcept override { return closed_; }
  bool terminated() const noexcept override { return terminated_.load(); }
  std::weak_ptr<session_owner> as_owner() override {
    return std::static_pointer_cast<session_owner>(shared_from_this());
  }
  void once_output(output_line::stream which, std::string_view text, int pid) override {
    if (!terminated_) output_.push(event::no_worker, pid, which, text);
  }

 private:
  void take_intake();
  void accept(raw_task t, bool admitted);
  void cancel_on_strand(std::uint64_t id);
  void cancel_everything(const std::string& why);
  void terminate_on_strand();

  boost::asio::any_io_executor ex_;
  boost::asio::any_io_executor strand_;  // make_pool_strand's
  process_pool_options opts_;
  session_settings settings_;
  event_emitter events_;
  admission gate_;
  dispatcher tasks_;
  supervisor workers_;
  boost::asio::steady_timer shutdown_timer_{strand_};
  bool shutdown_armed_ = false;
  bool closed_ = false;  // on the strand; gate_.closed() is the same, for any thread
  std::atomic<bool> terminated_{false};
  std::vector<std::function<void()>> joiners_;
  // async_jobs: the first hello's jobs, and who waits for them.
  std::optional<std::vector<job_info>> announced_;
  std::vector<std::function<void(std::exception_ptr, std::vector<job_info>)>> job_queries_;
  void answer_job_queries(errc code, const std::string& why);
  output_queue output_;
  // Submitted tasks on their way to the strand: the first into an empty intake posts one
  // take_intake, which accepts every task there by then (one post per burst, not per task).
  struct submitted {
    raw_task task;
    bool admitted;
  };
  std::mutex intake_mutex_;  // for the two below
  std::vector<submitted> intake_;
  bool intake_posted_ = false;
  std::vector<submitted> taking_;  // take_intake's, on the strand
};

}  // namespace crew::detail
