// process_pool: the public face of a pool of local worker processes. Everything it does is
// in the pool's core (pool/pool_core.hpp and the parts it names); this file only builds the
// core from the options and forwards to it.
#include <crew/process_pool.hpp>

#include "connect/auth.hpp"
#include "pool/pool_core.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/use_future.hpp>

namespace crew {

namespace asio = boost::asio;

process_pool::process_pool(executor_type ex, process_pool_options options)
    : executor_(ex),
      map_chunk_(options.map_chunk),
      core_(std::make_shared<detail::pool_core>(ex, std::move(options))) {
  core_->start();
}

process_pool::~process_pool() {
  core_->terminate();
}

void process_pool::submit_raw(detail::raw_task t) {
  core_->submit(std::move(t));
}
void process_pool::jobs_raw(jobs_callback done) {
  core_->jobs(std::move(done));
}
void process_pool::join_raw(std::function<void()> done) {
  core_->join(std::move(done));
}
void process_pool::close() {
  core_->close();
}
void process_pool::join() {
  async_join(asio::bind_executor(executor_, asio::use_future)).get();
}
void process_pool::shutdown_raw(std::chrono::milliseconds grace, std::function<void()> done) {
  core_->shutdown(grace, std::move(done));
}
void process_pool::shutdown(std::chrono::milliseconds grace) {
  async_shutdown(grace, asio::bind_executor(executor_, asio::use_future)).get();
}
std::string process_pool::broken_reason() const {
  return core_->broken_reason();
}
std::uint64_t process_pool::next_task_id() noexcept {
  return core_->next_task_id();
}
std::string read_secret_file(const std::filesystem::path& path) {
  return detail::auth::read_secret_file(path);
}

std::uint16_t process_pool::listen_port() const noexcept {
  return core_->listen_port();
}

const std::string& process_pool::secret() const noexcept {
  return core_->secret();
}

std::uint64_t process_pool::peers_refused() const noexcept {
  return core_->peers_refused();
}

std::uint64_t process_pool::output_lines_dropped() const noexcept {
  return core_->output_dropped();
}
std::size_t process_pool::size() const noexcept {
  return core_->size();
}
std::vector<int> process_pool::pids() const {
  return core_->pids();
}

}  // namespace crew
