#!/usr/bin/env bash
# tests/fuzz/run.sh [seconds]: builds the libFuzzer targets in build-fuzz/ (clang, with
# ASan and UBSan) and runs each, one after the other, for `seconds` (default: $FUZZ_SECONDS,
# else 60) over a copy of its seed corpus in build-fuzz/fuzz-run/, so the repository stays
# clean. Prints one summary line per target; exits non-zero if any target found a crash,
# a leak, a timeout or an allocation over the limit (the input is kept under
# build-fuzz/fuzz-run/artifacts/). Also checks that tests/fuzz/corpus/ is what
# crew-fuzz-make-corpus generates, regression inputs (regress-*) aside.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-${FUZZ_SECONDS:-60}}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: seconds must be a positive integer, not '$seconds'" >&2; exit 2; }
dir=build-fuzz
targets=(crew-fuzz-frames crew-fuzz-codec crew-fuzz-shm)

# Build chatter goes to stderr, the summary to stdout. Two jobs at most: fuzzing shares
# the machine.
CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCREW_FUZZ=ON \
  -DCREW_BUILD_TESTS=OFF -DCREW_BUILD_APPS=OFF -DCREW_INSTALL=OFF >/dev/null
cmake --build "$dir" --target crew-fuzz -j 2 >&2

work=$dir/fuzz-run
rm -rf "$work"
mkdir -p "$work"
"$dir/fuzz/crew-fuzz-make-corpus" "$work/generated"
if ! diff -r -q -x 'regress-*' tests/fuzz/corpus "$work/generated" >&2; then
  echo "run.sh: tests/fuzz/corpus/ differs from what crew-fuzz-make-corpus writes; regenerate it" \
    "(regress-* inputs stay):" >&2
  echo "  find tests/fuzz/corpus -type f ! -name 'regress-*' -delete &&" \
    "$dir/fuzz/crew-fuzz-make-corpus tests/fuzz/corpus" >&2
  exit 1
fi

failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/$t/"
  seeds=$(find "$work/corpus/$t" -type f | wc -l)
  log=$work/$t.log
  start=$(date +%s)
  status=0
  # -malloc_limit_mb: no single allocation may approach what a length field could claim
  # (inputs are at most 4 KiB); -rss_limit_mb bounds the whole process.
  "$dir/fuzz/$t" "$work/corpus/$t" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -rss_limit_mb=1024 -malloc_limit_mb=64 -use_value_profile=1 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  seed=$(sed -n 's/.*Seed: \([0-9]*\).*/\1/p' "$log" | head -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  if [ "$status" -eq 0 ]; then
    echo "$t: ok, ${runs:-?} runs in ${elapsed} s (${rate:-?}/s), cov ${cov:-?}, features ${ft:-?}, corpus ${seeds} -> ${corp:-?}, seed ${seed:-?}"
  else
    failed=1
    artifact=$(find "$work/artifacts/$t" -type f | head -n 1)
    echo "$t: FAILED (exit $status) after ${runs:-?} runs in ${elapsed} s, seed ${seed:-?}; input: ${artifact:-none}; log: $log"
    grep -E 'ERROR|invariant violated|SUMMARY|#[0-9]+ 0x[0-9a-f]+ in ' "$log" | head -n 30 >&2 || true
  fi
done
exit "$failed"
