#!/usr/bin/env bash
# cluster.sh: a real Slurm (munged + slurmctld + slurmd) for the batch-system tests. Root only.
#
# One node (default): everything runs inside one private network namespace (made by `unshare --net`,
# pinned on DIR/netns), whose first process, a bash, starts the daemons and keeps a deadline:
#   * the namespace has lo and a veth pair with 10.234.0.1/24 (no dummy module here, and glibc's
#     AI_ADDRCONFIG finds no IPv4 at all with lo alone, so Slurm could not even resolve 127.0.0.1); Slurm's
#     ports (6817, 6818 and srun's) are bound only there: nothing listens in the machine's own namespace;
#   * every process of the cluster (daemons, slurmstepd, job processes, clients run with `exec`) lives in
#     that namespace, so `down` kills exactly those: every pid whose /proc/PID/ns/net is DIR/netns.
# Several nodes (--testbed BEDDIR): on a test bed made by test/testbed/testbed.sh, slurmctld and munged run
# on the login host h0 and one slurmd on each of h1..hN (node hK, NodeAddr its bed address); `exec` runs
# on h0. The cluster's processes are those in the bed hosts' namespaces other than the bed's own holders
# and sshds.
# Either way the first process kills the cluster itself at the deadline (--deadline, default 900 s), so a
# test run that dies without `down` leaves nothing running for long.
# No PID namespace on purpose: tsmpiexec names its job cgroups after the proxy's pid and sweeps those whose
# pid is gone; pids from a private PID namespace would make that sweep kill other jobs on this machine.
# Job tracking is proctrack/linuxproc (process tree); cgroup plugins are not used (Slurm 22.05 needs a
# systemd-delegated or a hand-made tree; CI containers have neither reliably).
# Files (config, munge key generated per run, munge socket, state, spool, logs) live in DIR; nothing is
# written under /etc or /var: SLURM_CONF points every Slurm command at DIR/slurm.conf.
#
# Subcommands:
#   up [--dir DIR] [--cpus N] [--node-name NAME] [--deadline SECONDS] [--testbed BEDDIR]
#        start; prints SLURM_CLUSTER_DIR=DIR. One node is named after `hostname -s` (NodeAddr 127.0.0.1)
#        unless --node-name gives another name for this same host (slurmd -N NAME; NodeHostname is the
#        real one), which makes every job's node look remote to the tools running in it. CPUs per node
#        defaults to 4 whatever the hardware has (SlurmdParameters=config_overrides), so 4-task jobs fit.
#   exec [--dir DIR] [--] CMD...   run CMD in the cluster's network namespace (h0 on a bed), SLURM_CONF set
#   status [--dir DIR]             sinfo; exit 1 unless a node is up
#   down [--dir DIR]               kill everything of the cluster, remove DIR (idempotent)
# DIR defaults to $SLURM_CLUSTER_DIR. Environment: CLUSTER_VERBOSE=1 logs steps to stderr.
set -euo pipefail

readonly SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly TESTBED=$(dirname "$SELF")/../testbed/testbed.sh
readonly MARKER=.tsmpi-slurm-cluster   # DIR is only ever removed by `down` if it holds this file

die() { echo "cluster: error: $*" >&2; exit 1; }
log() { if [[ -n ${CLUSTER_VERBOSE:-} ]]; then echo "cluster: [$EPOCHREALTIME] $*" >&2; fi; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"; }

DIR=${SLURM_CLUSTER_DIR:-}
CPUS=4
NODE=""
DEADLINE=900
BED=""
POS=()
CMD=()
while (($#)); do
  case $1 in
    --dir) (($# >= 2)) || die "--dir needs a value"; DIR=$2; shift 2 ;;
    --cpus) (($# >= 2)) || die "--cpus needs a value"; CPUS=$2; shift 2 ;;
    --node-name) (($# >= 2)) || die "--node-name needs a value"; NODE=$2; shift 2 ;;
    --deadline) (($# >= 2)) || die "--deadline needs a value"; DEADLINE=$2; shift 2 ;;
    --testbed) (($# >= 2)) || die "--testbed needs a value"; BED=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; CMD=("$@"); break ;;
    *) if [[ ${POS[0]:-} == exec ]]; then CMD=("$@"); break; fi; POS+=("$1"); shift ;;
  esac
done
[[ $CPUS =~ ^[1-9][0-9]{0,3}$ ]] || die "bad --cpus '$CPUS'"
[[ $DEADLINE =~ ^[1-9][0-9]{0,5}$ ]] || die "bad --deadline '$DEADLINE'"

# ---------------------------------------------------------------- helpers (both sides)
state() { sed -n "s/^$1=//p" "$DIR/cluster.state" 2>/dev/null || true; }
ns_ino() { stat -L -c %i "$1" 2>/dev/null || true; }
# Is a network namespace pinned (bind-mounted) on file $1?
ns_pinned() { [[ $(findmnt -n -o FSTYPE --mountpoint "$1" 2>/dev/null) == nsfs* ]]; }

# The pinned network namespaces the cluster's processes live in, one path a line.
cluster_namespaces() {
  local k
  if [[ $(state MODE) == bed ]]; then
    for ((k = 0; k <= $(state BED_N); k++)); do echo "/run/netns/$(state BED_PREFIX)-h$k"; done
  else
    echo "$DIR/netns"
  fi
}

# Pids never to kill: this shell, and on a bed the bed's own holders and sshds.
spared() {
  local k f
  echo "$$"
  echo "$BASHPID"
  if [[ $(state MODE) == bed ]]; then
    for ((k = 0; k <= $(state BED_N); k++)); do
      for f in holder.pid sshd.pid; do cat "$(state BED_DIR)/node/h$k/$f" 2>/dev/null || true; done
    done
  fi
}

# Pids of the cluster's processes, one a line.
cluster_pids() {
  local inos=() ns spare
  while read -r ns; do
    if ns_pinned "$ns"; then inos+=("$(ns_ino "$ns")"); fi
  done < <(cluster_namespaces)
  ((${#inos[@]})) || return 0
  spare=" $(spared | tr '\n' ' ') "
  stat -L -c '%i %n' /proc/[0-9]*/ns/net 2>/dev/null | while read -r i p; do
    p=${p#/proc/}
    p=${p%/ns/net}
    [[ " ${inos[*]} " == *" $i "* && $spare != *" $p "* ]] && echo "$p"
  done
  return 0
}

# SIGKILL the cluster's processes until none is left (slurmd could start a slurmstepd meanwhile), then
# wait (at most 3 s) until they are reaped too, so no zombie looks like a leftover.
kill_cluster() {
  local round pids=() killed=() pid left
  for ((round = 0; round < 100; round++)); do
    mapfile -t pids < <(cluster_pids)
    ((${#pids[@]})) || break
    killed+=("${pids[@]}")
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.05
  done
  ((${#pids[@]} == 0)) || echo "cluster: warning: processes still alive: ${pids[*]}" >&2
  for ((round = 0; round < 300; round++)); do
    left=0
    for pid in "${killed[@]}"; do [[ -e /proc/$pid ]] && { left=1; break; }; done
    ((left)) || return 0
    sleep 0.01
  done
}

# ---------------------------------------------------------------- the first process
# _init DIR DEADLINE: start the daemons (in the foreground: they are its children), wait out the deadline.
if [[ ${POS[0]:-} == _init ]]; then
  DIR=${POS[1]:?}
  deadline=${POS[2]:?}
  export SLURM_CONF=$DIR/slurm.conf
  if [[ $(state MODE) == single ]]; then
    ip link set lo up
    ip link add tsl0 type veth peer name tsl1
    ip addr add 10.234.0.1/24 dev tsl0
    ip link set tsl0 up
    ip link set tsl1 up
  fi
  munged -F --key-file "$DIR/munge/munge.key" --socket "$DIR/munge/munge.sock" --pid-file "$DIR/munge/munged.pid" \
    --seed-file "$DIR/munge/munged.seed" --log-file "$DIR/log/munged.log" --num-threads 4 &
  for ((i = 0; i < 500; i++)); do [[ -S $DIR/munge/munge.sock ]] && break; sleep 0.01; done
  slurmctld -D -f "$DIR/slurm.conf" &
  if [[ $(state MODE) == single ]]; then
    slurmd -D -f "$DIR/slurm.conf" -N "$(state NODE)" &
  else
    for ((k = 1; k <= $(state BED_N); k++)); do
      bash "$TESTBED" exec "h$k" --dir "$(state BED_DIR)" -- slurmd -D -f "$DIR/slurm.conf" &
    done
  fi
  sleep "$deadline" || true
  echo "cluster: deadline of $deadline s reached: killing the cluster" >&2
  kill_cluster
  exit 0
fi

# ---------------------------------------------------------------- outside
need_dir() {
  [[ -n $DIR ]] || die "no cluster directory (give --dir DIR or set SLURM_CLUSTER_DIR)"
  DIR=$(realpath -m -- "$DIR")
}

in_ns() { # CMD... where the cluster's clients run
  if [[ $(state MODE) == bed ]]; then
    SLURM_CONF=$DIR/slurm.conf bash "$TESTBED" exec h0 --dir "$(state BED_DIR)" -- "$@"
  else
    ns_pinned "$DIR/netns" || die "no cluster is running in $DIR"
    SLURM_CONF=$DIR/slurm.conf nsenter --net="$DIR/netns" -- "$@"
  fi
}

write_config() { # CTLD_HOST(ADDR) NODE_LINES...
  local ctld=$1
  shift
  mkdir -p "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/log"
  # munged wants every directory on the socket's path searchable by all, and the key private
  chmod 755 "$DIR" "$DIR/munge"
  mungekey --create --keyfile "$DIR/munge/munge.key" 2>/dev/null || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 600 "$DIR/munge/munge.key"
  : >"$DIR/plugstack.conf"
  {
    cat <<EOF
# A test cluster (generated by test/slurm/cluster.sh).
ClusterName=tsmpi
SlurmctldHost=$ctld
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
PlugStackConfig=$DIR/plugstack.conf
# cgroup plugins are not used: proctrack/linuxproc tracks a job by its process tree; no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
KillWait=3
MinJobAge=120
InactiveLimit=0
MailProg=/bin/true
EOF
    printf '%s\n' "$@"
    echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
  } >"$DIR/slurm.conf"
}

cmd_up() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
    die "needs slurmctld, slurmd and munged (apt-get install slurm-wlm munge)"
  ((EUID == 0)) || die "must run as root"
  if [[ -z $DIR ]]; then
    # not tsmpi-*: other tests check that jobs leave no tsmpi-* entry in /tmp while this runs beside them
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/slurm-test-cluster.XXXXXX")
  else
    DIR=$(realpath -m -- "$DIR")
    [[ ! -e $DIR || -z $(ls -A "$DIR") ]] || die "$DIR exists and is not empty"
    mkdir -p "$DIR"
  fi
  : >"$DIR/$MARKER"
  local host n=1 k nodes=() want
  host=$(hostname -s)
  if [[ -n $BED ]]; then
    BED=$(realpath -m -- "$BED")
    n=$(sed -n 's/^N=//p' "$BED/state" 2>/dev/null || true)
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "no test bed in $BED"
    printf 'MODE=bed\nBED_DIR=%s\nBED_PREFIX=%s\nBED_N=%s\n' "$BED" "$(sed -n 's/^PREFIX=//p' "$BED/state")" "$n" >"$DIR/cluster.state"
    for ((k = 1; k <= n; k++)); do
      nodes+=("NodeName=h$k NodeAddr=$(sed -n "s/^TESTBED_ADDR_h$k=//p" "$BED/env" | tr -d "'\"") CPUs=$CPUS State=UNKNOWN")
    done
    write_config "h0($(sed -n 's/^TESTBED_ADDR_h0=//p' "$BED/env" | tr -d "'\""))" "${nodes[@]}"
    log "config for h1..h$n in $DIR"
    bash "$TESTBED" exec h0 --dir "$BED" -- bash "$SELF" _init "$DIR" "$DEADLINE" </dev/null >"$DIR/log/init.log" 2>&1 &
  else
    NODE=${NODE:-$host}
    [[ $NODE =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,40}$ ]] || die "bad node name '$NODE'"
    printf 'MODE=single\nNODE=%s\n' "$NODE" >"$DIR/cluster.state"
    if [[ $NODE == "$host" ]]; then
      write_config "$host(127.0.0.1)" "NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN"
    else
      write_config "$host(127.0.0.1)" "NodeName=$NODE NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN"
    fi
    log "config in $DIR"
    : >"$DIR/netns"
    # setsid is not used: the cluster stays in the caller's session
    unshare --net="$DIR/netns" -- bash "$SELF" _init "$DIR" "$DEADLINE" </dev/null >"$DIR/log/init.log" 2>&1 &
    for ((k = 0; k < 500; k++)); do
      ns_pinned "$DIR/netns" && break
      sleep 0.01
    done
  fi
  local states=""
  for ((k = 0; k < 600; k++)); do
    states=$(in_ns sinfo -h -N -o '%T' 2>/dev/null | sort | uniq -c | tr -s ' ' || true)
    [[ $states == " $n idle" ]] && break
    sleep 0.1
  done
  if [[ $states != " $n idle" ]]; then
    echo "cluster: node states '${states:-none}' after 60 s (want $n idle); last log lines:" >&2
    tail -n 5 "$DIR"/log/*.log >&2 || true
    cmd_down
    exit 1
  fi
  printf 'SLURM_CONF=%s\nSLURM_CLUSTER_DIR=%s\nSLURM_CLUSTER_NODE=%s\n' "$DIR/slurm.conf" "$DIR" "${NODE:-h1}" >"$DIR/env"
  log "$n node(s) idle"
  echo "SLURM_CLUSTER_DIR=$DIR"
}

cmd_down() {
  [[ -d $DIR ]] || return 0
  [[ -f $DIR/$MARKER ]] || die "$DIR is not a cluster directory (no $MARKER)"
  kill_cluster
  if ns_pinned "$DIR/netns"; then umount "$DIR/netns" || umount -l "$DIR/netns" || true; fi
  rm -rf -- "$DIR"
}

case ${POS[0]:-} in
  up) cmd_up ;;
  down) need_dir; cmd_down ;;
  exec) need_dir; ((${#CMD[@]})) || die "exec needs a command"; in_ns "${CMD[@]}" ;;
  status) need_dir; out=$(in_ns sinfo -h -N -o '%N %T %c' 2>&1) || true; echo "$out"; [[ $out == *idle* || $out == *alloc* || $out == *mix* ]] ;;
  *) usage >&2; exit 2 ;;
esac
