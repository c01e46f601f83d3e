#!/usr/bin/env bash
# Installs what the build and the tests need, only when it is missing.
#   scripts/deps.sh build   - Debian packages for compiling and running qwen-edge
#   scripts/deps.sh test    - the above, plus chromium and the npm test tools (node_modules/)
# Safe to run again: every step checks first. Needs root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-build}

build_pkgs="build-essential pkg-config libmicrohttpd-dev libjansson-dev libutf8proc-dev libpcre2-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev"
test_pkgs="nodejs npm chromium curl"
# the NEON kernels are tested on x86-64 by cross-building them and running them under qemu-user (mk/arm64.mk)
[ "$(uname -m)" = x86_64 ] && test_pkgs="$test_pkgs gcc-aarch64-linux-gnu qemu-user-static"

missing=()
want=$build_pkgs
[ "$mode" = test ] && want="$want $test_pkgs"
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere (nodesource, nvm): accept any working binaries.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]:-}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || [ -z "$p" ] || tmp+=("$p"); done
  missing=("${tmp[@]:-}")
fi
if [ -n "${missing[*]:-}" ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ]; then
  # npm test tools, pinned by package-lock.json. node-llama-cpp's optional prebuilt packages are large;
  # we take only the linux-x64 CPU one (listed in package.json) and skip its install scripts (no downloads).
  stamp=node_modules/.qwen-edge-stamp
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
    echo "deps: npm install (test tools)"
    npm install --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error
    touch "$stamp"
  fi
fi
