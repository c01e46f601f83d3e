#!/bin/sh
# bench/logit_hashes.sh — one sha256 of the logits per (weight type, kernel set): the check that a refactor of
# the kernels, the packers or the quantisers changed no bit of any result.
#
# For every weight type mkmodel writes (plus the official q4_k_m mix and the every-type "mixed" layout), it makes a
# tiny model with the binary under test (so the encoders are checked too), then for every kernel set this machine
# runs (avx512, avx2, ref) evaluates a fixed 45-token sequence three ways: all at once (prefill, tiles of up to 8
# tokens), in chunks of 5 (partial tiles) and one token at a time (decode), and hashes all the logits written.
# Run it before and after a change and diff the outputs; the model sha256 is printed too (encoder changes).
#
#   usage: bench/logit_hashes.sh [QE_BIN] [WORKDIR]     (defaults: build/qwen-edge, /tmp/qe-logit-hashes)
#   QE_HASH_TYPES / QE_HASH_SETS override the lists (space-separated).
set -eu
BIN=${1:-build/qwen-edge}
DIR=${2:-/tmp/qe-logit-hashes}
mkdir -p "$DIR"
TYPES=${QE_HASH_TYPES:-"f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl q2_k q3_k_m q4_k_m q5_k_m q6_k q4_k_m:official mixed"}
SETS=${QE_HASH_SETS:-"avx512 avx2 ref"}
# a fixed sequence: ordinary text ids and a few chat-template specials
IDS="151644 8948 198 2610 525 264 10950 17847 13 151645 198 151644 872 198 3838 374 279 6722 315 9625 30 \
21927 11 1246 525 498 3351 30 151645 198 151644 77091 198 785 6722 315 9625 374 12095 13 1084 374 3881 369 1181"

for spec in $TYPES; do
    type=${spec%%:*}
    layout=pure
    case $spec in *:*) layout=${spec#*:} ;; esac
    [ "$type" = mixed ] && { type=f16; layout=mixed; }
    model="$DIR/tiny-$type-$layout.gguf"
    "$BIN" mkmodel --shape tiny --type "$type" --layout "$layout" -o "$model" >"$model.log" 2>&1 ||
        { echo "$spec: mkmodel failed:"; cat "$model.log"; exit 1; }
    rm -f "$model.log"
    msum=$(sha256sum "$model" | cut -c1-16)
    for set in $SETS; do
        out="$DIR/logits-$type-$layout-$set"
        : >"$out"
        for chunk in 64 5 1; do
            QE_KERNELS=$set "$BIN" run -m "$model" -t 2 --eval-ids "$IDS" --eval-chunk $chunk \
                --logits-out "$out.part" 2>"$out.err" || { echo "$spec $set: run failed:"; cat "$out.err"; exit 1; }
            # a set this CPU cannot run falls back with a warning: say so instead of hashing another set's numbers
            if grep -q "not available" "$out.err"; then echo "$spec $set: not available on this CPU"; continue 2; fi
            cat "$out.part" >>"$out"
        done
        printf '%-16s %-7s model %s logits %s\n' "$spec" "$set" "$msum" "$(sha256sum "$out" | cut -d' ' -f1)"
        rm -f "$out" "$out.part" "$out.err"
    done
    rm -f "$model"
done
