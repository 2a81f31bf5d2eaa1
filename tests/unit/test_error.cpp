#include <crew/error.hpp>

#include <boost/test/unit_test.hpp>

#include <cstring>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>

namespace crew {
// How Boost.Test shows an errc in a failed assertion (found by ADL).
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) {
  return os << to_string(e);
}
}  // namespace crew

namespace {

constexpr int first_errc = static_cast<int>(crew::errc::job_failed);
constexpr int last_errc = static_cast<int>(crew::errc::worker_lost);

}  // namespace

BOOST_AUTO_TEST_SUITE(error)

BOOST_AUTO_TEST_CASE(category_is_named_crew) {
  BOOST_TEST(std::string(crew::crew_category().name()) == "crew");
  BOOST_TEST(&crew::crew_category() == &crew::crew_category());
}

BOOST_AUTO_TEST_CASE(values_are_stable) {
  // They appear in JSON and on the wire: a reordering of the enum must be noticed.
  BOOST_TEST(static_cast<int>(crew::errc::job_failed) == 1);
  BOOST_TEST(static_cast<int>(crew::errc::unknown_job) == 2);
  BOOST_TEST(static_cast<int>(crew::errc::signature_mismatch) == 3);
  BOOST_TEST(static_cast<int>(crew::errc::worker_crashed) == 4);
  BOOST_TEST(static_cast<int>(crew::errc::worker_boot_failed) == 5);
  BOOST_TEST(static_cast<int>(crew::errc::protocol_error) == 6);
  BOOST_TEST(static_cast<int>(crew::errc::decode_error) == 7);
  BOOST_TEST(static_cast<int>(crew::errc::payload_too_large) == 8);
  BOOST_TEST(static_cast<int>(crew::errc::shutting_down) == 9);
  BOOST_TEST(static_cast<int>(crew::errc::queue_full) == 10);
  BOOST_TEST(static_cast<int>(crew::errc::task_timeout) == 11);
  BOOST_TEST(static_cast<int>(crew::errc::cancelled) == 12);
  BOOST_TEST(static_cast<int>(crew::errc::worker_lost) == 13);
}

BOOST_AUTO_TEST_CASE(every_value_has_a_distinct_message_and_name) {
  std::set<std::string> messages;
  std::set<std::string> names;
  const std::string unknown_message = crew::crew_category().message(0);
  for (int v = first_errc; v <= last_errc; ++v) {
    const auto e = static_cast<crew::errc>(v);
    BOOST_TEST_CONTEXT("errc " << v) {
      const std::string message = crew::make_error_code(e).message();
      const std::string name = crew::to_string(e);
      BOOST_TEST(!message.empty());
      BOOST_TEST(message != unknown_message);
      BOOST_TEST(!name.empty());
      BOOST_TEST(name != "unknown");
      BOOST_TEST(messages.insert(message).second);
      BOOST_TEST(names.insert(name).second);
    }
  }
  BOOST_TEST(messages.size() == static_cast<std::size_t>(last_errc - first_errc + 1));
  BOOST_TEST(names.size() == static_cast<std::size_t>(last_errc - first_errc + 1));
}

BOOST_AUTO_TEST_CASE(names_match_enumerators) {
  BOOST_TEST(std::string(crew::to_string(crew::errc::job_failed)) == "job_failed");
  BOOST_TEST(std::string(crew::to_string(crew::errc::unknown_job)) == "unknown_job");
  BOOST_TEST(std::string(crew::to_string(crew::errc::signature_mismatch)) == "signature_mismatch");
  BOOST_TEST(std::string(crew::to_string(crew::errc::worker_crashed)) == "worker_crashed");
  BOOST_TEST(std::string(crew::to_string(crew::errc::worker_boot_failed)) == "worker_boot_failed");
  BOOST_TEST(std::string(crew::to_string(crew::errc::protocol_error)) == "protocol_error");
  BOOST_TEST(std::string(crew::to_string(crew::errc::decode_error)) == "decode_error");
  BOOST_TEST(std::string(crew::to_string(crew::errc::payload_too_large)) == "payload_too_large");
  BOOST_TEST(std::string(crew::to_string(crew::errc::shutting_down)) == "shutting_down");
  BOOST_TEST(std::string(crew::to_string(crew::errc::queue_full)) == "queue_full");
  BOOST_TEST(std::string(crew::to_string(crew::errc::task_timeout)) == "task_timeout");
  BOOST_TEST(std::string(crew::to_string(crew::errc::cancelled)) == "cancelled");
  BOOST_TEST(std::string(crew::to_string(crew::errc::worker_lost)) == "worker_lost");
}

BOOST_AUTO_TEST_CASE(out_of_range_values_do_not_crash) {
  BOOST_TEST(!crew::crew_category().message(0).empty());
  BOOST_TEST(!crew::crew_category().message(last_errc + 1).empty());
  BOOST_TEST(!crew::crew_category().message(-1).empty());
  BOOST_TEST(std::strlen(crew::to_string(static_cast<crew::errc>(0))) > 0);
  BOOST_TEST(std::strlen(crew::to_string(static_cast<crew::errc>(last_errc + 1))) > 0);
}

BOOST_AUTO_TEST_CASE(errc_converts_to_error_code) {
  static_assert(boost::system::is_error_code_enum<crew::errc>::value);
  boost::system::error_code ec = crew::errc::queue_full;
  BOOST_TEST(static_cast<bool>(ec));
  BOOST_TEST(ec.value() == static_cast<int>(crew::errc::queue_full));
  BOOST_TEST(&ec.category() == &crew::crew_category());
  BOOST_TEST(ec == crew::errc::queue_full);
  BOOST_TEST(ec != crew::errc::task_timeout);
  BOOST_TEST(ec == crew::make_error_code(crew::errc::queue_full));
  BOOST_TEST(ec.message() == crew::crew_category().message(ec.value()));

  ec = crew::errc::cancelled;
  BOOST_TEST(ec.value() == static_cast<int>(crew::errc::cancelled));

  // Same number, other category: not equal.
  const boost::system::error_code generic(static_cast<int>(crew::errc::queue_full),
                                          boost::system::generic_category());
  BOOST_TEST(generic != crew::errc::queue_full);
}

BOOST_AUTO_TEST_CASE(task_error_carries_code_and_message) {
  const crew::task_error e(crew::errc::worker_crashed, "killed by signal 9");
  BOOST_TEST(e.code() == crew::errc::worker_crashed);
  BOOST_TEST(e.message() == "killed by signal 9");
  BOOST_TEST(std::string(e.what()).find("killed by signal 9") != std::string::npos);

  try {
    throw crew::task_error(crew::make_error_code(crew::errc::task_timeout), "too slow");
  } catch (const boost::system::system_error& caught) {
    BOOST_TEST(caught.code() == crew::errc::task_timeout);
  }

  const crew::task_error empty(crew::errc::cancelled, "");
  BOOST_TEST(empty.message().empty());
  BOOST_TEST(empty.code() == crew::errc::cancelled);
}

BOOST_AUTO_TEST_CASE(make_task_error_builds_a_task_error) {
  const auto ep = crew::make_task_error(crew::errc::unknown_job, "no job named 'x'");
  BOOST_REQUIRE(ep);
  try {
    std::rethrow_exception(ep);
  } catch (const crew::task_error& e) {
    BOOST_TEST(e.code() == crew::errc::unknown_job);
    BOOST_TEST(e.message() == "no job named 'x'");
    return;
  } catch (...) {
  }
  BOOST_FAIL("make_task_error did not hold a task_error");
}

BOOST_AUTO_TEST_CASE(error_of_task_error_is_its_code) {
  for (int v = first_errc; v <= last_errc; ++v) {
    const auto e = static_cast<crew::errc>(v);
    BOOST_TEST(crew::error_of(crew::make_task_error(e, "m")) == e);
  }
}

BOOST_AUTO_TEST_CASE(error_of_other_exception_is_job_failed) {
  BOOST_TEST(crew::error_of(std::make_exception_ptr(std::runtime_error("boom"))) ==
             crew::errc::job_failed);
  BOOST_TEST(crew::error_of(std::make_exception_ptr(42)) == crew::errc::job_failed);
}

BOOST_AUTO_TEST_CASE(error_of_null_is_empty) {
  const auto ec = crew::error_of(nullptr);
  BOOST_TEST(!ec);
  BOOST_TEST(ec == boost::system::error_code());
}

BOOST_AUTO_TEST_CASE(describe_failure_gives_the_code_and_the_detail) {
  for (int v = first_errc; v <= last_errc; ++v) {
    const auto e = static_cast<crew::errc>(v);
    const auto f = crew::describe_failure(crew::make_task_error(e, "detail " + std::to_string(v)));
    BOOST_TEST(f.code == e);
    BOOST_TEST(f.message == "detail " + std::to_string(v));  // without the category's text
  }
  // What a job's exception becomes: job_failed and its what().
  auto f = crew::describe_failure(std::make_exception_ptr(std::runtime_error("boom")));
  BOOST_TEST(f.code == crew::errc::job_failed);
  BOOST_TEST(f.message == "boom");
  f = crew::describe_failure(std::make_exception_ptr(42));
  BOOST_TEST(f.code == crew::errc::job_failed);
  BOOST_TEST(f.message == "unknown exception");
  // A code of another category is no crew code: job_failed, the whole text kept.
  const boost::system::system_error other(
      boost::system::errc::make_error_code(boost::system::errc::io_error), "reading");
  f = crew::describe_failure(std::make_exception_ptr(other));
  BOOST_TEST(f.code == crew::errc::job_failed);
  BOOST_TEST(f.message == other.what());
}

BOOST_AUTO_TEST_SUITE_END()
