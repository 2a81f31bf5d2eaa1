// A worker on stdio (docs/protocol.md §10), spoken to by hand through three pipes, as a
// launcher (ssh -T, srun -u) would connect it: frames in on stdin, frames out on stdout, log
// lines on stderr. What a remote coordinator relies on: the hello says flag_heartbeat, a
// job's printing cannot corrupt the frames, pings are answered even while a job runs, the
// end of input ends the worker and its job's children even in the middle of a job, and big
// frames pass the relay both ways. crew-worker --stdio and a fault worker with CREW_STDIO=1
// (any serve-based worker takes the variable).
#include <crew/codec.hpp>
#include <crew/protocol.hpp>

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace proto = crew::protocol;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// Generous: "did not hang", not a timing claim (sanitizer builds are slow).
constexpr auto frame_wait = 30s;
constexpr auto exit_wait = 10s;

struct frame {
  proto::frame_header header;
  std::vector<std::byte> payload;
};

// Moves a descriptor out of the range 0-9, close-on-exec: the spawn's dup2s onto 0-4 then
// never overwrite one of the pipes they still have to copy.
int high(int fd) {
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 100);
  ::close(fd);
  return moved;
}

// A worker process and our ends of its pipes. `stdio_flag`: `--stdio` on its command line;
// `stdio_env`: CREW_STDIO=1 in its environment; `plain`: fd 3 and fd 4, as a pool starts it.
class worker_process {
 public:
  enum class mode { stdio_flag, stdio_env, plain };

  worker_process(const char* path, mode m) {
    int in[2], out[2], log[2];
    BOOST_REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    BOOST_REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    BOOST_REQUIRE(::pipe2(log, O_CLOEXEC) == 0);
    for (int* p : {in, out, log})
      p[0] = high(p[0]), p[1] = high(p[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (m == mode::plain) {
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_adddup2(&fa, log[1], 1);
      posix_spawn_file_actions_adddup2(&fa, log[1], 2);
      posix_spawn_file_actions_adddup2(&fa, in[0], 3);
      posix_spawn_file_actions_adddup2(&fa, out[1], 4);
    } else {
      posix_spawn_file_actions_adddup2(&fa, in[0], 0);
      posix_spawn_file_actions_adddup2(&fa, out[1], 1);
      posix_spawn_file_actions_adddup2(&fa, log[1], 2);
    }
    std::vector<std::string> args{path};
    if (m == mode::stdio_flag) args.emplace_back("--stdio");
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    // Our environment without any CREW_* variable, then the mode's.
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
      if (std::string_view(*e).substr(0, 5) != "CREW_") env.emplace_back(*e);
    if (m == mode::stdio_env) env.emplace_back("CREW_STDIO=1");
    std::vector<char*> envp;
    for (auto& e : env)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, path, &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    ::close(log[1]);
    in_ = in[1];
    out_ = out[0];
    log_ = log[0];
    BOOST_REQUIRE_MESSAGE(rc == 0, "cannot start " << path << ": " << std::strerror(rc));
    ::fcntl(in_, F_SETFL, ::fcntl(in_, F_GETFL) | O_NONBLOCK);
  }

  ~worker_process() {
    if (in_ >= 0) ::close(in_);
    if (!reaped_) {
      if (::getpgid(pid_) == pid_) ::kill(-pid_, SIGKILL);  // its group, not ours
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    ::close(out_);
    ::close(log_);
  }

  worker_process(const worker_process&) = delete;
  worker_process& operator=(const worker_process&) = delete;

  int pid() const { return pid_; }

  // Reads the hello and remembers the job list.
  frame hello() {
    frame f = next_frame();
    BOOST_REQUIRE(f.header.type == proto::frame_type::hello);
    jobs_ = proto::decode_hello(f.payload, f.header.flags & proto::flag_placement).jobs;
    return f;
  }

  // The index of the job named `name` in the hello.
  std::uint32_t job(std::string_view name) const {
    for (std::size_t k = 0; k < jobs_.size(); ++k)
      if (jobs_[k].name == name) return static_cast<std::uint32_t>(k);
    BOOST_FAIL("the hello lists no job " << name);
    return 0;
  }

  // Writes all of `bytes` to the worker's input, reading its output meanwhile (it may be
  // writing a large reply while we write a large task).
  void send(const std::vector<std::byte>& bytes) {
    std::size_t at = 0;
    const auto deadline = clock_type::now() + frame_wait;
    while (at < bytes.size()) {
      BOOST_REQUIRE_MESSAGE(clock_type::now() < deadline, "the worker stopped reading its input");
      const ssize_t w = ::write(in_, bytes.data() + at, bytes.size() - at);
      if (w > 0) {
        at += static_cast<std::size_t>(w);
        continue;
      }
      BOOST_REQUIRE_MESSAGE(w < 0 && (errno == EAGAIN || errno == EINTR),
                            "write to the worker: " << std::strerror(errno));
      pump(20, true);
    }
  }

  void send_frame(proto::frame_type type, std::uint64_t id, std::span<const std::byte> payload = {},
                  std::uint16_t flags = 0) {
    std::vector<std::byte> bytes;
    proto::append_frame(bytes, type, id, payload, flags);
    send(bytes);
  }

  template <class... Args>
  void send_task(std::uint64_t id, std::string_view job_name, const Args&... args) {
    send(task_frame(id, job_name, args...));
  }

  template <class... Args>
  std::vector<std::byte> task_frame(std::uint64_t id, std::string_view job_name,
                                    const Args&... args) {
    std::vector<std::byte> payload;
    crew::encoder e(payload);
    e.put(job(job_name));
    (e.put(args), ...);
    std::vector<std::byte> bytes;
    proto::append_frame(bytes, proto::frame_type::task, id, payload);
    return bytes;
  }

  // The next frame the worker writes; fails the test if none comes in time or the stream
  // does not parse.
  frame next_frame(std::chrono::steady_clock::duration wait = frame_wait) {
    const auto deadline = clock_type::now() + wait;
    while (frames_.empty()) {
      BOOST_REQUIRE_MESSAGE(!out_eof_, "the worker closed its frames; its log:\n" << log_text_);
      BOOST_REQUIRE_MESSAGE(clock_type::now() < deadline,
                            "no frame from the worker in time; its log:\n"
                                << log_text_);
      pump(50, false);
    }
    frame f = std::move(frames_.front());
    frames_.pop_front();
    return f;
  }

  // Waits until the log holds `text`; false if it does not in time.
  bool wait_log(std::string_view text, std::chrono::steady_clock::duration wait = frame_wait) {
    const auto deadline = clock_type::now() + wait;
    while (log_text_.find(text) == std::string::npos) {
      if (clock_type::now() >= deadline) return false;
      pump(50, false);
    }
    return true;
  }

  const std::string& log() const { return log_text_; }

  void close_input() {
    ::close(in_);
    in_ = -1;
  }

  // The worker's wait status once it has exited, or nothing if it has not within `wait`.
  std::optional<int> wait_exit(std::chrono::steady_clock::duration wait = exit_wait) {
    const auto deadline = clock_type::now() + wait;
    while (!reaped_) {
      const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        break;
      }
      if (clock_type::now() >= deadline) return std::nullopt;
      pump(20, false);
    }
    // The last log lines: until every writer is gone (its children too), briefly.
    const auto drained = clock_type::now() + 2s;
    while (!log_eof_ && clock_type::now() < drained)
      pump(20, false);
    return status_;
  }

 private:
  // Reads what the worker wrote on its frames and its log, waiting up to `ms` for some.
  void pump(int ms, bool want_write) {
    pollfd p[3] = {{out_, POLLIN, 0}, {log_, POLLIN, 0}, {in_, POLLOUT, 0}};
    const nfds_t n = want_write && in_ >= 0 ? 3 : 2;
    if (out_eof_) p[0].fd = -1;
    if (log_eof_) p[1].fd = -1;
    if (::poll(p, n, ms) <= 0) return;
    if (p[0].revents != 0) {
      auto space = reader_.prepare();
      const ssize_t r = ::read(out_, space.data(), space.size());
      if (r <= 0) {
        out_eof_ = true;
      } else {
        reader_.commit(static_cast<std::size_t>(r));
        proto::frame_view v;
        boost::system::error_code ec;
        while (reader_.next(v, ec))
          frames_.push_back({v.header, {v.payload.begin(), v.payload.end()}});
        BOOST_REQUIRE_MESSAGE(!ec, "the worker's frame stream is broken: " << ec.message()
                                                                           << "; its log:\n"
                                                                           << log_text_);
      }
    }
    if (p[1].revents != 0) {
      char buf[4096];
      const ssize_t r = ::read(log_, buf, sizeof buf);
      if (r <= 0)
        log_eof_ = true;
      else
        log_text_.append(buf, static_cast<std::size_t>(r));
    }
  }

  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, log_ = -1;
  bool out_eof_ = false, log_eof_ = false;
  bool reaped_ = false;
  int status_ = 0;
  proto::frame_reader reader_;
  std::deque<frame> frames_;
  std::string log_text_;
  std::vector<crew::job_info> jobs_;
};

template <class T>
T result_of(const frame& f, std::uint64_t id) {
  BOOST_REQUIRE_MESSAGE(f.header.type == proto::frame_type::result,
                        "frame type " << static_cast<int>(f.header.type) << " for task " << id);
  BOOST_REQUIRE_EQUAL(f.header.task_id, id);
  crew::decoder d(f.payload);
  return d.get<T>();
}

void expect_pong(const frame& f, std::uint64_t id) {
  BOOST_REQUIRE_MESSAGE(f.header.type == proto::frame_type::pong,
                        "expected a pong, got frame type " << static_cast<int>(f.header.type));
  BOOST_CHECK_EQUAL(f.header.task_id, id);
  BOOST_CHECK_EQUAL(f.header.length, 0u);
  BOOST_CHECK_EQUAL(f.header.flags, 0u);
}

void expect_exit(worker_process& w, int code) {
  const auto status = w.wait_exit();
  BOOST_REQUIRE_MESSAGE(status, "the worker did not exit; its log:\n" << w.log());
  BOOST_REQUIRE_MESSAGE(WIFEXITED(*status), "the worker ended by signal "
                                                << (WIFSIGNALED(*status) ? WTERMSIG(*status) : 0));
  // Its log says why (under the sanitizers, a report of theirs exits 1).
  BOOST_CHECK_MESSAGE(WEXITSTATUS(*status) == code, "exit code " << WEXITSTATUS(*status)
                                                                 << ", not " << code
                                                                 << "; its log:\n"
                                                                 << w.log());
}

// Waits for `pid` to be gone (a zombie counts as gone: it runs nothing).
bool gone_within(int pid, std::chrono::steady_clock::duration wait) {
  const auto deadline = clock_type::now() + wait;
  while (crew::test::process_alive(pid)) {
    if (clock_type::now() >= deadline) {
      ::kill(pid, SIGKILL);  // the test fails; the process does not outlive it
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(hello_results_and_a_job_printing_on_stdout) {
  worker_process w(CREW_WORKER_PATH, worker_process::mode::stdio_flag);
  const frame hello = w.hello();
  BOOST_CHECK(hello.header.flags & proto::flag_heartbeat);
  BOOST_CHECK(hello.header.flags & proto::flag_batch);
  // A worker elsewhere says where it runs: this host, no Slurm node, no pod.
  BOOST_REQUIRE(hello.header.flags & proto::flag_placement);
  const auto h = proto::decode_hello(hello.payload, true);
  BOOST_CHECK_EQUAL(h.pid, static_cast<std::uint32_t>(w.pid()));
  BOOST_REQUIRE(h.where);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  BOOST_CHECK_EQUAL(h.where->host, host);
  BOOST_CHECK_EQUAL(h.where->node, "");
  // It leads a process group of its own, where its jobs' children go.
  BOOST_CHECK_EQUAL(::getpgid(w.pid()), w.pid());

  w.send_task(1, "identity", 42);
  BOOST_CHECK_EQUAL(result_of<int>(w.next_frame(), 1), 42);
  // chatty prints to stdout lines that even hold "CREW": they go to the log, not the frames.
  w.send_task(2, "chatty", 5);
  BOOST_CHECK_EQUAL(result_of<int>(w.next_frame(), 2), 5);
  BOOST_CHECK(w.wait_log("chatty line 4: CREW"));
  BOOST_CHECK(w.wait_log("chatty wrote 5 lines"));
  w.send_task(3, "echo", std::string("still in step"));
  BOOST_CHECK_EQUAL(result_of<std::string>(w.next_frame(), 3), "still in step");
  w.close_input();
  expect_exit(w, 0);
}

BOOST_AUTO_TEST_CASE(pings_are_answered_while_idle_and_while_a_long_job_runs) {
  worker_process w(CREW_FAULT_WORKER_PATH, worker_process::mode::stdio_env);
  BOOST_CHECK(w.hello().header.flags & proto::flag_heartbeat);
  w.send_frame(proto::frame_type::ping, 100);
  expect_pong(w.next_frame(), 100);

  // A long job, then (pipelined behind it) more than the relay's pipe holds, then a ping:
  // the pong comes first, while the job still runs.
  w.send_task(1, "sleep_ms", 1500);
  const std::string mib(std::size_t{1} << 20, 'm');
  for (std::uint64_t id = 2; id < 10; ++id)
    w.send_task(id, "echo", mib);
  std::this_thread::sleep_for(100ms);
  w.send_frame(proto::frame_type::ping, 101);
  w.send_frame(proto::frame_type::ping, 102);
  expect_pong(w.next_frame(), 101);
  expect_pong(w.next_frame(), 102);
  BOOST_CHECK_EQUAL(result_of<int>(w.next_frame(), 1), 1500);
  for (std::uint64_t id = 2; id < 10; ++id)
    BOOST_CHECK(result_of<std::string>(w.next_frame(), id) == mib);

  w.send_frame(proto::frame_type::ping, 103);
  expect_pong(w.next_frame(), 103);
  w.close_input();
  expect_exit(w, 0);
}

BOOST_AUTO_TEST_CASE(end_of_input_while_idle_exits_0) {
  worker_process w(CREW_WORKER_PATH, worker_process::mode::stdio_flag);
  w.hello();
  w.close_input();
  expect_exit(w, 0);
}

BOOST_AUTO_TEST_CASE(end_of_input_mid_job_ends_the_worker_and_the_jobs_child) {
  worker_process w(CREW_FAULT_WORKER_PATH, worker_process::mode::stdio_env);
  w.hello();
  w.send_task(1, "grandchild_and_sleep", 0);  // forks a child, then sleeps forever
  BOOST_REQUIRE_MESSAGE(w.wait_log("grandchild "), "no grandchild; log:\n" << w.log());
  BOOST_REQUIRE(w.wait_log("\n", 5s));
  const auto at = w.log().find("grandchild ");
  const int grandchild = std::atoi(w.log().c_str() + at + std::strlen("grandchild "));
  BOOST_REQUIRE(grandchild > 0);
  BOOST_REQUIRE(crew::test::process_alive(grandchild));
  w.close_input();
  expect_exit(w, 0);
  BOOST_CHECK_MESSAGE(gone_within(grandchild, exit_wait), "the job's child outlived the worker");
}

BOOST_AUTO_TEST_CASE(end_of_input_while_idle_ends_a_child_an_earlier_job_left) {
  worker_process w(CREW_FAULT_WORKER_PATH, worker_process::mode::stdio_env);
  w.hello();
  w.send_task(1, "spawn_grandchild", 0);  // returns the pid of a child that sleeps forever
  const int child = result_of<int>(w.next_frame(), 1);
  BOOST_REQUIRE(child > 0);
  BOOST_REQUIRE(crew::test::process_alive(child));
  w.close_input();
  expect_exit(w, 0);
  BOOST_CHECK_MESSAGE(gone_within(child, exit_wait), "the job's child outlived the worker");
}

BOOST_AUTO_TEST_CASE(a_shutdown_frame_ends_the_worker_and_the_children_of_its_jobs) {
  worker_process w(CREW_FAULT_WORKER_PATH, worker_process::mode::stdio_env);
  w.hello();
  w.send_task(1, "spawn_grandchild", 0);
  const int child = result_of<int>(w.next_frame(), 1);
  BOOST_REQUIRE(child > 0);
  w.send_frame(proto::frame_type::shutdown, 0);
  expect_exit(w, 0);  // input still open: serve returned, the relay did not end it
  BOOST_CHECK_MESSAGE(gone_within(child, exit_wait), "the job's child outlived the worker");
}

BOOST_AUTO_TEST_CASE(a_16_mib_argument_comes_back_intact) {
  worker_process w(CREW_WORKER_PATH, worker_process::mode::stdio_flag);
  w.hello();
  std::string big(std::size_t{16} << 20, '\0');
  for (std::size_t k = 0; k < big.size(); ++k)
    big[k] = static_cast<char>((k * 2654435761u) >> 13);  // every byte value, no pattern
  w.send_task(7, "echo", big);
  const auto back = result_of<std::string>(w.next_frame(), 7);
  BOOST_CHECK_EQUAL(back.size(), big.size());
  BOOST_CHECK(back == big);
  w.send_frame(proto::frame_type::ping, 8);
  expect_pong(w.next_frame(), 8);
  w.close_input();
  expect_exit(w, 0);
}

BOOST_AUTO_TEST_CASE(a_ping_with_a_payload_is_a_protocol_error_on_stdio) {
  worker_process w(CREW_WORKER_PATH, worker_process::mode::stdio_flag);
  w.hello();
  const std::vector<std::byte> four(4);
  w.send_frame(proto::frame_type::ping, 5, four);
  expect_exit(w, 3);
  BOOST_CHECK(w.log().find("unexpected frame type 9") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_ping_to_a_worker_not_on_stdio_is_a_protocol_error) {
  worker_process w(CREW_WORKER_PATH, worker_process::mode::plain);
  const frame hello = w.hello();
  BOOST_CHECK(!(hello.header.flags & proto::flag_heartbeat));
  w.send_task(1, "identity", 9);
  BOOST_CHECK_EQUAL(result_of<int>(w.next_frame(), 1), 9);
  w.send_frame(proto::frame_type::ping, 2);
  expect_exit(w, 3);
  BOOST_CHECK(w.log().find("unexpected frame type 9") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(replies_of_quick_tasks_never_wait_behind_a_long_one) {
  // Three tasks in one write: two quick ones, then a 2 s one. On stdio the worker may hold
  // the quick replies back while more tasks wait in its buffer (one write for a run of
  // quick tasks), but never behind a long task: both arrive while it still runs.
  worker_process w(CREW_WORKER_PATH, worker_process::mode::stdio_flag);
  w.hello();
  std::vector<std::byte> three = w.task_frame(1, "identity", std::int32_t{1});
  for (auto&& f : {w.task_frame(2, "identity", std::int32_t{2}),
                   w.task_frame(3, "long_io", std::int32_t{0})})
    three.insert(three.end(), f.begin(), f.end());
  w.send(three);
  for (std::uint64_t id : {1u, 2u}) {
    const frame r = w.next_frame();
    BOOST_CHECK(r.header.type == proto::frame_type::result);
    BOOST_CHECK_EQUAL(r.header.task_id, id);
  }
  BOOST_CHECK(w.wait_log("function 0 started"));
  BOOST_CHECK(w.log().find("function 0 finished") == std::string::npos);
  const frame last = w.next_frame();
  BOOST_CHECK_EQUAL(last.header.task_id, 3u);
  w.close_input();
  expect_exit(w, 0);
}
