#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for trying the SLURM profiles and for the test
# suite (tests/test_slurm.py): Debian's slurmctld, slurmd and munge, started without systemd.
#
#   sudo workflow/scripts/local_slurm.sh install   # Debian packages (root; once per machine)
#   sudo workflow/scripts/local_slurm.sh start     # write slurm.conf, start, wait for sinfo
#   sudo workflow/scripts/local_slurm.sh status    # sinfo, or exit 1 when the cluster is down
#   sudo workflow/scripts/local_slurm.sh stop      # stop the daemons by their pid files
#
# The node is sized from the machine (`slurmd -C`), with memory headroom for the submitting
# process; one partition, `cpu`, no GPUs, no accounting (as on many small clusters: the
# profiles must work without `sacct`). Confinement plugins that need cgroups are off
# (proctrack/linuxproc, task/none), so it runs in containers too. Everything it writes lives in
# $LOCAL_SLURM_DIR (default /var/tmp/local-slurm), except /etc/slurm/slurm.conf, which it
# writes only when that file is absent or one it wrote itself (it refuses to touch a real
# cluster's configuration). Every wait has a timeout ($LOCAL_SLURM_TIMEOUT seconds, default 60).
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
DIR=${LOCAL_SLURM_DIR:-/var/tmp/local-slurm}
CONF=${LOCAL_SLURM_CONF:-/etc/slurm/slurm.conf}
TIMEOUT=${LOCAL_SLURM_TIMEOUT:-60}
MARK="# written by local_slurm.sh"
#: Memory (MB) left to the submitting process and the system beside the node's jobs.
HEADROOM_MB=${LOCAL_SLURM_HEADROOM_MB:-2048}

die() { echo "local_slurm: $*" >&2; exit 1; }
say() { echo "local_slurm: $*" >&2; }

need_root() {
  [[ $(id -u) == 0 ]] || die "'$1' needs root (the daemons run as root and munge); rerun with sudo"
}

need_binaries() {
  local missing=()
  for bin in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged sbatch sinfo scontrol; do
    command -v "$bin" >/dev/null || missing+=("$bin")
  done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}: run '$0 install' first (as root)"
}

# Wait until "$@" succeeds, at most TIMEOUT seconds; false when it never did.
wait_for() {
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

install() {
  need_root install
  command -v apt-get >/dev/null || die "install needs apt-get (Debian or Ubuntu); install ${PACKAGES[*]} with your system's package manager"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
           --no-install-recommends "${PACKAGES[@]}" >&2; }
  need_binaries
  say "installed: $(sinfo --version)"
}

# The node line: what slurmd detects, memory lowered by the headroom.
node_line() {
  local line mem
  line=$(/usr/sbin/slurmd -C | head -1)
  [[ $line == NodeName=* ]] || die "slurmd -C printed no node line: $line"
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$line")
  ((mem > HEADROOM_MB + 512)) || die "only ${mem} MB of memory; the node needs more than ${HEADROOM_MB} MB of headroom"
  sed "s/RealMemory=[0-9]*/RealMemory=$((mem - HEADROOM_MB))/" <<<"$line"
}

write_conf() {
  if [[ -e $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script: this machine has a SLURM configuration of its own, which this script leaves alone"
  fi
  local node host
  node=$(node_line)
  host=$(sed 's/^NodeName=\([^ ]*\).*/\1/' <<<"$node")
  mkdir -p "$(dirname "$CONF")" "$DIR/state" "$DIR/spool"
  cat >"$CONF" <<EOF
$MARK ($(date -u +%FT%TZ)); '$0 stop' leaves it, '$0 start' rewrites it
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# finished jobs stay visible to squeue for 5 minutes (the profiles poll squeue, not sacct)
MinJobAge=300
$node State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  say "wrote $CONF ($node)"
}

running() {  # the daemon whose pid file is $1 is alive
  [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

start_munge() {
  local pidfile=/run/munge/munged.pid
  if running "$pidfile"; then return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  [[ -s /etc/munge/munge.key ]] || { /usr/sbin/mungekey --create >&2 || die "no munge key"; }
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged
  wait_for munge -n || die "munged did not start within ${TIMEOUT}s (see /var/log/munge/munged.log)"
}

node_idle() {  # the node accepts jobs
  sinfo -h -o '%T' | grep -qE '^(idle|mixed|allocated)'
}

start() {
  need_root start
  need_binaries
  write_conf
  start_munge
  running "$DIR/slurmctld.pid" || /usr/sbin/slurmctld
  wait_for scontrol ping || die "slurmctld did not answer within ${TIMEOUT}s; its log: $DIR/slurmctld.log"
  running "$DIR/slurmd.pid" || /usr/sbin/slurmd
  if ! wait_for node_idle; then
    sinfo >&2 || true
    die "the node did not come up within ${TIMEOUT}s; logs: $DIR/slurmd.log, $DIR/slurmctld.log"
  fi
  say "up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %T' | head -1)"
}

stop_one() {  # stop_one NAME PIDFILE: TERM, wait, then KILL
  local pid
  running "$2" || return 0
  pid=$(cat "$2")
  kill "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "$1 ($pid) did not stop within ${TIMEOUT}s; killing it"
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$2"
}

stop() {
  need_root stop
  stop_one slurmd "$DIR/slurmd.pid"
  stop_one slurmctld "$DIR/slurmctld.pid"
  stop_one munged /run/munge/munged.pid
  say "stopped"
}

status() {
  scontrol ping >/dev/null 2>&1 || { say "not running"; exit 1; }
  sinfo
}

case ${1:-} in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|status|stop" >&2; exit 2 ;;
esac
