#!/usr/bin/env bash
# Installs the Debian packages sembed needs to build and test, when any is missing.
# Idempotent; uses sudo when not root. Not for the CUDA toolkit (found if present); where nvcc
# is, also CUTLASS's headers from PyPI (scripts/fetch_cutlass.sh).
set -euo pipefail

pkgs=(build-essential cmake pkg-config python3 python3-pip
      libutf8proc-dev libjansson-dev libopenblas-dev libmicrohttpd-dev zlib1g-dev
      clang libclang-rt-dev)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# numpy generates the random-weight test models (scripts/fetch_models.py); any numpy will do
python3 -c "import numpy" 2>/dev/null || missing+=(python3-numpy)
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the CUDA build's Hopper GEMMs (src/cuda/gemm_sm90.cu) need CUTLASS; without it they are left out
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    "$(dirname "$0")/fetch_cutlass.sh" >/dev/null ||
        echo "install-deps: no CUTLASS headers (PyPI unreachable?); the CUDA build goes without them"
fi
