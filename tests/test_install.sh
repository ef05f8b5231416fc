#!/usr/bin/env bash
# test_install.sh BUILD — installs a build into a fresh prefix (cmake --install) and uses it as
# another program would: examples/embed.c compiled and linked through the installed sembed.pc
# against libsembed.so, the installed sembed binary and Python module run on all-MiniLM-L6-v2.
# Exit 77 (skip) without the model, unless SEMBED_REQUIRE_MODELS=1.
set -euo pipefail
B=$(cd "$1" && pwd)
M=${SEMBED_MODELS:-$HOME/.cache/sembed/models}/all-MiniLM-L6-v2
if [ ! -f "$M/config.json" ]; then
    echo "all-MiniLM-L6-v2 is not cached (python3 scripts/fetch_models.py all-MiniLM-L6-v2)"
    [ "${SEMBED_REQUIRE_MODELS:-}" = 1 ] && exit 1 || exit 77
fi
P=$(mktemp -d)
trap 'rm -rf "$P"' EXIT
fail() { echo "test_install: $*" >&2; exit 1; }
cmake --install "$B" --prefix "$P" >"$P/install.log" || fail "cmake --install failed: $(cat "$P/install.log")"
PC=$(dirname "$(find "$P" -name sembed.pc | head -1)")
[ -n "$PC" ] || fail "no sembed.pc under $P"
LIBDIR=$(PKG_CONFIG_PATH=$PC pkg-config --variable=libdir sembed)
[ -f "$P/include/sembed.h" ] || fail "sembed.h not installed"
[ -x "$P/bin/sembed" ] || fail "the sembed binary not installed"
[ -e "$LIBDIR/libsembed.so" ] && [ -f "$LIBDIR/libsembed.a" ] || fail "libsembed.so/.a not in $LIBDIR"
case "$(PKG_CONFIG_PATH=$PC pkg-config --cflags sembed)" in "-I$P/"*) ;; *) fail "sembed.pc's Cflags do not point into $P" ;; esac
# only the public API leaves the shared library
if nm -D --defined-only "$LIBDIR/libsembed.so" | awk '{print $3}' | grep -v '^sembed_[a-z]' | grep -qv '^SEMBED_'; then
    fail "libsembed.so exports more than sembed_*: $(nm -D --defined-only "$LIBDIR/libsembed.so" | grep -v ' sembed_[a-z]' | head -3)"
fi
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror examples/embed.c $(PKG_CONFIG_PATH=$PC pkg-config --cflags --libs sembed) -o "$P/embed"
out=$(LD_LIBRARY_PATH=$LIBDIR "$P/embed" "$M" "A man is eating." "A man eats bread." "A cat sleeps.")
echo "$out"
echo "$out" | grep -q "^sembed 0\.1\.0, 384 dimensions$" || fail "embed's header"
[ "$(echo "$out" | sed -n 2p | awk '{print $1}')" = "1.0000" ] || fail "the first text's cosine to itself"
# the paraphrase is nearer than the cat
awk 'NR==3{a=$1} NR==4{b=$1} END{exit !(a > b)}' <<<"$out" || fail "cosines out of order"
"$P/bin/sembed" embed -m "$M" -d cpu -f raw -o "$P/v.raw" "x" || fail "the installed sembed binary"
[ "$(stat -c %s "$P/v.raw")" = 1536 ] || fail "the installed binary's vector size"
SEMBED_LIB=$LIBDIR/libsembed.so python3 "$P/share/sembed/python/sembed.py" "$M" "a cat" "a dog" | tee "$P/py.log"
grep -q "dim 384" "$P/py.log" || fail "the installed Python module"
echo "test_install: ok"
