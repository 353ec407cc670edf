#!/usr/bin/env bash
# Stop the private Docker engine that start-dockerd.sh started, by the pid in its pid file (never by
# name: a developer's own dockerd is left alone). dockerd stops its running containers and its
# containerd on SIGTERM; after FANOUT_DOCKER_STOP_TIMEOUT seconds (default 30) it is killed, and
# so is its containerd, by the pid containerd recorded. Images are kept in the data root.
# Usage: scripts/containers/stop-dockerd.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=dockerd-paths.sh
. "$here/dockerd-paths.sh"
TIMEOUT=${FANOUT_DOCKER_STOP_TIMEOUT:-30}
CONTAINERD_PIDFILE=$FANOUT_DOCKER_EXEC_ROOT/containerd/containerd.pid

log() { echo "stop-dockerd: $*" >&2; }

if ! pid=$(dockerd_pid); then
  log "no dockerd running from $FANOUT_DOCKER_PIDFILE"
  exit 0
fi
containerd_pid=$(cat "$CONTAINERD_PIDFILE" 2>/dev/null || true)

kill -TERM "$pid"
deadline=$(($(date +%s) + TIMEOUT))
while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
if kill -0 "$pid" 2>/dev/null; then
  log "dockerd (pid $pid) still running after ${TIMEOUT} s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  if [ -n "$containerd_pid" ] && [ "$(readlink "/proc/$containerd_pid/exe" 2>/dev/null)" = /usr/bin/containerd ]; then
    kill -KILL "$containerd_pid" 2>/dev/null || true
  fi
fi
log "stopped dockerd (pid $pid)"
