#include "local_launcher.hpp"

#include "remote_command.hpp"
#include "sandbox.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include <unistd.h>

namespace crew {

namespace {
// `name` found on PATH as an executable file, or empty.
std::filesystem::path find_on_path(const std::filesystem::path& name) {
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest(path);
    while (!rest.empty()) {
      auto colon = rest.find(':');
      std::filesystem::path candidate = std::filesystem::path(rest.substr(0, colon)) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  return {};
}
}  // namespace

std::filesystem::path default_worker_executable() {
  if (const char* env = std::getenv("CREW_WORKER"); env && *env) return env;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto sibling = self.parent_path() / "crew-worker";
    if (std::filesystem::exists(sibling, ec)) return sibling;
  }
  auto found = find_on_path("crew-worker");
  return found.empty() ? "crew-worker" : found;
}

std::vector<std::string> default_env_allow() {
  return {"PATH",
          "HOME",
          "USER",
          "LOGNAME",
          "SHELL",
          "LANG",
          "LANGUAGE",
          "LC_*",
          "TZ",
          "TERM",
          "TMPDIR",
          "PYTHONPATH",
          "PYTHONHOME",
          "LD_LIBRARY_PATH",
          "VIRTUAL_ENV",
          "ASAN_OPTIONS",
          "UBSAN_OPTIONS",
          "TSAN_OPTIONS",
          "LSAN_OPTIONS",
          "MSAN_OPTIONS"};
}

namespace detail {

std::filesystem::path resolve_executable(const std::filesystem::path& exe) {
  if (exe.empty() || exe.is_absolute()) return exe;
  if (!exe.has_parent_path()) {
    auto found = find_on_path(exe);
    return found.empty() ? exe : found;
  }
  std::error_code ec;
  auto abs = std::filesystem::absolute(exe, ec);
  return ec ? exe : abs;
}

local_launcher::local_launcher(const process_pool_options& options) : opts_(options) {
}

std::shared_ptr<local_channel> local_launcher::launch(const boost::asio::any_io_executor& strand,
                                                      std::size_t slot, std::string& why) const {
  if (!opts_.launchers.empty())
    return launch_remote(strand, opts_.launchers[slot % opts_.launchers.size()], why);
  const auto& exe = opts_.executable;
  if (::access(exe.c_str(), X_OK) != 0) {
    const int e = errno;
    why = "cannot start worker '" + exe.string() + "': " + std::strerror(e);
    return nullptr;
  }
  shm_segment seg;
  if (opts_.transport == transport::shm) {
    static std::once_flag swept;  // once per process: stale segments only come from the past
    std::call_once(swept, sweep_stale_segments);
    boost::system::error_code seg_ec;
    seg = shm_segment::create(opts_.shm_area_bytes, opts_.shm_area_bytes, seg_ec, why);
    if (!seg) return nullptr;
  }
  pipe_pair to, from, out, err;
  for (auto* p : {&to, &from, &out, &err})
    if (auto ec = make_pipe(*p)) {
      why = "cannot create pipes for a worker: " + ec.message();
      return nullptr;
    }
  pipe_room room = enlarge_channel_pipes(to.write.get(), from.write.get());
  child_fds fds{out.write.get(),
                err.write.get(),
                to.read.get(),
                from.write.get(),
                seg ? seg.worker_request_fd() : -1,
                seg ? seg.response_fd() : -1};
  const bool sandboxed = opts_.sandbox.enabled;
  child_setup setup{opts_.env, opts_.inherit_env, opts_.env_allow, opts_.working_directory,
                    !sandboxed};
  setup.env.push_back("CREW_MAX_PAYLOAD=" + std::to_string(opts_.max_payload));
  if (seg)
    for (std::string e :
         {std::string("CREW_SHM_REQUEST_FD=5"), std::string("CREW_SHM_RESPONSE_FD=6"),
          "CREW_SHM_INLINE=" + std::to_string(opts_.shm_inline_max)})
      setup.env.push_back(std::move(e));
  child_limits limits{opts_.limit_address_space, static_cast<long>(opts_.limit_cpu.count())};
  // In the sandbox the worker is bwrap's grandchild, started after our spawn returns: its
  // limits are set by prlimit(1) run inside, before the worker's own exec.
  command_line command{exe, opts_.args};
  if (sandboxed) {
    command = sandboxed_command(opts_.sandbox, exe, opts_.args, opts_.working_directory,
                                prlimit_prefix(limits.address_space, limits.cpu_seconds), why);
    if (command.exe.empty()) {
      why = "cannot start worker '" + exe.string() + "': " + why;
      return nullptr;
    }
    limits = {};
  }
  boost::system::error_code ec;
  auto proc = spawn_worker(strand, command.exe, command.args, setup, fds, limits, ec);
  if (ec) {
    why = "cannot start worker '" + exe.string() + "'";
    if (sandboxed) why += " in the sandbox ('" + command.exe.string() + "')";
    const auto& dir = opts_.working_directory;
    if (!dir.empty()) {
      std::error_code dir_ec;
      why += " in working directory '" + dir.string() + "'";
      if (!std::filesystem::is_directory(dir, dir_ec)) why += ", which is not a directory";
    }
    why += ": " + ec.message();
    return nullptr;
  }
  registry_->add(proc.id());
  return std::make_shared<local_channel>(
      strand, std::move(proc),
      local_fds{std::move(to.write), std::move(from.read), std::move(out.read), std::move(err.read),
                std::move(room)},
      std::move(seg), registry_, process_role{sandboxed, {}, {}});
}

std::shared_ptr<local_channel> local_launcher::launch_remote(
    const boost::asio::any_io_executor& strand, const launcher& l, std::string& why) const {
  const std::string where = launcher_name(l);
  // The worker takes its coordinator for gone after heartbeat_timeout without a byte (the
  // pool pings at least every heartbeat_interval): what ends it when its launcher died and
  // left its input open (srun SIGKILLed inside an allocation).
  const bool heartbeats = opts_.heartbeat_interval.count() > 0;
  const auto words = remote_words(
      opts_.remote_executable, opts_.args, opts_.env, opts_.working_directory, opts_.max_payload,
      heartbeats ? opts_.heartbeat_timeout : std::chrono::milliseconds(0));
  const command_line command = launcher_command(l, words, why);
  if (command.exe.empty()) {
    why = "cannot start a worker on " + where + ": " + why;
    return nullptr;
  }
  pipe_pair to, from, err;
  for (auto* p : {&to, &from, &err})
    if (auto ec = make_pipe(*p)) {
      why = "cannot create pipes for a worker: " + ec.message();
      return nullptr;
    }
  child_fds fds;
  fds.on_stdio = true;
  fds.channel_in = to.read.get();
  fds.channel_out = from.write.get();
  fds.err = err.write.get();
  // The launcher is the user's own tool: it gets what env_allow lets through and what it
  // needs to reach the other side (its agent, its credentials, the Slurm job); the worker
  // gets `env` on its command line (remote_words). No CREW_COORDINATOR_PID: its parent is
  // elsewhere. (With inherit_env false, only what it needs.)
  std::vector<std::string> allow = opts_.inherit_env ? opts_.env_allow : std::vector<std::string>{};
  for (const auto& name : launcher_env_allow())
    allow.push_back(name);
  child_setup setup{{}, true, std::move(allow), {}, false};
  boost::system::error_code ec;
  auto proc = spawn_worker(strand, command.exe, command.args, setup, fds, {}, ec);
  if (ec) {
    why = "cannot start a worker on " + where + ": launcher '" + command.exe.string() +
          "': " + ec.message();
    return nullptr;
  }
  registry_->add(proc.id());
  return std::make_shared<local_channel>(
      strand, std::move(proc),
      local_fds{std::move(to.write), std::move(from.read), {}, std::move(err.read)}, shm_segment{},
      registry_, process_role{false, command_text(l), where});
}

}  // namespace detail
}  // namespace crew
