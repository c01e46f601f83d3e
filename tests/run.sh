#!/usr/bin/env bash
# Runs every test of `make test`: the C unit tests (build/tests/test_*, and on x86-64 the kernel tests built
# for aarch64 under qemu), then the end-to-end tests in
# tests/js/*.test.mjs with node's test runner (they start the real binary, llama.cpp via node-llama-cpp, the
# openai SDK and headless Chromium). Prints one closing line "tests: N passed, N failed".
# QE_TEST_FILTER=regex runs only the matching files, QE_TEST_SKIP=regex leaves the matching ones out (so a new
# file is in unless named). QE_BUILD=dir takes the C unit tests from dir/tests
# (make test-asan: build/asan) instead of build/tests.
set -uo pipefail
cd "$(dirname "$0")/.."
# Node.js 20+ for the test tools: scripts/deps.sh installs one here when the system's is older (Debian 12: 18)
[ -x build/tools/node/bin/node ] && export PATH="$PWD/build/tools/node/bin:$PATH"
export QE_BIN=${QE_BIN:-$PWD/build/qwen-edge}
export QE_TEST_TMP=${QE_TEST_TMP:-$PWD/build/tests/tmp}
build=${QE_BUILD:-build}
mkdir -p "$QE_TEST_TMP"
filter=${QE_TEST_FILTER:-.}
skip=${QE_TEST_SKIP:-}
# wanted NAME: the name passes the filter and is not skipped
wanted() { echo "$1" | grep -Eq "$filter" && { [ -z "$skip" ] || ! echo "$1" | grep -Eq "$skip"; }; }
passed=0; failed=0; failed_files=()

# run_c NAME COMMAND...: one C test binary; its closing line "file: N passed, N failed" is counted.
run_c() {
  local name=$1; shift
  wanted "$name" || return 0
  echo "== $name"
  local out rc line p f
  out=$("$@" 2>&1); rc=$?
  echo "$out"
  line=$(echo "$out" | grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' | tail -1)
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
  [ -n "$line" ] || { p=0; f=1; }
  [ $rc -eq 0 ] || [ "$f" -gt 0 ] || f=1
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failed_files+=("$name")
}

for t in "$build"/tests/test_*; do
  [ -x "$t" ] && run_c "$t" "$t"
done
# The kernel tests cross-built for aarch64 (mk/arm64.mk) run under qemu-user: both NEON sets against the reference
# on qemu's default CPU (dotprod), then as a Cortex-A72 (Raspberry Pi 4: no dotprod; the neon-v80 set alone, and
# an instruction it lacks anywhere in the code would stop the test).
for t in "$build"/arm64/tests/test_*; do
  [ -x "$t" ] || continue
  run_c "$t" timeout 600 qemu-aarch64-static "$t"
  run_c "$t (cortex-a72)" timeout 600 qemu-aarch64-static -cpu cortex-a72 "$t"
done

js=$(for f in tests/js/*.test.mjs; do [ -f "$f" ] && wanted "$f" && echo "$f"; done)
if [ -n "$js" ]; then
  echo "== node --test"
  out_file=$(mktemp)
  node --test --test-concurrency=1 --test-reporter=tap $js 2>&1 | tee "$out_file"
  p=$(grep -E '^# pass [0-9]+' "$out_file" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$out_file" | tail -1 | awk '{print $3}')
  [ -n "$p" ] || p=0; [ -n "$f" ] || f=1
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failed_files+=("node tests")
  rm -f "$out_file"
fi

[ ${#failed_files[@]} -eq 0 ] || echo "failed: ${failed_files[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
