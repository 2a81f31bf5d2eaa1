// The serve loop: crew::serve, the main loop of a worker process. It checks that the
// channel is there, sets the process up (environment.hpp), says hello, then reads frames
// and dispatches each: a task or a batch to the task runner (task_runner.hpp), watched for
// a cancel while it runs (cancel_watch.hpp); a cancel of a task not running is ignored; a
// shutdown frame or the end of input ends it. Each reply is written before the next task
// starts. On stdio (docs/protocol.md §10) it reads the frames the relay thread
// (stdio_relay.hpp) forwards, and writes its own under the lock it shares with the relay's
// pongs. It returns the process's exit code (worker_exit); its public contract is in
// crew/worker_runtime.hpp.
#include <crew/worker_runtime.hpp>

#include "cancel_watch.hpp"
#include "environment.hpp"
#include "stdio_relay.hpp"
#include "task_runner.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace crew {
namespace {

constexpr int exit_code(worker_exit e) noexcept {
  return static_cast<int>(e);
}

// The hello a worker serving `jobs` sends; the task frames then name a job by its index in
// its job list. A worker elsewhere (`remote`: on stdio, connected) says where it runs.
protocol::hello make_hello(const registry& jobs, bool remote) {
  protocol::hello h;
  h.pid = static_cast<std::uint32_t>(::getpid());
  h.jobs = jobs.jobs();
  if (remote) h.where = detail::local_placement();
  return h;
}

std::vector<const registry::entry*> job_index(const registry& jobs, const protocol::hello& h) {
  std::vector<const registry::entry*> index;
  for (const auto& j : h.jobs)
    index.push_back(jobs.find(j.name));
  return index;
}

// Where the frames go: fd 3 and fd 4, or on stdio the relay's pipe and the real stdout,
// written under the lock shared with the relay's pongs.
struct channel {
  int in_fd = -1;
  int out_fd = -1;
  std::mutex* out_mutex = nullptr;  // held for each write to out_fd; none off stdio
  bool heartbeat = false;           // pings are answered (by the relay): say so in the hello
  detail::stdio_relay* relay = nullptr;  // on stdio or a connection: it can hold replies
};

// Whether a whole frame waits in `bytes` (the reader's buffer after the frame in hand).
bool frame_waiting(std::span<const std::byte> bytes) {
  if (bytes.size() < protocol::header_size) return false;
  std::uint32_t length = 0;
  for (int i = 3; i >= 0; --i)
    length = (length << 8) | std::to_integer<std::uint32_t>(bytes[16 + static_cast<std::size_t>(i)]);
  return bytes.size() - protocol::header_size >= length;
}

// Replies held back together at most this large (a batch's results go out at once).
constexpr std::size_t gather_max = std::size_t{64} << 10;

// One conversation with the coordinator, from hello to the end of the channel. The optional
// results below hold an exit code when serving is over, and are empty to go on.
class session {
 public:
  session(const registry& jobs, const worker_options& options, const channel& ch,
          const detail::worker_settings& settings)
      : options_(options),
        channel_(ch),
        hello_(make_hello(jobs, ch.heartbeat)),
        index_(job_index(jobs, hello_)),
        segment_(static_cast<bool>(settings.segment)),
        max_payload_(settings.max_payload),
        reader_(settings.max_payload),
        runner_(index_, settings.segment, settings.inline_max, settings.max_payload),
        watch_(ch.in_fd, settings.max_payload, reader_) {}

  // Says hello, then serves frames until the coordinator is done.
  int run() {
    if (!send_hello()) return exit_code(worker_exit::io_error);
    for (;;) {
      protocol::frame_view f;
      boost::system::error_code ec;
      while (reader_.next(f, ec))
        if (auto end = handle(f)) return *end;
      // Every complete frame is handled: the gathered replies go out before we wait for more.
      if (!flush()) return exit_code(worker_exit::io_error);
      if (ec) {
        std::fprintf(stderr, "crew worker: bad frame from coordinator: %s\n", ec.message().c_str());
        return exit_code(worker_exit::protocol_error);
      }
      if (auto end = read_more()) return *end;
    }
  }

 private:
  bool send_hello() {
    // flag_shm on the hello: this worker takes and gives shared-memory descriptors.
    // flag_batch: it takes batch frames (options.batch). flag_heartbeat: on stdio, the relay
    // answers pings.
    std::uint16_t hello_flags = segment_ ? protocol::flag_shm : std::uint16_t{0};
    if (options_.batch) hello_flags |= protocol::flag_batch;
    if (channel_.heartbeat) hello_flags |= protocol::flag_heartbeat;
    if (hello_.where) hello_flags |= protocol::flag_placement;
    protocol::append_frame(out_, protocol::frame_type::hello, 0, protocol::encode_hello(hello_),
                           hello_flags);
    return flush();
  }

  std::optional<int> handle(const protocol::frame_view& f) {
    const auto type = f.header.type;
    if (type == protocol::frame_type::shutdown)
      return flush() ? 0 : exit_code(worker_exit::io_error);
    if (type == protocol::frame_type::cancel) return std::nullopt;  // nothing runs now
    const bool is_batch = type == protocol::frame_type::batch && options_.batch;
    if (type != protocol::frame_type::task && !is_batch) {
      std::fprintf(stderr, "crew worker: unexpected frame type %d from coordinator\n",
                   static_cast<int>(type));
      return exit_code(worker_exit::protocol_error);
    }
    // A coordinator that sends tasks ahead may already have cancelled this one.
    if (detail::cancel_buffered(reader_.buffered(), f.header.task_id, max_payload_))
      runner_.refuse(f.header.task_id, out_);
    else
      run_task(f, is_batch);
    // Each reply goes out before the next task starts: that task may be slow, and the
    // coordinator's deadlines and pipelining wait on this reply. With a relay, while more
    // tasks wait in the buffer, the reply is held and goes out with the next write (or,
    // after stdio_relay::gather_limit, from the relay): a run of quick tasks over TCP then
    // costs one write, not one per task (docs/protocol.md §10).
    if (channel_.relay && out_.size() < gather_max && frame_waiting(reader_.buffered())) {
      std::lock_guard lock(*channel_.out_mutex);
      channel_.relay->hold(out_.data(), out_.size());
      out_.clear();
      return std::nullopt;
    }
    if (!flush()) return exit_code(worker_exit::io_error);
    return std::nullopt;
  }

  // `f` points into the reader's buffer, which return_read_ahead may move: it is not used
  // after that.
  void run_task(const protocol::frame_view& f, bool is_batch) {
    watch_.start(f.header.task_id);
    if (is_batch)
      runner_.run_batch(f, out_);
    else
      runner_.run(f, out_);
    watch_.stop();
    detail::flush_stdio();
    watch_.return_read_ahead();  // what cancel_requested() read goes back in stream order
  }

  std::optional<int> read_more() {
    auto space = reader_.prepare();
    const ssize_t n = ::read(channel_.in_fd, space.data(), space.size());
    if (n < 0) {
      if (errno == EINTR) return std::nullopt;
      return exit_code(worker_exit::io_error);
    }
    if (n == 0) return 0;  // the coordinator closed the channel: it is done with us
    reader_.commit(static_cast<std::size_t>(n));
    return std::nullopt;
  }

  // Writes the replies gathered in out_, in one write unless the channel takes less; false
  // if the channel is broken.
  bool flush() {
    bool ok = true;
    if (channel_.relay) {  // what it holds goes first, in the same write
      std::lock_guard lock(*channel_.out_mutex);
      ok = channel_.relay->write_held(out_.data(), out_.size());
    } else if (!out_.empty()) {
      std::unique_lock<std::mutex> lock;
      if (channel_.out_mutex) lock = std::unique_lock(*channel_.out_mutex);
      ok = detail::write_all(channel_.out_fd, out_.data(), out_.size());
    }
    out_.clear();
    return ok;
  }

  const worker_options& options_;
  const channel channel_;
  const protocol::hello hello_;
  const std::vector<const registry::entry*> index_;
  const bool segment_;
  const std::size_t max_payload_;
  protocol::frame_reader reader_;
  detail::task_runner runner_;
  detail::cancel_watch watch_;
  std::vector<std::byte> out_;  // replies not yet written
};

}  // namespace

int serve(const registry& jobs, const worker_options& options) noexcept {
  const bool stdio = detail::take_stdio_setting(options);
  detail::connect_settings connect;
  std::string connect_error;
  bool connecting = false;
  try {
    // Taken (and the variables unset) whatever the mode: the secret must not reach a job.
    connecting = detail::take_connect_setting(options, connect, connect_error) && !stdio;
  } catch (const std::exception& e) {  // std::bad_alloc
    std::fprintf(stderr, "crew worker: %s\n", e.what());
    return exit_code(worker_exit::connect_failed);
  }
  if (connecting && !connect_error.empty()) {
    std::fprintf(stderr, "crew worker: %s\n", connect_error.c_str());
    return exit_code(worker_exit::connect_failed);
  }
  if (!stdio && !connecting &&
      (::fcntl(options.in_fd, F_GETFD) < 0 || ::fcntl(options.out_fd, F_GETFD) < 0)) {
    std::fprintf(stderr,
                 "crew worker: fd %d and fd %d must be open: this program is started by a crew "
                 "coordinator (process_pool), not by hand (or on stdio: CREW_STDIO=1)\n",
                 options.in_fd, options.out_fd);
    return exit_code(worker_exit::not_started_by_crew);
  }
  // Before any task arrives: from here on a sibling of the same user cannot reach in.
  const char* dumpable = std::getenv("CREW_WORKER_DUMPABLE");
  if (options.non_dumpable && !(dumpable && std::string_view(dumpable) == "1"))
    ::prctl(PR_SET_DUMPABLE, 0);
  detail::arrange_parent_death();
  detail::line_buffer_stdout();
  detail::worker_settings settings;
  if (!detail::take_settings(options, settings)) return exit_code(worker_exit::bad_segment);
  channel ch{options.in_fd, options.out_fd, nullptr, false};
  detail::stdio_relay* relay = nullptr;
  if (connecting) {
    detail::connection c;
    if (!detail::connect_back(connect, c)) return exit_code(worker_exit::connect_failed);
    if (c.full) {
      std::fprintf(stderr, "crew worker: the pool at %s has all the workers it wants; exiting\n",
                   connect.address.c_str());
      return exit_code(worker_exit::ok);
    }
    if (!options.max_payload) settings.max_payload = c.max_payload;
    detail::take_connection_mode();
    relay = detail::stdio_relay::start(c.frames_in, c.frames_out, settings.max_payload,
                                       c.heartbeat_timeout);
    if (!relay) return exit_code(worker_exit::io_error);
    ch = {relay->serve_in_fd(), relay->frames_out_fd(), &relay->out_mutex(), true, relay};
  } else if (stdio) {
    detail::stdio_fds fds;
    if (!detail::take_stdio(fds)) return exit_code(worker_exit::not_started_by_crew);
    relay = detail::stdio_relay::start(fds.frames_in, fds.frames_out, settings.max_payload,
                                       detail::take_heartbeat_timeout());
    if (!relay) return exit_code(worker_exit::io_error);
    ch = {relay->serve_in_fd(), relay->frames_out_fd(), &relay->out_mutex(), true, relay};
  }
  int code = 0;
  try {
    session s(jobs, options, ch, settings);
    code = s.run();
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "crew worker: %s\n", ex.what());
    code = exit_code(worker_exit::io_error);
  }
  if (relay) {
    // Nothing of the worker outlives it on a remote host: no coordinator there kills its
    // group.
    relay->finish();
    if (connecting) detail::end_connection();
    detail::kill_rest_of_group();
  }
  return code;
}

}  // namespace crew
