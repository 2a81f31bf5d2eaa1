// The bubblewrap command line of a sandboxed worker. Contract in sandbox.hpp; why bubblewrap
// and what each option closes off: docs/architecture.md, "The sandbox".
#include "sandbox.hpp"

#include "local_launcher.hpp"

#include "../spawn.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace crew {

std::string sandbox_unavailable(const sandbox_options& options) {
  using namespace detail;
  std::string why;
  auto c = sandboxed_command(options, resolve_executable("true"), {}, {}, {}, why);
  if (c.exe.empty()) return why;
  pipe_pair err;
  if (auto ec = make_pipe(err)) return "cannot create a pipe: " + ec.message();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, err.write.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // none of the host's descriptors
  std::vector<std::string> argv_s{c.exe.string()};
  argv_s.insert(argv_s.end(), c.args.begin(), c.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  char* no_env[] = {nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), no_env);
  posix_spawn_file_actions_destroy(&fa);
  err.write = unique_fd();
  if (rc != 0) return "cannot start " + c.exe.string() + ": " + std::strerror(rc);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = ::read(err.read.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (message.size() < 4096) message.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.pop_back();
  return "bubblewrap (" + c.exe.string() + ") cannot set up the sandbox here" +
         (message.empty() ? std::string() : ": " + message);
}

}  // namespace crew

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
  // Namespaces: user (required: no nested ones), pid, mount, IPC, UTS, cgroup, network
  // (given back with --share-net). The sandbox dies with bwrap, and bwrap with us (its
  // parent-death signal, tied to crew's spawner thread, which lives as long as the process).
  // A new session: no controlling terminal. No capabilities, even for root; bwrap always
  // sets no_new_privs.
  a = {"--die-with-parent",
       "--new-session",
       "--unshare-all",
       "--unshare-user",
       "--disable-userns",
       "--cap-drop",
       "ALL"};
  if (options.network) a.push_back("--share-net");
  // The file system: everything read-only, then private /dev, /proc (of the worker's own pid
  // namespace), /tmp, /dev/shm and /run (the user's D-Bus and systemd sockets, docker.sock:
  // a read-only mount does not stop a connect(), and through them a worker could have
  // something run outside; with the network on, the resolver's directory comes back).
  for (const char* m : {"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs",
                        "/tmp", "--tmpfs", "/dev/shm", "--tmpfs", "/run"})
    a.emplace_back(m);
  if (options.network)
    a.insert(a.end(), {"--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve"});

  // The options' paths, each mounted after every path that contains it (shallowest first),
  // so that a hidden path inside a writable one stays hidden and a writable one inside a
  // hidden one stays writable.
  struct mount {
    std::filesystem::path at;
    std::vector<std::string> args;
  };
  std::vector<mount> mounts;
  std::error_code ec;
  auto absolute = [&](const std::filesystem::path& p) {
    return std::filesystem::absolute(p, ec).lexically_normal();
  };
  for (const auto& h : options.hidden) {
    const auto abs = absolute(h);
    const auto st = std::filesystem::status(abs, ec);
    if (ec || !std::filesystem::exists(st)) {
      why = "sandbox: the hidden path '" + h.string() + "' does not exist";
      return {};
    }
    if (std::filesystem::is_directory(st))
      mounts.push_back({abs, {"--tmpfs", abs.string()}});
    else
      mounts.push_back({abs, {"--ro-bind", "/dev/null", abs.string()}});
  }
  for (const auto& w : options.writable) {
    const auto abs = absolute(w);
    if (ec || !std::filesystem::exists(abs, ec)) {
      why = "sandbox: the writable path '" + w.string() + "' does not exist";
      return {};
    }
    for (const auto& m : mounts)
      if (m.at == abs) {
        why = "sandbox: '" + w.string() + "' is both hidden and writable";
        return {};
      }
    mounts.push_back({abs, {"--bind", abs.string(), abs.string()}});
  }
  // The worker and its working directory must be there: under a private or hidden
  // directory (/tmp, /run, `hidden`) they are bound back read-only, unless a writable path
  // holds them already.
  auto under = [](const std::filesystem::path& p, const std::filesystem::path& dir) {
    auto [d, q] = std::mismatch(dir.begin(), dir.end(), p.begin(), p.end());
    return d == dir.end();
  };
  std::filesystem::path dir = absolute(cwd.empty() ? std::filesystem::current_path(ec) : cwd);
  for (const auto& needed : {absolute(worker), dir}) {
    if (needed.empty() || !needed.is_absolute()) continue;
    bool covered = false, concealed = under(needed, "/tmp") || under(needed, "/run");
    for (const auto& w : options.writable)
      covered = covered || under(needed, absolute(w));
    for (const auto& h : options.hidden)
      concealed = concealed || under(needed, absolute(h));
    if (concealed && !covered)
      mounts.push_back({needed, {"--ro-bind-try", needed.string(), needed.string()}});
  }
  std::stable_sort(mounts.begin(), mounts.end(), [](const mount& x, const mount& y) {
    return std::distance(x.at.begin(), x.at.end()) < std::distance(y.at.begin(), y.at.end());
  });
  for (const auto& m : mounts)
    a.insert(a.end(), m.args.begin(), m.args.end());
  if (!dir.empty()) a.insert(a.end(), {"--chdir", dir.string()});
  a.push_back("--");
  a.insert(a.end(), limits_prefix.begin(), limits_prefix.end());
  a.push_back(worker.string());
  a.insert(a.end(), args.begin(), args.end());
  c.exe = bwrap;
  return c;
}

}  // namespace crew::detail
