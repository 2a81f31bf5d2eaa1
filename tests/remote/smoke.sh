#!/usr/bin/env bash
# tests/remote/smoke.sh [ENV]: proves the remote fixture (cluster.sh start) works. ENV is
# the cluster's env file (default: $CREW_REMOTE_ENV). Checks that a step in the tests'
# allocation runs on n1 and on n2, that ssh reaches crew-a and crew-fast and fails at once
# on crew-dead, and that 1 MiB of random bytes comes back unchanged through `srun -u cat`
# and `ssh -T cat`. Every command is bounded by a timeout.
set -euo pipefail

env_file=${1:-${CREW_REMOTE_ENV:-}}
if [ -z "$env_file" ] || [ ! -r "$env_file" ]; then
  echo "smoke.sh: no cluster env file ('$env_file'): did remote_cluster_start run?" >&2
  exit 1
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

failures=0
check() {  # check WHAT EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then
    echo "ok: $1"
  else
    echo "FAILED: $1: expected '$2', got '$3'" >&2
    failures=$((failures + 1))
  fi
}
step() { timeout 30 srun --jobid="$CREW_SLURM_JOB" --overlap -u -n1 "$@"; }
remote() { timeout 30 ssh -T -F "$CREW_SSH_CONFIG" "$@"; }

for node in ${CREW_SLURM_NODES//,/ }; do
  check "srun step on $node" "$node" "$(step -w "$node" printenv SLURMD_NODENAME || true)"
done
for host in ${CREW_SSH_HOSTS//,/ } "$CREW_SSH_FAST_HOST"; do
  check "ssh $host" ok "$(remote "$host" echo ok </dev/null || true)"
done

start=$(date +%s%N)
if remote "$CREW_SSH_DEAD_HOST" true </dev/null 2>/dev/null; then dead=succeeded; else dead=failed; fi
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "ssh $CREW_SSH_DEAD_HOST fails" failed "$dead"
# Refused at once, not a timeout: well under its ConnectTimeout of 3 s.
check "ssh $CREW_SSH_DEAD_HOST fails within 2 s" yes "$([ "$elapsed_ms" -lt 2000 ] && echo yes || echo "no (${elapsed_ms} ms)")"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 1048576 /dev/urandom >"$tmp/in"
step -w "${CREW_SLURM_NODES%%,*}" cat <"$tmp/in" >"$tmp/srun.out" || true
check "1 MiB through srun -u cat" same "$(cmp -s "$tmp/in" "$tmp/srun.out" && echo same || echo "differ ($(stat -c %s "$tmp/srun.out") bytes back)")"
remote "${CREW_SSH_HOSTS%%,*}" cat <"$tmp/in" >"$tmp/ssh.out" || true
check "1 MiB through ssh -T cat" same "$(cmp -s "$tmp/in" "$tmp/ssh.out" && echo same || echo "differ ($(stat -c %s "$tmp/ssh.out") bytes back)")"

[ "$failures" -eq 0 ] || { echo "smoke.sh: $failures check(s) failed" >&2; exit 1; }
echo "smoke.sh: all checks passed"
