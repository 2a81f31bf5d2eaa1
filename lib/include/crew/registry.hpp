// crew/registry.hpp — the implementations of jobs, looked up by name.
//
// A worker serves a registry (worker_runtime.hpp); thread_pool and inline_runner call one
// in-process. Read next: worker_runtime.hpp, then process_pool.hpp.
#pragma once

#include <crew/codec.hpp>
#include <crew/job.hpp>
#include <crew/protocol.hpp>

#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
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
  /// A batch's items run in one loop (what a worker does with map's batch frames,
  /// docs/protocol.md section 9): each item's arguments come from `items`, and its outcome is
  /// appended to `out` as a batch_result item (u8 kind, u32 length, the encoded result). The
  /// hooks belong to the runner and are called rarely: `poll` before every 256th item (true
  /// stops the batch), `failed` for an item whose decoding or call threw (the exception being
  /// handled is passed; `out` is cut back to `item_at` first, and the hook appends the item's
  /// error item there).
  struct batch_run {
    protocol::batch_reader& items;
    std::vector<std::byte>& out;
    /// The batch stops once `out.size() - limit_base` exceeds `limit` (the frame limit).
    std::size_t limit_base;
    std::size_t limit;
    bool (*poll)(void* runner);
    void (*failed)(void* runner, std::size_t item_at, std::exception_ptr error);
    void* runner;
  };
  /// Where a batch stopped: after all its items, or at item `at` (cancelled before it ran, or
  /// its outcome made `out` too large).
  struct batch_end {
    enum class reason { done, cancelled, too_large } why = reason::done;
    std::uint32_t at = 0;
  };
  /// Runs a batch (see batch_run). Throws decode_error for a malformed batch (from `items`);
  /// `out` then holds part of it, for the caller to cut back.
  using batch_call = std::function<batch_end(batch_run& run)>;

  /// One registered job.
  struct entry {
    /// Its name and wire signature, as a worker announces them.
    job_info info;
    /// The implementation on encoded bytes (what a worker runs).
    encoded_call call_encoded;
    /// The implementation on a batch's items, in one loop (what a worker runs for map).
    batch_call call_batch;
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
  // A batch's loop, typed: per item one call through `typed` (the same callable as above,
  // whatever state it keeps), no sink and, for a number result, no growing of `out` per item.
  batch_call batch = [typed](batch_run& run) -> batch_end {
    using args_tuple = typename job<R(A...)>::args_tuple;
    constexpr std::size_t header = 5;  // u8 kind, u32 length
    constexpr bool fixed = detail::is_plain_number_result<R>;
    constexpr std::size_t item_bytes = header + detail::plain_size<R>;
    auto& out = run.out;
    const std::uint32_t count = run.items.count();
    std::size_t used = out.size();  // `out` beyond `used` is room, cut off at the end
    if constexpr (fixed) out.resize(used + std::size_t{count} * item_bytes);
    auto put_header = [&out](std::size_t at, std::size_t n) {
      out[at] = static_cast<std::byte>(protocol::frame_type::result);
      const auto length = static_cast<std::uint32_t>(n);
      std::memcpy(out.data() + at + 1, &length, 4);
    };
    for (std::uint32_t i = 0; i < count; ++i) {
      if (i % 256 == 255 && run.poll(run.runner)) {
        out.resize(used);
        return {batch_end::reason::cancelled, i};
      }
      const auto item = run.items.next();
      const std::size_t at = used;
      try {
        decoder d(item.data(), item.size());
        auto args = d.get<args_tuple>();
        d.expect_end();
        if constexpr (std::is_void_v<R>) {
          std::apply(*typed, std::move(args));
          out.resize(at + header);
          put_header(at, 0);
          used = at + header;
        } else if constexpr (fixed) {
          const R result = std::apply(*typed, std::move(args));
          put_header(at, sizeof(R));
          std::memcpy(out.data() + at + header, &result, sizeof(R));
          used = at + item_bytes;
        } else {
          const R result = std::apply(*typed, std::move(args));
          auto counter = encoder::counter();
          counter.put(result);
          if (counter.size() > std::numeric_limits<std::uint32_t>::max())
            throw capacity_exceeded("a batch item of " + std::to_string(counter.size()) +
                                    " bytes does not fit a 32-bit length");
          out.resize(at + header + counter.size());
          put_header(at, counter.size());
          encoder e(out.data() + at + header, counter.size());
          e.put(result);
          used = at + header + counter.size();
        }
      } catch (...) {
        out.resize(at);
        run.failed(run.runner, at, std::current_exception());
        used = out.size();
        if constexpr (fixed) out.resize(used + std::size_t{count - i - 1} * item_bytes);
      }
      if (used - run.limit_base > run.limit) {
        out.resize(used);
        return {batch_end::reason::too_large, i};
      }
    }
    out.resize(used);
    return {};
  };
  insert(entry{{j.name(), j.signature()},
               std::move(encoded),
               std::move(batch),
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
