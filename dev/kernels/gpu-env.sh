# gpu-env.sh — sourced from the repository's root by exp.sh and ab.sh on the GPU machine: builds
# through scripts/gpu-check.sh's build step (exits with its log's tail when that fails), puts the
# libraries gpu-check.sh unpacked from .carry on the loader's path, and sets W (scratch) and M
# (the random-weight models it made). gpu_ids SxL... writes the token ids gpu_bench reads for
# those shapes ($W/ids_SxL.i32, 4 sets, seed 7), once.
W=/tmp/sembed-gpu M=/tmp/sembed-gpu/models
mkdir -p "$W"
GPU_CHECK_STEPS=build OUT=$W/check bash scripts/gpu-check.sh >"$W/build-step.log" 2>&1
grep -q "^built" "$W/build-step.log" || { tail -40 "$W/build-step.log"; exit 1; }
LIBD=$W/sysroot/usr/lib/x86_64-linux-gnu # gpu-check.sh's carried libraries, if it unpacked them
[ -d "$LIBD" ] && export LD_LIBRARY_PATH=$LIBD:$LIBD/openblas-pthread:${LD_LIBRARY_PATH:-}
gpu_ids() {
    local sl
    for sl in "$@"; do
        [ -f "$W/ids_$sl.i32" ] || python3 bench/gpu_torch.py ids "$W/ids_$sl.i32" 4 "${sl%x*}" "${sl#*x}" 7
    done
}
