#!/usr/bin/env bash
# crew's one entry script: installs what the build needs (Debian 12), builds, and runs.
#   ./crew.sh notebook [crew notebook options]   build, then play the notebook
#   ./crew.sh test [--sanitize address,undefined|thread]   build, then run every test (the
#                                                 remote ones start a Slurm cluster and an
#                                                 sshd on 127.0.0.1: as root; -LE remote in
#                                                 ctest leaves them out)
#   ./crew.sh bench [crew-bench options]          build, then run the benchmark (issue 5's table;
#                                                 --quick, --json, --skip-python, --sections a,b)
#   ./crew.sh bench --transport [--quick|--json]  build, then run the shm/pipe transport benchmark
#   ./crew.sh build                               build only
#   ./crew.sh crew <args>                         build, then run the crew CLI
#   ./crew.sh fuzz [seconds]                      build the libFuzzer targets, run each (default 60 s)
set -euo pipefail
cd "$(dirname "$0")"

# python3: the Python worker example and its test, the benchmark's Python peers.
# librsvg2-bin: rsvg-convert, with which the timeline test renders its SVG.
# bubblewrap: the workers' sandbox (--sandbox, process_pool_options::sandbox) and its tests.
# libssl-dev: OpenSSL (libcrypto for the connect-back handshake's HMAC-SHA256, libssl for its TLS).
packages=(g++ make cmake ccache python3 librsvg2-bin bubblewrap libssl-dev libboost1.81-dev libboost-filesystem1.81-dev
          libboost-test1.81-dev libboost-program-options1.81-dev libboost-json1.81-dev)
# The remote tests (tests/remote/) run their own two-node Slurm cluster and sshd on this host.
remote_packages=(slurmd slurmctld slurm-client munge openssh-server openssh-client)
# The fuzz targets (tests/fuzz/) also need clang and its libFuzzer runtime.
fuzz_packages=(clang libclang-rt-14-dev)

install_missing() {  # install_missing [package...]: by default, the build's packages
  local wanted=("$@")
  [ ${#wanted[@]} -eq 0 ] && wanted=("${packages[@]}")
  local missing=()
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "crew.sh: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "crew.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {  # build <dir> [cmake args...]
  local dir=$1; shift
    # Build chatter goes to stderr: stdout stays the program's (e.g. crew run --json).
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)" >&2
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  notebook)
    install_missing
    build build
    exec build/bin/crew notebook "$@" ;;
  crew)
    install_missing
    build build
    exec build/bin/crew "$@" ;;
  bench)
    install_missing
    build build
    if [ "${1:-}" = "--transport" ]; then
      shift
      exec build/bin/crew-bench-transport "$@"
    fi
    exec build/bin/crew-bench "$@" ;;
  build)
    install_missing
    build build ;;
  test)
    install_missing "${packages[@]}" "${remote_packages[@]}"
        dir=build extra=() select=()
    if [ "${1:-}" = "--sanitize" ]; then
      [ -n "${2:-}" ] || { echo "crew.sh: --sanitize needs address,undefined or thread" >&2; exit 2; }
      # The consumer-project tests build crew again without sanitizers, and the benchmark's
      # smoke run only slows down under them: skip both here.
      # The benchmarks are not built there either: nothing would run them.
      # The remote tests (label remote) do run under the sanitizers, for now.
      dir="build-${2//,/-}"; extra=(-DCREW_SANITIZE="$2" -DCREW_BUILD_BENCH=OFF); select=(-LE "package|bench")
    fi
    build "$dir" "${extra[@]}"
    ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" "${select[@]}" ;;
  fuzz)
    install_missing "${packages[@]}" "${fuzz_packages[@]}"
    exec tests/fuzz/run.sh "$@" ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
