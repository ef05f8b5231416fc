#!/usr/bin/env bash
# Puts CUTLASS's headers (a header-only library; the nvidia-cutlass wheel on PyPI ships them)
# under ${SEMBED_CUTLASS_CACHE:-~/.cache/sembed/cutlass-VERSION}/{include,tools/util/include}
# for src/cuda/gemm_sm90.cu, and prints that folder. Idempotent; the wheel's SHA-256 is checked.
# install-deps.sh runs it where nvcc is; cuda.cmake finds the folder (or SEMBED_CUTLASS_DIR).
set -euo pipefail
V=4.2.0.0
SHA=f9599ada45c7bcb6bf53f7d3f0a7d154183e53451c01bfa59eecd37dd4a693f6
DEST=${SEMBED_CUTLASS_CACHE:-$HOME/.cache/sembed/cutlass-$V}
if [ -f "$DEST/include/cutlass/cutlass.h" ]; then echo "$DEST"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: "nvidia-cutlass==$V" -d "$tmp" >&2
whl=("$tmp"/nvidia_cutlass-"$V"-*.whl)
echo "$SHA  ${whl[0]}" | sha256sum -c --quiet - >&2 ||
    { echo "fetch_cutlass: ${whl[0]##*/} does not have the expected SHA-256" >&2; exit 1; }
python3 - "${whl[0]}" "$DEST.part" <<'PY'
import os, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
pre = "cutlass_library/source/"
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        rel = n[len(pre):]
        if n.startswith(pre) and (rel.startswith("include/") or rel.startswith("tools/util/include/")) \
                and not n.endswith("/"):
            out = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(n) as src, open(out, "wb") as dst:
                dst.write(src.read())
PY
rm -rf "$DEST"
mv "$DEST.part" "$DEST"
echo "$DEST"
