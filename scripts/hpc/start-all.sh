#!/usr/bin/env bash
# Install (if needed) and start a single-node SLURM and a single-node Grid Engine on this machine,
# for the test suites that drive them. Debian 12, as root, no systemd; a clean container with
# only node/npm/apt is enough. Exits non-zero, with the daemons' last log lines, if either
# scheduler cannot be brought up.
# Usage: scripts/hpc/start-all.sh
# Clients need no environment for SLURM; for Grid Engine Debian's /usr/bin/q* wrappers read
# /etc/default/gridengine (SGE_ROOT=/var/lib/gridengine SGE_CELL=default), so none either.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

banner() { printf '\n==== start-all: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  banner "must run as root (installs packages and starts daemons)"
  exit 1
fi

t0=$(date +%s)
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v qsub >/dev/null 2>&1; then
  apt-get update
fi
HPC_SKIP_APT_UPDATE=1 "$here/slurm.sh" install || { banner "FAILED: installing SLURM"; exit 1; }
HPC_SKIP_APT_UPDATE=1 "$here/sge.sh" install || { banner "FAILED: installing Grid Engine"; exit 1; }
t1=$(date +%s)
echo "start-all: packages ready after $((t1 - t0)) s" >&2

failed=()
"$here/slurm.sh" start || failed+=(SLURM)
"$here/sge.sh" start || failed+=("Grid Engine")
if [ ${#failed[@]} -eq 0 ]; then
  "$here/slurm.sh" status || failed+=(SLURM)
  "$here/sge.sh" status || failed+=("Grid Engine")
fi
if [ ${#failed[@]} -gt 0 ]; then
  banner "FAILED to start: ${failed[*]} (the reasons are in the log lines printed above)"
  exit 1
fi
echo "start-all: SLURM and Grid Engine running after $(($(date +%s) - t0)) s" >&2
