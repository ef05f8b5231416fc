#!/usr/bin/env bash
# load_test.sh — the 60 s load test of `sembed serve` on loopback, on a release build: in-process
# baseline, dynamic batching ratio, fixed-rate p50/p99 idle and under bulk, RSS after 10k and
# 100k requests. Usage: bench/load_test.sh [BUILD_DIR] [-- SERVE-OPTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-release}
[ $# -gt 0 ] && shift
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target sembed_cli test_server_load >/dev/null
exec "$BUILD/test_server_load" --full "$@"
