#!/usr/bin/env bash
# gpu-check.sh — the one command run on a GPU machine: names the card, builds sembed for sm_90
# (CMake, Release, -Werror), runs the CUDA tests, compute-sanitizer (memcheck, racecheck) on the
# op tests, and the benchmark against PyTorch fp16 SDPA on the same random weights and ids (then
# `sembed bench --device cuda` and `sembed embed --device cuda` on the mixed corpus), printing a
# short table last. Full results go under $OUT (or ./gpu-out).
#
# Needs: nvcc, cmake, python3 with torch + transformers + safetensors; the C dependencies
# (utf8proc, jansson, openblas, zlib, pkg-config) from the system, or as Debian packages in
# .carry/debs (unpacked into a private prefix); the all-MiniLM-L6-v2 tokenizer files in
# .carry/all-MiniLM-L6-v2 (the weights are generated here, random, seed 0).
#   GPU_CHECK_QUICK=1   fewer repetitions (a smoke run)
#   GPU_CHECK_STEPS     which of build,tests,bindings,sanitize,profile,ncu,bench,pipeline,cli to run
#                       (default: build,tests,bindings,sanitize,bench,pipeline,cli; pipeline: mixed
#                       with the encoder's pipeline settings, alternating; cli: sembed embed's
#                       start-up with and without the GEMM plan on disk, and its rate; bindings: the Python
#                       binding and sembed embed on the GPU; profile: per-op times of sembed and torch,
#                       GEMM choice by heuristic vs timed; ncu: Nsight Compute on sembed's kernels)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
WORK=${WORK:-/tmp/sembed-gpu}
mkdir -p "$WORK"
LOG=$OUT/gpu-check.log
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
step() { echo; echo "=== $* ==="; }

step card
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
nvcc --version | tail -1

# ---- C dependencies ---------------------------------------------------------------------------
if ! pkg-config --exists libutf8proc jansson openblas zlib libmicrohttpd 2>/dev/null; then
    step "unpacking carried Debian packages into $WORK/sysroot"
    for d in .carry/debs/*.deb; do dpkg -x "$d" "$WORK/sysroot"; done
    SR=$WORK/sysroot
    LIBD=$SR/usr/lib/x86_64-linux-gnu
    ln -sf openblas-pthread/libopenblas.so.0 "$LIBD/libopenblas.so.0"
    ln -sf openblas-pthread/libopenblas.so "$LIBD/libopenblas.so"
    # libmicrohttpd.pc names gnutls privately; the library itself is the system's
    printf 'Name: gnutls\nDescription: stub\nVersion: 3.7.9\nLibs:\nCflags:\n' >"$LIBD/pkgconfig/gnutls.pc"
    ldconfig -p | grep -q libgnutls.so.30 || echo "warning: no libgnutls.so.30 here (libmicrohttpd needs it)"
    export PATH=$SR/usr/bin:$PATH
    export PKG_CONFIG_LIBDIR=$LIBD/pkgconfig:$LIBD/openblas-pthread/pkgconfig:$SR/usr/share/pkgconfig
    export PKG_CONFIG_SYSROOT_DIR=$SR
    export LD_LIBRARY_PATH=$LIBD:$LIBD/openblas-pthread:${LD_LIBRARY_PATH:-}
    export LIBRARY_PATH=$LIBD:$LIBD/openblas-pthread
    export CPATH=$SR/usr/include:$SR/usr/include/x86_64-linux-gnu
    pkg-config --modversion libutf8proc jansson openblas zlib libmicrohttpd || echo "pkg-config still fails"
fi

STEPS=${GPU_CHECK_STEPS:-build,tests,bindings,sanitize,bench,pipeline,cli}
has() { [[ ",$STEPS," == *",$1,"* ]]; }
OPS_RC=- ENC_RC=- SAN_RC=" -"

if has build; then
step "build (Release, sm_90; -Werror is for CI: this gcc differs)"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSEMBED_CUDA=ON -DSEMBED_WERROR=OFF \
      -DCMAKE_CUDA_ARCHITECTURES=90 >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
if cmake --build build-gpu -j"$(nproc)" >"$OUT/build.log" 2>&1; then
    echo "build warnings: $(grep -c "warning" "$OUT/build.log")"
else
    grep -E "error|Error" -A3 "$OUT/build.log" | head -60; exit 1
fi
echo "built"
fi

MODELS=$WORK/models
if [ ! -f "$MODELS/base-random/model.safetensors" ]; then
step "random-weight models (seed 0) with the all-MiniLM-L6-v2 tokenizer"
mkdir -p "$MODELS"
python3 bench/gpu_torch.py export "$MODELS/minilm-random" minilm .carry/all-MiniLM-L6-v2
python3 bench/gpu_torch.py export "$MODELS/base-random" base .carry/all-MiniLM-L6-v2
ln -sfn "$MODELS/minilm-random" "$MODELS/all-MiniLM-L6-v2"
fi
touch "$MODELS/minilm-random/.complete" "$MODELS/base-random/.complete"

if has tests; then
step "CUDA tests"
SEMBED_MODELS=$MODELS SEMBED_REQUIRE_MODELS=1 build-gpu/test_cuda_ops 2>&1 | tee "$OUT/test_cuda_ops.log" | tail -60
OPS_RC=${PIPESTATUS[0]}
SEMBED_MODELS=$MODELS SEMBED_REQUIRE_MODELS=1 build-gpu/test_cuda_encode 2>&1 | tee "$OUT/test_cuda_encode.log"
ENC_RC=${PIPESTATUS[0]}
# parity with sentence-transformers fp32 on the golden texts, computed here on the same folders
ST_RC=""
for mdl in minilm-random base-random; do
    python3 bench/gpu_torch.py st-ref "$MODELS/$mdl" tests/golden/tokenizer/corpus.jsonl.gz \
        tests/golden/embed/all-MiniLM-L6-v2.meta.json "$WORK/st-$mdl" 2>&1 | grep -v "Loading weights\|Batches"
    SEMBED_CUDA_ST_MODEL=$MODELS/$mdl SEMBED_CUDA_ST_REF=$WORK/st-$mdl build-gpu/test_cuda_st 2>&1 | tee -a "$OUT/test_cuda_st.log"
    ST_RC="$ST_RC $mdl=${PIPESTATUS[0]}"
done
ENC_RC="$ENC_RC, test_cuda_st$ST_RC"
echo "test_cuda_ops rc=$OPS_RC test_cuda_encode rc=$ENC_RC"
fi

BIND_RC=-
if has bindings; then
step "the library as programs use it on the GPU: the Python binding and sembed embed -d cuda/auto"
python3 tests/gpu_bindings.py build-gpu "$MODELS/minilm-random" 2>&1 | tee "$OUT/gpu_bindings.log"
BIND_RC=${PIPESTATUS[0]}
fi

if has sanitize; then
step "compute-sanitizer on the op tests (SEMBED_TEST_QUICK=1: the large shapes left out)"
SAN_RC=""
for tool in memcheck racecheck; do
    # GEMM algorithms by the heuristic (timing every candidate under the sanitizer is slow and
    # checks cuBLASLt, not sembed); racecheck leaves cuBLASLt's nvjet kernels out where it can
    excl=() skip=
    [ $tool = racecheck ] && excl=(--kernel-name-exclude kns=nvjet) skip=1
    SEMBED_TEST_SKIP_GEMM=$skip SEMBED_CUDA_GEMM=heuristic SEMBED_TEST_QUICK=1 compute-sanitizer --tool $tool "${excl[@]}" --error-exitcode 9 \
        stdbuf -oL build-gpu/test_cuda_ops >"$OUT/sanitizer-$tool.log" 2>&1
    rc=$?
    if [ ${#excl[@]} -gt 0 ] && grep -qi "unrecognized\|unknown option\|invalid option" "$OUT/sanitizer-$tool.log"; then
        SEMBED_TEST_SKIP_GEMM=$skip SEMBED_CUDA_GEMM=heuristic SEMBED_TEST_QUICK=1 compute-sanitizer --tool $tool --error-exitcode 9 \
            stdbuf -oL build-gpu/test_cuda_ops >"$OUT/sanitizer-$tool.log" 2>&1
        rc=$?
    fi
    tail -3 "$OUT/sanitizer-$tool.log" | sed 's/^/  /'
    echo "compute-sanitizer $tool: rc=$rc; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer-$tool.log" | tail -1)"
    # racecheck flags cuBLASLt's own Hopper GEMM kernels (nvjet_*, TMA/mbarrier pipelines);
    # what counts for sembed is a hazard in its kernels, CUTLASS's among them (gemm_sm90.cu:
    # their names hold its GeluOnF16)
    ours=$(grep -E "Race reported|Invalid|Error:" "$OUT/sanitizer-$tool.log" |
           awk '!/nvjet_|xmma/ && (/GeluOnF16/ || !/cutlass/)' | wc -l)
    echo "  reports outside cuBLASLt's kernels: $ours"
    SAN_RC="$SAN_RC $tool=$rc(ours:$ours)"
done
# the encoder's pipeline (two batches in flight, pinned buffers, events, graphs) under memcheck
SEMBED_CUDA_GEMM=heuristic SEMBED_MODELS=$MODELS SEMBED_REQUIRE_MODELS=1 compute-sanitizer --tool memcheck \
    --error-exitcode 9 stdbuf -oL build-gpu/test_cuda_encode >"$OUT/sanitizer-memcheck-encode.log" 2>&1
rc=$?
tail -3 "$OUT/sanitizer-memcheck-encode.log" | sed 's/^/  /'
echo "compute-sanitizer memcheck, test_cuda_encode: rc=$rc; $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer-memcheck-encode.log" | tail -1)"
SAN_RC="$SAN_RC memcheck-encode=$rc"
fi

if has pipeline; then
step "mixed, the pipeline: SEMBED_CUDA_OVERLAP=0 (chunks one after the other), 1 (the next chunk tokenized beside one batch), 2 (the default: two batches in flight, batches across chunks), alternating"
for model in minilm-random base-random; do
    for ov in 0 1 2 0 1 2; do
        echo "$model SEMBED_CUDA_OVERLAP=$ov: $(SEMBED_CUDA_OVERLAP=$ov build-gpu/sembed bench -m "$MODELS/$model" -d cuda \
            -t "$(nproc)" -s 0.2 -b 1 --mixed -o /dev/null 2>&1 | grep "^mixed")"
    done
done | tee "$OUT/pipeline.txt"
fi

if has profile; then
step "per-op profile: sembed (an event after each op), GEMM algorithms by heuristic vs timed; torch.profiler"
PRO=$OUT/profile.jsonl
: >"$PRO"
PW=()
prof() { # label model S L reps
    local ids=$WORK/ids_$3x$4.i32
    [ -f "$ids" ] || python3 bench/gpu_torch.py ids "$ids" 4 "$3" "$4" 7
    SEMBED_CUDA_GEMM=heuristic GPU_BENCH_PROFILE=1 build-gpu/gpu_bench "$MODELS/$2" "$ids" 4 "$3" "$4" "$5" /dev/null "$1/heuristic" >>"$PRO"
    SEMBED_CUDA_GEMM_VERBOSE=1 GPU_BENCH_PROFILE=1 build-gpu/gpu_bench "$MODELS/$2" "$ids" 4 "$3" "$4" "$5" /dev/null "$1/timed" >>"$PRO" 2>>"$OUT/gemm-candidates.log"
    GPU_BENCH_GRAPHS=0 build-gpu/gpu_bench "$MODELS/$2" "$ids" 4 "$3" "$4" "$5" /dev/null "$1/timed-nographs" >>"$PRO"
    PW+=("$1:$MODELS/$2:$ids:4:$3:$4")
}
prof fixed-minilm-256x128 minilm-random 256 128 30
prof fixed-base-256x128 base-random 256 128 30
prof fixed-base-64x512 base-random 64 512 30
prof query-minilm-1x16 minilm-random 1 16 500
prof query-base-1x16 base-random 1 16 500
python3 - "$PRO" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ops = list(next(r for r in rows if "op_ms" in r)["op_ms"])
print(f"{'workload':<38}{'p50':>8}" + "".join(f"{o[:9]:>10}" for o in ops))
for r in rows:
    print(f"{r['workload']:<38}{r['ms_p50']:>8.3f}" + "".join(f"{r.get('op_ms', {}).get(o, float('nan')):>10.3f}" for o in ops))
PY
python3 bench/gpu_torch.py profile "${PW[@]:0:3}" >"$OUT/torch-profile.txt" 2>&1 || tail -5 "$OUT/torch-profile.txt"
grep -E "^---|Self CUDA time total" "$OUT/torch-profile.txt"
fi

if has ncu; then
step "ncu: sembed's own kernels (attention, act, add_ln) on fixed-base-64x512 and fixed-minilm-256x128"
for w in "base-random 64 512" "minilm-random 256 128"; do
    set -- $w
    ids=$WORK/ids_$2x$3.i32
    [ -f "$ids" ] || python3 bench/gpu_torch.py ids "$ids" 4 "$2" "$3" 7
    ncu --kernel-name regex:'attention_kernel|act_f16|add_ln' --launch-skip 40 --launch-count 3 \
        --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats \
        build-gpu/gpu_bench "$MODELS/$1" "$ids" 4 "$2" "$3" 3 /dev/null "ncu-$1" >>"$OUT/ncu.txt" 2>&1
    echo "ncu $1 $2x$3: rc=$?"
done
grep -E "attention_kernel|act_f16|add_ln|Duration|Memory Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per|Stall|Theoretical Occupancy" "$OUT/ncu.txt" | head -60
fi

if has cli; then
step "sembed embed --device cuda: the command line on the mixed corpus, start-up apart"
# start-up with no GEMM plan on disk (timed), then with the plan read back; phases from
# SEMBED_CUDA_VERBOSE in cli.log
# the corpus ten times over (120,000 texts), so that the rate is the steady state's
for i in 1 2 3 4 5 6 7 8 9 10; do zcat bench/corpus/mixed.jsonl.gz; done >"$WORK/mixed.jsonl"
NM=$(wc -l <"$WORK/mixed.jsonl")
export SEMBED_CACHE_DIR=$WORK/cache
rm -rf "$SEMBED_CACHE_DIR"
msecs() { # runs the command; prints its wall time in ms and its exit status
    local s e rc
    s=$(date +%s%N)
    "$@" >/dev/null 2>>"$OUT/cli.log"
    rc=$?
    e=$(date +%s%N)
    echo "$(( (e - s) / 1000000 )) $rc"
}
CLI=(build-gpu/sembed embed -m "$MODELS/minilm-random" -d cuda --no-progress)
echo "--- one text, no plan on disk" >>"$OUT/cli.log"
read -r T0 RC0 < <(SEMBED_CUDA_VERBOSE=1 msecs "${CLI[@]}" -f raw -o "$WORK/one.raw" "one text")
echo "--- one text, the plan read back" >>"$OUT/cli.log"
read -r T1 RC1 < <(SEMBED_CUDA_VERBOSE=1 msecs "${CLI[@]}" -f raw -o "$WORK/one.raw" "one text")
echo "--- one text, heuristic plan (nothing timed)" >>"$OUT/cli.log"
read -r TH RCH < <(SEMBED_CUDA_GEMM=heuristic SEMBED_CUDA_VERBOSE=1 msecs "${CLI[@]}" -f raw -o "$WORK/one.raw" "one text")
echo "start-up (one text): no plan on disk $T0 ms (rc $RC0), plan read back $T1 ms (rc $RC1), heuristic plan $TH ms (rc $RCH)" |
    tee -a "$OUT/cli.txt"
grep "start-up" "$OUT/cli.log" | head -40
# the device brought up while the model loads (default) or after it, alternating
for w in 0 1 0 1 0 1; do
    echo "--- one text, SEMBED_DEVICE_WARM=$w" >>"$OUT/cli.log"
    read -r TW RCW < <(SEMBED_DEVICE_WARM=$w SEMBED_CUDA_VERBOSE=1 msecs "${CLI[@]}" -f raw -o "$WORK/one.raw" "one text")
    echo "start-up (one text, plan read back), SEMBED_DEVICE_WARM=$w: $TW ms (rc $RCW); $(grep 'sembed start-up' "$OUT/cli.log" | tail -1)" |
        tee -a "$OUT/cli.txt"
done
for f in raw jsonl raw jsonl; do
    read -r TF RCF < <(msecs "${CLI[@]}" --jsonl -i "$WORK/mixed.jsonl" -f "$f" -o "$WORK/cli.$f")
    echo "embed -d cuda -f $f: $NM texts in $TF ms (rc $RCF); one text (start-up) $T1 ms: $(( NM * 1000 / ( TF > T1 ? TF - T1 : 1 ) )) texts/s after start-up" |
        tee -a "$OUT/cli.txt"
done
# the input read while a batch encodes (default) or not, alternating
for ra in 0 1 0 1; do
    read -r TF RCF < <(SEMBED_READ_AHEAD=$ra msecs "${CLI[@]}" --jsonl -i "$WORK/mixed.jsonl" -f raw -o "$WORK/cli.raw")
    echo "embed -d cuda -f raw, SEMBED_READ_AHEAD=$ra: $NM texts in $TF ms (rc $RCF)" | tee -a "$OUT/cli.txt"
done
unset SEMBED_CACHE_DIR
fi

if has bench; then
step "benchmark: sembed CUDA vs PyTorch fp16 SDPA (same weights, same ids)"
Q=${GPU_CHECK_QUICK:-0}
R_BIG=$([ "$Q" = 1 ] && echo 10 || echo 50)
R_Q=$([ "$Q" = 1 ] && echo 100 || echo 1000)
RES=$OUT/sembed.jsonl
: >"$RES"
WL=()
run() { # label model S L reps
    local ids=$WORK/ids_$3x$4.i32 vec=$WORK/vec_$1.f32
    [ -f "$ids" ] || python3 bench/gpu_torch.py ids "$ids" 4 "$3" "$4" 7
    build-gpu/gpu_bench "$MODELS/$2" "$ids" 4 "$3" "$4" "$5" "$vec" "$1" | tee -a "$RES"
    WL+=("$1:$MODELS/$2:$ids:4:$3:$4:$5:$vec")
}
run fixed-minilm-256x128 minilm-random 256 128 $R_BIG
run fixed-base-256x128 base-random 256 128 $R_BIG
run fixed-base-64x512 base-random 64 512 $R_BIG
run query-minilm-1x16 minilm-random 1 16 $R_Q
run query-base-1x16 base-random 1 16 $R_Q

step "sembed bench --device cuda: batches (CPU vs GPU), mixed and query vs sentence-transformers fp16"
BSECS=$([ "$Q" = 1 ] && echo 0.5 || echo 2)
build-gpu/sembed bench -m "$MODELS/minilm-random" -d cuda -t "$(nproc)" -s "$BSECS" --mixed --query \
    --peer --plot "$OUT/batches.png" -o "$OUT/gpu.json" 2>&1 | grep -v "Loading weights\|Batches:"
step "mixed with the BERT-base shape vs sentence-transformers fp16"
build-gpu/sembed bench -m "$MODELS/base-random" -d cuda -t "$(nproc)" -s 0.2 -b 1 --mixed \
    --peer -o "$OUT/gpu-base.json" 2>&1 | grep -E "mixed|sentence-transformers"

fi

if has bench; then
step "summary"
echo "tests: test_cuda_ops rc=$OPS_RC, test_cuda_encode rc=$ENC_RC, gpu_bindings rc=$BIND_RC; sanitizer:$SAN_RC"
GPU_JSON=$OUT/gpu.json python3 bench/gpu_torch.py peer "$RES" "$OUT/results.json" "${WL[@]}"
else
echo "tests: test_cuda_ops rc=$OPS_RC, test_cuda_encode rc=$ENC_RC, gpu_bindings rc=$BIND_RC; sanitizer:$SAN_RC"
fi

# what comes back from a run tool is at most 8 files: the logs beside the results go in one tarball
( cd "$OUT" && ls | grep -Ev '^(gpu-check.log|results.json|gpu.json|batches.png|profile.jsonl|gemm-candidates.log|logs.tgz)$' \
    | tar czf logs.tgz -T - 2>/dev/null && ls | grep -Ev '^(gpu-check.log|results.json|gpu.json|batches.png|profile.jsonl|gemm-candidates.log|logs.tgz)$' | xargs -r rm -f ) || true
