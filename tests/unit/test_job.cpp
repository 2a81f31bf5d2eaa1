#include <crew/job.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

struct sample {
  std::int32_t id = 0;
  std::string tag;
};

// Jobs are usually declared this way, in a header shared by coordinator and worker.
inline const crew::job<double(int)> long_comp{"long_comp"};

/// True if `j(args...)` compiles.
template <class J, class... A>
concept callable_with = requires(const J& j, A&&... a) {
  j(std::forward<A>(a)...);
};

}  // namespace

template <>
struct crew::codec<sample> : crew::member_codec<sample, &sample::id, &sample::tag> {
  static std::string name() { return "sample"; }
};

BOOST_AUTO_TEST_SUITE(job)

BOOST_AUTO_TEST_CASE(name_is_kept) {
  BOOST_TEST(long_comp.name() == "long_comp");
  const crew::job<void()> unnamed{""};
  BOOST_TEST(unnamed.name().empty());
  std::string n = "moved";
  const crew::job<int(int)> moved{std::move(n)};
  BOOST_TEST(moved.name() == "moved");
}

BOOST_AUTO_TEST_CASE(signatures_use_wire_names) {
  BOOST_TEST(long_comp.signature() == "f64(i32)");
  BOOST_TEST((crew::job<void(std::string)>{"j"}.signature() == "void(str)"));
  BOOST_TEST((crew::job<std::vector<double>(const std::vector<double>&, int)>{"j"}.signature() ==
              "vec<f64>(vec<f64>,i32)"));
  BOOST_TEST(crew::job<void()>{"j"}.signature() == "void()");
  BOOST_TEST(crew::job<int()>{"j"}.signature() == "i32()");
  BOOST_TEST(
      (crew::job<bool(std::uint8_t, std::int64_t, float)>{"j"}.signature() == "bool(u8,i64,f32)"));
  BOOST_TEST((crew::job<std::tuple<int, std::string>(std::pair<int, double>)>{"j"}.signature() ==
              "tuple<i32,str>(pair<i32,f64>)"));
  BOOST_TEST((crew::job<sample(std::vector<sample> &&)>{"j"}.signature() == "sample(vec<sample>)"));
  // Qualifiers and references do not change what travels, so not the signature either.
  BOOST_TEST((crew::job<int(const std::string&)>{"a"}.signature() ==
              crew::job<int(std::string)>{"b"}.signature()));
  BOOST_TEST((crew::job<int(const int)>{"a"}.signature() == "i32(i32)"));
}

BOOST_AUTO_TEST_CASE(types_are_exposed) {
  using J = crew::job<std::vector<double>(const std::vector<double>&, int)>;
  static_assert(std::is_same_v<J::result_type, std::vector<double>>);
  static_assert(
      std::is_same_v<J::signature_type, std::vector<double>(const std::vector<double>&, int)>);
  static_assert(std::is_same_v<J::args_tuple, std::tuple<std::vector<double>, int>>);
  using inv = decltype(std::declval<const J&>()(std::vector<double>{}, 1));
  static_assert(std::is_same_v<inv::result_type, std::vector<double>>);
  static_assert(std::is_same_v<decltype(inv::args), std::tuple<std::vector<double>, int>>);
  BOOST_TEST(true);
}

BOOST_AUTO_TEST_CASE(call_binds_arguments) {
  const auto inv = long_comp(3);
  BOOST_TEST(inv.target == &long_comp);
  BOOST_TEST(std::get<0>(inv.args) == 3);

  const crew::job<void(std::string, bool)> log{"log"};
  const auto inv2 = log("message", true);
  BOOST_TEST(inv2.target == &log);
  BOOST_TEST(std::get<0>(inv2.args) == "message");
  BOOST_TEST(std::get<1>(inv2.args) == true);

  const crew::job<int()> nullary{"nullary"};
  const auto inv3 = nullary();
  BOOST_TEST(inv3.target == &nullary);
  static_assert(std::tuple_size_v<decltype(inv3.args)> == 0);
}

BOOST_AUTO_TEST_CASE(arguments_are_stored_decayed_and_owned) {
  const crew::job<std::size_t(const std::vector<double>&, const std::string&)> j{"j"};
  std::vector<double> v = {1.0, 2.0, 3.0};
  std::string s = "text";
  auto inv = j(v, s);
  static_assert(std::is_same_v<decltype(inv.args), std::tuple<std::vector<double>, std::string>>);
  // A copy: changing the caller's objects afterwards does not change the invocation.
  v.push_back(4.0);
  s = "changed";
  BOOST_TEST(std::get<0>(inv.args).size() == 3u);
  BOOST_TEST(std::get<1>(inv.args) == "text");
}

BOOST_AUTO_TEST_CASE(rvalue_arguments_are_moved_in) {
  const crew::job<int(std::vector<int> &&)> j{"j"};
  std::vector<int> big(1000, 7);
  const int* data = big.data();
  auto inv = j(std::move(big));
  BOOST_TEST(std::get<0>(inv.args).size() == 1000u);
  BOOST_TEST(std::get<0>(inv.args).data() == data);  // moved, not copied

  const crew::job<int(std::string)> by_value{"by_value"};
  std::string long_text(100, 'x');
  auto inv2 = by_value(std::move(long_text));
  BOOST_TEST(std::get<0>(inv2.args) == std::string(100, 'x'));
}

BOOST_AUTO_TEST_CASE(arguments_convert_as_in_a_function_call) {
  const crew::job<double(double)> square{"square"};
  const auto inv = square(3);  // int -> double
  static_assert(std::is_same_v<decltype(inv.args), std::tuple<double>>);
  BOOST_TEST(std::get<0>(inv.args) == 3.0);

  const crew::job<int(std::string)> count{"count"};
  const auto inv2 = count("literal");  // const char* -> std::string
  BOOST_TEST(std::get<0>(inv2.args) == "literal");

  const crew::job<int(std::int64_t, bool)> widen{"widen"};
  const auto inv3 = widen(std::int32_t{-5}, true);
  BOOST_TEST(std::get<0>(inv3.args) == -5);

  static_assert(callable_with<crew::job<double(double)>, int>);
  static_assert(callable_with<crew::job<double(double)>, float>);
  static_assert(callable_with<crew::job<int(std::string)>, const char*>);
  static_assert(callable_with<crew::job<int(const std::vector<double>&)>, std::vector<double>&>);
  // What a function with these parameters would not accept does not compile
  // (job_wrong_args.cpp checks the same through the compiler's diagnostics).
  static_assert(!callable_with<crew::job<double(int)>, const char*>);
  static_assert(!callable_with<crew::job<int(std::string)>, std::vector<double>>);
  static_assert(!callable_with<crew::job<int(std::string)>, int*>);
  static_assert(!callable_with<crew::job<double(int)>>);
  static_assert(!callable_with<crew::job<double(int)>, int, int>);
  static_assert(!callable_with<crew::job<int(std::vector<int> &&)>, std::vector<int>&>);
}

BOOST_AUTO_TEST_CASE(jobs_of_one_type_are_told_apart_by_name) {
  const crew::job<int(int)> a{"a"};
  const crew::job<int(int)> b{"b"};
  BOOST_TEST(a.signature() == b.signature());
  BOOST_TEST(a.name() != b.name());
  BOOST_TEST(a(1).target == &a);
  BOOST_TEST(b(1).target == &b);
}

BOOST_AUTO_TEST_SUITE_END()
