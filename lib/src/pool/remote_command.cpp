#include "remote_command.hpp"

#include "local_launcher.hpp"

#include <algorithm>
#include <string>

#include <unistd.h>

namespace crew::detail {

namespace {

std::string base_name(const std::string& word) {
  return std::filesystem::path(word).filename().string();
}

// ssh's destination: its first word that is not an option or an option's value.
std::string ssh_destination(const std::vector<std::string>& command) {
  constexpr std::string_view with_value = "BbcDEeFIiJLlmOoPpQRSWw";
  for (std::size_t i = 1; i < command.size(); ++i) {
    const std::string& w = command[i];
    if (w == "--") return i + 1 < command.size() ? command[i + 1] : std::string();
    if (w.size() < 2 || w[0] != '-') return w;
    for (std::size_t k = 1; k < w.size(); ++k) {
      if (with_value.find(w[k]) == std::string_view::npos) continue;
      if (k + 1 == w.size()) ++i;  // the value is the next word
      break;
    }
  }
  return {};
}

// srun's node list (`-w X`, `-wX`, `--nodelist=X`, `--nodelist X`), or empty.
std::string srun_nodes(const std::vector<std::string>& command) {
  for (std::size_t i = 1; i < command.size(); ++i) {
    const std::string& w = command[i];
    const bool next = i + 1 < command.size();
    if ((w == "-w" || w == "--nodelist") && next) return command[i + 1];
    if (w.rfind("--nodelist=", 0) == 0) return w.substr(11);
    if (w.size() > 2 && w.rfind("-w", 0) == 0) return w.substr(2);
  }
  return {};
}

}  // namespace

std::string command_text(const launcher& l) {
  std::string s;
  for (const auto& w : l.command)
    s += (s.empty() ? "" : " ") + w;
  return s;
}

std::string shell_quote(std::string_view word) {
  constexpr std::string_view plain =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%";
  if (!word.empty() && word.find_first_not_of(plain) == std::string_view::npos)
    return std::string(word);
  std::string q = "'";
  for (char c : word) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

std::string launcher_name(const launcher& l) {
  if (!l.name.empty()) return l.name;
  if (l.command.empty()) return "(empty launcher)";
  const std::string tool = base_name(l.command[0]);
  std::string found;
  if (tool == "ssh") found = ssh_destination(l.command);
  if (tool == "srun") found = srun_nodes(l.command);
  return found.empty() ? command_text(l) : found;
}

bool passes_through_shell(const launcher& l) {
  if (l.pass != launcher::passing::automatic) return l.pass == launcher::passing::shell;
  // ssh anywhere in the command: `ssh`, `timeout 1h ssh`, `sshpass -e ssh`, `gcloud compute
  // ssh`, `autossh` all end in a remote shell that re-parses the words.
  return std::any_of(l.command.begin(), l.command.end(), [](const std::string& w) {
    const auto name = base_name(w);
    return name == "ssh" || name == "autossh";
  });
}

std::vector<std::string> remote_words(const std::filesystem::path& worker,
                                      const std::vector<std::string>& args,
                                      const std::vector<std::string>& env_entries,
                                      const std::filesystem::path& cwd, std::size_t max_payload,
                                      std::chrono::milliseconds heartbeat_timeout) {
  std::vector<std::string> w{"env"};
  if (!cwd.empty()) {
    w.push_back("-C");
    w.push_back(cwd.string());
  }
  w.push_back("CREW_STDIO=1");
  w.push_back("CREW_MAX_PAYLOAD=" + std::to_string(max_payload));
  if (heartbeat_timeout.count() > 0)
    w.push_back("CREW_HEARTBEAT_TIMEOUT_MS=" + std::to_string(heartbeat_timeout.count()));
  for (const auto& e : env_entries)
    w.push_back(e);
  w.push_back(worker.string());
  for (const auto& a : args)
    w.push_back(a);
  return w;
}

command_line launcher_command(const launcher& l, const std::vector<std::string>& words,
                              std::string& why) {
  command_line c;
  if (l.command.empty() || l.command[0].empty()) {
    why = "a launcher with an empty command";
    return c;
  }
  c.exe = resolve_executable(l.command[0]);
  if (::access(c.exe.c_str(), X_OK) != 0) {
    why = "cannot start launcher '" + l.command[0] + "': not found or not executable";
    c.exe.clear();
    return c;
  }
  c.args.assign(l.command.begin() + 1, l.command.end());
  if (passes_through_shell(l)) {
    std::string line;
    for (const auto& w : words)
      line += (line.empty() ? "" : " ") + shell_quote(w);
    c.args.push_back(std::move(line));
  } else {
    c.args.insert(c.args.end(), words.begin(), words.end());
  }
  return c;
}

const std::vector<std::string>& launcher_env_allow() {
  static const std::vector<std::string> names{"SSH_AUTH_SOCK", "SSH_AGENT_PID", "KRB5CCNAME",
                                              "SLURM_*"};
  return names;
}

}  // namespace crew::detail
