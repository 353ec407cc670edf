#!/usr/bin/env bash
# Make podman run containers on this machine, for the container suites (test/containers-*.test.ts).
# Debian 12, as root; idempotent: installs podman, runc and busybox-static (the test images are
# built FROM scratch around /bin/busybox) only when missing, writes containers.conf beside this
# script to /etc/containers/containers.conf, then checks that `podman run --rm` works and prints
# podman's own words and exits non-zero when it does not.
# Usage: scripts/containers/setup.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

fail() { printf '\n==== containers setup: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root (installs packages and writes /etc/containers)"

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "containers setup: installing ${need[*]}" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" || fail "installing ${need[*]} failed"
fi

# Settings alone are compared: a copy that differs only in comments is left as it is.
settings() { grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$1" 2>/dev/null || true; }
mkdir -p /etc/containers
if [ "$(settings "$here/containers.conf")" != "$(settings /etc/containers/containers.conf)" ]; then
  [ -e /etc/containers/containers.conf ] && cp /etc/containers/containers.conf "/etc/containers/containers.conf.before-fanout"
  cp "$here/containers.conf" /etc/containers/containers.conf
  echo "containers setup: wrote /etc/containers/containers.conf (the previous one, if any, is containers.conf.before-fanout)" >&2
fi

# A throwaway image of busybox alone: nothing can be pulled here, and the check must not depend
# on an image left by someone else.
context=$(mktemp -d)
tag="localhost/fanout-setup-check:$$"
cleanup() {
  podman rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$context"
}
trap cleanup EXIT
cp /bin/busybox "$context/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' > "$context/Containerfile"
if ! said=$(podman build --quiet -t "$tag" "$context" 2>&1); then
  fail "podman build failed: $said"
fi
if ! said=$(podman run --rm --memory 64m "$tag" /bin/busybox echo container-ok 2>&1) || [ "$said" != container-ok ]; then
  fail "podman run --rm failed: $said"
fi
echo "containers setup: podman $(podman version --format '{{.Client.Version}}') runs containers (runtime $(podman info --format '{{.Host.OCIRuntime.Name}}'))" >&2
