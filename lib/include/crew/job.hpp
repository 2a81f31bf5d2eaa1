// crew/job.hpp — a typed, named job, declared once and shared by coordinator and worker.
#pragma once

#include <crew/codec.hpp>

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace crew {

template <class Signature>
class job;

namespace detail {
template <class R>
std::string result_name() {
  if constexpr (std::is_void_v<R>)
    return "void";
  else
    return codec<R>::name();
}
}  // namespace detail

/// One call of a job with its arguments, made by `job::operator()`; what the pools'
/// `submit` functions take. It refers to its job, which must outlive the call to submit
/// (not the task: the pools copy what they need).
template <class R, class... Args>
struct invocation {
  using result_type = R;
  /// The job called.
  const job<R(Args...)>* target;
  /// The arguments, decayed and owned.
  std::tuple<std::decay_t<Args>...> args;
};

/// A job: a name and a signature `R(Args...)`. Declare it once in a header that both the
/// coordinator and the worker include:
/// @code
/// inline const crew::job<double(int)> long_comp{"long_comp"};
/// pool.submit(long_comp(3));      // compiles
/// pool.submit(long_comp("three")); // does not compile: const char* is not an int
/// @endcode
/// `R` and every decayed `Args` must have a `crew::codec` (or `R` may be void).
/// Thread safety: immutable after construction; share freely.
template <class R, class... Args>
class job<R(Args...)> {
  static_assert((encodable<std::decay_t<Args>> && ...),
                "every job argument type needs a crew::codec specialization");
  static_assert(std::is_void_v<R> || encodable<R>,
                "the job's result type needs a crew::codec specialization");
  static_assert(!contains_view_v<R>,
                "a job's result must own its data (no array_view anywhere in it): the bytes a "
                "view points into are reused by the next task");

 public:
  using result_type = R;
  using signature_type = R(Args...);
  /// The argument types as the job stores and transmits them.
  using args_tuple = std::tuple<std::decay_t<Args>...>;

  /// A job named `name`. Names are how workers find their implementation.
  explicit job(std::string name)
      : name_(std::move(name)),
        signature_(detail::result_name<R>() + "(" + detail::join_names<std::decay_t<Args>...>() +
                   ")") {}

  /// The job's name.
  const std::string& name() const noexcept { return name_; }
  /// The signature in wire type names, e.g. `"f64(i32)"`; workers report it in their
  /// handshake so a coordinator and a worker built from different headers are caught.
  const std::string& signature() const noexcept { return signature_; }

  /// Binds arguments to make an invocation. Arguments convert exactly as in a call of a
  /// function with parameters `Args...`; anything else does not compile.
  invocation<R, Args...> operator()(Args... args) const {
    return {this, std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)};
  }

 private:
  std::string name_;
  std::string signature_;
};

}  // namespace crew
