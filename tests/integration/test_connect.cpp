// Connect-back (process_pool_options::listen; docs/remote.md "Connect-back", docs/protocol.md
// §11), on this machine over 127.0.0.1: workers that connect to a listening pool, brought
// by its launch_once command or started by the test itself, as a Kubernetes Job or a shell
// loop would. What a user relies on: results as from local workers, extra workers told no,
// placement in events; and the security promises: a peer without the secret — wrong
// secret, none, a replayed handshake, garbage, an oversized first message, silence, a
// burst of connections, a disconnect mid-handshake — is refused and counted and changes
// nothing for tasks and workers; the secret never shows in `ps` or the output; with TLS no
// argument crosses loopback in the clear. Faults: a worker killed mid-task, stopped
// (SIGSTOP: lost after the heartbeat deadline), its connection cut; the pool gone (every
// worker exits by itself).
#include <crew/process_pool.hpp>

#include "../../lib/src/connect/auth.hpp"
#include "../../worker/demo_jobs.hpp"
#include "fault_jobs.hpp"
#include "pool_fixture.hpp"
#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace std::chrono_literals;
using namespace crew::test;

namespace {

// Two workers from one launch_once command (sh runs the worker twice; its path is $0).
const std::vector<std::string> two_workers{"sh", "-c", "\"$0\" & \"$0\" & wait"};

crew::process_pool_options listening(std::size_t workers, std::vector<std::string> once = {}) {
  crew::process_pool_options o;
  o.workers = workers;
  o.executable = CREW_WORKER_PATH;
  o.listen.address = "127.0.0.1";
  o.listen.launch_once = std::move(once);
  o.listen.connect_timeout = 30s;
  return o;
}

// Events, collected from the pool's strand.
struct event_log {
  std::mutex m;
  std::vector<crew::event_kind> kinds;
  std::vector<std::string> hosts, refusals;
  crew::event_handler handler() {
    return [this](const crew::event& e) {
      std::lock_guard lock(m);
      kinds.push_back(e.kind);
      if (e.kind == crew::event_kind::worker_spawned) hosts.emplace_back(e.host);
      if (e.kind == crew::event_kind::peer_refused) refusals.emplace_back(e.message);
    };
  }
  std::vector<std::string> refused() {
    std::lock_guard lock(m);
    return refusals;
  }
};

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// One worker from launch_once (env runs it once).
const std::vector<std::string> one_worker{"env"};

// A TCP connection to the pool made by the test: a peer that may or may not know the secret.
class raw_peer {
 public:
  explicit raw_peer(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~raw_peer() { close(); }
  raw_peer(const raw_peer&) = delete;
  raw_peer& operator=(const raw_peer&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const void* p, std::size_t n) {
    const auto* b = static_cast<const char*>(p);
    while (n > 0) {
      const auto w = ::send(fd_, b, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      b += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }
  // Exactly n bytes within `limit`, else false.
  bool receive(void* p, std::size_t n, std::chrono::milliseconds limit = 10s) {
    auto* b = static_cast<char*>(p);
    const auto until = std::chrono::steady_clock::now() + limit;
    while (n > 0) {
      pollfd q{fd_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || ::poll(&q, 1, static_cast<int>(left.count())) <= 0) return false;
      const auto r = ::recv(fd_, b, n, 0);
      if (r <= 0) return false;
      b += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }
  // Whether the pool closes the connection within `limit` (what it sent before is skipped).
  bool closed_by_pool(std::chrono::milliseconds limit = 10s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    char b[4096];
    for (;;) {
      pollfd q{fd_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || ::poll(&q, 1, static_cast<int>(left.count())) <= 0) return false;
      const auto r = ::recv(fd_, b, sizeof b, 0);
      if (r <= 0) return true;
    }
  }
  std::optional<crew::detail::auth::greeting> greeting() {
    std::array<std::byte, crew::detail::auth::greeting_size> g{};
    if (!receive(g.data(), g.size())) return {};
    return crew::detail::auth::decode_greeting(g);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// A worker started by the test (not by the pool), as a Kubernetes Job or a shell loop
// would: `env` entries on top of ours, its stderr captured.
class outside_worker {
 public:
  outside_worker(const char* path, std::vector<std::string> env, std::vector<std::string> args = {}) {
    int err[2];
    BOOST_REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "CREW_", 5) != 0) envs.emplace_back(*e);
    envs.insert(envs.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& e : envs)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    args.insert(args.begin(), path);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, err[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    const int rc = ::posix_spawn(&pid_, path, &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(err[1]);
    err_ = err[0];
    BOOST_REQUIRE(rc == 0);
  }
  ~outside_worker() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(err_);
  }
  int pid() const { return pid_; }
  // Its exit code (-1 if it did not exit within `limit`, or was killed), and its output.
  int wait(std::chrono::milliseconds limit = 30s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) return -1;
      std::this_thread::sleep_for(5ms);
    }
    pid_ = -1;
    drain();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  const std::string& output() {
    drain();
    return out_;
  }

 private:
  void drain() {
    char b[4096];
    for (;;) {
      pollfd q{err_, POLLIN, 0};
      if (::poll(&q, 1, 0) <= 0) return;
      const auto n = ::read(err_, b, sizeof b);
      if (n <= 0) return;
      out_.append(b, static_cast<std::size_t>(n));
    }
  }
  pid_t pid_ = -1;
  int err_ = -1;
  std::string out_;
};

std::string connect_env(const crew::process_pool& pool) {
  return "CREW_CONNECT=127.0.0.1:" + std::to_string(pool.listen_port());
}

// A tap on loopback between one worker and the pool: it accepts the worker's connection,
// connects to the pool, passes bytes both ways and keeps every byte it saw (what a capture
// of the loopback traffic would hold). cut() ends both connections at once, as a broken
// link would.
class tap {
 public:
  explicit tap(std::uint16_t pool_port) : pool_port_(pool_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::listen(listener_, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::pipe2(wake_, O_CLOEXEC);
    thread_ = std::thread([this] { run(); });
  }
  ~tap() {
    cut();
    thread_.join();
    ::close(listener_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }
  std::string connect_env() const { return "CREW_CONNECT=127.0.0.1:" + std::to_string(port_); }
  void cut() {
    if (!cut_.exchange(true)) {
      const char c = 0;
      (void)!::write(wake_[1], &c, 1);
    }
  }
  std::string seen() {
    std::lock_guard lock(m_);
    return seen_;
  }

 private:
  void run() {
    pollfd first[2]{{listener_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(first, 2, 30000) <= 0 || (first[1].revents & POLLIN)) return;
    const int worker = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    const int pool = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(pool_port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (worker < 0 || ::connect(pool, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    char b[65536];
    bool open[2] = {true, true};
    while (open[0] || open[1]) {
      pollfd q[3]{{worker, static_cast<short>(open[0] ? POLLIN : 0), 0},
                  {pool, static_cast<short>(open[1] ? POLLIN : 0), 0},
                  {wake_[0], POLLIN, 0}};
      if (::poll(q, 3, -1) < 0 || (q[2].revents & POLLIN)) break;
      for (int i = 0; i < 2; ++i) {
        if (!(q[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const int from = i == 0 ? worker : pool, to = i == 0 ? pool : worker;
        const auto n = ::recv(from, b, sizeof b, 0);
        if (n <= 0) {
          open[i] = false;
          ::shutdown(to, SHUT_WR);
          continue;
        }
        {
          std::lock_guard lock(m_);
          seen_.append(b, static_cast<std::size_t>(n));
        }
        for (ssize_t off = 0; off < n;) {
          const auto w = ::send(to, b + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
          if (w <= 0) break;
          off += w;
        }
      }
    }
    ::shutdown(worker, SHUT_RDWR);
    ::shutdown(pool, SHUT_RDWR);
    ::close(worker);
    ::close(pool);
  }

  std::uint16_t pool_port_;
  std::uint16_t port_ = 0;
  int listener_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> cut_{false};
  std::mutex m_;
  std::string seen_;
  std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(connect_back, *boost::unit_test::timeout(120))

BOOST_FIXTURE_TEST_CASE(workers_brought_by_launch_once_give_the_results_of_local_ones, io_fixture) {
  event_log log;
  auto o = listening(2, two_workers);
  o.on_event = log.handler();
  crew::process_pool pool(ioc.get_executor(), o);
  BOOST_TEST(pool.listen_port() != 0);
  BOOST_TEST(pool.secret().size() == 64u);
  BOOST_TEST(pool.submit(crew::demo::identity(41)).get() == 41);
  BOOST_TEST(pool.submit(crew::demo::echo(std::string("a\0b", 3))).get() == std::string("a\0b", 3));
  std::vector<std::future<double>> f;
  for (int i = 0; i < 4; ++i)
    f.push_back(pool.submit(crew::demo::long_comp(i)));
  for (auto& x : f)
    BOOST_TEST(x.get() == 2236.5678097446853);
  pool.join();
  BOOST_TEST(pool.peers_refused() == 0u);
  std::lock_guard lock(log.m);
  BOOST_TEST(log.hosts.size() == 2u);
  for (const auto& h : log.hosts)
    BOOST_TEST(!h.empty());
}

BOOST_FIXTURE_TEST_CASE(workers_started_elsewhere_take_free_slots_and_extra_ones_are_told_no,
                        io_fixture) {
  auto o = listening(1);
  o.listen.secret = "a secret of the test, 35 bytes long";
  crew::process_pool pool(ioc.get_executor(), o);
  // Tasks wait in the queue until a worker arrives.
  auto early = pool.submit(crew::demo::identity(7));
  BOOST_TEST((early.wait_for(200ms) == std::future_status::timeout));
  outside_worker first(CREW_WORKER_PATH, {connect_env(pool), "CREW_SECRET=" + o.listen.secret});
  BOOST_TEST(early.get() == 7);
  // The pool has its one worker: a second is told so and exits 0.
  outside_worker second(CREW_WORKER_PATH, {connect_env(pool), "CREW_SECRET=" + o.listen.secret});
  BOOST_TEST(second.wait() == 0);
  BOOST_TEST(contains(second.output(), "has all the workers it wants"), second.output());
  BOOST_TEST(pool.peers_refused() == 1u);
  BOOST_TEST(pool.submit(crew::demo::identity(8)).get() == 8);
  pool.join();
  BOOST_TEST(first.wait() == 0);  // the end of its connection ends it
}

BOOST_FIXTURE_TEST_CASE(a_worker_with_a_wrong_secret_or_none_is_refused_and_changes_nothing,
                        io_fixture) {
  event_log log;
  auto o = listening(1, one_worker);
  o.on_event = log.handler();
  crew::process_pool pool(ioc.get_executor(), o);
  BOOST_TEST(pool.submit(crew::demo::identity(1)).get() == 1);
  // A crew worker with the wrong secret: refused by the pool, and it says why.
  outside_worker wrong(CREW_WORKER_PATH, {connect_env(pool), "CREW_SECRET=not the secret at all, no"});
  BOOST_TEST(wrong.wait() == 6);
  BOOST_TEST(contains(wrong.output(), "the pool closed the connection"), wrong.output());
  // One without any secret does not even connect.
  outside_worker none(CREW_WORKER_PATH, {connect_env(pool)});
  BOOST_TEST(none.wait() == 6);
  BOOST_TEST(contains(none.output(), "no secret"), none.output());
  // A short one is refused by the worker itself.
  outside_worker short_one(CREW_WORKER_PATH, {connect_env(pool), "CREW_SECRET=short"});
  BOOST_TEST(short_one.wait() == 6);
  BOOST_TEST(contains(short_one.output(), "at least 16"), short_one.output());
  // A peer that proves nothing (a zero MAC).
  {
    raw_peer p(pool.listen_port());
    BOOST_REQUIRE(p.connected());
    BOOST_REQUIRE(p.greeting());
    crew::detail::auth::proof zero{};
    const auto bytes = crew::detail::auth::encode(zero);
    BOOST_TEST(p.send(bytes.data(), bytes.size()));
    BOOST_TEST(p.closed_by_pool());
  }
  BOOST_TEST(eventually([&] { return pool.peers_refused() == 2u; }));
  const auto refused = log.refused();
  BOOST_REQUIRE(refused.size() == 2u);
  for (const auto& r : refused) {
    BOOST_TEST(contains(r, "127.0.0.1:"), r);
    BOOST_TEST(contains(r, "wrong secret"), r);
  }
  // The pool's worker and tasks are untouched.
  BOOST_TEST(pool.submit(crew::demo::identity(2)).get() == 2);
  pool.join();
  std::lock_guard lock(log.m);
  BOOST_TEST(std::count(log.kinds.begin(), log.kinds.end(), crew::event_kind::worker_exited) == 1);
}

BOOST_FIXTURE_TEST_CASE(a_replayed_handshake_fails_both_ways, io_fixture) {
  namespace auth = crew::detail::auth;
  auto o = listening(1, one_worker);
  crew::process_pool pool(ioc.get_executor(), o);
  BOOST_TEST(pool.submit(crew::demo::identity(1)).get() == 1);
  // A good handshake, as a worker with the secret makes it (the pool is full, so it is
  // told so; what matters here is what crossed the wire).
  std::array<std::byte, auth::proof_size> recorded{};
  std::array<std::byte, auth::answer_size> recorded_answer{};
  {
    raw_peer p(pool.listen_port());
    const auto g = p.greeting();
    BOOST_REQUIRE(g);
    auth::transcript t;
    t.pool_nonce = g->pool_nonce;
    t.worker_nonce = auth::random_nonce();
    recorded = auth::encode(auth::proof{t.worker_nonce, auth::worker_mac(pool.secret(), t)});
    BOOST_TEST(p.send(recorded.data(), recorded.size()));
    BOOST_REQUIRE(p.receive(recorded_answer.data(), recorded_answer.size()));
    const auto a = auth::decode_answer(recorded_answer);
    BOOST_REQUIRE(a);
    BOOST_TEST(auth::equal(a->tag, auth::pool_mac(pool.secret(), t, *a)));
  }
  // The recorded proof, replayed to the pool on a new connection: a new nonce, refused.
  {
    raw_peer p(pool.listen_port());
    BOOST_REQUIRE(p.greeting());
    BOOST_TEST(p.send(recorded.data(), recorded.size()));
    BOOST_TEST(p.closed_by_pool());
  }
  BOOST_TEST(eventually([&] { return pool.peers_refused() == 2u; }));  // full, then replayed
  // The recorded answer, replayed to a worker by a fake pool: the worker's own nonce is
  // new, so the answer proves nothing and the worker leaves.
  {
    int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::listen(l, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    outside_worker victim(CREW_WORKER_PATH, {"CREW_CONNECT=127.0.0.1:" + std::to_string(ntohs(a.sin_port)),
                                             "CREW_SECRET=" + pool.secret()});
    const int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    BOOST_REQUIRE(c >= 0);
    const auto greeting = auth::encode(auth::greeting{false, auth::random_nonce()});
    BOOST_TEST(::send(c, greeting.data(), greeting.size(), MSG_NOSIGNAL) == static_cast<long>(greeting.size()));
    std::array<std::byte, auth::proof_size> proof{};
    BOOST_TEST(::recv(c, proof.data(), proof.size(), MSG_WAITALL) == static_cast<long>(proof.size()));
    BOOST_TEST(::send(c, recorded_answer.data(), recorded_answer.size(), MSG_NOSIGNAL) ==
               static_cast<long>(recorded_answer.size()));
    BOOST_TEST(victim.wait() == 6);
    BOOST_TEST(contains(victim.output(), "does not prove the secret"), victim.output());
    ::close(c);
    ::close(l);
  }
  BOOST_TEST(pool.submit(crew::demo::identity(2)).get() == 2);
  pool.join();
}

BOOST_FIXTURE_TEST_CASE(garbage_an_oversized_first_message_silence_and_a_half_handshake_are_refused,
                        io_fixture) {
  event_log log;
  auto o = listening(1, one_worker);
  o.listen.auth_timeout = 500ms;
  o.on_event = log.handler();
  crew::process_pool pool(ioc.get_executor(), o);
  BOOST_TEST(pool.submit(crew::demo::identity(1)).get() == 1);
  {
    raw_peer p(pool.listen_port());  // garbage: an HTTP request
    const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(100, 'x');
    BOOST_TEST(p.send(get.data(), get.size()));
    BOOST_TEST(p.closed_by_pool());
  }
  {
    raw_peer p(pool.listen_port());  // an oversized first message: 16 MiB
    const std::vector<char> big(std::size_t{16} << 20, 'A');
    p.send(big.data(), big.size());  // the pool closes early: the send may fail
    BOOST_TEST(p.closed_by_pool());
  }
  {
    raw_peer p(pool.listen_port());  // silence
    BOOST_TEST(p.connected());
    BOOST_TEST(p.closed_by_pool(5s));
  }
  {
    raw_peer p(pool.listen_port());  // half a proof, then gone
    BOOST_REQUIRE(p.greeting());
    const std::array<std::byte, 30> half{};
    BOOST_TEST(p.send(half.data(), half.size()));
  }
  BOOST_TEST(eventually([&] { return pool.peers_refused() == 4u; }));
  const auto refused = log.refused();
  BOOST_REQUIRE(refused.size() == 4u);
  BOOST_TEST(contains(refused[0], "not a crew worker"), refused[0]);
  BOOST_TEST(contains(refused[1], "not a crew worker"), refused[1]);
  BOOST_TEST(contains(refused[2], "within 500 ms"), refused[2]);
  BOOST_TEST(contains(refused[3], "disconnected during the handshake"), refused[3]);
  BOOST_TEST(pool.submit(crew::demo::identity(2)).get() == 2);
  pool.join();
}

BOOST_FIXTURE_TEST_CASE(with_tls_no_argument_crosses_loopback_in_the_clear, io_fixture) {
  const std::string marker = "plaintext-marker-4f1d9c0a-which-must-not-be-seen";
  for (const bool tls : {false, true}) {
    BOOST_TEST_CONTEXT("tls " << tls) {
      auto o = listening(1);
      o.listen.tls = tls;
      o.listen.secret = "the secret of the tls test case";
      crew::process_pool pool(ioc.get_executor(), o);
      tap t(pool.listen_port());
      outside_worker w(CREW_WORKER_PATH, {t.connect_env(), "CREW_SECRET=" + o.listen.secret});
      BOOST_TEST(pool.submit(crew::demo::echo(marker)).get() == marker);
      const std::string big(std::size_t{4} << 20, 'z');
      BOOST_TEST(pool.submit(crew::demo::echo(big)).get() == big);
      pool.join();
      BOOST_TEST(w.wait() == 0);
      const auto seen = t.seen();
      BOOST_TEST(seen.size() > 2 * big.size());  // the tap saw the traffic both ways
      // Without TLS the capture holds the argument (the tap works); with it, it does not,
      // nor the secret, which never crosses the wire either way.
      BOOST_TEST(contains(seen, marker) == !tls);
      BOOST_TEST(!contains(seen, o.listen.secret));
    }
  }
}

BOOST_FIXTURE_TEST_CASE(the_secret_never_shows_in_ps_or_in_any_output, io_fixture) {
  std::mutex m;
  std::string everything;
  auto o = listening(2, two_workers);
  o.executable = CREW_FAULT_WORKER_PATH;
  o.on_output = [&](const crew::output_line& l) {
    std::lock_guard lock(m);
    everything += std::string(l.text) + "\n";
  };
  o.on_event = [&](const crew::event& e) {
    std::lock_guard lock(m);
    everything += std::string(e.message) + std::string(e.host) + "\n";
  };
  crew::process_pool pool(ioc.get_executor(), o);
  const int worker_pid = pool.submit(crew::test::pid_then_sleep(0)).get();
  BOOST_TEST(worker_pid > 0);
  // Not in its environment block either (/proc/PID/environ shows the one it started with).
  {
    std::ifstream f("/proc/" + std::to_string(worker_pid) + "/environ", std::ios::binary);
    const std::string environ_text((std::istreambuf_iterator<char>(f)),
                                   std::istreambuf_iterator<char>());
    BOOST_TEST(!contains(environ_text, pool.secret()));
  }
  outside_worker wrong(CREW_WORKER_PATH, {connect_env(pool), "CREW_SECRET=not the secret, and long"});
  BOOST_TEST(wrong.wait() == 6);
  // Every process's command line (ps shows them to everyone): the workers', the shell's.
  bool seen_in_ps = false;
  for (const auto& d : std::filesystem::directory_iterator("/proc")) {
    std::ifstream f(d.path() / "cmdline", std::ios::binary);
    const std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (contains(cmdline, pool.secret())) seen_in_ps = true;
  }
  BOOST_TEST(!seen_in_ps);
  // A worker's own environment no longer holds it (a job's children cannot inherit it).
  BOOST_TEST(pool.submit(crew::test::getenv_of(std::string("CREW_SECRET"))).get() == "<unset>");
  pool.join();
  std::lock_guard lock(m);
  BOOST_TEST(!contains(everything, pool.secret()));
  BOOST_TEST(!contains(wrong.output(), pool.secret()));
}

BOOST_FIXTURE_TEST_CASE(a_burst_of_1000_connections_is_refused_while_tasks_run, io_fixture) {
  auto o = listening(1, one_worker);
  o.listen.auth_timeout = 1000ms;
  o.listen.max_pending = 64;
  crew::process_pool pool(ioc.get_executor(), o);
  BOOST_TEST(pool.submit(crew::demo::identity(0)).get() == 0);
  std::atomic<bool> done{false};
  std::atomic<int> answered{0};
  std::thread tasks([&] {  // the pool serves all along
    for (int i = 0; !done; ++i)
      if (pool.submit(crew::demo::identity(i)).get() == i) ++answered;
  });
  // 1000 connections opened as fast as the kernel takes them, held open (silent, or with a
  // few bytes of garbage), then dropped.
  std::vector<std::unique_ptr<raw_peer>> peers;
  for (int i = 0; i < 1000; ++i) {
    peers.push_back(std::make_unique<raw_peer>(pool.listen_port()));
    if (i % 3 == 0) peers.back()->send("hello?", 6);
  }
  std::size_t made = 0;
  for (const auto& p : peers)
    made += p->connected();
  BOOST_TEST(made == 1000u);
  std::this_thread::sleep_for(200ms);
  peers.clear();
  BOOST_TEST(eventually([&] { return pool.peers_refused() == 1000u; }, 30s),
             pool.peers_refused() << " refused");
  done = true;
  tasks.join();
  BOOST_TEST(answered.load() > 0);
  BOOST_TEST(pool.submit(crew::demo::identity(5)).get() == 5);
  const auto pids = pool.pids();
  BOOST_TEST(pids.size() == 1u);  // the launch_once command, still there: no worker lost
  pool.join();
}

BOOST_FIXTURE_TEST_CASE(a_connected_worker_killed_or_stopped_mid_task_fails_it_over, io_fixture) {
  for (const int sig : {SIGKILL, SIGSTOP}) {
    BOOST_TEST_CONTEXT("signal " << sig) {
      std::mutex m;
      std::vector<int> started;  // "worker pid N", printed by pid_then_sleep as it starts
      std::vector<crew::errc> retried;
      auto o = listening(2, two_workers);
      o.on_event = [&](const crew::event& e) {
        std::lock_guard lock(m);
        if (e.kind == crew::event_kind::task_retried) retried.push_back(e.error);
      };
      o.executable = CREW_FAULT_WORKER_PATH;
      o.retries = 1;
      o.heartbeat_interval = 100ms;
      o.heartbeat_timeout = 600ms;
      o.on_output = [&](const crew::output_line& l) {
        const std::string_view prefix = "worker pid ";
        if (l.text.substr(0, prefix.size()) != prefix) return;
        std::lock_guard lock(m);
        started.push_back(std::atoi(std::string(l.text.substr(prefix.size())).c_str()));
      };
      crew::process_pool pool(ioc.get_executor(), o);
      // Both workers there (two tasks at once), then a long task on one of them.
      auto a = pool.submit(crew::test::pid_then_sleep(300));
      auto b = pool.submit(crew::test::pid_then_sleep(300));
      const std::set<int> pids{a.get(), b.get()};
      BOOST_REQUIRE(pids.size() == 2u);
      {
        std::lock_guard lock(m);
        started.clear();
      }
      auto victim = pool.submit(crew::test::pid_then_sleep(3000));
      int runs_it = 0;
      BOOST_REQUIRE(eventually([&] {
        std::lock_guard lock(m);
        if (!started.empty()) runs_it = started.front();
        return runs_it != 0;
      }));
      BOOST_REQUIRE(pids.count(runs_it) == 1u);
      const int other = *pids.begin() == runs_it ? *pids.rbegin() : *pids.begin();
      ::kill(runs_it, sig);
      // Killed: its connection ends at once. Stopped: it is lost once silent for 600 ms.
      // Either way the task runs again, on the other worker.
      int got = 0;
      try {
        got = victim.get();
      } catch (const crew::task_error& e) {
        BOOST_ERROR("the task failed: " << e.what());
      }
      BOOST_TEST(got == other);
      BOOST_TEST(pool.submit(crew::test::pid_then_sleep(0)).get() == other);
      pool.join();
      std::lock_guard lock(m);
      BOOST_TEST(retried.size() == 1u);
      if (!retried.empty())
        BOOST_TEST((retried[0] == (sig == SIGKILL ? crew::errc::worker_crashed
                                                  : crew::errc::worker_lost)));
      ::kill(runs_it, SIGKILL);
      ::kill(runs_it, SIGCONT);
    }
  }
}

BOOST_FIXTURE_TEST_CASE(a_cut_connection_fails_the_task_over_and_ends_the_worker, io_fixture) {
  auto o = listening(2);
  o.executable = CREW_FAULT_WORKER_PATH;
  o.retries = 1;
  o.listen.secret = "the secret of the cut connection test";
  crew::process_pool pool(ioc.get_executor(), o);
  tap t(pool.listen_port());
  outside_worker cut_one(CREW_FAULT_WORKER_PATH, {t.connect_env(), "CREW_SECRET=" + o.listen.secret});
  const int cut_pid = pool.submit(crew::test::pid_then_sleep(0)).get();
  BOOST_TEST(cut_pid == cut_one.pid());
  auto task = pool.submit(crew::test::pid_then_sleep(2000));
  std::this_thread::sleep_for(300ms);
  t.cut();
  // The worker sees the end of its connection and exits; the pool retries the task on
  // the next worker to connect.
  BOOST_TEST(cut_one.wait(10s) == 0, cut_one.output());
  outside_worker other(CREW_FAULT_WORKER_PATH, {connect_env(pool), "CREW_SECRET=" + o.listen.secret});
  BOOST_TEST(task.get() == other.pid());
  pool.join();
  BOOST_TEST(other.wait() == 0);
}

BOOST_FIXTURE_TEST_CASE(no_worker_within_the_start_up_deadline_or_a_failed_launcher_stops_the_pool,
                        io_fixture) {
  {
    auto o = listening(2);
    o.listen.secret = "nobody comes to this pool, ever";
    o.listen.connect_timeout = 500ms;
    crew::process_pool pool(ioc.get_executor(), o);
    auto e = failure_of(pool.submit(crew::demo::identity(1)));
    BOOST_TEST(e.code() == crew::make_error_code(crew::errc::worker_boot_failed));
    BOOST_TEST(contains(e.message(), "no worker connected to 127.0.0.1:"), e.message());
    BOOST_TEST(contains(e.message(), "within 500 ms"), e.message());
    pool.join();
  }
  {
    auto o = listening(2, {"sh", "-c", "echo 'srun: error: no such partition' >&2; exit 1"});
    crew::process_pool pool(ioc.get_executor(), o);
    auto e = failure_of(pool.submit(crew::demo::identity(1)));
    BOOST_TEST(e.code() == crew::make_error_code(crew::errc::worker_boot_failed));
    BOOST_TEST(contains(e.message(), "exited with code 1 before any worker connected"), e.message());
    BOOST_TEST(contains(e.message(), "no such partition"), e.message());
    pool.join();
  }
  // Options that cannot work are refused when the pool is made.
  auto o = listening(0);
  BOOST_CHECK_THROW(crew::process_pool(ioc.get_executor(), o), std::invalid_argument);
  o = listening(1);
  o.listen.secret = "short";
  BOOST_CHECK_THROW(crew::process_pool(ioc.get_executor(), o), std::invalid_argument);
  o = listening(1);
  o.transport = crew::transport::shm;
  BOOST_CHECK_THROW(crew::process_pool(ioc.get_executor(), o), std::invalid_argument);
  o = listening(1);
  o.listen.address = "this.name.does.not.resolve.invalid";
  BOOST_CHECK_THROW(crew::process_pool(ioc.get_executor(), o), std::invalid_argument);
  // A port in use.
  crew::process_pool first(ioc.get_executor(), listening(1, one_worker));
  o = listening(1);
  o.listen.port = first.listen_port();
  BOOST_CHECK_THROW(crew::process_pool(ioc.get_executor(), o), std::system_error);
  first.join();
}

BOOST_FIXTURE_TEST_CASE(workers_arriving_beyond_max_pending_retry_and_all_get_in, io_fixture) {
  event_log log;
  auto o = listening(8, {"sh", "-c", "for i in 1 2 3 4 5 6 7 8; do \"$0\" & done; wait"});
  o.listen.max_pending = 1;  // one handshake at a time: the others are closed and retry
  o.on_event = log.handler();
  crew::process_pool pool(ioc.get_executor(), o);
  BOOST_TEST(eventually(
      [&] {
        std::lock_guard lock(log.m);
        return log.hosts.size() == 8u;
      },
      30s));
  std::vector<std::future<int>> f;
  for (int i = 0; i < 64; ++i)
    f.push_back(pool.submit(crew::demo::identity(i)));
  for (int i = 0; i < 64; ++i)
    BOOST_TEST(f[i].get() == i);
  pool.join();
}

BOOST_FIXTURE_TEST_CASE(a_closed_pool_still_takes_workers_while_it_has_tasks, io_fixture) {
  auto o = listening(1);
  o.listen.secret = "the secret of the closed pool test";
  crew::process_pool pool(ioc.get_executor(), o);
  auto f = pool.submit(crew::demo::identity(3));
  pool.close();  // before any worker arrived
  outside_worker w(CREW_WORKER_PATH, {connect_env(pool), "CREW_SECRET=" + o.listen.secret});
  BOOST_TEST(f.get() == 3);
  pool.join();
  BOOST_TEST(w.wait() == 0);
  // Closed and done: a late worker is told so.
  outside_worker late(CREW_WORKER_PATH, {connect_env(pool), "CREW_SECRET=" + o.listen.secret,
                                         "CREW_CONNECT_TIMEOUT_MS=500"});
  BOOST_TEST(late.wait() == 6);  // nobody listens any more
}

BOOST_AUTO_TEST_SUITE_END()
