#include "backends.hpp"

#include "demo_jobs.hpp"

#include <crew/inline_runner.hpp>
#include <crew/process_pool.hpp>
#include <crew/thread_pool.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <optional>
#include <stop_token>

namespace crew::cli {
namespace {

std::string job_list(const std::vector<std::pair<std::string, std::string>>& jobs) {
  std::string s;
  for (const auto& [name, sig] : jobs)
    s += (s.empty() ? "" : ", ") + name + " " + sig;
  return s;
}

std::string find_signature(const std::vector<std::pair<std::string, std::string>>& jobs,
                           const std::string& job, const std::string& who) {
  for (const auto& [name, sig] : jobs)
    if (name == job) return sig;
  throw cannot_run_error("unknown job '" + job + "': " + who + " serves " +
                         (jobs.empty() ? std::string("no job") : job_list(jobs)));
}

class processes final : public backend {
 public:
  processes(const run_options& o, io_thread& io, event_handler on_event,
            std::function<void(const output_line&)> on_output)
      : io_(io) {
    process_pool_options p;
    p.workers = o.workers;
    if (!o.worker.empty()) {
      p.executable = o.worker;
      p.args = o.worker_args;
      who_ = "worker '" + o.worker + "'";
    } else {
      p.args = {"--io-scale", std::to_string(o.io_scale)};
      p.args.insert(p.args.end(), o.worker_args.begin(), o.worker_args.end());
      who_ = "crew's demo worker";
    }
    p.env = o.env;
    // --env-allow lets more through: the default list stays.
    p.env_allow.insert(p.env_allow.end(), o.env_allow.begin(), o.env_allow.end());
    if (!o.cwd.empty()) p.working_directory = o.cwd;
    p.sandbox = sandbox_of(o);
    for (const auto& words : o.launchers) {
      launcher l;
      l.command = words;
      p.launchers.push_back(std::move(l));
    }
    if (o.listening()) {
      p.listen.address = o.listen_host;
      p.listen.port = o.listen_port;
      p.listen.secret = o.secret;
      p.listen.tls = o.tls;
      p.listen.launch_once = o.launcher_once;
      if (o.connect_timeout_ms > 0)
        p.listen.connect_timeout = std::chrono::milliseconds(o.connect_timeout_ms);
    }
    if (!o.remote_worker.empty()) p.remote_executable = o.remote_worker;
    if (o.heartbeat_timeout_ms > 0) {  // pings at least 4 times per deadline
      p.heartbeat_timeout = std::chrono::milliseconds(o.heartbeat_timeout_ms);
      p.heartbeat_interval = std::min(p.heartbeat_interval, p.heartbeat_timeout / 4);
    }
    p.on_event = std::move(on_event);
    if (on_output) p.on_output = std::move(on_output);
    p.transport = o.transport == "shm" ? transport::shm : transport::pipe;
    p.task_timeout = std::chrono::milliseconds(o.timeout_ms);
    p.retries = o.retries;
    // A worker's next chunk waits in its pipe, not in the queue: no round trip between
    // chunks (the run keeps 2 chunks per worker in flight).
    p.pipeline_depth = 2;
    pool_.emplace(io.context().get_executor(), std::move(p));
  }
  ~processes() override {
    if (pool_) finish();
  }

  std::vector<std::pair<std::string, std::string>> jobs() override {
    if (!jobs_) {
      try {
        auto infos =
            pool_->async_jobs(boost::asio::bind_executor(io_.context(), boost::asio::use_future))
                .get();
        jobs_.emplace();
        for (auto& j : infos)
          jobs_->emplace_back(j.name, j.signature);
      } catch (const std::exception& e) {
        throw cannot_run_error("no worker started: " + std::string(e.what()));
      }
    }
    return *jobs_;
  }
  std::string signature_of(const std::string& job) override {
    return find_signature(jobs(), job, who_);
  }
  void submit(const std::string& job, const std::string& signature, std::vector<std::byte> args,
              std::uint32_t batch, std::string label, completion done) override {
    task_options t;
    t.label = std::move(label);
    pool_->async_submit_encoded(
        process_pool::encoded_call{job, signature, std::move(args), batch}, std::move(t),
        [done = std::move(done)](std::exception_ptr ep, std::vector<std::byte> result) {
          done(std::move(ep), result);
        });
  }
  void drain(std::chrono::milliseconds grace) override {
    pool_->async_shutdown(grace, [] {});
  }
  void finish() override { pool_->join(); }
  bool takes_batches() const override { return true; }
  std::uint16_t listen_port() const override { return pool_->listen_port(); }

 private:
  io_thread& io_;
  std::string who_;
  std::optional<process_pool> pool_;
  std::optional<std::vector<std::pair<std::string, std::string>>> jobs_;
};

// In this process: the demo jobs, each run through its encoded entry point by one job of
// the runner's own registry, `crew.run(job, args) -> result`, so that threads and inline
// take the same bytes as processes.
inline const job<std::string(std::string, std::string)> run_encoded{"crew.run"};

class in_process final : public backend {
 public:
  in_process(const run_options& o, io_thread& io, event_handler on_event) {
    demo::register_jobs(demo_);
    demo::set_io_scale(o.io_scale);
    runner_jobs_.add(run_encoded, [this](const std::string& name, const std::string& args) {
      const auto* e = demo_.find(name);
      if (!e) throw std::runtime_error("unknown job " + name);
      decoder d(reinterpret_cast<const std::byte*>(args.data()), args.size());
      std::string out;
      e->call_encoded(d, [&out](std::size_t n) {
        out.resize(n);
        return encoder(reinterpret_cast<std::byte*>(out.data()), n);
      });
      return out;
    });
    if (o.mode == "threads")
      threads_.emplace(runner_jobs_, o.workers, std::move(on_event));
    else
      inline_.emplace(runner_jobs_, io.context().get_executor(), std::move(on_event));
  }
  ~in_process() override { finish(); }

  std::vector<std::pair<std::string, std::string>> jobs() override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& j : demo_.jobs())
      out.emplace_back(j.name, j.signature);
    return out;
  }
  std::string signature_of(const std::string& job) override {
    return find_signature(jobs(), job, "crew's demo registry");
  }
  void submit(const std::string& job, const std::string&, std::vector<std::byte> args,
              std::uint32_t, std::string label, completion done) override {
    task_options t;
    t.label = std::move(label);
    t.stop = stop_.get_token();  // a drain fails the tasks no thread has taken up yet
    auto call =
        run_encoded(job, std::string(reinterpret_cast<const char*>(args.data()), args.size()));
    auto handler = [done = std::move(done)](std::exception_ptr ep, std::string result) {
      done(std::move(ep),
           std::span(reinterpret_cast<const std::byte*>(result.data()), result.size()));
    };
    if (threads_)
      threads_->async_submit(std::move(call), std::move(t), std::move(handler));
    else
      inline_->async_submit(std::move(call), std::move(t), std::move(handler));
  }
  void drain(std::chrono::milliseconds) override { stop_.request_stop(); }
  void finish() override {
    if (threads_) threads_->join();
  }
  bool takes_batches() const override { return false; }

 private:
  registry demo_, runner_jobs_;
  std::stop_source stop_;
  std::optional<thread_pool> threads_;
  std::optional<inline_runner> inline_;
};

}  // namespace

sandbox_options sandbox_of(const run_options& o) {
  sandbox_options sb;
  sb.enabled = o.sandbox;
  sb.writable.assign(o.sandbox_write.begin(), o.sandbox_write.end());
  sb.hidden.assign(o.sandbox_hide.begin(), o.sandbox_hide.end());
  sb.network = o.sandbox_network;
  return sb;
}

std::unique_ptr<backend> make_backend(const run_options& o, io_thread& io, event_handler on_event,
                                      std::function<void(const output_line&)> on_output) {
  if (o.mode == "processes")
    return std::make_unique<processes>(o, io, std::move(on_event), std::move(on_output));
  return std::make_unique<in_process>(o, io, std::move(on_event));
}

}  // namespace crew::cli
