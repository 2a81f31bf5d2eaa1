// crew-fault-worker: crew-worker's demo jobs plus faults, for the integration tests.
// Start-up modes (argv): --no-batch, --ignore-shm, --exit-at-start CODE, --garbage-hello,
// --old-version,
// --bad-hello-payload, --silent, --ignore-shm (serve as a worker without shared memory),
// --places DIR N (serve only if one of N places in DIR is free, else exit 1 before hello).
#include "demo_jobs.hpp"
#include "fault_jobs.hpp"

#include <crew/codec.hpp>
#include <crew/protocol.hpp>
#include <crew/worker_runtime.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <new>
#include <string_view>
#include <thread>

#include <stdexcept>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

void write_raw(const void* p, std::size_t n) {
  [[maybe_unused]] auto w = ::write(4, p, n);
}

void write_frame(crew::protocol::frame_type type, std::uint64_t id,
                 std::span<const std::byte> payload) {
  std::vector<std::byte> out;
  crew::protocol::append_frame(out, type, id, payload);
  write_raw(out.data(), out.size());
}

int kept_request_fd = -1;   // a hostile worker keeps its own descriptors of the
int kept_response_fd = -1;  // shared files (serve() closes fd 5 and fd 6)

// A valid result frame carrying `value` for the task the calling job runs.
void write_int_result(int value) {
  std::vector<std::byte> payload;
  crew::encoder e(payload);
  e.put(value);
  write_frame(crew::protocol::frame_type::result, crew::current_task_id(), payload);
}

void say_started(const char* job) {
  std::fprintf(stderr, "fault worker: %s started\n", job);
  std::fflush(stderr);
}

std::vector<std::unique_ptr<char[]>> leaked;  // leak_mib keeps what it allocates

// Takes one of `places` places in `dir` (files place-0 ... created with O_EXCL, kept for
// good): true if one was free. Which processes win does not depend on timing, only on how
// many took a place before: the first `places` to start serve, later ones do not, until a
// test removes a place file.
bool take_place(const std::string& dir, int places) {
  for (int k = 0; k < places; ++k) {
    const std::string path = dir + "/place-" + std::to_string(k);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) continue;
    ::close(fd);
    std::fprintf(stderr, "fault worker: took place %d\n", k);
    return true;
  }
  return false;
}

[[noreturn]] void sleep_forever() {
  for (;;)
    std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--exit-at-start" && i + 1 < argc) {
      std::fprintf(stderr, "fault worker: exiting at start-up as asked\n");
      return std::atoi(argv[++i]);
    }
    if (arg == "--garbage-hello") {
      write_raw("this is not a crew frame at all.....", 36);
      sleep_forever();
    }
    if (arg == "--old-version") {
      std::vector<std::byte> out;
      crew::protocol::append_frame(out, crew::protocol::frame_type::hello, 0, {});
      out[4] = std::byte{0};  // protocol version 0
      write_raw(out.data(), out.size());
      sleep_forever();
    }
    if (arg == "--bad-hello-payload") {  // a valid header around a payload too short
      std::vector<std::byte> four(4);
      write_frame(crew::protocol::frame_type::hello, 0, four);
      sleep_forever();
    }
    if (arg == "--silent") sleep_forever();
    if (arg == "--places" && i + 2 < argc) {
      const int places = std::atoi(argv[i + 2]);
      if (!take_place(argv[i + 1], places)) {
        std::fprintf(stderr, "fault worker: all %d places taken, exiting before hello\n", places);
        return 1;
      }
      i += 2;
    }
  }

  if (std::getenv("CREW_SHM_REQUEST_FD")) {
    kept_request_fd = ::dup(5);
    kept_response_fd = ::dup(6);
  }
  crew::worker_options options;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--ignore-shm")  // serve like a pipe-only worker
      options.shm_request_fd = options.shm_response_fd = -1;
    if (std::string_view(argv[i]) == "--no-batch")  // a worker that takes no batch frames
      options.batch = false;
  }

  crew::registry jobs;
  crew::demo::register_jobs(jobs);
  jobs.add(crew::test::crash, [](int sig) {
    std::fprintf(stderr, "fault worker: raising signal %d\n", sig);
    std::raise(sig);
    return 0;
  });
  jobs.add(crew::test::exit_now, [](int code) -> int {
    std::fprintf(stderr, "fault worker: _exit(%d) mid-task\n", code);
    std::fflush(stderr);
    ::_exit(code);
  });
  jobs.add(crew::test::raw_reply, [](const std::string& bytes) -> int {
    write_raw(bytes.data(), bytes.size());
    sleep_forever();
  });
  jobs.add(crew::test::wrong_id_reply, [](int) -> int {
    std::vector<std::byte> payload(4);
    write_frame(crew::protocol::frame_type::result, 987654321, payload);
    sleep_forever();
  });
  jobs.add(crew::test::die_mid_frame, [](int) -> int {
    std::vector<std::byte> payload(1 << 20);
    std::vector<std::byte> out;
    crew::protocol::append_frame(out, crew::protocol::frame_type::result, 1, payload);
    write_raw(out.data(), out.size() / 2);
    ::_exit(0);
  });
  jobs.add(crew::test::escape_child, [](int ms) {
    if (::fork() == 0) {  // leaves the worker's process group, keeping its pipes open
      ::setpgid(0, 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      ::_exit(0);
    }
    return ms;
  });
  jobs.add(crew::test::spawn_grandchild, [](int) {
    const pid_t child = ::fork();
    if (child == 0) sleep_forever();
    return static_cast<int>(child);
  });
  jobs.add(crew::test::bad_descriptor, [](int kind) -> int {
    const std::uint64_t id = crew::current_task_id();
    crew::protocol::shm_descriptor d{0, 8, id};
    if (kind == 0) d = {std::uint64_t{1} << 40, 8, id};
    if (kind == 1) d = {16, ~std::uint64_t{0} - 8, id};
    if (kind == 2) d = {0, 8, id - 1};
    std::vector<std::byte> payload;
    crew::protocol::append_descriptor(payload, d);
    std::vector<std::byte> out;
    crew::protocol::append_frame(out, crew::protocol::frame_type::result, id, payload,
                                 crew::protocol::flag_shm);
    write_raw(out.data(), out.size());
    sleep_forever();
  });
  jobs.add(crew::test::scribble, [](int byte) {
    struct stat st {};
    if (::fstat(kept_response_fd, &st) != 0) throw std::runtime_error("no segment kept");
    const auto size = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, kept_response_fd, 0);
    if (p == MAP_FAILED) throw std::runtime_error("cannot map the response file");
    std::memset(p, byte, size);
    ::munmap(p, size);
    return byte;
  });
  jobs.add(crew::test::shrink_segment, [](int) -> int {
    // Shrink the file under the coordinator, then point it at the vanished bytes.
    if (::ftruncate(kept_response_fd, 0) != 0) throw std::runtime_error("cannot truncate");
    const std::uint64_t id = crew::current_task_id();
    std::vector<std::byte> payload;
    crew::protocol::append_descriptor(payload, {0, 4096, id});
    std::vector<std::byte> out;
    crew::protocol::append_frame(out, crew::protocol::frame_type::result, id, payload,
                                 crew::protocol::flag_shm);
    write_raw(out.data(), out.size());
    sleep_forever();
  });
  jobs.add(crew::test::attack_request, [](int) {
    // Everything a worker could do to the file the coordinator maps must be refused.
    int refused = 0;
    if (::ftruncate(kept_request_fd, 0) != 0) ++refused;
    if (::fallocate(kept_request_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) != 0)
      ++refused;
    if (::pwrite(kept_request_fd, "x", 1, 0) != 1) ++refused;
    struct stat st {};
    ::fstat(kept_request_fd, &st);
    void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE,
                     MAP_SHARED, kept_request_fd, 0);
    if (p == MAP_FAILED) ++refused;
    return refused;
  });
  jobs.add(crew::test::stubborn_sleep, [](int ms) {
    std::signal(SIGTERM, SIG_IGN);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
  jobs.add(crew::test::sleep_ms, [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
  jobs.add(crew::test::hang_busy, [](int ms) {
    say_started("hang_busy");
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    volatile std::uint64_t spins = 0;
    while (std::chrono::steady_clock::now() < until)
      for (int k = 0; k < 1000; ++k)
        spins = spins + 1;
    return ms;
  });
  jobs.add(crew::test::reply_then_exit, [](int code) -> int {
    write_int_result(code);
    ::_exit(code);
  });
  jobs.add(crew::test::leak_mib, [](int mib) {
    const std::size_t n = static_cast<std::size_t>(mib) << 20;
    if (n > 0) {
      auto block = std::make_unique<char[]>(n);
      for (std::size_t k = 0; k < n; k += 4096)
        block[k] = static_cast<char>(k);  // touched: resident, not just reserved
      leaked.push_back(std::move(block));
    }
    return static_cast<int>(::getpid());
  });
  jobs.add(crew::test::flood_stderr, [](int mib) {
    std::string line(999, 'e');
    line += '\n';
    const std::size_t total = static_cast<std::size_t>(mib) << 20;
    for (std::size_t done = 0; done < total; done += line.size())
      [[maybe_unused]] auto w = ::write(2, line.data(), line.size());
    const std::string endless(std::size_t{1} << 20, 'x');  // one line with no end
    [[maybe_unused]] auto w = ::write(2, endless.data(), endless.size());
    return mib;
  });
  jobs.add(crew::test::oversized_frame, [](std::uint32_t length) -> int {
    std::vector<std::byte> out;
    crew::protocol::append_frame(out, crew::protocol::frame_type::result, crew::current_task_id(),
                                 {});
    std::memcpy(out.data() + 16, &length, 4);  // the header's length field
    write_raw(out.data(), out.size());
    sleep_forever();
  });
  jobs.add(crew::test::duplicate_reply, [](int value) {
    write_int_result(value);
    return value;  // and the runtime replies a second time
  });
  jobs.add(crew::test::truncated_frame, [](int close_channel) -> int {
    std::vector<std::byte> out;
    crew::protocol::append_frame(out, crew::protocol::frame_type::result, crew::current_task_id(),
                                 std::vector<std::byte>(64));
    write_raw(out.data(), crew::protocol::header_size / 2);
    if (close_channel != 0) ::close(4);
    sleep_forever();
  });
  jobs.add(crew::test::until_cancelled, [](int poll_ms) -> int {
    say_started("until_cancelled");
    while (!crew::cancel_requested())
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
    throw std::runtime_error("until_cancelled: stopped on cancel");
  });
  jobs.add(crew::test::ignore_cancel, [](int ms) {
    say_started("ignore_cancel");
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
  jobs.add(crew::test::grandchild_and_sleep, [](int) -> int {
    const pid_t child = ::fork();
    if (child == 0) sleep_forever();
    std::fprintf(stderr, "grandchild %d\n", static_cast<int>(child));
    std::fflush(stderr);
    sleep_forever();
  });
  jobs.add(crew::test::alloc_fails, [](int mib) {
    const std::size_t n = static_cast<std::size_t>(mib) << 20;
    try {
      auto block = std::make_unique<char[]>(n);
      for (std::size_t k = 0; k < n; k += 4096)
        block[k] = 1;
      leaked.push_back(std::move(block));  // escapes: the allocation cannot be elided
      leaked.pop_back();
      return 0;
    } catch (const std::bad_alloc&) {
      return 1;
    }
  });
  jobs.add(crew::test::flaky, [](const std::string& path, int failures, int mode) {
    int count = 0;
    if (std::FILE* f = std::fopen(path.c_str(), "r")) {
      if (std::fscanf(f, "%d", &count) != 1) count = 0;
      std::fclose(f);
    }
    ++count;
    if (std::FILE* f = std::fopen(path.c_str(), "w")) {
      std::fprintf(f, "%d\n", count);
      std::fclose(f);
    }
    if (count <= failures) {
      if (mode == 0) std::raise(SIGSEGV);
      if (mode == 1) throw std::runtime_error("flaky failure " + std::to_string(count));
      sleep_forever();
    }
    return count;
  });
  jobs.add(crew::test::task_id_of, [](int) { return crew::current_task_id(); });
  jobs.add(crew::test::getenv_of, [](const std::string& name) {
    const char* v = std::getenv(name.c_str());
    return std::string(v ? v : "<unset>");
  });
  jobs.add(crew::test::make_bytes, [](std::uint32_t n) { return std::string(n, 'b'); });
  jobs.add(crew::test::node_after, [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    const char* v = std::getenv("SLURMD_NODENAME");
    return std::string(v ? v : "<unset>");
  });
  jobs.add(crew::test::pid_then_sleep, [](int ms) {
    std::fprintf(stderr, "worker pid %d\n", static_cast<int>(::getpid()));
    std::fflush(stderr);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return static_cast<int>(::getpid());
  });
  jobs.add(crew::test::cwd_of, [](int) { return std::filesystem::current_path().string(); });
  jobs.add(crew::test::bad_batch_reply, [](int) -> int {
    const std::vector<std::byte> no_items(4);
    write_frame(crew::protocol::frame_type::batch_result, crew::current_task_id(), no_items);
    sleep_forever();
  });
  jobs.add(crew::test::burn_cpu, [](int seconds) {
    timespec start{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
    volatile std::uint64_t spins = 0;
    for (;;) {
      for (int k = 0; k < 100000; ++k)
        spins = spins + 1;
      timespec now{};
      ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
      if (now.tv_sec - start.tv_sec >= seconds) break;
    }
    return seconds;
  });
  return crew::serve(jobs, options);
}
