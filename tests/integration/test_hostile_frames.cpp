// A worker must not be able to abort, bloat or hold its coordinator through its frames
// (issue 14, findings 3, 6 and 7): crew-hostile-worker's frame modes against a real pool.
// Each case checks that the coordinator lives on, that the task fails with the right code
// and message, that this process's resident memory stayed bounded (its peak, VmHWM, reset
// before the attack), that a pool of honest workers then still works, and that nothing
// leaked.
#include <crew/process_pool.hpp>

#include "demo_jobs.hpp"
#include "pool_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using crew::errc;
using namespace crew::test;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

crew::process_pool_options hostile_options(std::vector<std::string> args, std::size_t workers = 1) {
  crew::process_pool_options o;
  o.workers = workers;
  o.executable = CREW_HOSTILE_WORKER_PATH;
  o.args = std::move(args);
  o.on_output = [](const crew::output_line&) {};  // keep the test log readable
  o.shutdown_grace = 500ms;
  return o;
}

// This process's resident memory at its peak since construction, in bytes: the peak
// (VmHWM) is reset by writing 5 to /proc/self/clear_refs. Where that is refused, the
// current resident size (statm) is read instead.
class rss_peak {
 public:
  rss_peak() {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    reset_ = static_cast<bool>(clear);
    base_ = current();
  }
  std::size_t growth() const {
    const std::size_t now = reset_ ? high_water() : current();
    return now > base_ ? now - base_ : 0;
  }

 private:
  static std::size_t current() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  }
  static std::size_t high_water() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmHWM:", 0) == 0) {
        std::istringstream in(line.substr(6));
        std::size_t kib = 0;
        in >> kib;
        return kib << 10;
      }
    return current();
  }
  bool reset_ = false;
  std::size_t base_ = 0;
};

constexpr std::size_t mib = std::size_t{1} << 20;

// The sanitizers' own memory counts in the coordinator's: ASan keeps freed blocks in a
// quarantine (the frame buffer's earlier sizes as it doubled), TSan shadows every byte
// touched several times over. The bounds below are for a plain build; under a sanitizer a
// bound is this many times larger, still far below what the attacks cost before the fix.
#if defined(__SANITIZE_THREAD__)
constexpr std::size_t sanitizer_factor = 6;
#elif defined(__SANITIZE_ADDRESS__)
constexpr std::size_t sanitizer_factor = 2;
#else
constexpr std::size_t sanitizer_factor = 1;
#endif

// Checks that the peak of `rss` grew by less than `bound_mib` MiB (scaled under a
// sanitizer) during `attack`, and reports the figure.
void expect_peak_below(const rss_peak& rss, std::size_t bound_mib, const char* attack) {
  const std::size_t grown = rss.growth();
  BOOST_TEST(grown < bound_mib * mib * sanitizer_factor,
             attack << ": the coordinator grew by " << grown << " bytes");
  BOOST_TEST_MESSAGE(attack << ": the coordinator's peak grew by " << grown / 1024 << " KiB");
}

// After an attack: a pool of honest workers (the hostile worker's serve mode runs crew's
// runtime with the demo jobs) serves as usual.
void an_honest_pool_works(boost::asio::io_context& ioc) {
  crew::process_pool pool(ioc.get_executor(), hostile_options({"serve"}, 2));
  BOOST_TEST(pool.submit(crew::demo::identity(41)).get() == 41);
  BOOST_TEST(pool.submit(crew::demo::echo("still here")).get() == "still here");
  pool.join();
}

}  // namespace

// Finding 3: a 24 MiB hello listing jobs by the hundred thousand took the coordinator from
// 9.6 MB to 205 MB (decode_hello and the job tables built from it), and an allocation
// failure there was an escaping std::bad_alloc. It is refused from its header now.
BOOST_FIXTURE_TEST_CASE(a_hello_over_its_limit_is_a_boot_failure_and_costs_nothing, io_fixture) {
  {
    rss_peak rss;
    auto o = hostile_options({"big-hello", "24"});
    o.max_boot_failures = 1;
    crew::process_pool pool(ioc.get_executor(), o);
    auto e = failure_of(pool.submit(crew::demo::identity(1)));
    BOOST_TEST(e.code() == make_error_code(errc::worker_boot_failed), e.message());
    BOOST_TEST(contains(e.message(), "bad hello"), e.message());
    BOOST_TEST(contains(e.message(), "max_hello_payload"), e.message());
    pool.join();
    expect_peak_below(rss, 16, "a hello over its limit");
  }
  an_honest_pool_works(ioc);
  expect_no_leaks(fds_before);
}

// Finding 6: a 20-byte header announcing max_payload (256 MiB) made the coordinator
// zero-fill a buffer of that size at once: four workers put it at 1 GB resident. Now the
// buffer follows the bytes that arrive, and the frame's deadline ends the silence.
BOOST_FIXTURE_TEST_CASE(huge_headers_from_four_workers_commit_nothing_and_time_out, io_fixture) {
  {
    rss_peak rss;
    auto o = hostile_options({"huge-header"}, 4);
    o.frame_timeout = 1500ms;
    crew::process_pool pool(ioc.get_executor(), o);
    std::vector<std::future<int>> tasks;
    for (int i = 0; i < 4; ++i)
      tasks.push_back(pool.submit(crew::demo::identity(i)));
    for (auto& t : tasks) {
      auto e = failure_of(std::move(t));
      BOOST_TEST(e.code() == make_error_code(errc::protocol_error), e.message());
      BOOST_TEST(contains(e.message(), "frame_timeout"), e.message());
    }
    expect_peak_below(rss, 64, "huge-header x4");
    pool.join();
  }
  an_honest_pool_works(ioc);
  expect_no_leaks(fds_before);
}

// Finding 6: a frame trickled one byte at a time re-armed its deadline with each byte and
// held its task (and its buffer) forever. The deadline now counts from the frame's first
// byte. (The task's own deadline is far later: a pool that failed to cut the trickle would
// fail the task with task_timeout instead.)
BOOST_FIXTURE_TEST_CASE(a_trickled_frame_fails_at_its_total_deadline, io_fixture) {
  {
    auto o = hostile_options({"trickle", "100"});
    o.frame_timeout = 800ms;
    crew::process_pool pool(ioc.get_executor(), o);
    crew::task_options t;
    t.timeout = 20s;
    const auto start = std::chrono::steady_clock::now();
    auto e = failure_of(pool.submit(crew::demo::identity(1), t));
    BOOST_TEST(e.code() == make_error_code(errc::protocol_error), e.message());
    BOOST_TEST(contains(e.message(), "did not finish it within 800 ms (frame_timeout)"),
               e.message());
    BOOST_TEST_MESSAGE("the trickle was cut after "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - start)
                              .count()
                       << " ms");
    pool.join();
  }
  an_honest_pool_works(ioc);
  expect_no_leaks(fds_before);
}

// Finding 7: a vec<str> of empty strings is 8 bytes an element on the wire and 32 in memory:
// a result within max_payload took four times it once decoded. The decoder now counts what
// the value takes in memory against max_result_memory (by default twice max_payload) before
// allocating; the worker broke no rule and lives on.
BOOST_FIXTURE_TEST_CASE(a_result_too_large_in_memory_fails_before_it_is_decoded, io_fixture) {
  const crew::job<std::vector<std::string>(int)> strs{"strs"};
  {
    rss_peak rss;
    auto o = hostile_options({"str-flood"});
    o.max_payload = 32 * mib;
    crew::process_pool pool(ioc.get_executor(), o);
    auto e = failure_of(pool.submit(strs(1)));
    BOOST_TEST(e.code() == make_error_code(errc::decode_error), e.message());
    BOOST_TEST(contains(e.message(),
                        "would take 134217696 bytes in memory, more than the limit "
                        "67108864"),
               e.message());
    // The frame itself (32 MiB, its buffer doubling as it came), not the 128 MiB of strings.
    expect_peak_below(rss, 48, "str-flood of 32 MiB");
    pool.join();
  }
  an_honest_pool_works(ioc);
  expect_no_leaks(fds_before);
}
