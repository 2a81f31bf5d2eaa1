// The seam between a worker session and its channel is real: a session driven through an
// in-memory channel (no process, no pipe) — handshake, a task, its reply, a bad frame, a
// peer that ends in the middle of a task, a task past its deadline.
#include "pool/worker_session.hpp"

#include <crew/codec.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <new>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "pool_printers.hpp"

namespace {

namespace asio = boost::asio;
namespace proto = crew::protocol;
using namespace crew::detail;
using bytes = std::vector<std::byte>;
using std::chrono::milliseconds;

// A peer in memory: what the session writes is kept in `sent`; what the test feeds arrives
// as frame bytes; stop steps are recorded, and a kill ends the peer.
class memory_channel final : public worker_channel,
                             public std::enable_shared_from_this<memory_channel> {
 public:
  explicit memory_channel(asio::any_io_executor ex) : ex_(std::move(ex)) {}

  std::string start(std::weak_ptr<channel_listener> l) override {
    listener_ = std::move(l);
    return {};
  }
  int pid() const noexcept override { return 4242; }
  long write_some(std::span<const std::byte> b, int&) override {
    sent.insert(sent.end(), b.begin(), b.end());
    return static_cast<long>(b.size());
  }
  void wait_writable() override {}
  bool input_open() const noexcept override { return !input_closed; }
  void stop_reading() override {
    reading_ = false;
    maybe_end();
  }
  bool reading() const noexcept override { return reading_; }
  void stop(policy::stop_step s) override {
    if (gone_) return;
    steps.push_back(s);
    if (s == policy::stop_step::close_input) input_closed = true;
    if (s == policy::stop_step::kill)  // never a callback from inside stop()
      asio::post(ex_, [self = shared_from_this()] {
        self->end_peer(9, "was killed by signal 9 (SIGKILL)");
      });
  }
  bool peer_gone() const noexcept override { return gone_; }
  std::optional<std::size_t> unread_by_peer() const override { return unread; }

  // --- the test's side ---
  // Frame bytes from the peer, delivered as a read would (the session's buffer may be
  // smaller than them).
  void feed(std::span<const std::byte> b) {
    while (!b.empty() && reading_) {
      auto l = listener_.lock();
      auto space = l->read_buffer();
      const std::size_t n = std::min(space.size(), b.size());
      std::memcpy(space.data(), b.data(), n);
      b = b.subspan(n);
      if (!l->on_read(n)) break;
    }
  }
  // The peer closes its frame stream, then is gone with `status`.
  void end_peer(int status, std::string how) {
    if (reading_) {
      reading_ = false;
      if (auto l = listener_.lock()) l->on_input_end();
    }
    gone_ = true;
    status_ = status;
    how_ = std::move(how);
    asio::post(ex_, [self = shared_from_this()] { self->maybe_end(); });
  }
  // Frames the session sent, parsed.
  std::vector<std::pair<proto::frame_header, bytes>> frames() const {
    std::vector<std::pair<proto::frame_header, bytes>> out;
    std::span<const std::byte> rest(sent);
    while (rest.size() >= proto::header_size) {
      proto::frame_header h;
      BOOST_REQUIRE(!proto::parse_header(rest.data(), proto::default_max_payload, h));
      rest = rest.subspan(proto::header_size);
      out.emplace_back(h, bytes(rest.begin(), rest.begin() + h.length));
      rest = rest.subspan(h.length);
    }
    return out;
  }

  bytes sent;
  std::vector<policy::stop_step> steps;
  bool input_closed = false;
  std::optional<std::size_t> unread = 0;

 private:
  void maybe_end() {
    if (ended_ || !gone_ || reading_) return;
    ended_ = true;
    if (auto l = listener_.lock()) l->on_ended({status_, how_, "last words"});
  }

  asio::any_io_executor ex_;
  std::weak_ptr<channel_listener> listener_;
  bool reading_ = true, gone_ = false, ended_ = false;
  int status_ = -1;
  std::string how_;
};

// What a session reports, recorded.
class recording_owner final : public session_owner {
 public:
  void session_ready(worker_session&) override { ++ready; }
  void reply_received(worker_session&) override { ++replies; }
  void task_started(const worker_session&, const pending_task& p) override {
    started.push_back(p.id);
  }
  void task_succeeded(pending_task& p, std::span<const std::byte> r) override {
    if (out_of_memory) throw std::bad_alloc();
    crew::decoder d(r.data(), r.size());
    results.emplace_back(p.id, d.get<std::int32_t>());
  }
  void task_failed(pending_task& p, crew::errc code, std::string message) override {
    failures.push_back({p.id, code, message});
  }
  void task_answered(worker_session&) override { ++answered; }
  void session_ended(worker_session&, session_end e) override { end = std::move(e); }
  void output(const worker_session&, crew::output_line::stream, std::string_view) override {}
  void replies_begin() override {}
  void replies_end() override {}

  int ready = 0, replies = 0, answered = 0;
  bool out_of_memory = false;  // task_succeeded throws std::bad_alloc
  std::vector<std::uint64_t> started;
  std::vector<std::pair<std::uint64_t, std::int32_t>> results;
  struct failure {
    std::uint64_t id;
    crew::errc code;
    std::string message;
  };
  std::vector<failure> failures;
  std::optional<session_end> end;
};

bytes frame(proto::frame_type type, std::uint64_t id, std::span<const std::byte> payload,
            std::uint16_t flags = 0) {
  bytes out;
  proto::append_frame(out, type, id, payload, flags);
  return out;
}

bytes hello_frame() {
  proto::hello h;
  h.pid = 4242;
  h.jobs = {{"double_it", "i32(i32)"}, {"other", "str()"}};
  return frame(proto::frame_type::hello, 0, proto::encode_hello(h));
}

bytes int_payload(std::int32_t v) {
  bytes out;
  crew::encoder e(out);
  e.put(v);
  return out;
}

pending_task task_of(std::uint64_t id, std::int32_t arg, milliseconds timeout = {}) {
  pending_task p;
  p.id = id;
  p.timeout = timeout;
  p.task.job = "double_it";
  p.task.signature = "i32(i32)";
  p.task.args_size = 4;
  p.task.body = make_task_body([arg](crew::encoder& e) { e.put(arg); },
                               [](std::exception_ptr, std::span<const std::byte>) {});
  return p;
}

struct fixture {
  asio::io_context ioc;
  asio::strand<asio::io_context::executor_type> strand = asio::make_strand(ioc);
  std::shared_ptr<memory_channel> channel = std::make_shared<memory_channel>(strand);
  std::shared_ptr<recording_owner> owner = std::make_shared<recording_owner>();
  session_settings settings{proto::default_max_payload, 0,
                            milliseconds(10000),        milliseconds(10000),
                            milliseconds(1000),         milliseconds(50)};
  std::shared_ptr<worker_session> session;

  explicit fixture(milliseconds frame_timeout = milliseconds(10000),
                   milliseconds heartbeat_interval = {}, milliseconds heartbeat_timeout = {}) {
    settings.frame_timeout = frame_timeout;
    settings.heartbeat_interval = heartbeat_interval;
    settings.heartbeat_timeout = heartbeat_timeout;
    session = std::make_shared<worker_session>(strand, 1, channel, owner, settings);
    session->start();
  }
  void run() {
    ioc.restart();
    ioc.run_for(std::chrono::seconds(5));
  }
  // Hands the session a task, as the dispatcher does, and writes its frame.
  void send(pending_task p) {
    const auto* job = session->find_job(p.task.job);
    BOOST_REQUIRE(job);
    std::string error;
    BOOST_REQUIRE(session->encode_task(p, job->first, error));
    session->push_sent(std::move(p));
    session->flush();
  }
};

BOOST_FIXTURE_TEST_CASE(handshake_task_and_reply_through_an_in_memory_channel, fixture) {
  BOOST_TEST(session->current() == worker_session::state::booting);
  channel->feed(hello_frame());
  BOOST_TEST(owner->ready == 1);
  BOOST_TEST(session->booted());
  BOOST_TEST(session->current() == worker_session::state::idle);
  BOOST_TEST(session->job_list() == "double_it, other");
  BOOST_TEST(session->accepts(1));

  send(task_of(7, 21));
  BOOST_TEST(session->current() == worker_session::state::busy);
  BOOST_TEST(owner->started == std::vector<std::uint64_t>{7});
  const auto sent = channel->frames();
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].first.type == proto::frame_type::task);
  BOOST_TEST(sent[0].first.task_id == 7u);
  std::uint32_t index = 99;
  std::memcpy(&index, sent[0].second.data(), 4);
  BOOST_TEST(index == 0u);  // double_it's place in the hello
  crew::decoder d(sent[0].second.data() + 4, sent[0].second.size() - 4);
  BOOST_TEST(d.get<std::int32_t>() == 21);

  channel->feed(frame(proto::frame_type::result, 7, int_payload(42)));
  BOOST_TEST_REQUIRE(owner->results.size() == 1u);
  BOOST_TEST(owner->results[0].first == 7u);
  BOOST_TEST(owner->results[0].second == 42);
  BOOST_TEST(owner->replies == 1);
  BOOST_TEST(owner->answered == 1);
  BOOST_TEST(session->current() == worker_session::state::idle);
  BOOST_TEST(session->inflight().empty());
  BOOST_TEST(channel->steps.empty());  // nobody was stopped
}

BOOST_FIXTURE_TEST_CASE(a_reply_for_another_task_is_a_violation_the_channel_is_killed, fixture) {
  channel->feed(hello_frame());
  send(task_of(7, 1));
  channel->feed(frame(proto::frame_type::result, 8, int_payload(2)));  // not the task it runs
  BOOST_TEST(owner->results.empty());
  BOOST_TEST(!session->alive());
  BOOST_TEST_REQUIRE(!channel->steps.empty());
  BOOST_TEST(channel->steps.back() == policy::stop_step::kill);  // asked, not kill(2)ed
  run();
  BOOST_TEST_REQUIRE(owner->end.has_value());
  const auto& end = *owner->end;
  BOOST_TEST(end.who == "worker 1 (pid 4242)");
  BOOST_TEST_REQUIRE(end.failure.has_value());
  BOOST_TEST(end.failure->first == crew::errc::protocol_error);
  BOOST_TEST(end.failure->second.find("a reply for task 8, which is not the task it runs") !=
             std::string::npos);
  BOOST_TEST_REQUIRE(end.running.has_value());  // the task is judged by the owner
  BOOST_TEST(end.running->id == 7u);
  BOOST_TEST(end.stderr_tail == "last words");
}

BOOST_FIXTURE_TEST_CASE(a_malformed_frame_header_is_a_violation, fixture) {
  channel->feed(hello_frame());
  bytes junk(proto::header_size, std::byte{0x5a});
  channel->feed(junk);
  BOOST_TEST(!session->alive());
  run();
  BOOST_TEST_REQUIRE(owner->end.has_value());
  BOOST_TEST_REQUIRE(owner->end->failure.has_value());
  BOOST_TEST(owner->end->failure->second.find("bad frame header") != std::string::npos);
  BOOST_TEST(owner->end->booted);
}

BOOST_FIXTURE_TEST_CASE(an_error_frame_that_does_not_decode_names_the_worker, fixture) {
  channel->feed(hello_frame());
  send(task_of(3, 1));
  channel->feed(frame(proto::frame_type::error, 3, bytes(2)));  // too short for a code
  run();
  BOOST_TEST(owner->failures.empty());  // failed once the worker is gone, by the owner
  BOOST_TEST_REQUIRE(owner->end.has_value());
  BOOST_TEST_REQUIRE(owner->end->running.has_value());
  BOOST_TEST(owner->end->running->id == 3u);
  BOOST_TEST(owner->end->failure->first == crew::errc::protocol_error);
  BOOST_TEST(owner->end->failure->second.find("bad error frame") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_peer_that_ends_mid_task_leaves_the_task_to_be_judged, fixture) {
  channel->feed(hello_frame());
  send(task_of(5, 1));
  send(task_of(6, 2));  // pipelined behind it: never started
  // Half a result frame, then the peer is gone.
  const auto reply = frame(proto::frame_type::result, 5, int_payload(2));
  channel->feed(std::span<const std::byte>(reply).first(10));
  channel->end_peer(0x100, "exited with code 1");
  run();
  BOOST_TEST(owner->results.empty());
  BOOST_TEST_REQUIRE(owner->end.has_value());
  const auto& end = *owner->end;
  BOOST_TEST(!end.failure.has_value());  // crew did not give up on it: it crashed
  BOOST_TEST(end.how ==
             "exited with code 1; its channel ended in the middle of a frame (discarded)");
  BOOST_TEST(end.status == 0x100);
  BOOST_TEST_REQUIRE(end.running.has_value());
  BOOST_TEST(end.running->id == 5u);
  BOOST_TEST_REQUIRE(end.unstarted.size() == 1u);
  BOOST_TEST(end.unstarted[0].id == 6u);
}

BOOST_FIXTURE_TEST_CASE(a_task_the_peer_never_read_goes_back_untouched, fixture) {
  channel->feed(hello_frame());
  send(task_of(5, 1));
  channel->unread = channel->sent.size();  // every byte still waiting in the channel
  channel->end_peer(0, "exited with code 0");
  run();
  BOOST_TEST_REQUIRE(owner->end.has_value());
  BOOST_TEST(!owner->end->running.has_value());
  BOOST_TEST_REQUIRE(owner->end->unstarted.size() == 1u);
  BOOST_TEST(owner->end->unstarted[0].id == 5u);
}

BOOST_FIXTURE_TEST_CASE(a_task_past_its_deadline_climbs_the_overdue_ladder, fixture) {
  channel->feed(hello_frame());
  send(task_of(9, 1, milliseconds(20)));
  run();  // the deadline, then shutdown_grace (50 ms) to SIGKILL
  BOOST_TEST_REQUIRE(channel->steps.size() == 2u);
  BOOST_TEST((channel->steps[0] == policy::stop_step::terminate));
  BOOST_TEST((channel->steps[1] == policy::stop_step::kill));
  BOOST_TEST_REQUIRE(owner->end.has_value());
  BOOST_TEST(owner->end->failure->first == crew::errc::task_timeout);
  BOOST_TEST(owner->end->running->id == 9u);
}

BOOST_FIXTURE_TEST_CASE(stop_asks_the_channel_to_close_input_first, fixture) {
  channel->feed(hello_frame());
  session->stop();
  BOOST_TEST(session->current() == worker_session::state::stopping);
  BOOST_TEST_REQUIRE(channel->steps.size() == 1u);
  BOOST_TEST((channel->steps[0] == policy::stop_step::close_input));
  BOOST_TEST(!session->accepts(1));
  channel->end_peer(0, "exited with code 0");
  run();
  BOOST_TEST(channel->steps.size() == 1u);  // it went: no SIGTERM followed
  BOOST_TEST_REQUIRE(owner->end.has_value());
  BOOST_TEST(owner->end->stopping);
}

// Issue 14, finding 3: a hello over its limit is the worker's violation, a boot failure,
// refused from its header before its payload is buffered.
BOOST_FIXTURE_TEST_CASE(a_hello_over_its_limit_is_refused_from_its_header, fixture) {
  proto::hello h;
  h.pid = 4242;
  for (int i = 0; h.jobs.size() < 150'000; ++i)
    h.jobs.push_back({"j" + std::to_string(i), "i32(i32)"});
  const bytes big = frame(proto::frame_type::hello, 0, proto::encode_hello(h));
  BOOST_TEST_REQUIRE(big.size() > proto::header_size + proto::max_hello_payload);
  channel->feed(std::span<const std::byte>(big).first(proto::header_size + 100));
  BOOST_TEST(!session->alive());
  BOOST_TEST(owner->ready == 0);
  run();
  BOOST_TEST_REQUIRE(owner->end.has_value());
  BOOST_TEST(!owner->end->booted);
  BOOST_TEST_REQUIRE(owner->end->failure.has_value());
  BOOST_TEST(owner->end->failure->first == crew::errc::protocol_error);
  BOOST_TEST(owner->end->failure->second.find("bad hello: a hello of " +
                                              std::to_string(big.size() - proto::header_size) +
                                              " bytes, more than the limit of 1048576 "
                                              "(max_hello_payload)") != std::string::npos,
             owner->end->failure->second);
}

// Issue 14, finding 3: an allocation failure while the coordinator handles a worker's frame
// escaped as std::bad_alloc (std::terminate from a handler). It is that worker's violation.
BOOST_FIXTURE_TEST_CASE(an_allocation_failure_handling_a_frame_is_a_violation, fixture) {
  channel->feed(hello_frame());
  send(task_of(7, 21));
  owner->out_of_memory = true;
  BOOST_CHECK_NO_THROW(channel->feed(frame(proto::frame_type::result, 7, int_payload(42))));
  BOOST_TEST(!session->alive());
  run();
  BOOST_TEST_REQUIRE(owner->end.has_value());
  BOOST_TEST_REQUIRE(owner->end->failure.has_value());
  BOOST_TEST(owner->end->failure->first == crew::errc::protocol_error);
  BOOST_TEST(
      owner->end->failure->second.find("the coordinator could not allocate") != std::string::npos,
      owner->end->failure->second);
}

// Issue 14, finding 6: the frame deadline was re-armed by every byte, so a frame trickled a
// byte at a time held its task forever. It counts from the frame's first byte now.
BOOST_AUTO_TEST_CASE(a_frame_trickled_past_frame_timeout_is_a_violation) {
  fixture f(milliseconds(300));
  f.channel->feed(hello_frame());
  f.send(task_of(5, 1));
  bytes header = frame(proto::frame_type::result, 5, {});
  const std::uint32_t length = 1 << 20;
  std::memcpy(header.data() + 16, &length, 4);
  f.channel->feed(header);
  // A byte every 100 ms: each well within frame_timeout of the last, for 2 s in all.
  for (int i = 0; i < 20 && f.session->alive(); ++i) {
    const std::byte b{0};
    f.channel->feed({&b, 1});
    f.ioc.restart();
    f.ioc.run_for(milliseconds(100));
  }
  BOOST_TEST(!f.session->alive());  // cut, after 300 ms, not at the end of the trickle
  f.run();
  BOOST_TEST_REQUIRE(f.owner->end.has_value());
  BOOST_TEST_REQUIRE(f.owner->end->failure.has_value());
  BOOST_TEST(f.owner->end->failure->first == crew::errc::protocol_error);
  BOOST_TEST(f.owner->end->failure->second ==
             "protocol violation: it began a frame and did not finish it within 300 ms "
             "(frame_timeout)");
  BOOST_TEST_REQUIRE(f.owner->end->running.has_value());
  BOOST_TEST(f.owner->end->running->id == 5u);
}

// Frames that end while the next begins in the same read: the next one gets its own
// deadline, and frames that keep coming whole are never cut.
BOOST_AUTO_TEST_CASE(each_frame_gets_its_own_deadline) {
  fixture f(milliseconds(300));
  f.channel->feed(hello_frame());
  for (std::uint64_t id = 1; id <= 6; ++id) {
    f.send(task_of(id, 1));
    // The reply comes in two halves 200 ms apart: within frame_timeout per frame, longer
    // than it over the six.
    const bytes reply = frame(proto::frame_type::result, id, int_payload(2));
    f.channel->feed(std::span<const std::byte>(reply).first(10));
    f.ioc.restart();
    f.ioc.run_for(milliseconds(200));
    f.channel->feed(std::span<const std::byte>(reply).subspan(10));
  }
  BOOST_TEST(f.session->alive());
  BOOST_TEST(f.owner->results.size() == 6u);
}

}  // namespace

// --- heartbeats (a worker on stdio, docs/protocol.md §10) ---------------------------------

bytes heartbeat_hello() {
  proto::hello h;
  h.pid = 4242;
  h.jobs = {{"double_it", "i32(i32)"}};
  return frame(proto::frame_type::hello, 0, proto::encode_hello(h), proto::flag_heartbeat);
}

struct heartbeat_fixture : fixture {
  heartbeat_fixture() : fixture(milliseconds(10000), milliseconds(40), milliseconds(240)) {}
  // Runs the strand for about `total`, answering each new ping with a pong if `answer`.
  void run_for(milliseconds total, bool answer) {
    const auto until = std::chrono::steady_clock::now() + total;
    while (std::chrono::steady_clock::now() < until) {
      ioc.restart();
      ioc.run_for(milliseconds(10));
      for (; answer && answered_pings < pings(); ++answered_pings)
        channel->feed(frame(proto::frame_type::pong, answered_pings + 1, {}));
    }
  }
  std::uint64_t pings() const {
    std::uint64_t n = 0;
    for (const auto& f : channel->frames())
      n += f.first.type == proto::frame_type::ping ? 1 : 0;
    return n;
  }
  std::uint64_t answered_pings = 0;
};

BOOST_FIXTURE_TEST_CASE(a_worker_that_answers_its_pings_is_never_lost, heartbeat_fixture) {
  channel->feed(heartbeat_hello());
  send(task_of(7, 1));  // a long task: the worker sends nothing but pongs
  run_for(milliseconds(800), true);
  BOOST_TEST(pings() >= 5u);  // at least one per 1.5 intervals, busy or idle
  BOOST_TEST(channel->steps.empty());
  BOOST_TEST(session->alive());
  channel->feed(frame(proto::frame_type::result, 7, int_payload(2)));
  BOOST_TEST(owner->results.size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_silent_worker_is_lost_after_the_deadline, heartbeat_fixture) {
  channel->feed(heartbeat_hello());
  send(task_of(7, 1));
  run_for(milliseconds(800), false);
  BOOST_TEST_REQUIRE(!channel->steps.empty());
  BOOST_TEST(channel->steps.back() == policy::stop_step::kill);
  run();
  BOOST_TEST_REQUIRE(owner->end.has_value());
  BOOST_TEST_REQUIRE(owner->end->failure.has_value());
  BOOST_TEST(owner->end->failure->first == crew::errc::worker_lost);
  BOOST_TEST(owner->end->failure->second.find("heartbeat_timeout") != std::string::npos);
  BOOST_TEST(owner->end->running.has_value());  // the task it was running, for the supervisor
}

BOOST_FIXTURE_TEST_CASE(a_stalled_strand_asks_before_it_declares_a_worker_lost, heartbeat_fixture) {
  channel->feed(heartbeat_hello());
  run_for(milliseconds(100), true);
  // The strand is blocked for longer than the deadline (a long handler of the user's):
  // nothing was heard meanwhile, but nothing was asked either.
  asio::post(strand, [] { std::this_thread::sleep_for(milliseconds(400)); });
  ioc.restart();
  ioc.run_one();
  const auto before = pings();
  run_for(milliseconds(60), false);
  BOOST_TEST(pings() > before);        // it asks first ...
  BOOST_TEST(channel->steps.empty());  // ... and does not condemn
  run_for(milliseconds(400), true);    // the answer comes: all is well
  BOOST_TEST(channel->steps.empty());
  BOOST_TEST(session->alive());
}

BOOST_FIXTURE_TEST_CASE(a_pong_that_answers_no_ping_is_a_violation, heartbeat_fixture) {
  channel->feed(heartbeat_hello());
  channel->feed(frame(proto::frame_type::pong, 5, {}));
  BOOST_TEST_REQUIRE(!channel->steps.empty());
  BOOST_TEST(channel->steps.back() == policy::stop_step::kill);
}

BOOST_FIXTURE_TEST_CASE(a_worker_without_the_flag_gets_no_ping, heartbeat_fixture) {
  channel->feed(hello_frame());  // no flag_heartbeat
  run_for(milliseconds(400), false);
  BOOST_TEST(pings() == 0u);
  BOOST_TEST(channel->steps.empty());
  BOOST_TEST(session->alive());
}
