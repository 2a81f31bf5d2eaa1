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

BOOST_AUTO_TEST_SUITE_END()
