#include "worker_session.hpp"

#include "../shm_segment.hpp"

#include <crew/codec.hpp>

#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

#include <cerrno>

namespace crew::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr std::chrono::milliseconds exit_linger{300};

std::string ms_text(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

// Up to 40 bytes of `bytes`, control and non-ASCII bytes as \xNN.
std::string printable_start(std::span<const std::byte> bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

// The violation of a worker whose frames the coordinator had no memory for (std::bad_alloc,
// std::length_error): the worker, not the coordinator, pays for what it sent.
std::string out_of_memory(const std::exception& e) {
  return std::string("the coordinator could not allocate memory for its frames (") + e.what() + ")";
}
}  // namespace

worker_session::worker_session(const asio::any_io_executor& strand, std::size_t slot,
                               std::shared_ptr<worker_channel> channel,
                               std::weak_ptr<session_owner> owner, const session_settings& settings)
    : slot_(slot),
      channel_(std::move(channel)),
      owner_(std::move(owner)),
      settings_(settings),
      pid_(channel_->pid()),
      reader_(settings.max_payload),
      linger_(strand),
      stop_timer_(strand),
      deadline_(strand),
      frame_timer_(strand),
      heartbeat_timer_(strand),
      where_(channel_->where()) {
}

void worker_session::start() {
  if (auto why = channel_->start(weak_from_this()); !why.empty()) {
    failure_ = {errc::worker_boot_failed, "cannot watch its pipes: " + why};
    return channel_->stop(policy::stop_step::kill);
  }
  arm_deadline(settings_.handshake_timeout, [this] {
    if (booted_) return;
    failure_ = {errc::worker_boot_failed, "it sent no handshake within " +
                                              std::to_string(settings_.handshake_timeout.count()) +
                                              " ms; crew killed it"};
    channel_->stop(policy::stop_step::kill);
  });
}

std::string worker_session::who() const {
  if (where_.empty())
    return "worker " + std::to_string(slot_) + " (pid " + std::to_string(pid_) + ")";
  std::string s = "worker " + std::to_string(slot_) + " on " + where_ + " (";
  if (remote_pid_ != 0) s += "pid " + std::to_string(remote_pid_) + " there; ";
  const std::string peer = channel_->peer_address();
  if (!peer.empty()) return s + "connected from " + peer + ")";
  return s + "launcher pid " + std::to_string(pid_) + ")";
}

bool worker_session::alive() const noexcept {
  return !channel_->peer_gone() && channel_->reading() && !failure_ && channel_->input_open();
}

bool worker_session::accepts(std::size_t depth) const noexcept {
  return (st_ == state::idle || st_ == state::busy) && alive() && !retire_due_ &&
         inflight_.size() < depth && (inflight_.empty() || !inflight_.front().discarded);
}

const std::pair<std::uint32_t, std::string>* worker_session::find_job(
    const std::string& job) const {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? nullptr : &it->second;
}

// --- reading ----------------------------------------------------------------------------

std::span<std::byte> worker_session::read_buffer() {
  try {
    auto space = reader_.prepare();
    return {space.data(), space.size()};
  } catch (const std::exception& e) {  // std::bad_alloc, std::length_error: growing the buffer
    violation(out_of_memory(e));       // reading stops: no byte lands in the empty span
    return {};
  }
}

bool worker_session::on_read(std::size_t n) {
  auto owner = owner_.lock();
  if (!owner || !channel_->reading()) return false;
  reader_.commit(n);
  if (heartbeat_) heard_ = std::chrono::steady_clock::now();
  struct batch {  // the frames of one read are one batch of replies
    session_owner& o;
    explicit batch(session_owner& x) : o(x) { o.replies_begin(); }
    ~batch() { o.replies_end(); }
  } replies(*owner);
  // Whatever the worker's frames make the coordinator allocate (job tables, results, error
  // messages), running out is the worker's violation, never an exception out of here.
  try {
    protocol::frame_view f;
    error_code ec;
    std::size_t frames = 0;
    while (reader_.next(f, ec)) {
      ++frames;
      if (!on_frame(owner, f)) return false;
    }
    if (ec) {
      std::string what = "bad frame header: " + ec.message();
      // Text before the hello is usually a launcher's or a login shell's (a .bashrc that
      // prints): show it.
      if (!booted_) what += "; its first bytes: \"" + printable_start(reader_.buffered()) + "\"";
      return violation(std::move(what)), false;
    }
    // Before its hello a worker may send only a hello of at most max_hello_payload: anything
    // else is refused from its header, before its payload is read.
    protocol::frame_header h;
    const auto ahead = reader_.buffered();
    if (!booted_ && ahead.size() >= protocol::header_size &&
        !protocol::parse_header(ahead.data(), settings_.max_payload, h)) {
      if (h.type != protocol::frame_type::hello)
        return violation("bad hello: a frame of type " + std::to_string(static_cast<int>(h.type)) +
                         " before its hello"),
               false;
      if (h.length > protocol::max_hello_payload)
        return violation("bad hello: a hello of " + std::to_string(h.length) +
                         " bytes, more than the limit of " +
                         std::to_string(protocol::max_hello_payload) + " (max_hello_payload)"),
               false;
    }
    watch_frame(frames > 0);
  } catch (const std::bad_alloc& e) {
    return violation(out_of_memory(e)), false;
  } catch (const std::length_error& e) {
    return violation(out_of_memory(e)), false;
  }
  return true;
}

void worker_session::on_input_end() {
  // A cut frame is discarded. If the worker ends on its own it crashed while writing; if it
  // lives on (below), it broke the protocol.
  cut_frame_ = reader_.mid_frame();
  if (channel_->peer_gone()) return;
  // Usually the peer is ending and its end comes next. If it lives on without a reply
  // channel it is useless: kill it.
  linger_.expires_after(exit_linger);
  linger_.async_wait([self = shared_from_this()](error_code e) {
    if (e || self->channel_->peer_gone()) return;
    if (!self->failure_)
      self->failure_ = self->cut_frame_
                           ? failure_t{errc::protocol_error,
                                       "its reply channel ended in the middle of a frame and it "
                                       "did not exit; crew killed it"}
                           : failure_t{errc::worker_crashed,
                                       "it closed its reply channel without exiting; crew "
                                       "killed it"};
    self->channel_->stop(policy::stop_step::kill);
  });
}

// A frame begun must be finished within frame_timeout of its first byte: a worker that
// sends part of one and then goes silent, or trickles it a byte at a time, would otherwise
// hold its task (and the buffer it grew) forever. `frame_began`: frames ended in this read,
// so the one now buffered in part began in it.
void worker_session::watch_frame(bool frame_began) {
  if (!reader_.mid_frame()) {
    if (frame_armed_) frame_timer_.cancel();
    frame_armed_ = false;
    return;
  }
  if (frame_armed_ && !frame_began) return;  // the same frame: its deadline stands
  frame_armed_ = true;
  frame_timer_.expires_after(settings_.frame_timeout);
  frame_timer_.async_wait([self = shared_from_this()](error_code e) {
    if (e || self->channel_->peer_gone() || !self->channel_->reading() ||
        !self->reader_.mid_frame())
      return;
    // Expired as a later frame re-armed it: that frame's own wait decides.
    if (self->frame_timer_.expiry() > std::chrono::steady_clock::now()) return;
    // Bytes waiting for us mean we were slow, not the worker: look again later.
    if (self->channel_->unread_by_us().value_or(0) > 0) return self->watch_frame(true);
    self->violation("it began a frame and did not finish it within " +
                    ms_text(self->settings_.frame_timeout) + " (frame_timeout)");
  });
}

bool worker_session::on_frame(const std::shared_ptr<session_owner>& owner,
                              const protocol::frame_view& f) {
  using protocol::frame_type;
  switch (f.header.type) {
    case frame_type::hello:
      return on_hello(owner, f);
    case frame_type::result:
    case frame_type::batch_result:
    case frame_type::error:
      return on_reply(owner, f);
    case frame_type::pong:  // its arrival was the point (heard_)
      if (!heartbeat_ || f.header.length != 0 || f.header.task_id == 0 || f.header.task_id > pings_)
        return violation("a pong that answers no ping"), false;
      return true;
    default:
      return violation("an unexpected frame type " +
                       std::to_string(static_cast<int>(f.header.type))),
             false;
  }
}

bool worker_session::on_hello(const std::shared_ptr<session_owner>& owner,
                              const protocol::frame_view& f) {
  if (booted_) return violation("a second hello"), false;
  try {
    auto h = protocol::decode_hello(f.payload, (f.header.flags & protocol::flag_placement) != 0);
    // A worker that mapped its segment says so with flag_shm on its hello; any other
    // worker (one written from the pipe-only protocol) gets inline frames.
    shm_ok_ = channel_->payload_area() && (f.header.flags & protocol::flag_shm);
    batch_ok_ = (f.header.flags & protocol::flag_batch) != 0;
    heartbeat_ = (f.header.flags & protocol::flag_heartbeat) != 0 &&
                 settings_.heartbeat_interval.count() > 0;
    if (!where_.empty()) remote_pid_ = h.pid;
    if (channel_->pid() == 0) pid_ = static_cast<int>(h.pid);  // connected: no local process
    if (h.where) {
      placement_ = h.where->shown();
      if (!channel_->peer_address().empty() && !placement_.empty()) where_ = placement_;
    }
    for (std::uint32_t i = 0; i < h.jobs.size(); ++i) {
      jobs_[h.jobs[i].name] = {i, h.jobs[i].signature};
      job_list_ += (i ? ", " : "") + h.jobs[i].name;
    }
    announced_ = std::move(h.jobs);
  } catch (const decode_error& e) {
    return violation(std::string("bad hello: ") + e.what()), false;
  } catch (const std::exception& e) {  // std::bad_alloc, std::length_error: its job tables
    return violation("bad hello: " + out_of_memory(e)), false;
  }
  booted_ = true;
  deadline_.cancel();
  if (heartbeat_) {
    heard_ = sent_at_ = std::chrono::steady_clock::now();
    arm_heartbeat();
  }
  if (st_ == state::booting) st_ = state::idle;
  owner->session_ready(*this);
  return true;
}

bool worker_session::on_reply(const std::shared_ptr<session_owner>& owner,
                              const protocol::frame_view& f) {
  using protocol::frame_type;
  // Being stopped (deadline, cancel grace): a reply now is too late and changes nothing;
  // the task fails with the recorded cause once the worker is gone.
  if (failure_) return true;
  if (inflight_.empty() || inflight_.front().id != f.header.task_id)
    return violation("a reply for task " + std::to_string(f.header.task_id) +
                     ", which is not the task it runs"),
           false;
  if (written_ < inflight_.front().stream_end)
    return violation("a reply before it read its whole task"), false;
  const bool batch = inflight_.front().task.batch_items > 0;
  if (f.header.type != frame_type::error && batch != (f.header.type == frame_type::batch_result))
    return violation(batch ? "a result frame for a batch task"
                           : "a batch_result frame for a single task"),
           false;
  deadline_.cancel();
  if (inflight_.front().discarded) {
    // The late reply of a cancelled task: its caller was answered already.
    inflight_.pop_front();
    answered(owner);
    return true;
  }
  auto p = std::move(inflight_.front());
  inflight_.pop_front();
  owner->reply_received(*this);
  // A reply that breaks the protocol leaves its task in front, failed when the worker is gone.
  auto refuse = [&](std::string what) {
    inflight_.push_front(std::move(p));
    violation(std::move(what));
    return false;
  };
  if (f.header.type == frame_type::result && (f.header.flags & protocol::flag_shm)) {
    // The worker's descriptor is checked against our own copy of the layout and the
    // task's generation before a single byte of the area is read. The bytes are then
    // copied out (pread) before decoding: the worker can neither change them while they
    // are decoded nor, by shrinking the file, fault us.
    protocol::shm_descriptor d;
    auto* seg = channel_->payload_area();
    bool bad = true;
    try {
      bad = !seg || protocol::check_descriptor(f.payload, seg->response_size(), p.id, d) ||
            seg->read_response(d.offset, d.length, result_buf_);
    } catch (const std::exception& e) {  // std::bad_alloc, std::length_error: the copy
      return refuse(out_of_memory(e));
    }
    if (bad) return refuse("a bad shared-memory descriptor in its result");
    owner->task_succeeded(p, result_buf_);
  } else if (f.header.type == frame_type::batch_result) {
    try {
      protocol::check_batch_result(f.payload, p.task.batch_items);
    } catch (const decode_error& e) {
      return refuse(std::string("a bad batch result: ") + e.what());
    } catch (const std::exception& e) {  // std::bad_alloc, std::length_error
      return refuse(out_of_memory(e));
    }
    owner->task_succeeded(p, f.payload);
  } else if (f.header.type == frame_type::result) {
    owner->task_succeeded(p, f.payload);
  } else {
    protocol::error_payload e;
    try {
      e = protocol::decode_error_payload(f.payload);
    } catch (const decode_error& bad) {
      return refuse("bad error frame: " + bad.message());  // without the code's own text
    } catch (const std::exception& bad) {  // std::bad_alloc, std::length_error: its message
      return refuse(out_of_memory(bad));
    }
    owner->task_failed(p, e.code, std::move(e.message));
  }
  answered(owner);
  return true;
}

// A worker has answered its task: it serves the next one; the owner decides the rest
// (recycling, dispatch).
void worker_session::answered(const std::shared_ptr<session_owner>& owner) {
  ++tasks_done_;
  if (!inflight_.empty())
    start_head(owner);
  else
    st_ = state::idle;
  owner->task_answered(*this);
}

// The worker broke the protocol: it is killed, and its task fails with protocol_error.
void worker_session::violation(std::string what) {
  if (!failure_) failure_ = {errc::protocol_error, "protocol violation: " + what};
  channel_->stop(policy::stop_step::kill);
  channel_->stop_reading();
}

void worker_session::on_output(output_line::stream which, std::string_view text) {
  if (auto owner = owner_.lock()) owner->output(*this, which, text);
}

// --- writing ----------------------------------------------------------------------------

bool worker_session::encode_task(pending_task& p, std::uint32_t job_index, std::string& error) {
  const std::size_t before = wbuf_.size();
  const std::size_t n = p.task.args_size;
  const bool batch = p.task.batch_items > 0;
  try {
    auto* seg = channel_->payload_area();
    if (!batch && shm_ok_ && seg && n > settings_.shm_inline_max && n <= seg->request_size()) {
      // Straight from the caller's values into the request area: one copy.
      std::vector<std::byte> payload(4);
      std::memcpy(payload.data(), &job_index, 4);
      encoder e(seg->request(), n);
      p.task.encode_args(e);
      protocol::append_descriptor(payload, {0, n, p.id});
      protocol::append_frame(wbuf_, protocol::frame_type::task, p.id, payload, protocol::flag_shm);
    } else {
      if (n + 4 > settings_.max_payload)
        throw capacity_exceeded("arguments of " + std::to_string(n) +
                                " bytes exceed the frame limit and do not fit the shared area");
      std::byte* at = protocol::append_frame_for(
          wbuf_, batch ? protocol::frame_type::batch : protocol::frame_type::task, p.id, 4 + n);
      std::memcpy(at, &job_index, 4);
      encoder e(at + 4, n);
      p.task.encode_args(e);
    }
  } catch (const capacity_exceeded& e) {
    wbuf_.resize(before);
    error = e.message();
    return false;
  } catch (const std::exception& e) {  // bad_alloc, or the segment refusing a write
    wbuf_.resize(before);
    error = std::string("cannot place the arguments: ") + e.what();
    return false;
  }
  p.stream_start = appended_;
  appended_ += wbuf_.size() - before;
  p.stream_end = appended_;
  return true;
}

void worker_session::push_sent(pending_task&& p) {
  p.worker = slot_;
  p.pid = pid_;
  task_sent_ = true;
  inflight_.push_back(std::move(p));
  if (inflight_.size() == 1) {
    st_ = state::busy;
    if (auto owner = owner_.lock()) start_head(owner);
  }
}

void worker_session::flush() {
  if (!writing_ && woff_ < wbuf_.size()) write_pending();
}

void worker_session::write_pending() {
  writing_ = false;
  while (woff_ < wbuf_.size()) {
    if (channel_->peer_gone() || !channel_->input_open()) return;
    int err = 0;
    const long n = channel_->write_some({wbuf_.data() + woff_, wbuf_.size() - woff_}, err);
    if (n >= 0) {
      woff_ += static_cast<std::size_t>(n);
      written_ += static_cast<std::size_t>(n);
      if (heartbeat_) sent_at_ = std::chrono::steady_clock::now();
      continue;
    }
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      writing_ = true;
      return channel_->wait_writable();
    }
    // EPIPE: the worker closed its input or died; its end explains the task's fate.
    return channel_->stop(policy::stop_step::kill);
  }
  wbuf_.clear();
  woff_ = 0;
}

void worker_session::on_writable(bool ok) {
  writing_ = false;
  if (ok) write_pending();
}

// --- deadlines, cancel, stop ------------------------------------------------------------

// Runs `expired` on the strand after `after`, unless the deadline is re-armed or cancelled
// first, or the worker is gone.
template <class Expired>
void worker_session::arm_deadline(std::chrono::milliseconds after, Expired expired) {
  deadline_.expires_after(after);
  deadline_.async_wait([self = shared_from_this(), expired](error_code ec) mutable {
    if (!ec && !self->channel_->peer_gone()) expired();
  });
}

// The task at the head of the pipeline has started: its deadline runs from now (or, for a
// cancelled one, the grace before the worker is killed).
void worker_session::start_head(const std::shared_ptr<session_owner>& owner) {
  pending_task& h = inflight_.front();
  if (h.discarded) return arm_cancel_grace(h.id);
  owner->task_started(*this, h);
  if (h.timeout.count() > 0) arm_task_deadline(h.id, h.timeout);
}

// A task past its deadline: the overdue ladder (SIGTERM, then SIGKILL after the grace).
void worker_session::arm_task_deadline(std::uint64_t id, std::chrono::milliseconds timeout) {
  arm_deadline(timeout, [this, id, timeout] {
    if (inflight_.empty() || inflight_.front().id != id) return;
    failure_ = {errc::task_timeout, "the task ran past its deadline of " + ms_text(timeout) +
                                        "; crew stopped the worker"};
    climb(deadline_, policy::overdue_stop(settings_.shutdown_grace), 0);
  });
}

void worker_session::arm_cancel_grace(std::uint64_t id) {
  arm_deadline(settings_.cancel_grace, [this, id] {
    if (inflight_.empty() || inflight_.front().id != id) return;
    failure_ = {errc::cancelled, "it did not stop a cancelled task within " +
                                     ms_text(settings_.cancel_grace) + "; crew killed it"};
    climb(deadline_, policy::kill_now(), 0);
  });
}

void worker_session::cancel_sent(pending_task& t) {
  const bool running = &t == &inflight_.front();
  t.discarded = true;
  if (channel_->peer_gone() || failure_) return;  // already going
  if (channel_->input_open()) {
    const std::size_t before = wbuf_.size();
    protocol::append_frame(wbuf_, protocol::frame_type::cancel, t.id, {});
    appended_ += wbuf_.size() - before;
    if (!writing_) write_pending();
  }
  if (running) arm_cancel_grace(t.id);
}

void worker_session::stop() {
  if (st_ == state::stopping) return;
  st_ = state::stopping;
  climb(stop_timer_, policy::graceful_stop(settings_.shutdown_grace), 0);
}

// Takes rung `rung` of `ladder` now and the next ones after their waits, on `timer`, while
// the worker is there.
void worker_session::climb(asio::steady_timer& timer, policy::stop_ladder ladder,
                           std::size_t rung) {
  channel_->stop(ladder.rungs[rung].step);
  if (rung + 1 >= ladder.size) return;
  timer.expires_after(ladder.rungs[rung].wait);
  timer.async_wait([self = shared_from_this(), &timer, ladder, rung](error_code ec) {
    if (!ec && !self->channel_->peer_gone()) self->climb(timer, ladder, rung + 1);
  });
}

// --- heartbeats ---------------------------------------------------------------------------

void worker_session::arm_heartbeat() {
  // Twice per interval: no more than 1.5 intervals pass without a byte either way.
  heartbeat_timer_.expires_after(std::max<std::chrono::milliseconds>(
      settings_.heartbeat_interval / 2, std::chrono::milliseconds(1)));
  heartbeat_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->channel_->peer_gone() || !self->channel_->reading() || self->failure_ ||
        self->st_ == state::stopping)
      return;  // going already: its stop ladder decides
    self->beat();
  });
}

// Every half interval: a worker silent for heartbeat_timeout, with a ping of ours unanswered
// for half of it, is lost; one silent for an interval, or one we sent nothing for an
// interval, gets a ping (which it answers at once, even while a job runs: docs/protocol.md
// §10). The unanswered ping keeps a coordinator whose strand stalled (a long handler) from
// declaring workers lost that it never asked.
void worker_session::beat() {
  const auto now = std::chrono::steady_clock::now();
  const auto timeout = settings_.heartbeat_timeout;
  if (timeout.count() > 0 && now - heard_ >= timeout && unanswered_since_ > heard_ &&
      now - unanswered_since_ >= timeout / 2) {
    // Bytes it sent wait for us: we were slow, not the worker.
    if (channel_->unread_by_us().value_or(0) == 0) {
      failure_ = {errc::worker_lost,
                  "nothing came from it for " + ms_text(timeout) +
                      " (heartbeat_timeout), not even an answer to a ping: a stopped process, a "
                      "hung host or a cut link; crew stopped it through its launcher"};
      channel_->stop(policy::stop_step::close_input);
      return channel_->stop(policy::stop_step::kill);
    }
    heard_ = now;
  }
  // Both ways: the worker takes us for gone after as long without a byte from us.
  const auto interval = settings_.heartbeat_interval;
  if ((now - heard_ >= interval || now - sent_at_ >= interval) && channel_->input_open()) {
    const std::size_t before = wbuf_.size();
    protocol::append_frame(wbuf_, protocol::frame_type::ping, ++pings_, {});
    if (unanswered_since_ <= heard_) unanswered_since_ = now;  // the first since we heard
    appended_ += wbuf_.size() - before;
    if (!writing_) write_pending();
  }
  arm_heartbeat();
}

// --- the end ----------------------------------------------------------------------------

void worker_session::on_ended(channel_end end) {
  linger_.cancel();
  stop_timer_.cancel();
  deadline_.cancel();
  frame_timer_.cancel();
  heartbeat_timer_.cancel();
  // Did the worker read any of its task? A worker that ends right after a reply may have
  // been handed the next task before its end was seen; if every byte written is still
  // unread, that task never started and goes back to the queue as it was.
  const auto unread = channel_->unread_by_peer();
  const bool head_untouched =
      !inflight_.empty() && unread && written_ - *unread <= inflight_.front().stream_start;
  session_end out;
  out.who = who();
  out.how = std::move(end.how);
  if (cut_frame_ && !failure_)
    out.how += "; its channel ended in the middle of a frame (discarded)";
  out.stderr_tail = std::move(end.stderr_tail);
  out.status = end.status;
  out.booted = booted_;
  // Did it do any work? An answer, a byte of a task read, or a task's deadline or cancel
  // grace that crew enforced: only a worker that did none of these is a failed start
  // (supervisor::worker_ended). A protocol violation before any of them is one too.
  const bool read_some = !unread || written_ > *unread;
  const bool stopped_for_a_task =
      failure_ && (failure_->first == errc::task_timeout || failure_->first == errc::cancelled);
  out.worked = tasks_done_ > 0 || (task_sent_ && written_ > 0 && read_some) || stopped_for_a_task;
  out.head_unread = head_untouched && !inflight_.front().discarded;
  out.stopping = st_ == state::stopping;
  out.failure = failure_;
  // The tasks behind the running one never started (the worker is sequential); so did the
  // running one if the worker never read a byte of it.
  while (inflight_.size() > 1 || (head_untouched && !inflight_.empty())) {
    if (!inflight_.back().discarded) out.unstarted.push_front(std::move(inflight_.back()));
    inflight_.pop_back();
  }
  if (!inflight_.empty() && !inflight_.front().discarded)
    out.running = std::move(inflight_.front());
  inflight_.clear();
  if (auto owner = owner_.lock()) owner->session_ended(*this, std::move(out));
}

}  // namespace crew::detail
