#include <crew/registry.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace crew {
// How Boost.Test shows an errc in a failed assertion (found by ADL).
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) {
  return os << to_string(e);
}
}  // namespace crew

namespace {

using bytes = std::vector<std::byte>;

const crew::job<double(int)> half{"half"};
const crew::job<std::string(const std::string&, int)> repeat{"repeat"};
const crew::job<double(const std::vector<double>&)> sum{"sum"};
const crew::job<void(std::string)> record{"record"};
const crew::job<int(int)> thrower{"thrower"};
const crew::job<std::vector<std::string>(std::vector<std::string>, bool)> sort_words{"sort_words"};

/// The error code of the task_error `f` throws; fails the test if it throws anything else.
template <class F>
boost::system::error_code task_error_of(F&& f) {
  try {
    f();
  } catch (const crew::task_error& e) {
    return e.code();
  } catch (const std::exception& e) {
    BOOST_ERROR("not a task_error: " << e.what());
    return {};
  }
  BOOST_ERROR("no exception");
  return {};
}

/// Runs `e.call_encoded` on `args` and returns the encoded result.
/// The sink is asked once, with the exact size the result then takes.
bytes call_encoded(const crew::registry::entry& e, const bytes& args) {
  crew::decoder d(args);
  bytes out;
  int asked = 0;
  e.call_encoded(d, [&](std::size_t size) {
    ++asked;
    out.resize(size);
    return crew::encoder(out.data(), out.size());
  });
  BOOST_TEST(asked == 1);
  return out;
}

struct fixture {
  fixture() {
    reg.add(half, [](int x) { return x / 2.0; })
        .add(repeat,
             [](const std::string& s, int n) {
               std::string out;
               for (int i = 0; i < n; ++i)
                 out += s;
               return out;
             })
        .add(sum,
             [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); })
        .add(record, [this](std::string s) { recorded.push_back(std::move(s)); })
        .add(thrower,
             [](int x) -> int {
               if (x < 0) throw std::runtime_error("negative input " + std::to_string(x));
               if (x == 0) throw crew::task_error(crew::errc::cancelled, "gave up");
               return x;
             })
        .add(sort_words, [](std::vector<std::string> w, bool reverse) {
          std::sort(w.begin(), w.end());
          if (reverse) std::reverse(w.begin(), w.end());
          return w;
        });
  }
  crew::registry reg;
  std::vector<std::string> recorded;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(registry)

BOOST_FIXTURE_TEST_CASE(find_registered_jobs, fixture) {
  const auto* e = reg.find("half");
  BOOST_TEST_REQUIRE(e != nullptr);
  BOOST_TEST(e->info.name == "half");
  BOOST_TEST(e->info.signature == "f64(i32)");
  BOOST_TEST((e->info == crew::job_info{"half", "f64(i32)"}));
  BOOST_TEST(static_cast<bool>(e->call_encoded));
  BOOST_TEST(static_cast<bool>(e->typed));

  BOOST_TEST(reg.find("repeat")->info.signature == "str(str,i32)");
  BOOST_TEST(reg.find("missing") == nullptr);
  BOOST_TEST(reg.find("") == nullptr);
  BOOST_TEST(reg.find("hal") == nullptr);
  BOOST_TEST(reg.find("half ") == nullptr);
}

BOOST_AUTO_TEST_CASE(empty_registry) {
  const crew::registry reg;
  BOOST_TEST(reg.jobs().empty());
  BOOST_TEST(reg.find("x") == nullptr);
  BOOST_TEST(task_error_of([&] { (void)reg.call(half(1)); }) == crew::errc::unknown_job);
}

BOOST_FIXTURE_TEST_CASE(jobs_are_sorted_by_name, fixture) {
  const std::vector<crew::job_info> expected = {
      {"half", "f64(i32)"},       {"record", "void(str)"},
      {"repeat", "str(str,i32)"}, {"sort_words", "vec<str>(vec<str>,bool)"},
      {"sum", "f64(vec<f64>)"},   {"thrower", "i32(i32)"},
  };
  const auto jobs = reg.jobs();
  BOOST_TEST_REQUIRE(jobs.size() == expected.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    BOOST_TEST(jobs[i].name == expected[i].name);
    BOOST_TEST(jobs[i].signature == expected[i].signature);
  }
}

BOOST_AUTO_TEST_CASE(jobs_sorted_regardless_of_insertion_order) {
  crew::registry reg;
  const crew::job<int()> c{"c"}, a{"a"}, b{"b"}, upper{"B"};
  reg.add(c, [] { return 3; });
  reg.add(a, [] { return 1; });
  reg.add(b, [] { return 2; });
  reg.add(upper, [] { return 0; });
  const auto jobs = reg.jobs();
  BOOST_TEST_REQUIRE(jobs.size() == 4u);
  BOOST_TEST(jobs[0].name == "B");
  BOOST_TEST(jobs[1].name == "a");
  BOOST_TEST(jobs[2].name == "b");
  BOOST_TEST(jobs[3].name == "c");
}

BOOST_FIXTURE_TEST_CASE(duplicate_names_are_rejected, fixture) {
  BOOST_CHECK_THROW(reg.add(half, [](int x) { return x * 1.0; }), std::invalid_argument);
  // Same name with another signature: still a duplicate.
  const crew::job<int(int)> other_half{"half"};
  BOOST_CHECK_THROW(reg.add(other_half, [](int x) { return x; }), std::invalid_argument);
  // The original stays in place.
  BOOST_TEST(reg.find("half")->info.signature == "f64(i32)");
  BOOST_TEST(reg.call(half(3)) == 1.5);
  BOOST_TEST(reg.jobs().size() == 6u);
}

BOOST_FIXTURE_TEST_CASE(call_runs_the_function, fixture) {
  BOOST_TEST(reg.call(half(3)) == 1.5);
  BOOST_TEST(reg.call(half(-8)) == -4.0);
  BOOST_TEST(reg.call(repeat("ab", 3)) == "ababab");
  BOOST_TEST(reg.call(repeat("ab", 0)) == "");
  BOOST_TEST(reg.call(thrower(5)) == 5);
  const auto words = reg.call(sort_words({"pear", "apple", "fig"}, true));
  BOOST_TEST(words == (std::vector<std::string>{"pear", "fig", "apple"}),
             boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(call_with_large_arguments, fixture) {
  std::vector<double> v(1 << 20, 0.5);
  BOOST_TEST(reg.call(sum(v)) == 0.5 * (1 << 20));
  BOOST_TEST(reg.call(sum(std::move(v))) == 0.5 * (1 << 20));
  BOOST_TEST(reg.call(sum({})) == 0.0);
}

BOOST_AUTO_TEST_CASE(call_moves_its_arguments_into_the_function) {
  crew::registry reg;
  const crew::job<std::size_t(std::vector<int>)> take{"take"};
  const int* seen = nullptr;
  reg.add(take, [&seen](std::vector<int> v) {
    seen = v.data();
    return v.size();
  });
  std::vector<int> big(100000, 1);
  const int* original = big.data();
  BOOST_TEST(reg.call(take(std::move(big))) == 100000u);
  BOOST_TEST(seen == original);  // the buffer travelled by moves, never copied
}

namespace {
/// What a call_batch run left: its end, the items of `out` (kind and bytes), and the items
/// the `failed` hook was told about (with the exception's text).
struct batch_outcome {
  crew::registry::batch_end end;
  std::vector<crew::protocol::batch_item> items;
  std::vector<std::string> failures;
  bytes out;
};
/// Runs `e.call_batch` over `args` (each an item's encoded arguments), with the frame limit
/// `limit` and a poll that says stop from the `stop_at`-th poll on.
batch_outcome run_batch(const crew::registry::entry& e, const std::vector<bytes>& args,
                        std::size_t limit = 1 << 20, int stop_at = -1) {
  crew::protocol::batch_builder b;
  for (const auto& a : args)
    b.add(a);
  const bytes batch = b.finish();
  crew::protocol::batch_reader items(batch);
  struct hooks {
    batch_outcome* o;
    int polls = 0, stop_at;
  };
  batch_outcome o;
  o.out.assign(3, std::byte{7});  // what a reply holds before: left alone
  hooks h{&o, 0, stop_at};
  crew::registry::batch_run run{
      items,
      o.out,
      3,
      limit,
      [](void* p) {
        auto* hk = static_cast<hooks*>(p);
        return hk->stop_at >= 0 && ++hk->polls > hk->stop_at;
      },
      [](void* p, std::size_t at, std::exception_ptr ep) {
        auto* hk = static_cast<hooks*>(p);
        BOOST_TEST(hk->o->out.size() == at);  // cut back to where the item starts
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& ex) {
          hk->o->failures.push_back(ex.what());
        }
        // The error item the runner would write: kind 4, no bytes.
        hk->o->out.push_back(std::byte{4});
        hk->o->out.insert(hk->o->out.end(), 4, std::byte{0});
      },
      &h};
  o.end = e.call_batch(run);
  BOOST_TEST((o.out[0] == std::byte{7} && o.out[1] == std::byte{7} && o.out[2] == std::byte{7}));
  // Read the items back as a batch_result reader would (count first).
  const auto n = static_cast<std::uint32_t>(
      o.end.why == crew::registry::batch_end::reason::done ? args.size() : 0);
  bytes payload(4 + o.out.size() - 3);
  std::memcpy(payload.data(), &n, 4);
  std::copy(o.out.begin() + 3, o.out.end(), payload.begin() + 4);
  if (n != 0) {
    crew::protocol::batch_result_reader r(payload, n);
    for (std::uint32_t i = 0; i < n; ++i)
      o.items.push_back(r.next());
    r.expect_end();
    o.out = std::move(payload);  // the items view it
  }
  return o;
}
template <class... T>
bytes encode(const T&... v) {
  bytes out;
  crew::encoder e(out);
  (e.put(v), ...);
  return out;
}
}  // namespace

BOOST_FIXTURE_TEST_CASE(a_batch_runs_every_item_and_keeps_each_outcome, fixture) {
  // Numbers (the fixed-size path), with an item that throws and one that does not decode.
  const auto* t = reg.find("thrower");
  auto o = run_batch(*t, {encode(5), encode(-2), bytes{std::byte{1}}, encode(7)});
  BOOST_TEST((o.end.why == crew::registry::batch_end::reason::done));
  BOOST_TEST_REQUIRE(o.items.size() == 4u);
  BOOST_TEST((o.items[0].kind == crew::protocol::frame_type::result));
  BOOST_TEST(crew::decoder(o.items[0].bytes.data(), o.items[0].bytes.size()).get<int>() == 5);
  BOOST_TEST((o.items[1].kind == crew::protocol::frame_type::error));
  BOOST_TEST((o.items[2].kind == crew::protocol::frame_type::error));
  BOOST_TEST(crew::decoder(o.items[3].bytes.data(), o.items[3].bytes.size()).get<int>() == 7);
  BOOST_TEST_REQUIRE(o.failures.size() == 2u);
  BOOST_TEST(o.failures[0] == "negative input -2");
  // Strings (sized per item) and a void job.
  o = run_batch(*reg.find("repeat"), {encode(std::string("ab"), 2), encode(std::string("x"), 0)});
  BOOST_TEST_REQUIRE(o.items.size() == 2u);
  BOOST_TEST(crew::decoder(o.items[0].bytes.data(), o.items[0].bytes.size()).get<std::string>() ==
             "abab");
  BOOST_TEST(crew::decoder(o.items[1].bytes.data(), o.items[1].bytes.size()).get<std::string>() ==
             "");
  o = run_batch(*reg.find("record"), {encode(std::string("one")), encode(std::string("two"))});
  BOOST_TEST_REQUIRE(o.items.size() == 2u);
  BOOST_TEST(o.items[1].bytes.size() == 0u);
  BOOST_TEST(recorded == (std::vector<std::string>{"one", "two"}),
             boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(a_batch_stops_when_cancelled_or_over_the_frame_limit, fixture) {
  std::vector<bytes> many(600, encode(3));
  // The poll comes before items 255 and 511; the second one says stop.
  auto o = run_batch(*reg.find("thrower"), many, 1 << 20, 1);
  BOOST_TEST((o.end.why == crew::registry::batch_end::reason::cancelled));
  BOOST_TEST(o.end.at == 511u);
  // 9 bytes per item: the 12th item takes the results past 100 bytes.
  o = run_batch(*reg.find("thrower"), many, 100);
  BOOST_TEST((o.end.why == crew::registry::batch_end::reason::too_large));
  BOOST_TEST(o.end.at == 11u);
  // A malformed batch (an item past the end) is the caller's: the reader throws.
  crew::protocol::batch_builder b;
  b.add(encode(1));
  bytes batch = b.finish();
  batch[4] = std::byte{99};  // the first item's length
  crew::protocol::batch_reader items(batch);
  bytes out;
  crew::registry::batch_run run{items,
                                out,
                                0,
                                1 << 20,
                                [](void*) { return false; },
                                [](void*, std::size_t, std::exception_ptr) {},
                                nullptr};
  BOOST_CHECK_THROW(reg.find("thrower")->call_batch(run), crew::decode_error);
}

BOOST_FIXTURE_TEST_CASE(void_jobs, fixture) {
  static_assert(std::is_void_v<decltype(reg.call(record("x")))>);
  reg.call(record("first"));
  reg.call(record("second"));
  BOOST_TEST(recorded == (std::vector<std::string>{"first", "second"}),
             boost::test_tools::per_element());

  const auto* e = reg.find("record");
  BOOST_TEST_REQUIRE(e != nullptr);
  const bytes out = call_encoded(*e, crew::encode_values(std::string("third")));
  BOOST_TEST(out.empty());
  BOOST_TEST_REQUIRE(recorded.size() == 3u);
  BOOST_TEST(recorded[2] == "third");
}

BOOST_FIXTURE_TEST_CASE(unknown_job, fixture) {
  const crew::job<double(int)> absent{"absent"};
  BOOST_TEST(task_error_of([&] { (void)reg.call(absent(1)); }) == crew::errc::unknown_job);
  try {
    (void)reg.call(absent(1));
  } catch (const crew::task_error& e) {
    BOOST_TEST(e.message().find("absent") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(signature_mismatch) {
  crew::registry reg;
  reg.add(crew::job<int(int)>{"x"}, [](int v) { return v + 1; });
  const crew::job<int(double)> other_args{"x"};
  const crew::job<double(int)> other_result{"x"};
  const crew::job<int(int, int)> more_args{"x"};
  const crew::job<void(int)> no_result{"x"};
  BOOST_TEST(task_error_of([&] { (void)reg.call(other_args(1.0)); }) ==
             crew::errc::signature_mismatch);
  BOOST_TEST(task_error_of([&] { (void)reg.call(other_result(1)); }) ==
             crew::errc::signature_mismatch);
  BOOST_TEST(task_error_of([&] { (void)reg.call(more_args(1, 2)); }) ==
             crew::errc::signature_mismatch);
  BOOST_TEST(task_error_of([&] { reg.call(no_result(1)); }) == crew::errc::signature_mismatch);
  // The message names both signatures.
  try {
    (void)reg.call(other_args(1.0));
  } catch (const crew::task_error& e) {
    BOOST_TEST(e.message().find("i32(i32)") != std::string::npos);
    BOOST_TEST(e.message().find("i32(f64)") != std::string::npos);
  }
  // Same decayed signature through references and const: not a mismatch.
  const crew::job<int(const int&)> by_ref{"x"};
  BOOST_TEST(reg.call(by_ref(41)) == 42);
  BOOST_TEST(reg.call(crew::job<int(int)>{"x"}(1)) == 2);
}

BOOST_FIXTURE_TEST_CASE(job_exceptions_pass_through, fixture) {
  try {
    (void)reg.call(thrower(-3));
    BOOST_ERROR("no exception");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()) == "negative input -3");
  }
  try {
    (void)reg.call(thrower(0));
    BOOST_ERROR("no exception");
  } catch (const crew::task_error& e) {
    BOOST_TEST(e.code() == crew::errc::cancelled);
    BOOST_TEST(e.message() == "gave up");
  }
  // And through call_encoded as well.
  const auto* e = reg.find("thrower");
  BOOST_TEST_REQUIRE(e != nullptr);
  BOOST_CHECK_THROW(call_encoded(*e, crew::encode_values(-1)), std::runtime_error);
}

BOOST_FIXTURE_TEST_CASE(call_encoded_decodes_arguments_and_encodes_result, fixture) {
  {
    const bytes out = call_encoded(*reg.find("half"), crew::encode_values(7));
    BOOST_TEST(out.size() == 8u);
    crew::decoder d(out);
    BOOST_TEST(d.get<double>() == 3.5);
    d.expect_end();
  }
  {
    const bytes out = call_encoded(*reg.find("repeat"), crew::encode_values(std::string("xy"), 2));
    crew::decoder d(out);
    BOOST_TEST(d.get<std::string>() == "xyxy");
    d.expect_end();
  }
  {
    const bytes out =
        call_encoded(*reg.find("sort_words"),
                     crew::encode_values(std::vector<std::string>{"b", "c", "a"}, false));
    crew::decoder d(out);
    BOOST_TEST(d.get<std::vector<std::string>>() == (std::vector<std::string>{"a", "b", "c"}),
               boost::test_tools::per_element());
    d.expect_end();
  }
  {
    const std::vector<double> v(1000, 2.0);
    const bytes out = call_encoded(*reg.find("sum"), crew::encode_values(v));
    crew::decoder d(out);
    BOOST_TEST(d.get<double>() == 2000.0);
    d.expect_end();
  }
}

BOOST_FIXTURE_TEST_CASE(call_encoded_writes_exactly_the_size_it_announced, fixture) {
  // The sink offers a larger area (as a shared-memory segment does): only `size` bytes of
  // it are written, at its start.
  bytes area(32, std::byte{0xaa});
  std::size_t announced = 0;
  const bytes args = crew::encode_values(1);
  crew::decoder d(args);
  reg.find("half")->call_encoded(d, [&](std::size_t size) {
    announced = size;
    return crew::encoder(area.data(), area.size());
  });
  BOOST_TEST(announced == 8u);
  crew::decoder r(area.data(), 8);
  BOOST_TEST(r.get<double>() == 0.5);
  for (std::size_t i = 8; i < area.size(); ++i)
    BOOST_TEST(std::to_integer<int>(area[i]) == 0xaa);
}

BOOST_FIXTURE_TEST_CASE(call_encoded_rejects_malformed_arguments, fixture) {
  const auto rejects = [&](const char* job, const bytes& args) {
    try {
      (void)call_encoded(*reg.find(job), args);
    } catch (const crew::decode_error& e) {
      return e.code() == crew::errc::decode_error;
    } catch (...) {
      return false;
    }
    return false;
  };
  const std::size_t recorded_before = recorded.size();
  BOOST_TEST(rejects("half", {}));
  BOOST_TEST(rejects("half", bytes(3)));
  BOOST_TEST(rejects("half", bytes(5)));  // one trailing byte
  BOOST_TEST(rejects("half", crew::encode_values(1, 2)));
  BOOST_TEST(rejects("repeat", crew::encode_values(std::string("ab"))));  // missing the int
  BOOST_TEST(rejects("repeat", crew::encode_values(std::string("ab"), 1, true)));  // trailing
  BOOST_TEST(rejects("sort_words", crew::encode_values(std::vector<std::string>{"a"},
                                                       std::uint8_t{2})));    // bool byte 2
  BOOST_TEST(rejects("sum", crew::encode_values(std::uint64_t{1} << 60)));    // huge count
  BOOST_TEST(rejects("record", crew::encode_values(std::string("x"), 'y')));  // trailing
  // A job is not run when its arguments do not decode.
  BOOST_TEST(recorded.size() == recorded_before);
}

BOOST_AUTO_TEST_CASE(function_objects_and_conversions) {
  crew::registry reg;
  // A mutable stateful callable, and a result that converts to the job's result type.
  const crew::job<std::int64_t()> counter{"counter"};
  const crew::job<double(int)> as_int{"as_int"};
  auto state = std::make_shared<int>(0);
  reg.add(counter, [state]() mutable { return ++*state; });
  reg.add(as_int, [](int x) { return x * 2; });  // int result converted to double
  BOOST_TEST(reg.call(counter()) == 1);
  BOOST_TEST(reg.call(counter()) == 2);
  BOOST_TEST(reg.call(as_int(4)) == 8.0);
  const bytes out = call_encoded(*reg.find("as_int"), crew::encode_values(5));
  crew::decoder d(out);
  BOOST_TEST(d.get<double>() == 10.0);
  d.expect_end();
}

BOOST_AUTO_TEST_SUITE_END()
