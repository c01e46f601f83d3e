#!/bin/sh
# mk/web-npm.sh DIR — installs the page's three libraries (marked, dompurify, highlight.js) at the exact
# versions package.json pins into DIR/node_modules, for a `make` without `scripts/deps.sh test` (which
# installs them with everything else into ./node_modules). Never fails the build: without npm or network
# the page is built without them (see mk/web-embed.sh).
dir=$1
command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || { echo "web: npm not found, page without markdown libraries" >&2; exit 0; }
pkgs=$(node -e 'const d=require("./package.json").dependencies;console.log(["marked","dompurify","highlight.js"].map(p=>p+"@"+d[p]).join(" "))') || exit 0
mkdir -p "$dir"
echo "web: npm install $pkgs (into $dir)"
npm install --prefix "$dir" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund --loglevel=error $pkgs >&2 || echo "web: npm install failed, page without markdown libraries" >&2
exit 0
