#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a bounded time on its committed corpus.
# Usage: scripts/run-fuzzers.sh BUILD_DIR SECONDS_EACH. Fails on the first finding; crash
# inputs are kept under fuzz/artifacts/. The corpus itself is not modified (new inputs go to
# a scratch folder).
set -euo pipefail
build=$1
secs=$2
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/fuzz/artifacts"
status=0
for bin in "$build"/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    scratch=$(mktemp -d)
    seeds="$root/fuzz/corpus/$name"
    [ -d "$seeds" ] || seeds=""
    echo "fuzz: $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$root/fuzz/artifacts/$name-" "$scratch" $seeds >"$scratch.log" 2>&1; then
        echo "fuzz: $name FOUND A PROBLEM:"
        tail -n 60 "$scratch.log"
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$scratch.log" | sed "s/^/fuzz: $name: /"
    fi
    rm -rf "$scratch" "$scratch.log"
done
exit $status
