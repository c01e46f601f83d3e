#!/usr/bin/env bash
# scripts/fresh-check.sh — runs the README's commands on a machine that has never seen the project: a minimal
# Debian root made with mmdebstrap (a Debian package) in a temp folder, a clean clone of HEAD copied into it, then,
# inside it as root:
#   1. make && build/qwen-edge --help      the build-only path (installs only the build packages)
#   2. make test                           the test path (installs the test packages and npm tools, runs everything)
# Each step's time is printed, and the last lines of its log when it fails. Exit status: 0 only if every step passed.
# It takes many minutes (the test step is the whole of `make test`), so it is not part of `make test`; run it
# before resolving any change to dependencies, the Makefile, mk/ or scripts/.
#
# The root has only Debian's minbase plus what a user needs to *have* the project at all: make and git (the
# README's commands are make targets in a git checkout) and ca-certificates. Everything else must come from the
# project's own files (scripts/deps.sh). Registry traffic here passes a TLS proxy whose CA only the host trusts,
# so the host's CA bundle is copied in (without it npm cannot reach its registry).
#
# Usage: scripts/fresh-check.sh [--keep] [--suite SUITE] [--step build|test|all]
#   --keep   leave the root (printed) for inspection instead of deleting it
#   QE_FRESH_DIR=DIR  where to make the temp folder (default /tmp; needs ~6 GB)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
keep=0
suite=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-bookworm}")
steps=all
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --suite) suite=$2; shift ;;
    --step) steps=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "fresh-check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "fresh-check: needs root (mmdebstrap and chroot)" >&2; exit 2; }
if ! command -v mmdebstrap >/dev/null; then
  echo "fresh-check: installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null || { apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null; } || exit 2
fi

work=$(mktemp -d "${QE_FRESH_DIR:-/tmp}/qe-fresh.XXXXXX")
root=$work/root
mounted=()
cleanup() {
  # anything a test left running inside the root (a server, a browser) would hold its mounts
  for p in /proc/[0-9]*; do [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null; done
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null; done
  # --one-file-system: should an unmount have failed, never walk into the host's /dev or /proc
  if [ "$keep" = 1 ]; then echo "fresh-check: root kept at $root"; else rm -rf --one-file-system "$root"; fi
  echo "fresh-check: logs in $work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=0
t_all=$(date +%s)
# step NAME LOG COMMAND...: runs and times one step; on failure prints the log's last lines.
step() {
  local name=$1 log=$2; shift 2
  local t0=$(date +%s) rc
  echo "== $name"
  "$@" >"$log" 2>&1; rc=$?
  local dt=$(($(date +%s) - t0))
  if [ $rc -eq 0 ]; then
    printf '   ok in %dm%02ds\n' $((dt / 60)) $((dt % 60))
  else
    printf '   FAILED (exit %d) after %dm%02ds; last lines of %s:\n' $rc $((dt / 60)) $((dt % 60)) "$log"
    tail -n 40 "$log" | sed 's/^/   | /'
    failed=1
  fi
  return $rc
}

# A clean environment, as a new login would have, but for the host's CA settings (a TLS proxy's CA is set up
# there, not in a new root; Node's own build reads only NODE_EXTRA_CA_CERTS)
ca_env=()
for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE CURL_CA_BUNDLE; do [ -n "${!v:-}" ] && ca_env+=("$v=${!v}"); done
in_root() { chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 "${ca_env[@]}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "$1"; }

mount_root() {
  mount -t proc proc "$root/proc" && mounted+=("$root/proc")
  mount -t sysfs sys "$root/sys" && mounted+=("$root/sys")
  mount --bind /dev "$root/dev" && mounted+=("$root/dev")
  mount -t devpts devpts "$root/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null && mounted+=("$root/dev/pts")
  mount -t tmpfs shm "$root/dev/shm" && mounted+=("$root/dev/shm")   # Chromium needs a real /dev/shm
  mount -t tmpfs tmp "$root/tmp" -o size=8g && mounted+=("$root/tmp")
}

echo "fresh-check: Debian $suite root in $root; clone of $(git -C "$top" rev-parse --short HEAD)"
[ -z "$(git -C "$top" status --porcelain --untracked-files=no)" ] || \
  echo "fresh-check: note: the work tree has uncommitted changes; only what is committed is checked"

step "mmdebstrap (minbase + make git ca-certificates)" "$work/mmdebstrap.log" \
  mmdebstrap --variant=minbase --include=make,git,ca-certificates "$suite" "$root" || exit 1
# the host's CA bundle (the registry proxy's CA is only trusted there) and its name resolution
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
# a clean clone of what is committed (no build/, no node_modules/, nothing untracked)
git clone -q --no-hardlinks "$top" "$root/root/qwen-edge" || exit 1
mount_root || { echo "fresh-check: cannot mount /proc, /dev ... in the root" >&2; exit 1; }

if [ "$steps" = all ] || [ "$steps" = build ]; then
  step "make (build-only path)" "$work/make.log" in_root 'cd /root/qwen-edge && make' &&
    step "qwen-edge --help" "$work/help.log" in_root 'cd /root/qwen-edge && build/qwen-edge --help'
fi
if [ "$steps" = all ] || [ "$steps" = test ]; then
  step "make test" "$work/test.log" in_root 'cd /root/qwen-edge && CI=true make test' || true
  grep -E '^tests: [0-9]+ passed' "$work/test.log" | tail -1 | sed 's/^/   /'
fi

dt=$(($(date +%s) - t_all))
printf 'fresh-check: %s in %dm%02ds\n' "$([ $failed = 0 ] && echo PASSED || echo FAILED)" $((dt / 60)) $((dt % 60))
exit $failed
