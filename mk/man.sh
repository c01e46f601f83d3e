#!/bin/sh
# mk/man.sh BIN — writes the qwen-edge(1) man page to stdout, made from the program's own --help texts (the
# overview and every command's), so the page says exactly what `qwen-edge <command> --help` says and cannot drift
# from it. Plain sh + sed: no help2man. The help texts are shown as preformatted blocks, which keeps their
# aligned option columns.
set -eu
bin=$1
ver=$("$bin" --version | sed 's/^qwen-edge //')

# roff: a backslash is \e; '-' is \- (else groff prints a hyphen that cannot be pasted into a shell);
# a line starting with . or ' would be a request: \& before it
roff() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

cat <<EOF2
.TH QWEN\\-EDGE 1 "" "qwen\\-edge $ver" "User Commands"
.SH NAME
qwen\\-edge \\- run Qwen2.5 privately on your CPU: chat page, OpenAI\\- and ollama\\-compatible API, terminal chat
.SH SYNOPSIS
.B qwen\\-edge
.I command
.RI [ options ]
.br
.B qwen\\-edge
.I command
.B \\-\\-help
.SH DESCRIPTION
.nf
EOF2
"$bin" --help | roff
echo ".fi"
echo ".SH COMMANDS"
# the command names are the lines "  NAME  summary" after "commands:" in the overview
"$bin" --help | sed -n '/^commands:/,/^$/{s/^  \([a-z][a-z]*\)  .*/\1/p}' | while read -r cmd; do
  help=$("$bin" "$cmd" --help 2>/dev/null) || continue # a command not in this build
  echo ".SS qwen\\-edge $cmd"
  echo ".nf"
  printf '%s\n' "$help" | roff
  echo ".fi"
done
