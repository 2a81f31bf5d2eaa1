// crew/job.hpp — a typed, named job, declared once and shared by coordinator and worker.
//
// A job is only a name and a signature; its implementation is registered in a registry
// (registry.hpp) and run by a pool (process_pool.hpp, thread_pool.hpp, inline_runner.hpp).
// Read next: registry.hpp; codec.hpp for the argument and result types allowed.
#pragma once

#include <crew/codec.hpp>

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace crew {

/// A job as a worker announces it: its name and its signature in wire type names.
struct job_info {
  /// The job's name (job::name()).
  std::string name;
  /// The job's signature in wire type names (job::signature()), e.g. `"f64(i32)"`.
  std::string signature;
  /// Equal when both name and signature are.
  friend bool operator==(const job_info&, const job_info&) = default;
};

/// A job; only the specialization for function types `R(Args...)` exists.
template <class Signature>
class job;

namespace detail {
/// Internal: the wire name of a result type (`"void"` for void).
template <class R>
std::string result_name() {
  if constexpr (std::is_void_v<R>)
    return "void";
  else
    return codec<R>::name();
}
}  // namespace detail

/// One call of a job with its arguments, made by `job::operator()`; what the pools'
/// `submit` functions take. It refers to its job, which must outlive the task: process_pool
/// copies the job's name and signature when the submission is initiated, but thread_pool
/// and inline_runner read them when the task runs. (Jobs declared `inline const` at namespace
/// scope, as below, live as long as the program.)
/// Thread safety: a value; not shared by the pools.
template <class R, class... Args>
struct invocation {
  /// The job's result type.
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
  /// The job's result type.
  using result_type = R;
  /// The job's C++ signature, as declared.
  using signature_type = R(Args...);
  /// The argument types as the job stores and transmits them.
  using args_tuple = std::tuple<std::decay_t<Args>...>;

  /// A job named `name`. Names are how workers find their implementation: two jobs of one
  /// program must not share a name. Throws only std::bad_alloc.
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
  /// function with parameters `Args...`; anything else does not compile. The arguments are
  /// copied or moved into the invocation (an array_view still refers to the caller's memory).
  invocation<R, Args...> operator()(Args... args) const {
    return {this, std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)};
  }

 private:
  std::string name_;
  std::string signature_;
};

}  // namespace crew
