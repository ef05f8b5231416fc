#!/usr/bin/env bash
# ab.sh — an A/B on the GPU machine (run tool, carry .carry) of the working tree against another
# revision's version of some files, in one call and alternating (new, old, new). OLD is a folder
# holding the old files at their paths, made here before the call (the tree that travels may
# have no .git), or a revision where the copy has one:
#   mkdir -p .carry/ab-old && git archive f60bf4c src/cuda/attention_sm90.cu | tar -x -C .carry/ab-old
#   bash dev/kernels/ab.sh .carry/ab-old src/cuda/attention_sm90.cu      # run tool, carry .carry
# The old files must build with the rest of the tree. Builds through scripts/gpu-check.sh's build
# step, runs test_cuda_ops on the working tree (AB_NO_TESTS=1: not), then times gpu_bench with
# GPU_BENCH_PROFILE=1 on AB_SHAPES (model:SxL ..., default the base and MiniLM shapes at 128 and
# 32 tokens and base at 512), printing p50 and the per-op ms of AB_OPS (default attention).
set -uo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: ab.sh OLD PATH..." >&2; exit 2; }
REV=$1; shift
source dev/kernels/gpu-env.sh
rm -rf $W/ab-old $W/ab-new
mkdir -p $W/ab-old $W/ab-new
if [ -d "$REV" ]; then
    for f in "$@"; do
        [ -f "$REV/$f" ] || { echo "ab.sh: no $REV/$f" >&2; exit 1; }
        mkdir -p "$W/ab-old/$(dirname "$f")"; cp "$REV/$f" "$W/ab-old/$f"
    done
else
    git archive "$REV" -- "$@" | tar -x -C $W/ab-old || { echo "ab.sh: cannot read $* at $REV" >&2; exit 1; }
fi
for f in "$@"; do mkdir -p "$W/ab-new/$(dirname "$f")"; cp "$f" "$W/ab-new/$f"; done
SHAPES=${AB_SHAPES:-base-random:256x128 base-random:64x512 base-random:1024x32 minilm-random:256x128 minilm-random:1024x32}
for w in $SHAPES; do gpu_ids "${w#*:}"; done
[ -z "${AB_NO_TESTS:-}" ] && { build-gpu/test_cuda_ops 2>&1 | grep -E "FAIL|passed" | tail -3; }
times() { # label
    for w in $SHAPES; do
        m=${w%%:*} sl=${w#*:}
        GPU_BENCH_PROFILE=1 build-gpu/gpu_bench "$M/$m" "$W/ids_$sl.i32" 4 "${sl%x*}" "${sl#*x}" 20 /dev/null x 2>/dev/null |
            AB_LABEL="$1 $m $sl" python3 -c "
import json, os, sys
r = json.loads(sys.stdin.read())
ops = ' '.join(f'{k} {r[\"op_ms\"][k]:.4f}' for k in os.environ.get('AB_OPS', 'attention').split())
print(f'{os.environ[\"AB_LABEL\"]:<36} p50 {r[\"ms_p50\"]:8.3f}  {ops}')"
    done
}
use() { # dir: copy its files over the tree's and rebuild; a failed build ends the run (its
         # times would be the previous build's)
    (cd "$1" && find . -type f) | while read -r f; do cp "$1/$f" "$f"; done
    cmake --build build-gpu -j"$(nproc)" --target gpu_bench >"$W/ab-build.log" 2>&1 ||
        { echo "ab.sh: the build with $1's files failed:"; tail -20 "$W/ab-build.log"; exit 1; }
}
times new
use $W/ab-old; times "old ($REV)"
use $W/ab-new; times new
