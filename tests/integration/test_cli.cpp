// The crew CLI as a user runs it: output, JSON, exit codes, error messages.
#include "cli_support.hpp"
#include "png_image.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace json = boost::json;
using namespace cli_test;

namespace {
// Starts `crew run ...` with stdout and stderr in files, sends it `sig` once both workers
// have started a task, and returns its result and the pids of its workers.
run_result interrupt_run(int sig, std::set<int>& worker_pids) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("crew-cli-signal-" + std::to_string(::getpid()) + "-" + std::to_string(sig));
  std::filesystem::create_directories(dir);
  const auto out = dir / "out", err = dir / "err";
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(o, 1);
    ::dup2(e, 2);
    // Tasks of 20 s each: only the drain can end this run in time.
    ::execl(CREW_CLI_PATH, CREW_CLI_PATH, "run", "--job", "long_io", "--range", "0:6", "--workers",
            "2", "--io-scale", "10", "--grace", "300", "--json", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::regex started(R"(\[worker \d pid (\d+)\] function \d started)");
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (worker_pids.size() < 2 && std::chrono::steady_clock::now() < give_up) {
    const std::string text = slurp(err);
    worker_pids.clear();
    for (std::sregex_iterator it(text.begin(), text.end(), started), end; it != end; ++it)
      worker_pids.insert(std::stoi((*it)[1]));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  BOOST_REQUIRE_EQUAL(worker_pids.size(), 2u);
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  run_result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli, *boost::unit_test::timeout(120))

BOOST_AUTO_TEST_CASE(run_long_comp_on_processes_as_json) {
  auto r = crew("run --job long_comp --range 0:4 --mode processes --workers 2 --json --keep-order");
  BOOST_TEST(r.exit_code == 0);
  auto doc = json::parse(r.out).as_object();  // stdout holds nothing but the document
  BOOST_TEST(doc.at("job").as_string() == "long_comp");
  BOOST_TEST(doc.at("failed").to_number<int>() == 0);
  const auto& results = doc.at("results").as_array();
  BOOST_TEST(results.size() == 4u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    BOOST_TEST(results[i].at("arg").to_number<int>() == static_cast<int>(i));
    BOOST_TEST(results[i].at("value").as_double() == 2236.5678097446853);
  }
  // What the jobs printed went to stderr, tagged with the worker.
  BOOST_TEST(contains(r.err, "] function 0 started at "));
}

BOOST_AUTO_TEST_CASE(run_with_a_timeout_reports_failures_by_cause) {
  // long_io sleeps 2 s x 0.5; a 200 ms deadline stops both tasks, exit code 1.
  auto r = crew("run --job long_io --range 0:2 --workers 2 --io-scale 0.5 --timeout 200 --json");
  BOOST_TEST(r.exit_code == 1);
  auto doc = json::parse(r.out).as_object();
  BOOST_TEST(doc.at("failed").to_number<int>() == 2);
  BOOST_TEST(doc.at("failures_by_cause").as_object().at("task_timeout").to_number<int>() == 2);
  for (const auto& t : doc.at("results").as_array())
    BOOST_TEST(t.at("error").as_string() == "task_timeout");
  r = crew("run --job identity --range 0:3 --timeout 5000");
  BOOST_TEST(r.exit_code == 0);  // well within it
  r = crew("run --job identity --range 0:3 --timeout -1");
  BOOST_TEST(r.exit_code == 2);
}

// RELIABILITY row 29: SIGINT / SIGTERM drain the run: queued tasks cancelled, running
// ones cancelled after --grace, results reported, workers gone, exit code 128 + signal.
BOOST_AUTO_TEST_CASE(sigint_and_sigterm_drain_the_run_and_exit_with_a_documented_code) {
  for (const auto& [sig, name, code] : {std::tuple{SIGINT, "INT", 130}, {SIGTERM, "TERM", 143}}) {
    std::set<int> workers;
    auto r = interrupt_run(sig, workers);
    BOOST_TEST(r.exit_code == code, name);
    auto doc = json::parse(r.out).as_object();
    BOOST_TEST(doc.at("interrupted_by").as_string() == name);
    // Only tasks taken in are reported: the 2 running and those waiting for a worker (the
    // run takes in 2 per worker); every one of them was cancelled.
    const int tasks = doc.at("tasks").to_number<int>();
    BOOST_TEST(tasks >= 2);
    BOOST_TEST(tasks <= 6);
    BOOST_TEST(doc.at("failed").to_number<int>() == tasks);
    BOOST_TEST(doc.at("failures_by_cause").as_object().at("cancelled").to_number<int>() == tasks);
    std::size_t after_grace = 0;
    for (const auto& t : doc.at("results").as_array())
      after_grace += contains(std::string(t.at("message").as_string()), "before the task finished");
    // The two running tasks, and those already sent ahead to their workers (a worker's next
    // chunk waits in its pipe), were cancelled after the grace; the others before.
    BOOST_TEST(after_grace >= 2u);
    BOOST_TEST(after_grace <= 4u);
    BOOST_TEST(contains(r.err, "stopping; no new task is started"));
    for (int pid : workers)
      BOOST_TEST(!alive(pid), "worker " << pid << " outlived crew run");
  }
}

// --- issue 7: job log, resume, retry-failed, advise, timeline ---------------------------

BOOST_AUTO_TEST_CASE(a_killed_run_resumed_runs_only_the_remaining_tasks) {
  const auto dir = scratch("resume");
  const auto log = dir / "jobs.jsonl";
  // 8 tasks of 0.5 s on 2 workers: killed (SIGKILL, no drain) once 2 are in the log.
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(CREW_CLI_PATH, CREW_CLI_PATH, "run", "--job", "long_io", "--range", "0:8", "--workers",
            "2", "--io-scale", "0.25", "--joblog", log.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (joblog_lines(log).size() < 2 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  const auto before = joblog_lines(log);
  BOOST_REQUIRE_GE(before.size(), 2u);
  BOOST_REQUIRE_LT(before.size(), 8u);
  std::set<int> done;
  for (const auto& l : before) {
    BOOST_TEST(l.at("outcome").as_string() == "ok");
    BOOST_TEST(l.at("job").as_string() == "long_io");
    BOOST_TEST(l.at("pid").to_number<int>() > 0);
    BOOST_TEST(l.at("duration").to_number<double>() > 0);
    done.insert(static_cast<int>(l.at("args").as_array()[0].to_number<int>()));
  }

  auto r = crew("run --job long_io --range 0:8 --workers 2 --io-scale 0.05 --resume " +
                log.string() + " --json");
  BOOST_TEST(r.exit_code == 0, r.err);
  const auto doc = json::parse(r.out).as_object();
  BOOST_TEST(doc.at("skipped").to_number<std::size_t>() == done.size());
  BOOST_TEST(doc.at("tasks").to_number<std::size_t>() == 8 - done.size());
  // The complete result set: the logged values and the new ones, each task once.
  std::multiset<int> reported;
  for (const auto& t : doc.at("results").as_array()) {
    reported.insert(static_cast<int>(t.at("arg").to_number<int>()));
    BOOST_TEST(t.at("value").to_number<int>() == 2 * t.at("arg").to_number<int>());  // 2i
  }
  for (int i = 0; i < 8; ++i)
    BOOST_TEST(reported.count(i) == 1u, "task " << i);
  // The log now holds all 8 tasks, once each.
  std::set<int> logged;
  for (const auto& l : joblog_lines(log))
    logged.insert(static_cast<int>(l.at("args").as_array()[0].to_number<int>()));
  BOOST_TEST(logged.size() == 8u);
  BOOST_TEST(joblog_lines(log).size() == 8u);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(retry_failed_runs_only_the_failed_tasks_and_the_log_says_why) {
  const auto dir = scratch("retry");
  const auto log = dir / "jobs.jsonl";
  // long_io(i) sleeps 0.2 s; a 100 ms deadline fails all but... every one of them.
  auto r = crew("run --job long_io --range 0:3 --workers 1 --io-scale 0.1 --timeout 100 --joblog " +
                log.string() + " --quiet");
  BOOST_TEST(r.exit_code == 1);
  auto lines = joblog_lines(log);
  BOOST_REQUIRE_EQUAL(lines.size(), 3u);
  for (const auto& l : lines) {
    BOOST_TEST(l.at("outcome").as_string() == "failed");
    BOOST_TEST(l.at("error").as_string() == "task_timeout");
    BOOST_TEST(l.at("signal").to_number<int>() == SIGTERM);  // how its worker was stopped
  }
  // identity never fails: add one ok record of another run to the same log.
  r = crew("run --job long_io --range 5:6 --io-scale 0.01 --joblog " + log.string());
  BOOST_TEST(r.exit_code == 0);
  r = crew("run --job long_io --io-scale 0.01 --workers 2 --retry-failed " + log.string() +
           " --json");
  BOOST_TEST(r.exit_code == 0, r.err);
  const auto doc = json::parse(r.out).as_object();
  std::set<int> ran;
  for (const auto& t : doc.at("results").as_array()) {
    ran.insert(static_cast<int>(t.at("arg").to_number<int>()));
    BOOST_TEST(t.at("outcome").as_string() == "ok");
  }
  BOOST_TEST((ran == std::set<int>{0, 1, 2}));
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(advise_calls_long_io_io_bound_and_long_comp_cpu_bound) {
  auto io = crew("advise --job long_io --args 1 --io-scale 0.05 --json");
  BOOST_TEST(io.exit_code == 0, io.err);
  const auto a = json::parse(io.out).as_object();
  BOOST_TEST(a.at("verdict").as_string() == "IO-bound");
  BOOST_TEST(contains(std::string(a.at("pool").as_string()), "thread"));
  auto cpu = crew("advise --job long_comp --args 0 --runs 1 --json");
  BOOST_TEST(cpu.exit_code == 0, cpu.err);
  const auto b = json::parse(cpu.out).as_object();
  BOOST_TEST(b.at("verdict").as_string() == "CPU-bound", b.at("cpu_share"));
  BOOST_TEST(contains(std::string(b.at("pool").as_string()), "processes"));
  BOOST_TEST(crew("advise --job nope").exit_code == 2);
}

// The notebook's timeline, rendered: the sequential IO bars end to end on one lane, the
// threads' and the processes' IO bars side by side (one per lane, overlapping in time).
BOOST_AUTO_TEST_CASE(notebook_timeline_shows_sequential_bars_end_to_end_and_parallel_side_by_side) {
  using namespace png_test;
  const auto dir = scratch("timeline");
  const auto svg = dir / "t.svg", png_file = dir / "t.png";
  auto r = crew("notebook --scale 0.1 --transport pipe --timeline " + svg.string());
  BOOST_TEST(r.exit_code == 0, r.err);
  const std::string convert =
      std::string(CREW_RSVG_CONVERT) + " " + svg.string() + " -o " + png_file.string();
  BOOST_REQUIRE_MESSAGE(std::string(CREW_RSVG_CONVERT) != "" && std::system(convert.c_str()) == 0,
                        "rendering with rsvg-convert (Debian: librsvg2-bin) failed");
  const image img = decode_png(slurp_binary(png_file));
  const rgb bar = parse_colour("#4c78a8");
  // Rows that cross bars: for each row, the runs of bar colour.
  struct row_runs_t {
    int y;
    std::vector<std::pair<int, int>> runs;
  };
  std::vector<row_runs_t> rows;
  for (int y = 0; y < img.height; ++y) {
    row_runs_t rr{y, {}};
    for (int x = 0; x < img.width; ++x) {
      if (!near(img.at(x, y), bar, 12)) continue;
      if (!rr.runs.empty() && rr.runs.back().second == x - 1)
        rr.runs.back().second = x;
      else
        rr.runs.push_back({x, x});
    }
    // Bars only: runs at least 20 px wide (text and legend swatches excluded by width/count).
    std::erase_if(rr.runs, [](auto& p) { return p.second - p.first < 20; });
    if (!rr.runs.empty()) rows.push_back(std::move(rr));
  }
  BOOST_REQUIRE(!rows.empty());
  // The first bar row is In [3], long_io sequential: 4 bars on one row, one after another:
  // none overlaps the one before, and the hand-over between two calls (a few ms; more under
  // a sanitizer) is shorter than a call.
  const auto& seq = rows.front();
  BOOST_TEST_REQUIRE(seq.runs.size() == 4u);
  const int seq_start = seq.runs.front().first, seq_end = seq.runs.back().second;
  for (std::size_t k = 1; k < seq.runs.size(); ++k) {
    const int gap = seq.runs[k].first - seq.runs[k - 1].second;
    const int previous = seq.runs[k - 1].second - seq.runs[k - 1].first;
    BOOST_TEST(gap >= 1, "bar " << k << " overlaps the one before");
    BOOST_TEST(gap < previous,
               "a gap of " << gap << " px before bar " << k << ", longer than a call");
  }
  // Somewhere below: 4 rows of one bar each, stacked lanes, whose bars overlap in time
  // (In [7], threads) and are each about a quarter of the sequential span.
  std::size_t stacked_groups = 0;
  for (std::size_t k = 0; k + 3 < rows.size(); ++k) {
    // One sample row per lane: rows k, k+?.. are consecutive pixel rows of the same lane, so
    // look for 4 single-bar rows at distinct lanes (24 px apart) instead.
    std::vector<std::pair<int, int>> lanes;
    for (std::size_t m = k; m < rows.size() && lanes.size() < 4; ++m) {
      if (rows[m].runs.size() != 1) break;
      if (lanes.empty() || rows[m].y - rows[k].y >= 24 * static_cast<int>(lanes.size()))
        lanes.push_back(rows[m].runs.front());
    }
    if (lanes.size() < 4) continue;
    int latest_start = 0, earliest_end = img.width;
    for (const auto& l : lanes) {
      latest_start = std::max(latest_start, l.first);
      earliest_end = std::min(earliest_end, l.second);
    }
    const int width = lanes.front().second - lanes.front().first;
    if (earliest_end > latest_start && width < (seq_end - seq_start) / 2) ++stacked_groups;
  }
  BOOST_TEST(stacked_groups >= 1u, "no section with 4 IO bars side by side in time");
  std::filesystem::remove_all(dir);
}

// The progress line: on a terminal (script(1) gives the run one), not in a pipe, not with
// --quiet.
BOOST_AUTO_TEST_CASE(the_progress_line_shows_on_a_terminal_only) {
  const std::string run =
      std::string(CREW_CLI_PATH) + " run --job long_io --range 0:6 --workers 2 --io-scale 0.05";
  auto on_tty = crew_shell("script -qec '" + run + "' /dev/null");
  BOOST_TEST(contains(on_tty, "[6/6]"), on_tty);
  BOOST_TEST(contains(on_tty, "ETA"));
  BOOST_TEST(contains(on_tty, "0 failed"));
  auto quiet = crew_shell("script -qec '" + run + " --quiet' /dev/null");
  BOOST_TEST(!contains(quiet, "ETA"), quiet);
  BOOST_TEST(!contains(quiet, "6 tasks, 0 failed"));  // no summary either
  auto no_progress = crew_shell("script -qec '" + run + " --no-progress' /dev/null");
  BOOST_TEST(!contains(no_progress, "ETA"), no_progress);
  BOOST_TEST(contains(no_progress, "6 tasks, 0 failed"));
  // Forced off a terminal: on stderr, never on stdout.
  auto forced = crew("run --job long_io --range 0:6 --workers 2 --io-scale 0.05 --progress");
  BOOST_TEST(contains(forced.err, "[6/6]"));
  BOOST_TEST(!contains(forced.out, "\r"));
  auto piped = crew("run --job long_io --range 0:6 --workers 2 --io-scale 0.05");
  BOOST_TEST(!contains(piped.out, "ETA"));
  BOOST_TEST(!contains(piped.out, "\r"));
}

BOOST_AUTO_TEST_CASE(run_accepts_retries) {
  auto r = crew("run --job identity --range 0:3 --workers 2 --retries 2 --json");
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(json::parse(r.out).as_object().at("failed").to_number<int>() == 0);
  r = crew("run --job identity --range 0:3 --retries -1");
  BOOST_TEST(r.exit_code == 2);
}

BOOST_AUTO_TEST_CASE(run_prints_text_in_every_mode) {
  for (const char* mode : {"inline", "threads", "processes"}) {
    auto r =
        crew(std::string("run --job identity --range 3:6 --workers 2 --keep-order --mode ") + mode);
    BOOST_TEST(r.exit_code == 0, mode);
    BOOST_TEST(contains(r.out, "identity(3) = 3\nidentity(4) = 4\nidentity(5) = 5\n"), mode);
  }
}

BOOST_AUTO_TEST_CASE(bad_command_lines_get_a_clear_message_and_exit_code_2) {
  auto r = crew("run --job no_such_job --range 0:1");
  BOOST_TEST(r.exit_code == 4);  // the worker's hello says so: could not run at all
  BOOST_TEST(contains(r.err, "unknown job 'no_such_job'"));
  BOOST_TEST(contains(r.err, "long_comp"));
  r = crew("run --job long_comp --range 4:1");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "--range"));
  r = crew("run --job long_comp --range 0:1 --mode gpu");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "--mode"));
  r = crew("run --job long_comp --range 0:1 --frobnicate");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "frobnicate"));
  r = crew("launch");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "unknown command 'launch'"));
  r = crew("");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "usage"));
}

BOOST_AUTO_TEST_CASE(help_is_available_for_every_command) {
  auto r = crew("--help");
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(contains(r.out, "notebook"));
  BOOST_TEST(contains(r.out, "exit codes"));
  for (const char* c : {"notebook", "run"}) {
    r = crew(std::string(c) + " --help");
    BOOST_TEST(r.exit_code == 0, c);
    BOOST_TEST(contains(r.out, "--workers"), c);
  }
}

BOOST_AUTO_TEST_CASE(notebook_shows_every_cell_with_the_notebooks_results) {
  auto r = crew("notebook --scale 0.05 --workers 4");
  BOOST_TEST(r.exit_code == 0);
  for (const char* cell : {"In [3]", "In [5]", "In [7]", "In [8]", "In [10]", "In [12]", "In [+]"})
    BOOST_TEST(contains(r.out, cell), cell);
  // The result dict in the sequential, threads and processes sections of each function.
  // (processes twice: pipe and shm transports)
  BOOST_TEST(count(r.out, "{0: 0, 1: 2, 2: 4, 3: 6}") == 4u);
  BOOST_TEST(count(r.out,
                   "{0: 2236.5678097446853,\n 1: 2236.5678097446853,\n"
                   " 2: 2236.5678097446853,\n 3: 2236.5678097446853}") == 4u);
  BOOST_TEST(count(r.out, "shm transport") == 2u);
  BOOST_TEST(contains(r.out, "res = {}"));
  BOOST_TEST(contains(r.out, "= [0, 2, 4, 6]"));
  BOOST_TEST(contains(
      r.out, "[2236.5678097446853, 2236.5678097446853, 2236.5678097446853, 2236.5678097446853]"));
  BOOST_TEST(contains(r.out, "all threads started at"));
  BOOST_TEST(contains(r.out, "all processes finished at"));
  BOOST_TEST(contains(r.out, "[worker 3 pid "));  // lines from the workers, tagged
  BOOST_TEST(contains(r.out, "Conclusion"));
  BOOST_TEST((contains(r.out, "no GIL") || contains(r.out, "below what the cores allow") ||
              contains(r.out, "With one core")));
}

BOOST_AUTO_TEST_CASE(notebook_json_holds_every_cell) {
  auto r = crew("notebook --scale 0.02 --workers 2 --json");
  BOOST_TEST(r.exit_code == 0);
  auto doc = json::parse(r.out).as_object();
  const auto& cells = doc.at("cells").as_array();
  BOOST_TEST(cells.size() == 9u);  // 2 sequential, 2 threads, 4 processes, 1 timers
  for (std::size_t k = 0; k + 1 < cells.size(); ++k) {
    const auto& c = cells[k].as_object();
    const auto& res = c.at("results").as_object();
    BOOST_TEST(res.size() == 4u);
    for (int i = 0; i < 4; ++i) {
      const auto& v = res.at(std::to_string(i));
      if (c.at("function").as_string() == "long_comp")
        BOOST_TEST(v.as_double() == 2236.5678097446853);
      else
        BOOST_TEST(v.to_number<int>() == 2 * i);
    }
  }
  BOOST_TEST(doc.at("conclusion").as_array().size() >= 3u);
}

BOOST_AUTO_TEST_SUITE_END()
