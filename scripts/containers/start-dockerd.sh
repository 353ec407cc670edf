#!/usr/bin/env bash
# Start a private Docker engine (Debian 12's docker.io: dockerd 20.10 with its own containerd and
# runc) for the container tests, as root, without systemd. Installs docker.io if dockerd is
# missing. Idempotent: exits 0 at once when the engine already answers.
# Usage: scripts/containers/start-dockerd.sh
# Prints one line on stdout, DOCKER_HOST=unix:///run/fanout-docker.sock, for the caller to export
# (`export "$(bash scripts/containers/start-dockerd.sh)"`); progress and the log's path go to
# stderr. Exits non-zero, with dockerd's last log lines, if the engine cannot start.
# Env: FANOUT_DOCKER_STORAGE_DRIVER (default: dockerd's own choice; overlay2 on ext4 here, vfs
#      where overlay2 cannot mount), FANOUT_DOCKER_START_TIMEOUT (seconds, default 60),
#      FANOUT_SKIP_APT_UPDATE=1 when the caller has just run apt-get update.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=dockerd-paths.sh
. "$here/dockerd-paths.sh"
TIMEOUT=${FANOUT_DOCKER_START_TIMEOUT:-60}

log() { echo "start-dockerd: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "ERROR: must run as root (installs packages and starts dockerd)"
  exit 1
fi

answers() { DOCKER_HOST=$FANOUT_DOCKER_HOST docker info >/dev/null 2>&1; }

ready() {
  log "dockerd (pid $(dockerd_pid || echo '?')) answers on $FANOUT_DOCKER_SOCK; log: $FANOUT_DOCKER_LOG"
  echo "DOCKER_HOST=$FANOUT_DOCKER_HOST"
  exit 0
}

install_docker() {
  [ -x /usr/sbin/dockerd ] && command -v docker >/dev/null 2>&1 && return 0
  [ "${FANOUT_SKIP_APT_UPDATE:-0}" = 1 ] || apt-get update >&2
  # docker.io's maintainer script would start the stock daemon through its init script, with the
  # default socket, a docker0 bridge and NAT rules: keep it from doing so while installing.
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    added=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io containerd runc >&2 || rc=$?
  [ "$added" = 0 ] || rm -f "$policy"
  if [ "$rc" != 0 ]; then
    log "ERROR: apt-get install docker.io failed (exit $rc)"
    exit 1
  fi
}

# Two starts at once would both see no engine, and the second dockerd would exit on the first's
# pid file: the second caller waits here instead, then finds the engine answering.
exec 9>"$FANOUT_DOCKER_LOCK"
flock 9
install_docker
answers && ready

pid=$(dockerd_pid || true)
if [ -z "$pid" ]; then
  # A pid file naming no live dockerd is left from a killed one; dockerd refuses to start while
  # its pid file names a live process, whatever that process is.
  rm -f "$FANOUT_DOCKER_PIDFILE"
  storage=()
  [ -z "${FANOUT_DOCKER_STORAGE_DRIVER:-}" ] || storage=(--storage-driver "$FANOUT_DOCKER_STORAGE_DRIVER")
  log_start=$(($(wc -l 2>/dev/null <"$FANOUT_DOCKER_LOG" || echo 0) + 1))
  # --iptables=false --ip6tables=false --bridge=none: leave the host's network alone (no docker0
  # bridge, no NAT or forwarding rules, which the stock settings add); containers get loopback
  # only by default, and fanout runs them with --network none or host anyway.
  # cgroupfs: there is no systemd here to delegate cgroups to (the machine has cgroup v1).
  # Containers inherit dockerd's rlimits (nofile 20000 here), which this kind of machine allows;
  # podman needed its higher default ulimits emptied, dockerd sets none by default.
  # 9>&-: dockerd must not inherit the start lock, or it would hold it for its whole life.
  # setsid: the engine outlives this script and is not in the caller's process group. A background
  # job of a script is no group leader, so setsid execs dockerd in place and $! is dockerd's pid.
  setsid /usr/sbin/dockerd \
    --host "$FANOUT_DOCKER_HOST" \
    --pidfile "$FANOUT_DOCKER_PIDFILE" \
    --data-root "$FANOUT_DOCKER_DATA_ROOT" \
    --exec-root "$FANOUT_DOCKER_EXEC_ROOT" \
    --iptables=false --ip6tables=false --bridge=none \
    --exec-opt native.cgroupdriver=cgroupfs \
    "${storage[@]}" \
    </dev/null >>"$FANOUT_DOCKER_LOG" 2>&1 9>&- &
  started=$!
  log "started dockerd (pid $started), waiting up to ${TIMEOUT} s for it to answer"
else
  started=$pid
  log_start=1
  log "dockerd (pid $pid) is running but not answering yet; waiting up to ${TIMEOUT} s"
fi

# dockerd's own words since this start, without the gRPC connection and plugin loading chatter, which buries them.
last_log_lines() { tail -n +"$log_start" "$FANOUT_DOCKER_LOG" | grep -v -e 'module=grpc' -e 'msg="loading plugin' | tail -n 30 >&2; }

deadline=$(($(date +%s) + TIMEOUT))
until answers; do
  if ! kill -0 "$started" 2>/dev/null; then
    log "ERROR: dockerd exited before answering on $FANOUT_DOCKER_SOCK; its last log lines ($FANOUT_DOCKER_LOG):"
    last_log_lines
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log "ERROR: dockerd (pid $started) did not answer on $FANOUT_DOCKER_SOCK within ${TIMEOUT} s (it is left running: scripts/containers/stop-dockerd.sh stops it); its last log lines ($FANOUT_DOCKER_LOG):"
    last_log_lines
    exit 1
  fi
  sleep 0.5
done
ready
