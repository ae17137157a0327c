#!/usr/bin/env bash
# testbed.sh: a bed of fake cluster hosts on one machine, for the multi-host (ssh) launcher tests.
#
# Each host hK (h0 is the "login" host the tests drive, h1..hN the compute hosts) is
#   * a network namespace  <prefix>-hK, with lo up and eth0 = 10.233.0.(10+K)/24,
#   * a UTS namespace (hostname hK) and a private mount namespace (slave of the root one, so the
#     file system stays shared) in which the generated DIR/hosts is bind-mounted over /etc/hosts
#     and /sys/class/net shows the host's own interfaces; both are held open by one
#     "tsmpi-testbed-holder" process (a renamed `sleep infinity`) whose pid is in DIR/node/hK/holder.pid,
#   * its own sshd, started inside those namespaces, listening on 10.233.0.(10+K):22.
# The veth pairs join a bridge br0 in a namespace of its own (<prefix>-br); every link is created
# directly inside the bed's namespaces, so the root network namespace never gets an address, a route
# or a link. Nothing is written under /etc: no /etc/netns files; the only mounts outside the bed's
# private mount namespaces are the ones `ip netns add` makes under /run/netns, removed by `down`.
# /run/sshd (sshd's privilege separation directory) is created if missing and left in place.
#
# Subcommands (options may come anywhere before `--`):
#   up N [--dir DIR] [--prefix P] [--no-verify]  make h0..hN; prints TESTBED_DIR=DIR; writes DIR/env,
#                                                 DIR/ssh_config, DIR/bin/ssh (ssh -F DIR/ssh_config), DIR/hostfile
#   exec HOST [--] CMD...                         run CMD in HOST's net+UTS+mount namespaces
#   stop-sshd HOST / start-sshd HOST              stop / start one host's sshd (sessions survive stop)
#   vanish HOST                                   cut HOST's wire, SIGKILL its processes, drop its netns
#   status                                        one line per host; exit 1 if some sshd does not answer
#   down [--dir DIR] [--prefix P]                 kill everything, remove namespaces and DIR (idempotent)
# DIR defaults to $TESTBED_DIR, else ${TMPDIR:-/tmp}/tsmpi-testbed; the prefix is recorded in DIR/state.
# Environment: TESTBED_VERBOSE=1 logs steps to stderr; TESTBED_KEEP_ON_FAILURE=1 keeps a failed bed.
set -euo pipefail

readonly SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly NET=10.233.0          # the /24 lives only inside the bed's namespaces
readonly ADDR_BASE=10          # hK -> $NET.(ADDR_BASE+K)
readonly MAX_HOSTS=200
readonly MARKER=.tsmpi-testbed # a directory is only ever removed by `down` if it holds this file

die() { echo "testbed: error: $*" >&2; exit 1; }
warn() { echo "testbed: warning: $*" >&2; }
log() { if [[ -n ${TESTBED_VERBOSE:-} ]]; then echo "testbed: [$EPOCHREALTIME] $*" >&2; fi; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"; }

# ---------------------------------------------------------------- argument parsing
DIR=${TESTBED_DIR:-${TMPDIR:-/tmp}/tsmpi-testbed}
PREFIX_ARG=""
VERIFY=1
POS=()
CMD=()
while (($#)); do
  case $1 in
    --dir) (($# >= 2)) || die "--dir needs a value"; DIR=$2; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    --prefix) (($# >= 2)) || die "--prefix needs a value"; PREFIX_ARG=$2; shift 2 ;;
    --prefix=*) PREFIX_ARG=${1#--prefix=}; shift ;;
    --no-verify) VERIFY=0; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; CMD=("$@"); break ;;
    *) POS+=("$1"); shift ;;
  esac
done
[[ -n $DIR ]] || die "empty --dir"
DIR=$(realpath -m -- "$DIR")
[[ $DIR != / ]] || die "refusing --dir /"

# The prefix: --prefix, else the one recorded by `up` in DIR/state, else "tsmpi". PREFIX_KNOWN says
# whether `down` may remove namespaces: not when a non-default DIR has no state (whose bed is that?).
PREFIX=$PREFIX_ARG
PREFIX_KNOWN=1
if [[ -z $PREFIX && -f $DIR/state ]]; then
  PREFIX=$(sed -n 's/^PREFIX=//p' "$DIR/state")
fi
if [[ -z $PREFIX && $DIR != "$(realpath -m -- "${TMPDIR:-/tmp}/tsmpi-testbed")" ]]; then
  PREFIX_KNOWN=0
fi
PREFIX=${PREFIX:-tsmpi}
[[ $PREFIX =~ ^[A-Za-z][A-Za-z0-9_.-]{0,23}$ ]] || die "bad prefix '$PREFIX' (letters, digits, _.-; at most 24)"
BRNS=$PREFIX-br

state_n() { sed -n 's/^N=//p' "$DIR/state" 2>/dev/null || true; }
addr_of() { echo "$NET.$((ADDR_BASE + $1))"; }
host_index() { # HOST -> K, or die
  [[ $1 =~ ^h(0|[1-9][0-9]*)$ ]] || die "unknown host '$1' (hosts are h0..hN)"
  local k=${BASH_REMATCH[1]} n
  n=$(state_n)
  [[ -n $n ]] || die "no bed in $DIR (run: testbed.sh up N --dir $DIR)"
  ((k <= n)) || die "unknown host '$1' (this bed has h0..h$n)"
  echo "$k"
}
ns_ino() { stat -L -c %i "$1" 2>/dev/null || true; }

# A pid from a pid file that is alive and sits in netns $2 (guards against pid reuse), or nothing.
live_pid_in_ns() {
  local pid ino
  pid=$(cat "$1" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  ino=$(ns_ino "/run/netns/$2")
  [[ -n $ino && $(ns_ino "/proc/$pid/ns/net") == "$ino" ]] && echo "$pid"
  return 0
}
holder_pid() { live_pid_in_ns "$DIR/node/h$1/holder.pid" "$PREFIX-h$1"; }
sshd_pid() { live_pid_in_ns "$DIR/node/h$1/sshd.pid" "$PREFIX-h$1"; }

bed_namespaces() { # this bed's netns names, one a line
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX//./\\.}-(br|h(0|[1-9][0-9]*))\$" || true
}

wait_for_file() { # PATH TIMEOUT_SECONDS
  local i end=$(($2 * 100))
  for ((i = 0; i < end; i += 1)); do
    [[ -s $1 ]] && return 0
    sleep 0.01
  done
  return 1
}

# SIGKILL every process in the given network namespaces until none is left; the pids go to KILLED.
KILLED=()
kill_ns_procs() {
  local round pids ns
  for ((round = 0; round < 200; round++)); do
    pids=()
    for ns in "$@"; do
      mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null || true)
    done
    ((${#pids[@]})) || return 0
    KILLED+=("${pids[@]}")
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.02
  done
  warn "processes still alive in $*: ${pids[*]}"
}

# Wait (at most 3 s) until the killed processes are reaped too: daemonized sshds are children of
# init, and a zombie "[sshd] <defunct>" right after `down` would look like a leftover.
wait_reaped() {
  local i pid left
  for ((i = 0; i < 300; i++)); do
    left=0
    for pid in "${KILLED[@]}"; do
      if [[ -e /proc/$pid ]]; then left=1; break; fi
    done
    ((left)) || return 0
    sleep 0.01
  done
  log "some killed processes are not reaped yet (zombies)"
}

# ---------------------------------------------------------------- one host
write_host_files() { # K
  local k=$1 h=h$1 d=$DIR/node/h$1
  mkdir -p -m 700 "$d"
  ssh-keygen -q -t ed25519 -N '' -C "$h-hostkey" -f "$d/ssh_host_ed25519_key"
  cat >"$d/sshd_config" <<EOF
# sshd for testbed host $h (generated by testbed.sh)
ListenAddress $(addr_of "$k"):22
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
# the run dir sits under a world-writable /tmp; StrictModes would reject it
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 256
MaxSessions 256
LogLevel INFO
Subsystem sftp internal-sftp
EOF
}

# The holder: enters the netns, makes UTS + mount namespaces, sets them up, writes its pid, sleeps.
# shellcheck disable=SC2016
readonly HOLDER_SCRIPT='
set -eu
h=$1 dir=$2
hostname "$h"
mount --bind "$dir/hosts" /etc/hosts
# root logs in with /bin/sh on bed hosts: a login bash would run the ~/.bashrc of root (on the dev machines it
# runs pyenv rehash, whose lock file is left behind when a test kills a session mid-login, and every later
# login then waits 60 s for it). Only this host mount namespace sees the changed passwd.
mount --bind "$dir/passwd" /etc/passwd
# sysfs shows the interfaces of the netns it was mounted from: give /sys/class/net this host view
# (only /sys/class/net is replaced, so /sys/fs/cgroup stays as it is).
m=$dir/node/$h/sysfs
mkdir -p "$m"
if mount -t sysfs sysfs "$m" 2>/dev/null; then
  mount --bind "$m/class/net" /sys/class/net
  umount -l "$m"
fi
rmdir "$m"
echo $$ >"$dir/node/$h/holder.pid.new"
mv "$dir/node/$h/holder.pid.new" "$dir/node/$h/holder.pid"
exec -a "tsmpi-testbed-holder $dir/node/$h" sleep infinity
'

start_holder() { # K
  local k=$1 d=$DIR/node/h$1
  rm -f "$d/holder.pid"
  setsid nsenter --net="/run/netns/$PREFIX-h$k" -- \
    unshare --uts --mount --propagation slave -- \
    bash -c "$HOLDER_SCRIPT" holder "h$k" "$DIR" </dev/null >/dev/null 2>"$d/holder.err" &
  wait_for_file "$d/holder.pid" 10 || die "h$k: namespace holder did not start: $(cat "$d/holder.err")"
}

start_sshd_k() { # K
  local k=$1 d=$DIR/node/h$1 hp
  [[ -z $(sshd_pid "$k") ]] || return 0
  hp=$(holder_pid "$k")
  [[ -n $hp ]] || die "h$k is gone (vanished or never started)"
  [[ -d /run/sshd ]] || mkdir -p -m 0755 /run/sshd
  rm -f "$d/sshd.pid"
  # forking sshd: the daemon writes its PidFile after it listens, so the pid file means "ready"
  nsenter -t "$hp" -n -u -m -- /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" \
    </dev/null >/dev/null 2>>"$d/sshd.log" || die "h$k: sshd failed: $(tail -n 5 "$d/sshd.log")"
  wait_for_file "$d/sshd.pid" 10 || die "h$k: sshd wrote no pid file: $(tail -n 5 "$d/sshd.log")"
}

stop_sshd_k() { # K
  local k=$1 pid i
  pid=$(sshd_pid "$k")
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.01
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/node/h$k/sshd.pid"
}

setup_host() { # K: netns, veth on the bridge, addresses, holder, sshd
  local k=$1 ns=$PREFIX-h$1
  ip netns add "$ns"
  ip -n "$BRNS" link add "h$k" type veth peer name eth0 netns "$ns"
  ip -n "$BRNS" link set "h$k" master br0 up
  ip -n "$ns" -batch - <<EOF
link set lo up
addr add $(addr_of "$k")/24 dev eth0
link set eth0 up
EOF
  start_holder "$k"
  start_sshd_k "$k"
  log "h$k up at $(addr_of "$k")"
}

# ---------------------------------------------------------------- subcommands
UP_DONE=0
up_exit_trap() {
  local rc=$?
  ((UP_DONE)) && return 0
  echo "testbed: up failed (exit $rc)" >&2
  if [[ -n ${TESTBED_KEEP_ON_FAILURE:-} ]]; then
    echo "testbed: TESTBED_KEEP_ON_FAILURE is set: leaving $DIR for inspection; run down when done" >&2
  else
    cmd_down >&2 || true
  fi
}

cmd_up() {
  local n=${POS[1]:-}
  [[ $n =~ ^[1-9][0-9]*$ ]] && ((n <= MAX_HOSTS)) || die "usage: testbed.sh up N (1 <= N <= $MAX_HOSTS)"
  ((${#POS[@]} == 2)) || die "usage: testbed.sh up N [--dir DIR] [--prefix P]"
  [[ $(id -u) == 0 ]] || die "must run as root (namespaces, sshd)"
  local k pid h

  if [[ -f $DIR/state || -n $(bed_namespaces) ]]; then
    log "stale bed found: tearing it down first"
    cmd_down
  fi
  if [[ -e $DIR && ! -e $DIR/$MARKER ]] && [[ -n $(ls -A "$DIR" 2>/dev/null) ]]; then
    die "$DIR exists, is not empty and is not a test bed dir; choose another --dir"
  fi
  UP_DONE=0
  trap up_exit_trap EXIT
  mkdir -p -m 700 "$DIR"
  chmod 700 "$DIR"
  touch "$DIR/$MARKER"
  printf 'PREFIX=%s\nN=%s\n' "$PREFIX" "$n" >"$DIR/state"
  mkdir -p -m 700 "$DIR/node"

  log "up: $n hosts in $DIR, prefix $PREFIX"
  # keys, /etc/hosts, known_hosts, ssh client config
  ssh-keygen -q -t ed25519 -N '' -C tsmpi-testbed-user -f "$DIR/id_ed25519"
  cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
  {
    echo "127.0.0.1 localhost"
    echo "::1 localhost ip6-localhost ip6-loopback"
    for ((k = 0; k <= n; k++)); do echo "$(addr_of "$k") h$k"; done
  } >"$DIR/hosts"
  chmod 644 "$DIR/hosts"
  awk -F: 'BEGIN { OFS = ":" } $1 == "root" { $7 = "/bin/sh" } { print }' /etc/passwd >"$DIR/passwd"
  chmod 644 "$DIR/passwd"
  for ((k = 1; k <= n; k++)); do echo "h$k"; done >"$DIR/hostfile"
  cat >"$DIR/ssh_config" <<EOF
# ssh client config for the test bed in $DIR (use: ssh -F $DIR/ssh_config hK CMD)
Host *
  User root
  IdentityFile $DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $DIR/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  # the post-quantum default (sntrup761x25519) doubles the cost of every connection in the tests
  KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
  ConnectTimeout 5
  ServerAliveInterval 2
  ServerAliveCountMax 3
  LogLevel ERROR
  ForwardAgent no
  ForwardX11 no
  ControlMaster no
  ControlPath none
EOF

  # for tools that take one executable rather than a command line (Hydra's -launcher-exec)
  mkdir -p -m 700 "$DIR/bin"
  printf '#!/bin/sh\nexec ssh -F %s "$@"\n' "$DIR/ssh_config" >"$DIR/bin/ssh"
  chmod 755 "$DIR/bin/ssh"

  # bridge namespace
  ip netns add "$BRNS"
  ip -n "$BRNS" -batch - <<EOF
link set lo up
link add br0 type bridge forward_delay 0 stp_state 0
link set br0 up
EOF

  log "up: host keys"
  # host keys first (cheap), then the hosts in parallel
  for ((k = 0; k <= n; k++)); do write_host_files "$k"; done
  local -a jobs=()
  for ((k = 0; k <= n; k++)); do
    setup_host "$k" &
    jobs[k]=$!
  done
  local failed=0
  for ((k = 0; k <= n; k++)); do wait "${jobs[k]}" || failed=1; done
  ((failed == 0)) || die "some hosts failed to come up"

  for ((k = 0; k <= n; k++)); do
    awk -v a="$(addr_of "$k")" -v h="h$k" '{print h "," a, $1, $2}' "$DIR/node/h$k/ssh_host_ed25519_key.pub"
  done >"$DIR/known_hosts"

  log "up: hosts ready"
  if ((VERIFY)); then
    # From h0, by name: a full ssh login to h1 and hN (keys, known_hosts, /etc/hosts, auth), and the
    # SSH banner of every host over TCP (a full login to all of them costs ~0.2 s of CPU each).
    local hp0 out
    local -a full=(1)
    ((n == 1)) || full+=("$n")
    hp0=$(holder_pid 0)
    jobs=()
    for k in "${full[@]}"; do
      nsenter -t "$hp0" -n -u -m -- ssh -F "$DIR/ssh_config" "h$k" hostname \
        </dev/null >"$DIR/node/h$k/verify.out" 2>&1 &
      jobs[k]=$!
    done
    # shellcheck disable=SC2016
    nsenter -t "$hp0" -n -u -m -- timeout 10 bash -c '
      for ((k = 0; k <= $1; k++)); do
        exec 3<>"/dev/tcp/h$k/22" && IFS= read -r -t 5 line <&3 && [[ $line == SSH-* ]] ||
          { echo "h$k: no SSH banner on port 22" >&2; exit 1; }
        exec 3>&-
      done' banner "$n" || failed=1
    for k in "${full[@]}"; do
      wait "${jobs[k]}" || true
      out=$(cat "$DIR/node/h$k/verify.out")
      [[ $out == "h$k" ]] || { failed=1; warn "ssh h0 -> h$k: $out"; }
      rm -f "$DIR/node/h$k/verify.out"
    done
    ((failed == 0)) || die "verification from h0 failed"
  fi

  {
    q() { printf "%s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }
    local all="h0" comp=""
    for ((k = 1; k <= n; k++)); do all+=" h$k"; comp+="${comp:+ }h$k"; done
    q TESTBED_DIR "$DIR"
    q TESTBED_PREFIX "$PREFIX"
    q TESTBED_SCRIPT "$SELF"
    q TESTBED_N "$n"
    q TESTBED_LOGIN h0
    q TESTBED_HOSTS "$comp"
    q TESTBED_ALL_HOSTS "$all"
    q TESTBED_SSH_CONFIG "$DIR/ssh_config"
    q TESTBED_SSH "$DIR/bin/ssh"
    q TESTBED_HOSTFILE "$DIR/hostfile"
    q TESTBED_SUBNET "$NET.0/24"
    for ((k = 0; k <= n; k++)); do q "TESTBED_ADDR_h$k" "$(addr_of "$k")"; done
  } >"$DIR/env"
  UP_DONE=1
  trap - EXIT
  echo "TESTBED_DIR=$DIR"
}

cmd_down() {
  local ns k pid
  local -a nss
  nss=()
  if ((PREFIX_KNOWN)); then
    mapfile -t nss < <(bed_namespaces)
  else
    log "down: no state in $DIR and no --prefix: leaving namespaces alone"
  fi
  if ((${#nss[@]})); then
    # cut the wires first so nothing gets through while processes die, then kill, then delete
    ip netns del "$BRNS" 2>/dev/null || true
    log "down: killing processes in ${nss[*]}"
    kill_ns_procs "${nss[@]}"
    log "down: killed ${#KILLED[@]}; removing namespaces"
    for ns in "${nss[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    wait_reaped
    log "down: reaped"
  fi
  # holders and sshds whose netns was removed behind our back: found by the run dir in their argv
  local -a strays=()
  local f
  while IFS= read -r f; do
    pid=${f#/proc/}
    strays+=("${pid%/cmdline}")
  done < <(grep -laF -- "$DIR/node/" /proc/[0-9]*/cmdline 2>/dev/null || true)
  if ((${#strays[@]})); then
    log "down: killing strays ${strays[*]}"
    kill -KILL "${strays[@]}" 2>/dev/null || true
    KILLED+=("${strays[@]}")
    wait_reaped
  fi
  # `ip netns add` bind-mounts /run/netns on itself; drop that when no namespace is left in it
  if [[ -d /run/netns ]] && [[ -z $(ls -A /run/netns 2>/dev/null) ]]; then
    while mountpoint -q /run/netns; do umount /run/netns 2>/dev/null || break; done
    rmdir /run/netns 2>/dev/null || true
  fi
  if [[ -d $DIR ]]; then
    if [[ -e $DIR/$MARKER ]]; then
      rm -rf -- "$DIR"
    else
      warn "$DIR is not a test bed dir (no $MARKER): not removing it"
    fi
  fi
  log "down: $DIR"
}

cmd_exec() {
  local k hp
  (($# >= 1)) || die "usage: testbed.sh exec HOST -- CMD..."
  k=$(host_index "$1")
  shift
  (($# + ${#CMD[@]})) || CMD=("${SHELL:-/bin/bash}")
  hp=$(holder_pid "$k")
  [[ -n $hp ]] || die "h$k is gone (vanished?)"
  exec nsenter -t "$hp" -n -u -m --wd="$PWD" -- "$@" "${CMD[@]}"
}

cmd_vanish() {
  local k
  k=$(host_index "$1")
  # pull the cable first: peers see neither FIN nor RST, just silence, as when a node dies
  ip -n "$BRNS" link del "h$k" 2>/dev/null || true
  kill_ns_procs "$PREFIX-h$k"
  ip netns del "$PREFIX-h$k" 2>/dev/null || true
  rm -f "$DIR/node/h$k/holder.pid" "$DIR/node/h$k/sshd.pid"
  touch "$DIR/node/h$k/vanished"
}

cmd_status() {
  local n k hp0 sshd st rc=0
  n=$(state_n)
  [[ -n $n ]] || { echo "no test bed in $DIR"; return 1; }
  hp0=$(holder_pid 0)
  local -a jobs=()
  for ((k = 0; k <= n; k++)); do
    rm -f "$DIR/node/h$k/status.out"
    if [[ -n $hp0 && -n $(holder_pid "$k") ]]; then
      nsenter -t "$hp0" -n -u -m -- ssh -F "$DIR/ssh_config" -o ConnectTimeout=2 "h$k" hostname \
        </dev/null >"$DIR/node/h$k/status.out" 2>&1 &
      jobs[k]=$!
    fi
  done
  printf '%-5s %-13s %-16s %-8s %s\n' HOST ADDRESS NETNS SSHD SSH
  for ((k = 0; k <= n; k++)); do
    if [[ -z $(holder_pid "$k") ]]; then
      printf '%-5s %-13s %-16s %-8s %s\n' "h$k" "$(addr_of "$k")" "(gone)" - -
      rc=1
      continue
    fi
    sshd=stopped
    [[ -n $(sshd_pid "$k") ]] && sshd=running
    st="?"
    if [[ -n ${jobs[k]:-} ]]; then
      wait "${jobs[k]}" || true
      st=$(cat "$DIR/node/h$k/status.out")
      case $st in
        "h$k") st=answers ;;
        *"Connection refused"*) st=refused ;;
        *"timed out"*) st=timeout ;;
        *) st="error: ${st//$'\n'/ }" ;;
      esac
      rm -f "$DIR/node/h$k/status.out"
    fi
    [[ $st == answers ]] || rc=1
    printf '%-5s %-13s %-16s %-8s %s\n' "h$k" "$(addr_of "$k")" "$PREFIX-h$k" "$sshd" "$st"
  done
  return "$rc"
}

sub=${POS[0]:-}
case $sub in
  up) cmd_up ;;
  down) ((${#POS[@]} == 1)) || die "usage: testbed.sh down [--dir DIR]"; cmd_down ;;
  exec) cmd_exec "${POS[@]:1}" ;;
  start-sshd | stop-sshd)
    ((${#POS[@]} == 2)) || die "usage: testbed.sh $sub HOST"
    K=$(host_index "${POS[1]}")
    if [[ $sub == start-sshd ]]; then start_sshd_k "$K"; else stop_sshd_k "$K"; fi
    ;;
  vanish) ((${#POS[@]} == 2)) || die "usage: testbed.sh vanish HOST"; cmd_vanish "${POS[1]}" ;;
  status) cmd_status ;;
  "") usage >&2; exit 2 ;;
  *) die "unknown subcommand '$sub' (try --help)" ;;
esac
