#!/usr/bin/env python3
"""Python's own pools on this machine, as a yardstick for crew's benchmarks.

    python3 apps/bench/peers.py [--quick] [--json] [--workers 2]
    python3 apps/bench/peers.py --serve [--workers 2]

Measures multiprocessing.Pool, concurrent.futures.ProcessPoolExecutor and
ThreadPoolExecutor: trivial-task throughput, the latency of one call, the cost
of moving payloads, and the notebook's CPU-bound function (long_comp).

--json prints exactly one JSON document on stdout (rates per second, times in
seconds, sizes in bytes); progress always goes to stderr. --quick divides every
task count and repetition by QUICK_DIVISOR (used by a smoke test).

--serve is how crew-bench runs it, so that its rounds can interleave with
crew's (crew round, Python round, crew round, ...): one warm
multiprocessing.Pool(workers) (and, once asked for, warm executors) kept for
the whole session; one JSON command per line on stdin, one JSON line per
command on stdout (the first line, before any command: {"ready": true,
"python", "start_method", "workers"}). Commands ({"cmd": NAME, ...}):
  apply_async_many {n}      n apply_async(ident), then get() each
  apply_async_one {n}       apply_async(ident, (i,)).get(), n in sequence
  map {n, chunksize}        Pool.map(ident, range(n), chunksize) (null: default)
  ppe_submit_many {n}       ProcessPoolExecutor.submit(ident) n times, then result()
  tpe_submit_many {n}       the same on a ThreadPoolExecutor
      -> {"tasks", "seconds", "per_s"}
  latency {samples}         pool.apply(ident, (1,)) in sequence
      -> {"samples", "median_us", "p99_us"}
  payload {size, mode, reps}  pool.apply(echo or length, (bytes,)); mode "echo" or
                            "in_small_out" -> {"reps", "median_s", "min_s", "max_s"}
  long_comp {quick}         as the one-shot mode's long_comp (pool: the warm pool)
  quit                      close the pools and exit (so does the end of stdin)
Every result is checked; a wrong one, or a bad command, answers {"error": TEXT}.
Standard library only.
"""

import argparse
import concurrent.futures as cf
import contextlib
import json
import math
import multiprocessing as mp
import platform
import statistics
import sys
import time

QUICK_DIVISOR = 20

# Full-run sizes (divided by QUICK_DIVISOR under --quick).
TRIVIAL_TASKS = 20_000            # per trivial-throughput measurement
ONE_AT_A_TIME_TASKS = 5_000       # apply_async(...).get() in sequence
MAP_MILLION_TASKS = 1_000_000
LATENCY_SAMPLES = 5_000
PAYLOAD_REPS = {4096: 1000, 1 << 20: 100, 64 << 20: 5}

LONG_COMP_VALUE = 2236.5678097446853  # the notebook's result for every i in 0..3


# --- jobs (module level so that every start method can pickle them) ---

def ident(x):
    return x


def length(b):
    return len(b)


def echo(b):
    return b


def long_comp(i):
    # The notebook's CPU-bound function (cell In[4]), without its prints and the
    # res_dict side channel, which a pool cannot fill anyway.
    x = i
    for y in range(5000000):
        if x % 2 == 0:
            x = (x-y)**2
        else:
            x = (x+y)**0.5
    return x


# --- helpers ---

_T0 = time.perf_counter()


def progress(msg):
    print(f"[{time.perf_counter() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def rate(tasks, seconds):
    return {"tasks": tasks, "seconds": seconds, "per_s": tasks / seconds}


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@contextlib.contextmanager
def warm_pool(ctx, workers):
    """A multiprocessing.Pool that has run one round of tasks; closed and joined on exit."""
    pool = ctx.Pool(workers)
    try:
        pool.map(ident, range(workers * 4), chunksize=1)
        yield pool
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()


@contextlib.contextmanager
def warm_executor(make, workers):
    """A concurrent.futures executor that has run one round of tasks; shut down on exit."""
    with make(max_workers=workers) as ex:
        for f in [ex.submit(ident, i) for i in range(workers * 4)]:
            f.result()
        yield ex


def timed(fn):
    """Seconds fn() takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class WrongResult(Exception):
    """A pool returned something else than the job computes."""


def check(ok, what):
    if not ok:
        raise WrongResult(f"peers.py: wrong result in {what}")


# --- one measurement on a warm pool (both modes) ---

def apply_async_many(pool, n):
    """Submit all n with apply_async, then get() them all."""
    result = []
    seconds = timed(lambda: result.extend(
        r.get() for r in [pool.apply_async(ident, (i,)) for i in range(n)]))
    check(result == list(range(n)), "pool_apply_async_many")
    return rate(n, seconds)


def apply_async_one(pool, n):
    """One task in flight at a time: apply_async(...).get() in sequence."""
    result = []
    seconds = timed(lambda: result.extend(
        pool.apply_async(ident, (i,)).get() for i in range(n)))
    check(result == list(range(n)), "pool_apply_async_one_at_a_time")
    return rate(n, seconds)


def pool_map(pool, n, chunksize):
    """Pool.map(ident, range(n)) with chunksize (None: map's own default)."""
    result = []
    seconds = timed(lambda: result.extend(pool.map(ident, range(n), chunksize=chunksize)))
    check(result == list(range(n)), f"Pool.map, chunksize {chunksize}")
    return rate(n, seconds)


def executor_many(ex, n, name):
    """concurrent.futures: submit all n, then result() each."""
    result = []
    seconds = timed(lambda: result.extend(
        f.result() for f in [ex.submit(ident, i) for i in range(n)]))
    check(result == list(range(n)), name)
    return rate(n, seconds)


def apply_latency(pool, samples):
    """Wall time of each pool.apply(ident, (1,)), one after another."""
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        pool.apply(ident, (1,))
        times.append(time.perf_counter() - start)
    times.sort()
    return {"samples": samples,
            "median_us": statistics.median(times) * 1e6,
            "p99_us": percentile(times, 99) * 1e6}


PAYLOAD_JOBS = {"in_small_out": length, "echo": echo}


def payload_data(size):
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


def apply_payload(pool, data, mode, reps):
    """pool.apply with a bytes argument, reps times: returning its length (in_small_out) or
    the bytes themselves (echo)."""
    job = PAYLOAD_JOBS[mode]
    expected = len(data) if mode == "in_small_out" else data
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        result = pool.apply(job, (data,))
        times.append(time.perf_counter() - start)
        check(result == expected, f"payload {len(data)} {mode}")
        del result
    return {"reps": reps, "median_s": statistics.median(times),
            "min_s": min(times), "max_s": max(times)}


# --- the one-shot measurements (a fresh warm pool each) ---

def bench_trivial(ctx, workers, n, n_one):
    out = {}

    def pool_case(name, tasks, body):
        progress(f"trivial: {name} ({tasks} tasks)")
        with warm_pool(ctx, workers) as pool:
            out[name] = body(pool, tasks)

    pool_case("pool_apply_async_many", n, apply_async_many)
    pool_case("pool_apply_async_one_at_a_time", n_one, apply_async_one)
    # Pool.map, one task per message, and with map's own chunking.
    pool_case("pool_map_chunksize_1", n, lambda pool, k: pool_map(pool, k, 1))
    pool_case("pool_map_default_chunksize", n, lambda pool, k: pool_map(pool, k, None))

    for name, make in (("ppe_submit_many",
                        lambda **kw: cf.ProcessPoolExecutor(mp_context=ctx, **kw)),
                       ("tpe_submit_many", cf.ThreadPoolExecutor)):
        progress(f"trivial: {name} ({n} tasks)")
        with warm_executor(make, workers) as ex:
            out[name] = executor_many(ex, n, name)
    return out


def bench_map_million(ctx, workers, n):
    # Pool.map over n ints with the default chunksize.
    progress(f"map_million: Pool.map over {n} ints")
    with warm_pool(ctx, workers) as pool:
        return pool_map(pool, n, None)


def bench_latency(ctx, workers, samples):
    progress(f"latency: {samples} x pool.apply")
    with warm_pool(ctx, workers) as pool:
        return {"pool_apply_one_at_a_time": apply_latency(pool, samples)}


def bench_payload(ctx, workers, reps_by_size):
    out = {}
    for size, reps in reps_by_size.items():
        data = payload_data(size)   # made once, outside the timing
        entry = {}
        for name in ("in_small_out", "echo"):
            progress(f"payload: {size} bytes, {name} x {reps}")
            with warm_pool(ctx, workers) as pool:
                m = apply_payload(pool, data, name, reps)
            entry[name] = {"reps": m["reps"], "median_s": m["median_s"]}
        out[str(size)] = entry
    return out


def long_comp_on(pool, workers, quick):
    # The notebook's experiment: one call, four in sequence, four on the pool.
    progress("long_comp: one call")
    start = time.perf_counter()
    value = long_comp(0)
    one = time.perf_counter() - start
    check(value == LONG_COMP_VALUE, "long_comp(0)")
    out = {"value_0": value, "one_call_s": one,
           "sequential_4_s": None, "pool_4_calls_s": None}
    if quick:
        return out

    progress("long_comp: four calls in sequence")
    values = []
    out["sequential_4_s"] = timed(lambda: values.extend(long_comp(i) for i in range(4)))
    check(values == [LONG_COMP_VALUE] * 4, "long_comp sequential")

    progress(f"long_comp: four calls on Pool({workers}).map")
    values = []
    out["pool_4_calls_s"] = timed(lambda: values.extend(pool.map(long_comp, range(4))))
    check(values == [LONG_COMP_VALUE] * 4, "long_comp pool")
    return out


def bench_long_comp(ctx, workers, quick):
    if quick:   # one call only: no pool
        return long_comp_on(None, workers, quick)
    with warm_pool(ctx, workers) as pool:
        return long_comp_on(pool, workers, quick)


# --- serve mode ---

def serve(ctx, workers):
    """One warm pool (and warm executors once asked for) for the whole session; one JSON
    command per stdin line, one JSON answer per stdout line (see the module's doc)."""
    def answer(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(warm_pool(ctx, workers))
        executors = {}
        data = {}   # payload bytes by size, made once, outside the timing

        def executor(name):
            if name not in executors:
                make = (cf.ThreadPoolExecutor if name == "tpe" else
                        lambda **kw: cf.ProcessPoolExecutor(mp_context=ctx, **kw))
                executors[name] = stack.enter_context(warm_executor(make, workers))
            return executors[name]

        def payload(c):
            size = int(c["size"])
            if size not in data:
                data.clear()   # one size at a time: a 64 MiB object is enough
                data[size] = payload_data(size)
            return apply_payload(pool, data[size], c["mode"], int(c["reps"]))

        commands = {
            "apply_async_many": lambda c: apply_async_many(pool, int(c["n"])),
            "apply_async_one": lambda c: apply_async_one(pool, int(c["n"])),
            "map": lambda c: pool_map(pool, int(c["n"]), c.get("chunksize")),
            "ppe_submit_many": lambda c: executor_many(executor("ppe"), int(c["n"]),
                                                       "ppe_submit_many"),
            "tpe_submit_many": lambda c: executor_many(executor("tpe"), int(c["n"]),
                                                       "tpe_submit_many"),
            "latency": lambda c: apply_latency(pool, int(c["samples"])),
            "payload": payload,
            "long_comp": lambda c: long_comp_on(pool, workers, bool(c.get("quick"))),
        }
        answer({"ready": True, "python": platform.python_version(),
                "start_method": ctx.get_start_method(), "workers": workers})
        for line in iter(sys.stdin.readline, ""):
            if not line.strip():
                continue
            try:
                c = json.loads(line)
                name = c.get("cmd")
                if name == "quit":
                    answer({"bye": True})
                    break
                if name not in commands:
                    raise ValueError(f"unknown command {name!r}")
                answer(commands[name](c))
            except (WrongResult, ValueError, KeyError, TypeError) as e:
                answer({"error": f"{type(e).__name__}: {e}"})


# --- output ---

def print_table(r):
    print(f"Python {r['python']} pools, start method {r['start_method']}, "
          f"{r['workers']} workers{' (quick)' if r['quick'] else ''}")
    print()
    print(f"{'trivial task (ident)':<34}{'tasks':>10}{'seconds':>10}{'tasks/s':>12}")
    rows = list(r["trivial"].items()) + [("pool_map_million", r["map_million"])]
    for name, m in rows:
        print(f"{name:<34}{m['tasks']:>10}{m['seconds']:>10.3f}{m['per_s']:>12.0f}")
    print()
    lat = r["latency"]["pool_apply_one_at_a_time"]
    print(f"pool.apply(ident) latency: median {lat['median_us']:.1f} us, "
          f"p99 {lat['p99_us']:.1f} us ({lat['samples']} samples)")
    print()
    print(f"{'payload bytes':<16}{'in_small_out ms':>16}{'echo ms':>12}{'reps':>6}")
    for size, e in r["payload"].items():
        print(f"{size:<16}{e['in_small_out']['median_s'] * 1e3:>16.3f}"
              f"{e['echo']['median_s'] * 1e3:>12.3f}{e['echo']['reps']:>6}")
    print()
    lc = r["long_comp"]

    def sec(v):
        return "skipped" if v is None else f"{v:.3f} s"
    print(f"long_comp(0) = {lc['value_0']!r}: one call {sec(lc['one_call_s'])}, "
          f"4 in sequence {sec(lc['sequential_4_s'])}, "
          f"4 on Pool({r['workers']}) {sec(lc['pool_4_calls_s'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"divide task counts and repetitions by {QUICK_DIVISOR}")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--serve", action="store_true",
                        help="answer JSON commands on stdin (how crew-bench runs it)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.serve and (args.quick or args.json):
        parser.error("--serve takes no --quick or --json (the commands give the counts)")

    ctx = mp.get_context()   # the platform default start method, recorded below
    try:
        if args.serve:
            serve(ctx, args.workers)
        else:
            one_shot(args, ctx)
    except WrongResult as e:
        raise SystemExit(str(e))


def one_shot(args, ctx):
    def scale(n):
        return max(1, n // QUICK_DIVISOR) if args.quick else n

    result = {
        "python": platform.python_version(),
        "start_method": ctx.get_start_method(),
        "workers": args.workers,
        "quick": args.quick,
        "trivial": bench_trivial(ctx, args.workers, scale(TRIVIAL_TASKS),
                                 scale(ONE_AT_A_TIME_TASKS)),
        "map_million": bench_map_million(ctx, args.workers, scale(MAP_MILLION_TASKS)),
        "latency": bench_latency(ctx, args.workers, scale(LATENCY_SAMPLES)),
        "payload": bench_payload(ctx, args.workers,
                                 {s: scale(k) for s, k in PAYLOAD_REPS.items()}),
        "long_comp": bench_long_comp(ctx, args.workers, args.quick),
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_table(result)


if __name__ == "__main__":
    main()
