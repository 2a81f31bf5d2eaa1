// The bubblewrap command line of a sandboxed worker. Contract in sandbox.hpp; why bubblewrap
// and what each option closes off: docs/architecture.md, "The sandbox".
#include "sandbox.hpp"

#include "local_launcher.hpp"

#include <system_error>

#include <unistd.h>

namespace crew::detail {

std::filesystem::path sandbox_executable(const sandbox_options& options) {
  auto exe =
      resolve_executable(options.bwrap.empty() ? std::filesystem::path("bwrap") : options.bwrap);
  return ::access(exe.c_str(), X_OK) == 0 ? exe : std::filesystem::path();
}

std::vector<std::string> prlimit_prefix(std::size_t address_space, long cpu_seconds) {
  if (address_space == 0 && cpu_seconds <= 0) return {};
  auto prlimit = resolve_executable("prlimit");
  std::vector<std::string> out{prlimit.string()};
  if (address_space > 0) out.push_back("--as=" + std::to_string(address_space));
  if (cpu_seconds > 0)
    out.push_back("--cpu=" + std::to_string(cpu_seconds) + ":" + std::to_string(cpu_seconds + 1));
  out.push_back("--");
  return out;
}

command_line sandboxed_command(const sandbox_options& options, const std::filesystem::path& worker,
                               const std::vector<std::string>& args,
                               const std::filesystem::path& cwd,
                               const std::vector<std::string>& limits_prefix, std::string& why) {
  command_line c;
  const auto bwrap = sandbox_executable(options);
  if (bwrap.empty()) {
    why = "the sandbox needs bubblewrap ('" +
          (options.bwrap.empty() ? std::string("bwrap") : options.bwrap.string()) +
          "'), which was not found or is not executable (Debian: apt-get install bubblewrap)";
    return c;
  }
  auto& a = c.args;
  // Namespaces: user, pid, mount, IPC, UTS, cgroup, network (given back with --share-net).
  // The sandbox dies with bwrap, and bwrap with us (its parent-death signal, tied to crew's
  // spawner thread, which lives as long as the process). A new session: no controlling
  // terminal. No capabilities, even for root; bwrap always sets no_new_privs.
  a = {"--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL"};
  if (options.network) a.push_back("--share-net");
  // The file system: everything read-only, then private /dev, /proc (of the worker's own pid
  // namespace), /tmp and /dev/shm.
  for (const char* s : {"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs",
                        "/tmp", "--tmpfs", "/dev/shm"})
    a.emplace_back(s);
  std::error_code ec;
  // Hidden first, then writable: a writable path inside a hidden directory stays reachable.
  for (const auto& h : options.hidden) {
    const auto abs = std::filesystem::absolute(h, ec);
    const auto st = std::filesystem::status(abs, ec);
    if (ec || !std::filesystem::exists(st)) {
      why = "sandbox: the hidden path '" + h.string() + "' does not exist";
      return {};
    }
    if (std::filesystem::is_directory(st))
      a.insert(a.end(), {"--tmpfs", abs.string()});
    else
      a.insert(a.end(), {"--ro-bind", "/dev/null", abs.string()});
  }
  for (const auto& w : options.writable) {
    const auto abs = std::filesystem::absolute(w, ec);
    if (ec || !std::filesystem::exists(abs, ec)) {
      why = "sandbox: the writable path '" + w.string() + "' does not exist";
      return {};
    }
    a.insert(a.end(), {"--bind", abs.string(), abs.string()});
  }
  std::filesystem::path dir = cwd.empty() ? std::filesystem::current_path(ec) : cwd;
  if (!dir.empty()) a.insert(a.end(), {"--chdir", dir.string()});
  a.push_back("--");
  a.insert(a.end(), limits_prefix.begin(), limits_prefix.end());
  a.push_back(worker.string());
  a.insert(a.end(), args.begin(), args.end());
  c.exe = bwrap;
  return c;
}

}  // namespace crew::detail
