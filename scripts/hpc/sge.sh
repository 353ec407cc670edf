#!/usr/bin/env bash
# Single-node Grid Engine for tests and benchmarks: Debian 12 (gridengine 8.1.9), as root, no
# systemd. Usage: scripts/hpc/sge.sh install|start|stop|status|env
#   install  apt-get install gridengine-master/-client/-exec with the cell preseeded (skipped when
#            installed); the package's postinst creates the cell and its berkeleydb spool
#   start    start sge_qmaster, make sure the configuration is in place (submit/admin/exec host
#            $(hostname), queue all.q with 2 slots, parallel environment "threaded", root may
#            submit, 1 s scheduler interval, accounting flushed every second), start sge_execd
#            and wait until the queue instance is usable; exit 0 at once if all already run
#   stop     end sge_execd and sge_qmaster by their pid files
#   status   exit 0 iff qhost answers and qstat -f shows all.q@$(hostname) in no
#            unknown/error/disabled/suspended state
#   env      print the environment clients need (Debian's /usr/bin/q* wrappers find it by
#            themselves in /etc/default/gridengine; /usr/lib/gridengine/q* need it set)
set -euo pipefail

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
H=$(hostname)
QUEUE=all.q
RUN=/run/gridengine
QM_PID=/var/spool/gridengine/qmaster/qmaster.pid  # sge_qmaster ignores SGE_MASTER_PIDFILE
EX_PID=$RUN/execd.pid
QM_SPOOL=/var/spool/gridengine/qmaster
EX_SPOOL=/var/spool/gridengine/execd
START_TIMEOUT=${SGE_START_TIMEOUT:-60}
CHANGED=0

log() { echo "sge.sh: $*" >&2; }

pid_alive() {  # pid_alive PIDFILE
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

show_logs() {
  local f
  # execd names its spool directory after its own idea of the host name ("localhost" here)
  for f in "$QM_SPOOL/messages" "$EX_SPOOL"/*/messages /tmp/qmaster_messages /tmp/execd_messages; do
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
  [ -x /usr/sbin/sge_qmaster ] && [ -x /usr/sbin/sge_execd ] && command -v qsub >/dev/null 2>&1 &&
    [ -f "$SGE_ROOT/$SGE_CELL/common/bootstrap" ]
}

# Grid Engine names hosts by resolving them: a container whose hostname is not in /etc/hosts
# would have a master that cannot find itself.
resolvable_hostname() {
  getent hosts "$H" >/dev/null 2>&1 && return 0
  log "adding $H to /etc/hosts (it did not resolve)"
  echo "127.0.0.1 $H" >> /etc/hosts
}

do_install() {
  resolvable_hostname
  if installed; then
    log "gridengine is already installed (cell $SGE_ROOT/$SGE_CELL)"
    return 0
  fi
  local p
  for p in gridengine-common gridengine-master gridengine-client gridengine-exec; do
    echo "$p shared/gridenginemaster string $H" | debconf-set-selections
    echo "$p shared/gridenginecell string $SGE_CELL" | debconf-set-selections
    echo "$p shared/gridengineconfig boolean true" | debconf-set-selections
  done
  # HPC_SKIP_APT_UPDATE=1: the caller (start-all.sh) has just run apt-get update
  [ "${HPC_SKIP_APT_UPDATE:-0}" = 1 ] || apt-get update
  deny_service_starts
  # the postinst initialises the cell (berkeleydb spool, global config, sgeadmin as manager)
  DEBIAN_FRONTEND=noninteractive apt-get install -y gridengine-master gridengine-client gridengine-exec ||
    { allow_service_starts; die "apt-get install failed"; }
  allow_service_starts
  installed || die "gridengine installed but the cell $SGE_ROOT/$SGE_CELL was not created"
}

# ---------------------------------------------------------------- configuration (idempotent)
TMP=""
cleanup() { [ -z "$TMP" ] || rm -rf "$TMP"; }
trap cleanup EXIT

norm() { awk 'NF { $1 = $1; print }' "$@"; }  # collapse blanks: compare qconf listings

queue_conf() {
  cat <<EOF
qname                 $QUEUE
hostlist              $H
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               threaded
rerun                 FALSE
slots                 $(nproc)
tmpdir                /tmp
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      unix_behavior
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
EOF
}

pe_conf() {
  cat <<'EOF'
pe_name            threaded
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
}

exechost_conf() {
  printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' "$H"
}

changed() { CHANGED=1; log "$*"; }

configure() {
  TMP=$(mktemp -d)
  qconf -sh 2>/dev/null | grep -qx "$H" || { qconf -ah "$H" >/dev/null; changed "added admin host $H"; }
  qconf -ss 2>/dev/null | grep -qx "$H" || { qconf -as "$H" >/dev/null; changed "added submit host $H"; }
  if ! qconf -se "$H" >/dev/null 2>&1; then
    exechost_conf > "$TMP/exechost"
    qconf -Ae "$TMP/exechost" >/dev/null
    changed "added exec host $H"
  fi

  # global configuration: root may submit; accounting file written every second
  # (qconf -Mconf takes the configuration name from the file name: it must be "global")
  # (long values are continued on the next line after a backslash: join those lines first, and
  # drop stray "key=value" lines a naive edit may have left behind)
  qconf -sconf global | sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' > "$TMP/cur"
  awk '$1 !~ /=/' "$TMP/cur" | sed -e 's/^min_uid .*/min_uid                      0/' \
      -e 's/^min_gid .*/min_gid                      0/' \
      -e 's/^reporting_params .*/reporting_params             accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:01/' \
      > "$TMP/global"
  if [ "$(norm "$TMP/cur")" != "$(norm "$TMP/global")" ]; then
    qconf -Mconf "$TMP/global" >/dev/null
    changed "global configuration: min_uid/min_gid 0, accounting_flush_time 1 s"
  fi

  # scheduler: run every second, and also right after submits and job ends
  qconf -ssconf > "$TMP/cur"
  sed -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
      -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
      -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' \
      -e 's/^schedd_job_info .*/schedd_job_info                   false/' \
      "$TMP/cur" > "$TMP/sconf"
  if [ "$(norm "$TMP/cur")" != "$(norm "$TMP/sconf")" ]; then
    qconf -Msconf "$TMP/sconf" >/dev/null
    changed "scheduler configuration: schedule_interval 1 s, flush_submit/finish_sec 1"
  fi

  # parallel environment "threaded" (all slots on one host): qsub -pe threaded N
  pe_conf > "$TMP/pe"
  if ! qconf -sp threaded > "$TMP/cur" 2>/dev/null; then
    qconf -Ap "$TMP/pe" >/dev/null
    changed "added parallel environment threaded"
  elif [ "$(norm "$TMP/cur")" != "$(norm "$TMP/pe")" ]; then
    qconf -Mp "$TMP/pe" >/dev/null
    changed "updated parallel environment threaded"
  fi

  # the queue (written here, hostlist = this host)
  queue_conf > "$TMP/queue"
  if ! qconf -sq "$QUEUE" > "$TMP/cur" 2>/dev/null; then
    qconf -Aq "$TMP/queue" >/dev/null
    changed "added queue $QUEUE"
  elif [ "$(norm "$TMP/cur")" != "$(norm "$TMP/queue")" ]; then
    qconf -Mq "$TMP/queue" >/dev/null
    changed "updated queue $QUEUE"
  fi
}

# ---------------------------------------------------------------- daemons
queue_states() {  # prints the states column of the queue instance ("" when fine); fails if absent
  local out
  out=$(timeout 10 qstat -f -q "$QUEUE@$H" 2>/dev/null) || return 1
  echo "$out" | awk -v q="$QUEUE@$H" '$1 == q { found = 1; print $6 } END { exit !found }'
}

queue_ok() {
  local st
  st=$(queue_states) || return 1
  ! echo "$st" | grep -q '[uEdDsSCco]'
}

wait_pidfile() {  # the daemons write their pid file a moment after the launcher returns
  local _
  for _ in $(seq 1 100); do
    pid_alive "$1" && return 0
    sleep 0.1
  done
  die "$2 did not start (no live pid in $1)"
}

wait_qmaster() {
  local t0
  t0=$(date +%s)
  until qconf -sh >/dev/null 2>&1; do
    pid_alive "$QM_PID" || die "sge_qmaster exited"
    [ $(($(date +%s) - t0)) -lt "$START_TIMEOUT" ] || die "sge_qmaster does not answer after ${START_TIMEOUT}s"
    sleep 0.5
  done
}

do_start() {
  installed || die "gridengine is not installed (run: $0 install)"
  resolvable_hostname
  local started=0 st t0
  # the qmaster resolves 127.0.0.1 to "localhost" while clients call themselves $H: without an
  # alias every client request is refused ("access denied (client IP resolved to host name ...")
  if [ "$(cat "$SGE_ROOT/$SGE_CELL/common/host_aliases" 2>/dev/null)" != "$H localhost" ]; then
    echo "$H localhost" > "$SGE_ROOT/$SGE_CELL/common/host_aliases"
    if pid_alive "$QM_PID"; then
      log "host_aliases changed: restarting sge_qmaster"
      stop_daemon "$QM_PID" sge_qmaster
    fi
  fi
  mkdir -p "$RUN" "$EX_SPOOL"
  chmod 0755 "$RUN" "$EX_SPOOL"
  chown sgeadmin:sgeadmin "$RUN" "$EX_SPOOL"
  # (a second sge_qmaster started next to a live one hangs: check that none answers either)
  if ! pid_alive "$QM_PID" && ! timeout 10 qconf -sh >/dev/null 2>&1; then
    rm -f "$QM_PID"
    /usr/sbin/sge_qmaster || die "sge_qmaster did not start"
    started=1
    wait_pidfile "$QM_PID" sge_qmaster
  fi
  wait_qmaster
  configure
  if ! pid_alive "$EX_PID"; then
    rm -f "$EX_PID"
    SGE_EXECD_PIDFILE=$EX_PID /usr/sbin/sge_execd || die "sge_execd did not start"
    started=1
    wait_pidfile "$EX_PID" sge_execd
  fi
  t0=$(date +%s)
  until queue_ok; do
    st=$(queue_states || true)
    # an instance left in error state (E) by an earlier failure, or disabled (d)
    if echo "$st" | grep -q E; then qmod -cq "$QUEUE@$H" >/dev/null && changed "cleared error state of $QUEUE@$H"; fi
    if echo "$st" | grep -q d; then qmod -e "$QUEUE@$H" >/dev/null && changed "enabled $QUEUE@$H"; fi
    pid_alive "$EX_PID" || die "sge_execd exited"
    if [ $(($(date +%s) - t0)) -ge "$START_TIMEOUT" ]; then
      die "queue instance $QUEUE@$H not usable after ${START_TIMEOUT}s (states: '${st:-absent}')"
    fi
    sleep 0.5
  done
  if [ "$started" = 0 ] && [ "$CHANGED" = 0 ]; then
    log "already running"
    return 0
  fi
  log "running"
  qstat -f
}

stop_daemon() {  # stop_daemon PIDFILE NAME
  local pid _
  if ! pid_alive "$1"; then
    rm -f "$1"
    return 0
  fi
  pid=$(cat "$1")
  kill "$pid"
  for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "stopped $2 (pid $pid)"
      rm -f "$1"
      return 0
    fi
    sleep 0.1
  done
  log "$2 (pid $pid) still there 15 s after SIGTERM: SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

do_stop() {
  stop_daemon "$EX_PID" sge_execd
  stop_daemon "$QM_PID" sge_qmaster
}

do_status() {
  local st
  if ! timeout 10 qhost >/dev/null 2>&1; then
    echo "sge: qhost does not answer"
    return 1
  fi
  if ! st=$(queue_states); then
    echo "sge: no queue instance $QUEUE@$H in qstat -f"
    return 1
  fi
  if echo "$st" | grep -q '[uEdDsSCco]'; then
    echo "sge: $QUEUE@$H not usable (states: $st)"
    return 1
  fi
  echo "sge: up ($QUEUE@$H)"
}

case "${1:-}" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  env) echo "export SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL" ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
