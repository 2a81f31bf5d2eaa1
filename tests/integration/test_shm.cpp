// The shared-memory transport: same results as the pipe, safe against a hostile worker,
// nothing left in /dev/shm whoever dies.
#include <crew/process_pool.hpp>

#include "demo_jobs.hpp"
#include "fault_jobs.hpp"
#include "pool_fixture.hpp"
#include "shm_segment.hpp"

#include <boost/test/unit_test.hpp>

#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <regex>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using crew::errc;
using namespace crew::test;

extern char** environ;

namespace {

constexpr std::size_t inline_max = 32 * 1024;

crew::process_pool_options options(crew::transport t, const char* exe = CREW_WORKER_PATH) {
  crew::process_pool_options o;
  o.workers = 2;
  o.executable = exe;
  o.on_output = [](const crew::output_line&) {};
  o.transport = t;
  o.shm_area_bytes = (64 << 20) + 4096;  // room for the 64 MiB round trip
  o.shm_inline_max = inline_max;
  return o;
}

// /dev/shm entries that crew processes of this pid created.
std::vector<std::string> our_segments(int pid = ::getpid()) {
  std::vector<std::string> out;
  const std::regex ours("crew-" + std::to_string(pid) + "-[0-9a-f]{16}");
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec))
    if (std::regex_match(e.path().filename().string(), ours)) out.push_back(e.path().string());
  return out;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shm_transport, *boost::unit_test::timeout(300))

BOOST_FIXTURE_TEST_CASE(payloads_of_every_size_round_trip_identically_through_both_transports,
                        io_fixture) {
  // Sizes of the encoded argument (8-byte length prefix + bytes) around the inline limit.
  const std::vector<std::size_t> sizes{0,
                                       1,
                                       inline_max - 8 - 1,
                                       inline_max - 8,
                                       inline_max - 8 + 1,
                                       std::size_t{1} << 20,
                                       std::size_t{64} << 20};
  std::vector<std::string> inputs;
  for (std::size_t k = 0; k < sizes.size(); ++k)
    inputs.push_back(random_bytes(sizes[k], unsigned(k)));
  std::vector<double> numbers(1 << 20);
  std::iota(numbers.begin(), numbers.end(), 0.5);
  const double expected_sum = std::accumulate(numbers.begin(), numbers.end(), 0.0);
  for (auto t : {crew::transport::pipe, crew::transport::shm}) {
    crew::process_pool pool(ioc.get_executor(), options(t));
    for (const auto& in : inputs) {
      const std::string out = pool.submit(crew::demo::echo(in)).get();
      BOOST_TEST((out == in), "echo of " << in.size() << " bytes, transport " << int(t));
    }
    // An array read in place by the worker, and the same through a vector.
    BOOST_TEST(pool.submit(crew::demo::sum_view(numbers)).get() == expected_sum);
    BOOST_TEST(pool.submit(crew::demo::sum(numbers)).get() == expected_sum);
    BOOST_TEST(our_segments().empty());  // unlinked as soon as they were mapped
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(payloads_larger_than_the_areas_go_through_the_pipe, io_fixture) {
  {
    auto o = options(crew::transport::shm);
    o.shm_area_bytes = 64 * 1024;
    crew::process_pool pool(ioc.get_executor(), o);
    const std::string big = random_bytes(1 << 20, 7);
    BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(bad_descriptors_kill_the_worker_and_fail_the_task, io_fixture) {
  {
    crew::process_pool pool(ioc.get_executor(),
                            options(crew::transport::shm, CREW_FAULT_WORKER_PATH));
    for (int kind : {0, 1, 2}) {
      auto e = failure_of(pool.submit(crew::test::bad_descriptor(kind)));
      BOOST_TEST(e.code() == make_error_code(errc::protocol_error), "kind " << kind);
      BOOST_TEST(e.message().find("shared-memory descriptor") != std::string::npos, e.message());
      // The coordinator survives and the pool goes on with a fresh worker.
      BOOST_TEST(pool.submit(crew::demo::identity(kind)).get() == kind);
    }
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(a_worker_scribbling_over_its_segment_cannot_hurt_the_coordinator,
                        io_fixture) {
  {
    auto o = options(crew::transport::shm, CREW_FAULT_WORKER_PATH);
    o.workers = 1;
    crew::process_pool pool(ioc.get_executor(), o);
    const std::string big = random_bytes(1 << 20, 5);
    BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));
    // The response file overwritten: the coordinator copies results out before decoding
    // and checks every descriptor; the request file it cannot touch at all.
    BOOST_TEST(pool.submit(crew::test::scribble(0xff)).get() == 0xff);
    BOOST_TEST(pool.submit(crew::test::attack_request(0)).get() == 4);
    BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(a_worker_shrinking_its_segment_cannot_fault_the_coordinator, io_fixture) {
  {
    auto o = options(crew::transport::shm, CREW_FAULT_WORKER_PATH);
    o.workers = 1;
    crew::process_pool pool(ioc.get_executor(), o);
    // With a mapping this would be SIGBUS in the coordinator; it reads with pread instead.
    auto e = failure_of(pool.submit(crew::test::shrink_segment(0)));
    BOOST_TEST(e.code() == make_error_code(errc::protocol_error));
    const std::string big = random_bytes(1 << 20, 9);
    BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(a_worker_without_shared_memory_support_gets_inline_frames, io_fixture) {
  {
    auto o = options(crew::transport::shm, CREW_FAULT_WORKER_PATH);
    o.args = {"--ignore-shm"};  // serves like a worker written from the pipe-only protocol
    crew::process_pool pool(ioc.get_executor(), o);
    const std::string big = random_bytes(1 << 20, 11);
    BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_FIXTURE_TEST_CASE(a_killed_worker_leaves_no_segment_and_the_pool_goes_on, io_fixture) {
  {
    crew::process_pool pool(ioc.get_executor(),
                            options(crew::transport::shm, CREW_FAULT_WORKER_PATH));
    const std::string big = random_bytes(1 << 20, 3);
    BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));
    auto e = failure_of(pool.submit(crew::test::crash(SIGKILL)));
    BOOST_TEST(e.code() == make_error_code(errc::worker_crashed));
    BOOST_TEST((pool.submit(crew::demo::echo(big)).get() == big));  // on a fresh worker
    BOOST_TEST(our_segments().empty());
    pool.join();
  }
  expect_no_leaks(fds_before);
}

BOOST_AUTO_TEST_CASE(a_killed_coordinator_leaves_no_worker_and_no_segment) {
  // A real coordinator (the crew CLI) running shm tasks, killed with SIGKILL.
  const std::vector<std::string> args{
      CREW_CLI_PATH, "run", "--job",      "long_io", "--range",     "0:8", "--mode", "processes",
      "--workers",   "2",   "--io-scale", "0.25",    "--transport", "shm", "--json"};
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t cli = -1;
  BOOST_REQUIRE(::posix_spawn(&cli, argv[0], &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  // Wait for its two workers.
  std::vector<int> workers;
  for (int i = 0; i < 500 && workers.size() < 2; ++i) {
    workers.clear();
    for (int pid : children_of(cli))
      workers.push_back(pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_REQUIRE(workers.size() == 2u);
  ::kill(cli, SIGKILL);
  ::waitpid(cli, nullptr, 0);
  bool gone = false;
  for (int i = 0; i < 250 && !gone; ++i) {  // "within a few seconds"
    gone = true;
    for (int pid : workers)
      gone = gone && !process_alive(pid);
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  BOOST_TEST(gone);
  BOOST_TEST(our_segments(cli).empty());
}

BOOST_AUTO_TEST_CASE(an_existing_name_is_never_adopted) {
  // A stranger's object under the name crew would pick first.
  const std::string taken = crew::detail::random_shm_name();
  const int fd = ::shm_open(("/" + taken).c_str(), O_CREAT | O_EXCL | O_RDWR, 0644);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(::ftruncate(fd, 4096) == 0);
  BOOST_REQUIRE(::write(fd, "stranger", 8) == 8);
  int calls = 0;
  boost::system::error_code ec;
  std::string why;
  auto seg = crew::detail::shm_segment::create(
      4096, 4096, ec, why, [&] { return ++calls == 1 ? taken : crew::detail::random_shm_name(); });
  BOOST_TEST(!ec, why);
  BOOST_TEST(static_cast<bool>(seg));
  BOOST_TEST(calls == 2);  // the taken name, then the response file's (the request file
                           // is a memfd: it has no name in /dev/shm)
  BOOST_TEST(seg.names().size() == 1u);
  BOOST_TEST(seg.names().at(0) != taken);
  // The stranger's object is untouched: same mode, same bytes, still there.
  struct stat st {};
  BOOST_TEST(::fstat(fd, &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0644u);
  char buf[8] = {};
  BOOST_TEST(::pread(fd, buf, 8, 0) == 8);
  BOOST_TEST(std::string(buf, 8) == "stranger");
  BOOST_TEST(std::filesystem::exists("/dev/shm/" + taken));
  // Ours are private to this user, already unlinked, and laid out as documented; the
  // worker's descriptor of the request file is read-only.
  for (int our_fd : {seg.worker_request_fd(), seg.response_fd()}) {
    BOOST_TEST(::fstat(our_fd, &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_TEST(st.st_uid == ::geteuid());
  }
  for (const auto& n : seg.names())
    BOOST_TEST(!std::filesystem::exists("/dev/shm/" + n));
  BOOST_TEST((::fcntl(seg.worker_request_fd(), F_GETFL) & O_ACCMODE) == O_RDONLY);
  BOOST_TEST(seg.request_size() == 4096u);
  char magic[4] = {};
  BOOST_TEST(::pread(seg.worker_request_fd(), magic, 4, 0) == 4);
  BOOST_TEST(std::memcmp(magic, "CRSH", 4) == 0);
  ::close(fd);
  ::shm_unlink(("/" + taken).c_str());
}

BOOST_AUTO_TEST_CASE(a_full_dev_shm_fails_clearly_at_creation) {
  boost::system::error_code ec;
  std::string why;
  // Far more than /dev/shm holds: refused now, not with SIGBUS on first touch.
  auto seg = crew::detail::shm_segment::create(std::size_t{1} << 44, 4096, ec, why);
  BOOST_TEST(!seg);
  BOOST_TEST(static_cast<bool>(ec));
  BOOST_TEST(why.find("/dev/shm") != std::string::npos, why);
  BOOST_TEST(our_segments().empty());
}

BOOST_AUTO_TEST_CASE(stale_segments_of_dead_crew_processes_are_swept_and_nothing_else) {
  // A dead pid: a child that has exited and been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string stale = "crew-" + std::to_string(dead) + "-0123456789abcdef";
  const std::string alive = "crew-" + std::to_string(::getpid()) + "-fedcba9876543210";
  const std::string other = "not-crew-" + std::to_string(dead) + "-0123456789abcdef";
  for (const auto& n : {stale, alive, other}) {
    const int fd = ::shm_open(("/" + n).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    BOOST_REQUIRE(fd >= 0);
    ::close(fd);
  }
  crew::detail::sweep_stale_segments();
  BOOST_TEST(!std::filesystem::exists("/dev/shm/" + stale));
  BOOST_TEST(std::filesystem::exists("/dev/shm/" + alive));
  BOOST_TEST(std::filesystem::exists("/dev/shm/" + other));
  ::shm_unlink(("/" + alive).c_str());
  ::shm_unlink(("/" + other).c_str());
}

BOOST_AUTO_TEST_SUITE_END()
