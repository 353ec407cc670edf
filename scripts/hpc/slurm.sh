#!/usr/bin/env bash
# Single-node SLURM for tests and benchmarks: Debian 12 (slurm-wlm 22.05), run as root, no systemd.
# Usage: scripts/hpc/slurm.sh install|start|stop|status|conf
#   install  apt-get install slurm-wlm munge slurm-client (skipped when already installed)
#   start    write /etc/slurm/slurm.conf (+ cgroup.conf) if absent or stale, start munged,
#            slurmctld and slurmd, wait until the node is idle; exit 0 at once if all already run
#   stop     end slurmd, slurmctld and munged by their pid files (running jobs are kept in the
#            state save location and resume with the next start)
#   status   exit 0 iff sinfo answers and the node is idle, mixed or allocated
#   conf     print the configuration start would write
# One node "localhost" (CPUs = nproc, RealMemory = MemTotal in MiB, as free -m), one partition "debug".
# No slurmdbd: sacct has no database; final states come from `scontrol show job` (for MinJobAge
# = 300 s after the end) and from the job completion log /var/log/slurm/jobcomp.txt (`sacct -c`).
set -euo pipefail

CONF=/etc/slurm/slurm.conf
CGCONF=/etc/slurm/cgroup.conf
LOGDIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
NODE=localhost
START_TIMEOUT=${SLURM_START_TIMEOUT:-60}

log() { echo "slurm.sh: $*" >&2; }

pid_alive() {  # pid_alive PIDFILE
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

show_logs() {
  local f
  for f in "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] || continue
    echo "----- last lines of $f" >&2
    tail -n 25 "$f" >&2
  done
}

die() {
  log "ERROR: $*"
  show_logs
  exit 1
}

# Keep package maintainer scripts from starting daemons through init scripts (the daemons are
# started by `start`): Docker's debian images ship such a policy-rc.d; add one if it is missing.
POLICY_RC=/usr/sbin/policy-rc.d
ADDED_POLICY=0
deny_service_starts() {
  if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$POLICY_RC"
    chmod 0755 "$POLICY_RC"
    ADDED_POLICY=1
  fi
}
allow_service_starts() {
  if [ "$ADDED_POLICY" = 1 ]; then rm -f "$POLICY_RC"; fi
}

installed() {
  command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 &&
    command -v sbatch >/dev/null 2>&1 && command -v munged >/dev/null 2>&1
}

do_install() {
  if installed; then
    log "slurm-wlm, slurm-client and munge are already installed"
    return 0
  fi
  # HPC_SKIP_APT_UPDATE=1: the caller (start-all.sh) has just run apt-get update
  [ "${HPC_SKIP_APT_UPDATE:-0}" = 1 ] || apt-get update
  deny_service_starts
  DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge slurm-client ||
    { allow_service_starts; die "apt-get install failed"; }
  allow_service_starts
}

# Memory enforcement, SLURM_MEM_ENFORCE=cgroup|gather overrides the choice:
# cgroup (chosen when the cgroup v1 memory controller is writable, as on this VM): task/cgroup
#   limits each job's memory cgroup to --mem; the kernel OOM-kills it and SLURM reports
#   JobState=OUT_OF_MEMORY; proctrack/cgroup ends every process of a job.
# gather (fallback, e.g. containers with a read-only /sys/fs/cgroup or cgroup v2, which SLURM
#   22.05 only drives through systemd): jobacct_gather/linux samples RSS every second and
#   OverMemoryKill cancels the step: JobState=FAILED, ExitCode=0:9 (not OUT_OF_MEMORY).
mem_mode() {
  if [ -n "${SLURM_MEM_ENFORCE:-}" ]; then
    echo "$SLURM_MEM_ENFORCE"
  elif [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ] &&
    [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] && [ -w /sys/fs/cgroup/memory ]; then
    echo cgroup
  else
    echo gather
  fi
}

gen_cgroup_conf() {
  echo "# Written by scripts/hpc/slurm.sh (used with task/cgroup)"
  echo "CgroupPlugin=cgroup/v1"
  echo "CgroupMountpoint=/sys/fs/cgroup"
  echo "ConstrainCores=no"
  echo "ConstrainRAMSpace=yes"
  if [ -f /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes ]; then
    # RAM + swap limited to --mem too: a job cannot get past its limit by swapping
    echo "ConstrainSwapSpace=yes"
    echo "AllowedSwapSpace=0"
  else
    echo "ConstrainSwapSpace=no"
  fi
}

gen_conf() {
  local mem cpus mode
  mem=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)  # = free -m
  cpus=$(nproc)
  mode=$(mem_mode)
  cat <<EOF
# Written by scripts/hpc/slurm.sh: single-node SLURM without slurmdbd (memory: $mode).
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
EOF
  if [ "$mode" = cgroup ]; then
    cat <<EOF
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/cgroup
JobAcctGatherFrequency=task=1
EOF
  else
    cat <<EOF
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
EOF
  fi
  cat <<EOF
# Memory must be a consumable resource or --mem never becomes a limit. Without a default, a job
# without --mem is allocated the whole node (and runs alone): give it one CPU's share instead.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem / cpus))
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.txt
ReturnToService=2
# scontrol show job answers for 5 minutes after a job ends
MinJobAge=300
MaxArraySize=10001
MaxJobCount=50000
# SIGTERM -> SIGKILL delay at a time limit or scancel
KillWait=5
# defaults (batch_sched_delay=3, bf_interval=30) gave 129.5 s for a 100-element array
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,default_queue_depth=1000,bf_interval=1
NodeName=$NODE NodeHostname=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

conf_current() {
  [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$(gen_conf)" ] || return 1
  [ "$(mem_mode)" != cgroup ] || { [ -f "$CGCONF" ] && [ "$(cat "$CGCONF")" = "$(gen_cgroup_conf)" ]; }
}

write_conf() {
  mkdir -p /etc/slurm
  gen_conf > "$CONF.new"
  mv "$CONF.new" "$CONF"
  log "wrote $CONF"
  if [ "$(mem_mode)" = cgroup ]; then
    gen_cgroup_conf > "$CGCONF"
    log "wrote $CGCONF"
  fi
}

node_state() {  # compact state of each node, one per line; fails if sinfo cannot answer
  timeout 10 sinfo -h -N -o '%t' 2>/dev/null
}

node_ok() {
  node_state | grep -qxE 'idle|mix|alloc'
}

start_munge() {
  if pid_alive "$MUNGE_PID"; then
    return 0
  fi
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --force
    else
      dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge
  chmod 0400 /etc/munge/munge.key
  rm -f "$MUNGE_PID"
  runuser -u munge -- /usr/sbin/munged || die "munged did not start"
  local _
  for _ in $(seq 1 50); do
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  die "munge does not answer (munge -n | unmunge)"
}

running_all() {
  pid_alive "$MUNGE_PID" && pid_alive "$CTLD_PID" && pid_alive "$SLURMD_PID"
}

do_start() {
  installed || die "SLURM is not installed (run: $0 install)"
  if running_all && conf_current && node_ok; then
    log "already running"
    return 0
  fi
  if ! conf_current; then
    if pid_alive "$CTLD_PID" || pid_alive "$SLURMD_PID"; then
      log "configuration is stale: restarting slurmctld and slurmd"
      stop_daemon "$SLURMD_PID" slurmd
      stop_daemon "$CTLD_PID" slurmctld
    fi
    write_conf
  fi
  mkdir -p /var/spool/slurmctld /var/spool/slurmd "$LOGDIR"
  start_munge
  if ! pid_alive "$CTLD_PID"; then
    rm -f "$CTLD_PID"
    /usr/sbin/slurmctld || die "slurmctld did not start"
  fi
  if ! pid_alive "$SLURMD_PID"; then
    rm -f "$SLURMD_PID"
    /usr/sbin/slurmd -N "$NODE" || die "slurmd did not start"
  fi
  local t0 resumed=0 st=""
  t0=$(date +%s)
  until node_ok; do
    st=$(node_state | tr '\n' ' ' || true)
    # a node left down/drained by an earlier run comes back with RESUME
    if [ "$resumed" = 0 ] && echo "$st" | grep -qE 'down|drain|drng|fail'; then
      log "node state '$st': scontrol update NodeName=$NODE State=RESUME"
      scontrol update NodeName="$NODE" State=RESUME || true
      resumed=1
    fi
    pid_alive "$CTLD_PID" || die "slurmctld exited"
    pid_alive "$SLURMD_PID" || die "slurmd exited"
    if [ $(($(date +%s) - t0)) -ge "$START_TIMEOUT" ]; then
      die "node not idle after ${START_TIMEOUT}s (sinfo: '${st:-no answer}')"
    fi
    sleep 0.5
  done
  log "running ($(mem_mode) memory enforcement)"
  sinfo
}

stop_daemon() {  # stop_daemon PIDFILE NAME
  local pid _
  if ! pid_alive "$1"; then
    rm -f "$1"
    return 0
  fi
  pid=$(cat "$1")
  kill "$pid"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "stopped $2 (pid $pid)"
      rm -f "$1"
      return 0
    fi
    sleep 0.1
  done
  log "$2 (pid $pid) still there 10 s after SIGTERM: SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

do_stop() {
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$CTLD_PID" slurmctld
  stop_daemon "$MUNGE_PID" munged
}

do_status() {
  local st
  if ! st=$(node_state); then
    echo "slurm: sinfo does not answer"
    return 1
  fi
  st=$(echo "$st" | paste -sd ' ')
  if echo "$st" | tr ' ' '\n' | grep -qxE 'idle|mix|alloc'; then
    echo "slurm: up (node state: $st)"
    return 0
  fi
  echo "slurm: node not usable (node state: ${st:-none})"
  return 1
}

case "${1:-}" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  conf)
    gen_conf
    if [ "$(mem_mode)" = cgroup ]; then
      echo "# ----- $CGCONF"
      gen_cgroup_conf
    fi
    ;;
  *) echo "usage: $0 install|start|stop|status|conf" >&2; exit 2 ;;
esac
