#!/usr/bin/env bash
# test_rust.sh BUILD — the Rust binding (bindings/rust) over BUILD's libsembed.so: cargo test
# (the same bits as BUILD/sembed, prompts, dimensions, tokens, errors) and the examples built and
# run. Cargo writes only under BUILD/rust-target. Exit 77 (skip) without cargo, or without
# all-MiniLM-L6-v2 unless SEMBED_REQUIRE_MODELS=1.
set -euo pipefail
B=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "test_rust: $*" >&2; exit 1; }
if ! command -v cargo >/dev/null; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        PATH=$HOME/.cargo/bin:$PATH
    else
        echo "cargo is not installed: skipping the Rust binding"
        exit 77
    fi
fi
M=${SEMBED_MODELS:-$HOME/.cache/sembed/models}/all-MiniLM-L6-v2
if [ ! -f "$M/config.json" ]; then
    echo "all-MiniLM-L6-v2 is not cached (python3 scripts/fetch_models.py all-MiniLM-L6-v2)"
    [ "${SEMBED_REQUIRE_MODELS:-}" = 1 ] && exit 1 || exit 77
fi
[ -e "$B/libsembed.so" ] || fail "no libsembed.so in $B"
[ -x "$B/sembed" ] || fail "no sembed binary in $B"

export SEMBED_LIB_DIR=$B SEMBED_CLI=$B/sembed CARGO_TARGET_DIR=$B/rust-target
cd "$ROOT/bindings/rust"
cargo test --offline --release || fail "cargo test failed"
cargo build --offline --examples || fail "the examples do not build"
out=$("$CARGO_TARGET_DIR/debug/examples/embed" "$M" "A man is eating." "A man eats bread." "A cat sleeps.") \
    || fail "examples/embed failed"
echo "$out"
echo "$out" | grep -q "^sembed 0\.1\.0, 384 dimensions$" || fail "embed's header"
[ "$(echo "$out" | sed -n 2p | awk '{print $1}')" = "1.0000" ] || fail "the first text's dot product with itself"
# the paraphrase is nearer than the cat
awk 'NR==3{a=$1} NR==4{b=$1} END{exit !(a > b)}' <<<"$out" || fail "dot products out of order"
echo "test_rust: ok"
