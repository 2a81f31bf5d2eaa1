// crew/registry.hpp — the implementations of jobs, looked up by name.
//
// A worker serves a registry (worker_runtime.hpp); thread_pool and inline_runner call one
// in-process. Read next: worker_runtime.hpp, then process_pool.hpp.
#pragma once

#include <crew/codec.hpp>
#include <crew/job.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>
#include <typeinfo>
#include <vector>

namespace crew {

/// Maps job names to implementations. Workers serve the jobs of a registry; the thread
/// pool and the inline runner call them in-process.
/// Thread safety: `add` is not thread-safe; after the last `add`, every const member may
/// be called from any number of threads at once.
class registry {
 public:
  /// Where an encoded result goes: called once with the result's encoded size, it returns
  /// the encoder to write it with (into a frame buffer, or straight into shared memory).
  using result_sink = std::function<encoder(std::size_t size)>;
  /// Runs a job on encoded arguments and writes its encoded result through `sink` (a void
  /// job calls `sink(0)`). Throws decode_error for malformed arguments or bytes left over;
  /// whatever the job or the sink throws passes through.
  using encoded_call = std::function<void(decoder& args, const result_sink& sink)>;
  /// As encoded_call, in the form a batch runs each item in (no sink to call through): the
  /// encoded result is appended to `out` after `room` bytes left for the caller (a batch
  /// item's header, which the caller writes); returns the result's size (0 for a void job).
  /// Throws as encoded_call; `out` may then hold part of the item (the caller truncates it).
  using appending_call =
      std::function<std::size_t(decoder& args, std::vector<std::byte>& out, std::size_t room)>;

  /// One registered job.
  struct entry {
    /// Its name and wire signature, as a worker announces them.
    job_info info;
    /// The implementation on encoded bytes (what a worker runs).
    encoded_call call_encoded;
    /// The same, appending (what a worker runs for each item of a batch).
    appending_call call_appending;
    /// `typeid(R(decayed Args...))`: what `call` checks before casting `typed`.
    std::type_index signature_type;
    /// Internal: the implementation as a typed std::function, for `call`.
    std::shared_ptr<const void> typed;  // std::function<R(decayed Args...)>
  };

  /// Registers `fn` as the implementation of `j`; `fn` must be callable with the job's
  /// decayed argument types and return something convertible to its result. `fn` is copied
  /// (or moved) in; `j` itself is not kept. Returns `*this`, for chaining.
  /// Throws std::invalid_argument if a job of that name is already registered (the registry
  /// is then unchanged).
  template <class R, class... A, class F>
  registry& add(const job<R(A...)>& j, F fn);

  /// The entry named `name`, or nullptr. The pointer stays valid until the registry is
  /// destroyed (entries are never removed; `add` does not move them).
  const entry* find(std::string_view name) const noexcept;

  /// The jobs registered, sorted by name.
  std::vector<job_info> jobs() const;

  /// Calls the job of `inv` in this thread. Throws task_error with `unknown_job` if no job
  /// has that name, `signature_mismatch` if it has other C++ types (compared exactly, not by
  /// wire name); the job's exceptions pass through unchanged.
  template <class R, class... A>
  R call(invocation<R, A...> inv) const;

 private:
  void insert(entry e);
  const entry& lookup(const std::string& name, const std::string& signature,
                      const std::type_info& type) const;

  std::map<std::string, entry, std::less<>> entries_;
};

template <class R, class... A, class F>
registry& registry::add(const job<R(A...)>& j, F fn) {
  using fn_type = std::function<R(std::decay_t<A>...)>;
  auto typed = std::make_shared<const fn_type>(std::move(fn));
  encoded_call encoded = [typed](decoder& d, const result_sink& sink) {
    auto args = d.get<typename job<R(A...)>::args_tuple>();
    d.expect_end();
    if constexpr (std::is_void_v<R>) {
      std::apply(*typed, std::move(args));
      sink(0);
    } else {
      const R result = std::apply(*typed, std::move(args));
      auto counter = encoder::counter();  // sized first, so it can be written in place
      counter.put(result);
      auto e = sink(counter.size());
      e.put(result);
    }
  };
  // What a batch runs per item: the same callable (one object, whatever state it keeps).
  appending_call appending = [typed](decoder& d, std::vector<std::byte>& out,
                                     std::size_t room) -> std::size_t {
    auto args = d.get<typename job<R(A...)>::args_tuple>();
    d.expect_end();
    if constexpr (std::is_void_v<R>) {
      std::apply(*typed, std::move(args));
      out.resize(out.size() + room);
      return 0;
    } else {
      const R result = std::apply(*typed, std::move(args));
      auto counter = encoder::counter();
      counter.put(result);
      const std::size_t at = out.size() + room;
      out.resize(at + counter.size());
      encoder e(out.data() + at, counter.size());
      e.put(result);
      return counter.size();
    }
  };
  insert(entry{{j.name(), j.signature()},
               std::move(encoded),
               std::move(appending),
               typeid(R(std::decay_t<A>...)),
               typed});
  return *this;
}

template <class R, class... A>
R registry::call(invocation<R, A...> inv) const {
  const auto& e =
      lookup(inv.target->name(), inv.target->signature(), typeid(R(std::decay_t<A>...)));
  const auto& fn = *static_cast<const std::function<R(std::decay_t<A>...)>*>(e.typed.get());
  return std::apply(fn, std::move(inv.args));
}

}  // namespace crew
