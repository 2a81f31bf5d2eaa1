#!/usr/bin/env bash
# tests/remote/cluster.sh start|stop|status DIR: the remote tests' own cluster, on this host.
#
# start DIR   As root (fails with a clear message otherwise). Installs what it needs if
#             missing (Debian: slurmd slurmctld slurm-client munge openssh-server
#             openssh-client). Stops a cluster still running from DIR first. Then, with all
#             state under DIR (created if missing; only the entries it creates are replaced):
#               - a munge key and munged (its socket in /tmp/crew-munge-N, mode 755: munged
#                 wants every directory above it searchable by all, which DIR need not be);
#               - slurm.conf for two nodes n1 and n2 (CPUs=8 each) on 127.0.0.1, slurmctld
#                 and two slurmd (`-N n1`, `-N n2`); waits (30 s at most) until
#                 `srun -N2 -n2` runs on both nodes, then makes a long-lived allocation of
#                 all 16 CPUs (`salloc --no-shell -N2`) for the tests' steps (up to 16 tasks):
#                   srun --jobid=$CREW_SLURM_JOB --overlap -u -n1 -w n1 CMD
#                 Jobs of the tests' own still run: the partition shares CPUs (FORCE:4).
#               - an sshd on 127.0.0.1 (own host key, a fresh client key in its
#                 AuthorizedKeysFile) and DIR/ssh_config with the hosts crew-a, crew-b
#                 (plain), crew-fast (the same with ControlMaster auto, ControlPersist 120,
#                 ControlPath DIR/cm-%C, or /tmp/crew-cm-N/cm-%C for a DIR of over 44
#                 characters) and crew-dead (a port where nothing listens: refused at once):
#                   ssh -T -F $CREW_SSH_CONFIG crew-a CMD
#               - DIR/env: KEY=value lines, sourceable by sh (set -a; . DIR/env), no quoting:
#                   SLURM_CONF CREW_REMOTE_DIR CREW_SLURM_JOB CREW_SLURM_NODES=n1,n2
#                   CREW_SSH_CONFIG CREW_SSH_HOSTS=crew-a,crew-b CREW_SSH_FAST_HOST=crew-fast
#                   CREW_SSH_DEAD_HOST=crew-dead
#             Prints how long it took. If anything does not come up: says what failed with
#             the tail of the relevant log, stops what it started, exits 1.
# stop DIR    Ends the allocation (scancel), closes crew-fast's ControlMaster (ssh -O exit),
#             and kills what start started: the daemons by their pid files under DIR (sshd,
#             slurmd x2, slurmctld, munged) with the processes they forked (ssh sessions),
#             and what outlived a step or a session (a slurmstepd holding DIR's slurmd log;
#             a process whose environment says it came through this sshd or this cluster's
#             slurmd: a remote command whose ssh client died lives on otherwise). SIGTERM,
#             then SIGKILL after 10 s; a zombie counts as gone (PID 1 here may not reap).
#             Succeeds when nothing of it runs any more.
# status DIR  Prints what runs: daemons, ports, the allocation, the nodes, DIR/env.
#
# Network: the daemons listen on 127.0.0.1 only and every connection goes there. The ports
# (slurmctld, n1, n2, sshd, and crew-dead's) derive from DIR, so two build trees get
# different ones, and are checked to be free first (the next free ones are taken otherwise).
set -euo pipefail
umask 022

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
[ $# -eq 2 ] || usage
command=$1
case "$2" in /*) dir=$2 ;; *) dir=$PWD/$2 ;; esac
dir=${dir%/}
if [ -z "$dir" ] || [ "$dir" = / ]; then echo "cluster.sh: refusing DIR '/'" >&2; exit 2; fi

# crew-fast's ControlPath: DIR/cm-%C, unless DIR is too long for it (ssh binds the socket as
# ControlPath + a 17-character suffix, and %C is 40 characters: 107 bytes at most).
if [ ${#dir} -le 44 ]; then
  cm_dir=$dir
else
  cm_dir=/tmp/crew-cm-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
fi

# munged's socket: munged refuses one unless every directory above it can be searched by all
# ("Socket is inaccessible"), which a DIR in a private checkout (mktemp -d: mode 700) is not.
# So it lives in a mode-755 directory under /tmp, named after DIR.
munge_sock_dir=/tmp/crew-munge-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)

# A slurm variable inherited from a caller (say a CI job inside a Slurm allocation) must not
# steer this cluster's clients.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^SLURM_' || true)

packages=(slurmd slurmctld slurm-client munge openssh-server openssh-client)
daemons=(sshd slurmd-n2 slurmd-n1 slurmctld munged)  # stop order
nodes=(n1 n2)
# What start creates under DIR (and so what it may replace): nothing else there is touched.
entries=(env slurm.conf ssh_config known_hosts ports munge slurm ssh log run)

say() { echo "cluster.sh: $*" >&2; }
log_tail() {  # log_tail FILE: the end of a log, to explain a failure
  [ -s "$1" ] || { say "($1 is empty or missing)"; return 0; }
  say "--- tail of $1:"
  tail -n 20 "$1" | sed 's/^/    /' >&2
}
fail() {  # fail MESSAGE [LOG...]: say what failed, show the logs, stop what runs, exit 1
  local message=$1; shift
  say "FAILED: $message"
  for f in "$@"; do log_tail "$f"; done
  stop_all >/dev/null 2>&1 || true
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# --- processes --------------------------------------------------------------------------
pid_of() {  # pid_of NAME: the pid in DIR/run/NAME.pid, if the file holds one
  local f=$dir/run/$1.pid pid
  [ -r "$f" ] || return 1
  read -r pid <"$f" || true
  [[ ${pid:-} =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}
alive() {  # alive PID: exists and is not a zombie
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
is_ours() {  # is_ours NAME PID: PID alive and runs NAME's program (not a reused pid)
  local program=${1%%-*} comm
  alive "$2" || return 1
  comm=$(cat "/proc/$2/comm" 2>/dev/null) || return 1
  [ "$comm" = "$program" ]
}
processes() {  # "pid ppid state comm" of every process, from /proc (procps may be missing)
  cat /proc/[0-9]*/stat 2>/dev/null | awk '{
    open = index($0, "("); rest = $0; sub(/^.*\) /, "", rest)  # comm may hold spaces
    comm = substr($0, open + 1, length($0) - length(rest) - open - 2)
    split(rest, f, " "); print $1, f[2], f[1], comm }'
}
descendants() {  # descendants PID...: every live process below them
  processes | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
    $3 != "Z" { parent[$1] = $2; order[++count] = $1 }
    END {
      do { changed = 0
        for (i = 1; i <= count; i++) { p = order[i]
          if (!(p in want) && (parent[p] in want)) { want[p] = 1; mark[p] = 1; changed = 1 } }
      } while (changed)
      for (p in mark) print p }'
}
stray_stepds() {  # slurmstepd processes of this cluster: they keep its slurmd log open
  local p fd
  for p in $(processes | awk '$3 != "Z" && $4 == "slurmstepd" { print $1 }'); do
    for fd in /proc/"$p"/fd/*; do
      case "$(readlink "$fd" 2>/dev/null)" in "$dir"/log/*) echo "$p"; break ;; esac
    done
  done
}
ancestors() {  # this script and the processes above it: never victims
  local p=$$
  while [ "$p" -gt 1 ] 2>/dev/null; do
    echo "$p"
    p=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null) || break
  done
}
stray_tasks() {  # processes started through this cluster that outlived their session or step
  # A remote command whose ssh client died lives on (sshd sends no SIGHUP without a pty), and
  # a task's daemonized child escapes proctrack/linuxproc: they carry their origin in their
  # environment. SLURMD_NODENAME tells a task from a shell that merely sourced DIR/env.
  local port="" f p
  [ -r "$dir/ports" ] && port=$(sed -n 's/.*sshd=\([0-9]*\).*/\1/p' "$dir/ports")
  {
    if [ -n "$port" ]; then
      grep -lsz -e "^SSH_CONNECTION=.* 127\.0\.0\.1 $port\$" /proc/[0-9]*/environ || true
    fi
    for f in $(grep -lsz -Fx -e "SLURM_CONF=$dir/slurm.conf" /proc/[0-9]*/environ || true); do
      if grep -qsz '^SLURMD_NODENAME=' "$f"; then echo "$f"; fi
    done
  } | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p' | sort -un | grep -vxF -f <(ancestors) || true
}
still_alive() {  # still_alive PID...: those of them alive
  local p
  for p in "$@"; do if alive "$p"; then printf '%s ' "$p"; fi; done
}
wait_gone() {  # wait_gone SECONDS PID...: true once none is alive, false after SECONDS
  local deadline=$(( $(date +%s) + $1 )); shift
  while [ -n "$(still_alive "$@")" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# --- ports ------------------------------------------------------------------------------
port_used() {  # port_used PORT: a TCP socket (v4 or v6) on this local port, TIME_WAIT aside
  # (the daemons bind with SO_REUSEADDR; a restart leaves many TIME_WAITs on its old ports).
  local hex
  hex=$(printf '%04X' "$1")
  awk -v h=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == h && $4 != "06" { found = 1 }
                    END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
pick_ports() {  # five free ports from a base derived from DIR: slurmctld n1 n2 sshd dead
  local sum base p picked=() tries=0
  sum=$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
  base=$(( 17000 + (sum % 300) * 10 ))  # 17000..19990, below the ephemeral range
  p=$base
  while [ ${#picked[@]} -lt 5 ]; do
    tries=$((tries + 1))
    [ $tries -le 400 ] || fail "no free ports found from $base on"
    port_used "$p" || picked+=("$p")
    p=$((p + 1))
    [ $p -lt 20000 ] || p=17000
  done
  echo "${picked[*]}"
}

# --- start ------------------------------------------------------------------------------
install_missing() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local t0; t0=$(now)
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    || fail "apt-get update (for ${missing[*]})"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]}"
  say "installed in $(since "$t0") s"
}

start_munge() {
  local m=$dir/munge
  mkdir -p "$m" "$munge_sock_dir" && chmod 700 "$m" && chmod 755 "$munge_sock_dir"
  mungekey --create --keyfile="$m/munge.key" >/dev/null 2>"$dir/log/mungekey.log" \
    || fail "mungekey" "$dir/log/mungekey.log"
  munged --socket="$munge_sock_dir/munge.socket" --key-file="$m/munge.key" --log-file="$dir/log/munged.log" \
    --pid-file="$dir/run/munged.pid" --seed-file="$m/munge.seed" 2>>"$dir/log/munged.log" \
    || fail "munged did not start" "$dir/log/munged.log"
  local _
  for _ in $(seq 100); do [ -S "$munge_sock_dir/munge.socket" ] && break; sleep 0.05; done
  [ -S "$munge_sock_dir/munge.socket" ] || fail "munged: no socket after 5 s" "$dir/log/munged.log"
}

write_slurm_conf() {  # write_slurm_conf CTLD_PORT N1_PORT N2_PORT
  local host; host=$(hostname)
  cat >"$dir/slurm.conf" <<EOF
# Written by tests/remote/cluster.sh: two nodes on 127.0.0.1, everything under $dir.
ClusterName=crew
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$1
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$munge_sock_dir/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
# Bind to 127.0.0.1 (what SlurmctldHost and the hostname give), not to 0.0.0.0.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$dir/slurm/state
SlurmdSpoolDir=$dir/slurm/spool-%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$2 CPUs=8 State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$3 CPUs=8 State=UNKNOWN
PartitionName=crew Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
}

start_slurm() {
  mkdir -p "$dir/slurm/state" "$dir/slurm/spool-n1" "$dir/slurm/spool-n2"
  slurmctld -f "$dir/slurm.conf" -c -i >>"$dir/log/slurmctld.out" 2>&1 \
    || fail "slurmctld did not start" "$dir/log/slurmctld.out" "$dir/log/slurmctld.log"
  local n
  for n in "${nodes[@]}"; do
    slurmd -f "$dir/slurm.conf" -N "$n" >>"$dir/log/slurmd-$n.out" 2>&1 \
      || fail "slurmd -N $n did not start" "$dir/log/slurmd-$n.out" "$dir/log/slurmd-$n.log"
  done
  # Bounded: both nodes up and a two-node step runs (first one ~0.3 s after start here).
  local deadline=$(( $(date +%s) + 30 )) out=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    for n in slurmctld slurmd-n1 slurmd-n2; do
      if pid=$(pid_of "$n") && ! is_ours "$n" "$pid"; then
        fail "$n died" "$dir/log/$n.log"
      fi
    done
    # A job submitted before both nodes registered waits for the next scheduling pass (~3 s).
    if [ "$(timeout 5 sinfo -h -N -o '%N=%T' 2>>"$dir/log/sinfo.err" | sort | tr '\n' ' ')" != "n1=idle n2=idle " ]; then
      sleep 0.1
      continue
    fi
    out=$(timeout 10 srun -N2 -n2 --immediate=5 -t 1 printenv SLURMD_NODENAME 2>>"$dir/log/srun.err" \
          | sort | tr '\n' ' ') || true
    [ "$out" = "n1 n2 " ] && break
    sleep 0.2
  done
  [ "$out" = "n1 n2 " ] || fail "srun -N2 -n2 did not run on n1 and n2 within 30 s (got '$out')" \
    "$dir/log/srun.err" "$dir/log/slurmctld.log" "$dir/log/slurmd-n1.log" "$dir/log/slurmd-n2.log"
  # The tests' allocation: all 8 CPUs of both nodes, so a step can run up to 16 tasks
  # (steps use --overlap: they never wait for each other). OverSubscribe=FORCE:4 lets jobs
  # of the tests' own share those CPUs instead of pending behind the allocation.
  local err
  err=$(timeout 30 salloc --no-shell -N2 --ntasks-per-node=8 --immediate=20 -J crew-tests 2>&1) \
    || { echo "$err" >"$dir/log/salloc.err"; fail "salloc --no-shell -N2" "$dir/log/salloc.err" "$dir/log/slurmctld.log"; }
  job=$(sed -n 's/.*Granted job allocation \([0-9][0-9]*\).*/\1/p' <<<"$err")
  [[ $job =~ ^[0-9]+$ ]] || { echo "$err" >"$dir/log/salloc.err"; fail "salloc: no job id in its output" "$dir/log/salloc.err"; }
  echo "$job" >"$dir/run/job"
}

start_sshd() {  # start_sshd PORT DEAD_PORT
  local s=$dir/ssh
  mkdir -p "$s" && chmod 700 "$s"
  ssh-keygen -q -t ed25519 -N '' -C crew-remote-host -f "$s/host_ed25519" </dev/null
  ssh-keygen -q -t ed25519 -N '' -C crew-remote-client -f "$s/id_ed25519" </dev/null
  cp "$s/id_ed25519.pub" "$s/authorized_keys"
  : >"$dir/known_hosts"
  # MaxStartups/MaxSessions: tests may open many connections, or many sessions over one
  # ControlMaster, at once (defaults: 10 unauthenticated, 10 sessions).
  cat >"$s/sshd_config" <<EOF
# Written by tests/remote/cluster.sh.
ListenAddress 127.0.0.1
Port $1
HostKey $s/host_ed25519
PidFile $dir/run/sshd.pid
AuthorizedKeysFile $s/authorized_keys
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
X11Forwarding no
PrintMotd no
PrintLastLog no
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
EOF
  mkdir -p /run/sshd && chmod 755 /run/sshd  # "Missing privilege separation directory"
  /usr/sbin/sshd -t -f "$s/sshd_config" 2>"$dir/log/sshd.log" || fail "sshd -t: bad config" "$dir/log/sshd.log"
  /usr/sbin/sshd -f "$s/sshd_config" -E "$dir/log/sshd.log" || fail "sshd did not start" "$dir/log/sshd.log"

  local common
  common="  HostName 127.0.0.1
  User $(id -un)
  IdentityFile $s/id_ed25519
  IdentitiesOnly yes
  BatchMode yes
  StrictHostKeyChecking no
  UserKnownHostsFile $dir/known_hosts
  GlobalKnownHostsFile /dev/null
  CheckHostIP no
  LogLevel ERROR"
  cat >"$dir/ssh_config" <<EOF
# Written by tests/remote/cluster.sh: use as ssh -T -F $dir/ssh_config HOST CMD.
Host crew-a crew-b
  Port $1
  ConnectTimeout 10
$common

Host crew-fast
  Port $1
  ConnectTimeout 10
  ControlMaster auto
  ControlPath $cm_dir/cm-%C
  ControlPersist 120
$common

# Nothing listens on this port: a connection is refused at once.
Host crew-dead
  Port $2
  ConnectTimeout 3
$common
EOF
  local _ out=""
  for _ in $(seq 50); do
    out=$(timeout 10 ssh -T -F "$dir/ssh_config" crew-a echo ok </dev/null 2>>"$dir/log/ssh.err") || true
    [ "$out" = ok ] && break
    sleep 0.1
  done
  [ "$out" = ok ] || fail "ssh crew-a echo ok: no 'ok' (got '$out')" "$dir/log/ssh.err" "$dir/log/sshd.log"
}

write_env() {  # write_env JOB
  cat >"$dir/env.tmp" <<EOF
SLURM_CONF=$dir/slurm.conf
CREW_REMOTE_DIR=$dir
CREW_SLURM_JOB=$1
CREW_SLURM_NODES=n1,n2
CREW_SSH_CONFIG=$dir/ssh_config
CREW_SSH_HOSTS=crew-a,crew-b
CREW_SSH_FAST_HOST=crew-fast
CREW_SSH_DEAD_HOST=crew-dead
EOF
  mv "$dir/env.tmp" "$dir/env"
}

start_all() {
  [ "$(id -u)" -eq 0 ] || { say "start needs root (it installs packages and runs munged, slurmd, slurmctld and sshd as root); exclude these tests with ctest -LE remote"; exit 1; }
  case "$dir" in *[[:space:]]*) say "DIR must not contain spaces: '$dir'"; exit 2 ;; esac
  # Unix socket paths (munge's, slurmstepd's) are limited to 107 bytes (ssh's ControlPath
  # moves to /tmp for a long DIR: see cm_dir).
  [ ${#dir} -le 80 ] || { say "DIR is too long for the sockets under it (${#dir} > 80 characters): $dir"; exit 2; }
  local t0; t0=$(now)
  install_missing
  stop_all
  mkdir -p "$dir"
  local e; for e in "${entries[@]}"; do rm -rf "${dir:?}/$e"; done
  mkdir -p "$dir/log" "$dir/run"
  [ "$cm_dir" = "$dir" ] || { mkdir -p "$cm_dir"; chmod 700 "$cm_dir"; }
  export SLURM_CONF=$dir/slurm.conf

  local ports
  read -r -a ports <<<"$(pick_ports)"
  [ ${#ports[@]} -eq 5 ] || exit 1  # pick_ports said why
  echo "slurmctld=${ports[0]} n1=${ports[1]} n2=${ports[2]} sshd=${ports[3]} dead=${ports[4]}" >"$dir/ports"
  start_munge
  write_slurm_conf "${ports[0]}" "${ports[1]}" "${ports[2]}"
  job=""
  start_slurm
  start_sshd "${ports[3]}" "${ports[4]}"
  # The dead port must still be dead (nothing took it meanwhile).
  port_used "${ports[4]}" && fail "port ${ports[4]} (crew-dead) is no longer free"
  write_env "$job"
  say "started in $(since "$t0") s: job $job on n1,n2; $(cat "$dir/ports"); env in $dir/env"
}

# --- stop -------------------------------------------------------------------------------
stop_all() {
  local conf=$dir/slurm.conf job pid name
  # The allocation, while slurmctld still runs: its steps end with it.
  if [ -r "$dir/run/job" ] && pid=$(pid_of slurmctld) && is_ours slurmctld "$pid"; then
    read -r job <"$dir/run/job" || true
    if [[ ${job:-} =~ ^[0-9]+$ ]]; then
      SLURM_CONF=$conf timeout 10 scancel "$job" 2>/dev/null || true
      local _
      for _ in $(seq 50); do  # bounded: until the job has left (or 5 s)
        SLURM_CONF=$conf timeout 5 squeue -h -j "$job" -o %T 2>/dev/null \
          | grep -qE 'PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED' || break
        sleep 0.1
      done
    fi
  fi
  if [ -r "$dir/ssh_config" ]; then
    timeout 5 ssh -F "$dir/ssh_config" -O exit crew-fast >/dev/null 2>&1 || true
  fi
  rm -f "$cm_dir"/cm-* "$dir/run/job"
  [ "$cm_dir" = "$dir" ] || rmdir "$cm_dir" 2>/dev/null || true
  rm -rf "$munge_sock_dir"

  local victims=() stopped=()
  for name in "${daemons[@]}"; do
    pid=$(pid_of "$name") || continue
    is_ours "$name" "$pid" || { rm -f "$dir/run/$name.pid"; continue; }
    # Its children first found, then all of them told at once: sshd's sessions go too.
    victims+=("$pid")
    mapfile -t -O ${#victims[@]} victims < <(descendants "$pid")
    stopped+=("$name")
  done
  local strays=() described=""
  mapfile -t strays < <({ stray_stepds; stray_tasks; } | grep -vxF -f <(printf '%s\n' 0 "${victims[@]}") || true)
  if [ ${#strays[@]} -gt 0 ]; then
    for pid in "${strays[@]}"; do described+=" $pid($(cat "/proc/$pid/comm" 2>/dev/null || true))"; done
    say "ending processes this cluster started that outlived their step or session:$described"
    victims+=("${strays[@]}")
  fi
  if [ ${#victims[@]} -gt 0 ]; then
    kill -TERM "${victims[@]}" 2>/dev/null || true
    local left=()
    if ! wait_gone 10 "${victims[@]}"; then
      read -r -a left <<<"$(still_alive "${victims[@]}")"
      say "still running after SIGTERM and 10 s: ${left[*]}; sending SIGKILL"
      kill -KILL "${left[@]}" 2>/dev/null || true
      wait_gone 5 "${left[@]}" || { say "FAILED: still running after SIGKILL: $(still_alive "${left[@]}")"; return 1; }
    fi
  fi
  for name in "${daemons[@]}"; do rm -f "$dir/run/$name.pid"; done
  rm -f "$dir/env"
  if [ ${#stopped[@]} -gt 0 ]; then say "stopped ${stopped[*]}"; fi
}

status_all() {
  local name pid any=0
  for name in "${daemons[@]}"; do
    if pid=$(pid_of "$name") && is_ours "$name" "$pid"; then
      echo "$name: running, pid $pid"; any=1
    else
      echo "$name: not running"
    fi
  done
  [ -r "$dir/ports" ] && echo "ports: $(cat "$dir/ports")"
  if [ $any -eq 1 ] && [ -r "$dir/run/job" ]; then
    echo "allocation: job $(cat "$dir/run/job")"
    SLURM_CONF=$dir/slurm.conf timeout 5 squeue -o '%.8i %.10j %.10T %.6D %N' 2>&1 || true
    SLURM_CONF=$dir/slurm.conf timeout 5 sinfo -N -o '%N %T %c' 2>&1 || true
  fi
  [ -r "$dir/env" ] && { echo "env ($dir/env):"; sed 's/^/  /' "$dir/env"; }
  return 0
}

case "$command" in
  start) start_all ;;
  stop)
    t0=$(now)
    stop_all
    say "stopped in $(since "$t0") s" ;;
  status) status_all ;;
  *) usage ;;
esac
