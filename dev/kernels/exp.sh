#!/usr/bin/env bash
# exp.sh — a short experiment on the GPU machine (run tool, carry .carry): builds through
# scripts/gpu-check.sh's build step, runs the CUDA tests, then times sembed alone on the query and
# fixed workloads under each setting given as an argument (an env assignment list, "-" for none):
#   bash dev/kernels/exp.sh - SEMBED_CUDA_GEMM_SMALL=0
# EXP_NCU=REGEX adds, per setting, Nsight Compute on the kernels matching REGEX (fixed-minilm
# and fixed-base 256x128: speed of light, occupancy, warp stall reasons, pipe utilization) into
# $OUT/ncu.txt: EXP_NCU_SKIP (default 12) launches of them skipped, EXP_NCU_COUNT (1) profiled.
# EXP_SHAPES="SxL ..." adds those shapes for both models (e.g. 1024x32 512x64: the lengths of
# mixed's passages); EXP_MIXED=1 adds `sembed bench --mixed` (sembed alone) for both models.
# EXP_CLOCKS=1 samples the SM clock, the power draw and the clock event reasons every 20 ms while
# each run goes (nvidia-smi) and prints after its line their median and extremes, how many samples
# ran under the power cap (reason 0x4), then the median of each tenth of the run: is a kernel
# slower under the cap?
# A dev tool, not the benchmark of record (that is scripts/gpu-check.sh, with the peers).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export OUT
source dev/kernels/gpu-env.sh
gpu_ids 1x16 256x128 64x512 ${EXP_SHAPES:-}
if [ -z "${EXP_NO_TESTS:-}" ]; then
    build-gpu/test_cuda_ops >"$OUT/ops.log" 2>&1; echo "test_cuda_ops rc=$?"
    grep -E "gemm rows|FAIL" "$OUT/ops.log"; tail -1 "$OUT/ops.log"
    SEMBED_MODELS=$M SEMBED_REQUIRE_MODELS=1 build-gpu/test_cuda_encode >"$OUT/enc.log" 2>&1
    echo "test_cuda_encode rc=$?"; grep -E "FAIL|differ|invarian" "$OUT/enc.log" | head; tail -1 "$OUT/enc.log"
fi
b() { # label model S L reps
    local smi=
    if [ -n "${EXP_CLOCKS:-}" ]; then
        nvidia-smi --query-gpu=clocks.sm,power.draw,clocks_event_reasons.active --format=csv,noheader,nounits -lms 20 >"$W/smi.csv" 2>/dev/null &
        smi=$!
    fi
    build-gpu/gpu_bench "$M/$2" "$W/ids_$3x$4.i32" 4 "$3" "$4" "$5" /dev/null "$1" 2>>"$OUT/verbose.log" |
        python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(f\"{r['workload']:<40}{r['ms_p50']:9.4f}{r['ms_p99']:9.4f} {r['device']}\", ' '.join(f'{k}={v:.4f}' for k, v in r.get('op_ms', {}).items()))"
    if [ -n "$smi" ]; then
        kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
        python3 -c "
import statistics
rows = []
for line in open('$W/smi.csv'):
    try:
        c, w, why = line.split(',')
        rows.append((float(c), float(w), int(why, 16)))  # [N/A] and torn lines dropped
    except ValueError:
        pass
if not rows:
    print('    no samples')
else:
    c, w = [r[0] for r in rows], [r[1] for r in rows]
    cap = sum(1 for r in rows if r[2] & 4)  # clocks_event_reasons: 0x4 is the SW power cap
    print(f'    clocks {statistics.median(c):.0f} MHz (min {min(c):.0f}), power {statistics.median(w):.0f} W (max {max(w):.0f}), {len(rows)} samples, {cap} under the power cap')
    if len(rows) >= 10:  # the run's course in tenths: does the clock fall as it goes?
        n = len(rows)
        print('    by tenth: ' + ' '.join(f'{statistics.median(c[i*n//10:(i+1)*n//10]):.0f}/{statistics.median(w[i*n//10:(i+1)*n//10]):.0f}W' for i in range(10)))"
    fi
}
for setting in "$@"; do
    echo "--- $setting" | tee -a "$OUT/verbose.log"
    env_args=()
    [ "$setting" != "-" ] && read -r -a env_args <<<"$setting"
    (
        [ ${#env_args[@]} -gt 0 ] && export "${env_args[@]}"
        b "query-minilm-1x16 $setting" minilm-random 1 16 1000
        b "query-minilm-1x16 $setting" minilm-random 1 16 1000
        b "query-base-1x16 $setting" base-random 1 16 1000
        [ -z "${EXP_NO_FIXED:-}" ] && b "fixed-minilm-256x128 $setting" minilm-random 256 128 30
        [ -z "${EXP_NO_FIXED:-}" ] && b "fixed-base-256x128 $setting" base-random 256 128 20
        [ -z "${EXP_NO_FIXED:-}" ] && b "fixed-base-64x512 $setting" base-random 64 512 20
        for sl in ${EXP_SHAPES:-}; do
            b "fixed-minilm-$sl $setting" minilm-random "${sl%x*}" "${sl#*x}" 30
            b "fixed-base-$sl $setting" base-random "${sl%x*}" "${sl#*x}" 20
        done
        if [ -n "${EXP_MIXED:-}" ]; then
            for mm in minilm-random base-random base-random; do
                echo "mixed $mm $setting: $(build-gpu/sembed bench -m "$M/$mm" -d cuda -t "$(nproc)" -s 0.2 -b 1 \
                    --mixed -o /dev/null 2>&1 | grep "^mixed")"
            done
        fi
    )
done
if [ -n "${EXP_NCU:-}" ] && command -v ncu >/dev/null; then
    for setting in "$@"; do
        env_args=()
        [ "$setting" != "-" ] && read -r -a env_args <<<"$setting"
        for w in "minilm-random 256 128" "base-random 256 128"; do
            set -- $w
            echo "=== ncu $setting $1 $2x$3" >>"$OUT/ncu.txt"
            env "${env_args[@]}" ncu --kernel-name "regex:$EXP_NCU" --launch-skip "${EXP_NCU_SKIP:-12}" \
                --launch-count "${EXP_NCU_COUNT:-1}" \
                --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats \
                --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,regex:sm__inst_executed_pipe_.*\.avg\.pct_of_peak_sustained_active,regex:sm__pipe_.*_cycles_active\.avg\.pct_of_peak_sustained_active' \
                build-gpu/gpu_bench "$M/$1" "$W/ids_$2x$3.i32" 4 "$2" "$3" 2 /dev/null ncu >>"$OUT/ncu.txt" 2>&1
        done
    done
    grep -E "^=== ncu|^  [a-zA-Z_].*\(|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Compute \(SM\) Thr|Memory Thr|Stall|Warp Cycles Per Issued|Block Limit|stalled_|pipe_" "$OUT/ncu.txt" |
        awk '!/stalled_|pipe_/ || $NF+0 >= 3' | cut -c1-160 | head -400
fi
