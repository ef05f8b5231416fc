#!/usr/bin/env bash
# gpu_serve.sh — `sembed serve` on a GPU machine: builds with CUDA (Release, sm_90), runs the
# scheduler test, then the short load test against `sembed serve --device cuda` (a GPU worker
# beside one CPU worker, routed by the costs measured at start-up) and prints the server's
# /info (the costs) and per-worker batch counts. Random MiniLM-shaped weights (seed 0) with the
# all-MiniLM-L6-v2 tokenizer from .carry, as scripts/gpu-check.sh makes them. Not a benchmark
# of the encoder. Usage: tests/server/gpu_serve.sh (output also under $OUT when set).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
WORK=${WORK:-/tmp/sembed-gpu}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/gpu_serve.log") 2>&1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

if ! pkg-config --exists libutf8proc jansson openblas zlib libmicrohttpd 2>/dev/null; then
    SR=$WORK/sysroot
    for d in .carry/debs/*.deb; do dpkg -x "$d" "$SR"; done
    LIBD=$SR/usr/lib/x86_64-linux-gnu
    ln -sf openblas-pthread/libopenblas.so.0 "$LIBD/libopenblas.so.0"
    ln -sf openblas-pthread/libopenblas.so "$LIBD/libopenblas.so"
    printf 'Name: gnutls\nDescription: stub\nVersion: 3.7.9\nLibs:\nCflags:\n' >"$LIBD/pkgconfig/gnutls.pc"
    export PATH=$SR/usr/bin:$PATH
    export PKG_CONFIG_LIBDIR=$LIBD/pkgconfig:$LIBD/openblas-pthread/pkgconfig:$SR/usr/share/pkgconfig
    export PKG_CONFIG_SYSROOT_DIR=$SR
    export LD_LIBRARY_PATH=$LIBD:$LIBD/openblas-pthread:${LD_LIBRARY_PATH:-}
    export LIBRARY_PATH=$LIBD:$LIBD/openblas-pthread
    export CPATH=$SR/usr/include:$SR/usr/include/x86_64-linux-gnu
fi

B=build-gpu-serve
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DSEMBED_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
      >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j"$(nproc)" --target sembed_cli test_server_load test_server_sched \
      >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
echo "built ($(grep -c warning "$OUT/build.log") warnings)"

MODELS=$WORK/models
if [ ! -f "$MODELS/minilm-random/model.safetensors" ]; then
    mkdir -p "$MODELS"
    python3 bench/gpu_torch.py export "$MODELS/minilm-random" minilm .carry/all-MiniLM-L6-v2
fi
ln -sfn "$MODELS/minilm-random" "$MODELS/all-MiniLM-L6-v2"
export SEMBED_MODELS=$MODELS SEMBED_REQUIRE_MODELS=1

echo "=== test_server_sched (CPU contexts) ==="
$B/test_server_sched 2>&1 | tail -5

echo "=== sembed serve --device cuda: /info and a routed mix ==="
$B/sembed serve -m "$MODELS/all-MiniLM-L6-v2" --port 18080 --device cuda >"$OUT/serve.out" 2>&1 &
PID=$!
for i in $(seq 1 120); do curl -sf localhost:18080/health >/dev/null 2>&1 && break; sleep 0.5; done
head -2 "$OUT/serve.out"
curl -s localhost:18080/info; echo
J='Content-Type: application/json'
curl -s localhost:18080/embed -H "$J" -d '{"inputs":"a GPU query","dimensions":4}'; echo
curl -s localhost:18080/v1/embeddings -H "$J" -d '{"input":[[101,7592,102]],"dimensions":4}' | head -c 300; echo
kill -TERM $PID; wait $PID

echo "=== load test: sembed serve --device cuda (GPU + 1 CPU worker) ==="
$B/test_server_load --duration ${DURATION:-10} --rate ${RATE:-100} --conns 64 ${LOAD_ARGS:-} -- --device cuda 2>&1 | tail -12
echo "=== load test: --device cuda --workers 0 (GPU only) ==="
$B/test_server_load --duration ${DURATION:-10} --rate ${RATE:-100} --conns 64 ${LOAD_ARGS:-} -- --device cuda --workers 0 2>&1 | tail -12
