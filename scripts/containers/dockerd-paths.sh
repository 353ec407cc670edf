# Where the private Docker engine of the test setup lives; sourced by start-dockerd.sh and
# stop-dockerd.sh so both agree. Paths of its own (not /var/run/docker.sock, /var/lib/docker) so a
# developer's own Docker, if any, is neither used nor disturbed.
# shellcheck shell=bash
FANOUT_DOCKER_SOCK=/run/fanout-docker.sock
FANOUT_DOCKER_PIDFILE=/run/fanout-docker.pid
FANOUT_DOCKER_EXEC_ROOT=/run/fanout-docker
# Images built by the tests are kept here across restarts, so a suite builds its image once.
FANOUT_DOCKER_DATA_ROOT=/var/lib/fanout-docker
FANOUT_DOCKER_LOG=/var/log/fanout-docker.log
# Held by start-dockerd.sh while it checks and starts, so test suites may call it concurrently.
FANOUT_DOCKER_LOCK=/run/fanout-docker.lock
# What clients (docker, the tests, fanout) must have in their environment to reach this engine.
FANOUT_DOCKER_HOST=unix://$FANOUT_DOCKER_SOCK

# dockerd_pid: print the pid in the pid file if that process is this engine's dockerd (a pid file
# left by a killed dockerd may name a pid since reused by another program); fail otherwise.
dockerd_pid() {
  local pid
  [ -s "$FANOUT_DOCKER_PIDFILE" ] || return 1
  pid=$(cat "$FANOUT_DOCKER_PIDFILE")
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/dockerd ] || return 1
  echo "$pid"
}
