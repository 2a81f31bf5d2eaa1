// Compile-time checks of crew::job's call operator, run by ctest with -fsyntax-only.
// As is, this file must compile: the calls below are well-typed. With
// CREW_EXPECT_COMPILE_ERROR defined it also holds one call with wrong argument types
// (1, the default value of a bare -D: a string for an int; 2: a vector for a string), or
// a job whose result holds a view (3: an array_view inside a pair), and the compiler must
// reject it (those tests are WILL_FAIL).
#include <crew/job.hpp>

#include <string>
#include <utility>
#include <vector>

namespace {

const crew::job<double(int)> by_int{"by_int"};
const crew::job<int(std::string)> by_string{"by_string"};
const crew::job<double(double)> by_double{"by_double"};

// Views are fine as arguments, and results may hold owning containers of anything.
const crew::job<std::pair<std::vector<double>, int>(crew::array_view<double>)> owning{"owning"};

[[maybe_unused]] void well_typed() {
  [[maybe_unused]] auto a = by_int(3);
  [[maybe_unused]] auto b = by_string("three");
  [[maybe_unused]] auto c = by_string(std::string("three"));
  [[maybe_unused]] auto d = by_double(3);
}

#ifdef CREW_EXPECT_COMPILE_ERROR
#if CREW_EXPECT_COMPILE_ERROR == 3
const crew::job<std::pair<crew::array_view<double>, int>(int)> view_result{"view_result"};
#elif CREW_EXPECT_COMPILE_ERROR == 2
[[maybe_unused]] void wrong_types() {
  [[maybe_unused]] auto inv = by_string(std::vector<double>{1.0, 2.0});
}
#else
[[maybe_unused]] void wrong_types() {
  crew::job<double(int)> j{"j"};
  [[maybe_unused]] auto inv = j("three");
}
#endif
#endif

}  // namespace
