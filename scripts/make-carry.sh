#!/usr/bin/env bash
# make-carry.sh — fills .carry/ (git-ignored) with what scripts/gpu-check.sh needs on a GPU
# machine without network, for the run tool's `carry: [".carry"]` (64 MiB with the tree):
#   debs/              the C dependencies as Debian packages (unpacked there into a prefix)
#   all-MiniLM-L6-v2/  the tokenizer and config files (no weights: gpu-check makes random ones)
#   cutlass/           the CUTLASS headers that src/cuda/*_sm90.cu include (nvcc -M), ~15 MB
# of the ~28 MB that scripts/fetch_cutlass.sh unpacks
set -euo pipefail
cd "$(dirname "$0")/.."
C=.carry
mkdir -p "$C/debs"
(cd "$C/debs" && apt-get download libutf8proc-dev libutf8proc2 libjansson-dev libjansson4 \
    libopenblas-dev libopenblas0-pthread libopenblas-pthread-dev libopenblas0 libgfortran5 \
    zlib1g-dev libmicrohttpd-dev libmicrohttpd12 pkgconf pkgconf-bin libpkgconf3 pkg-config \
    >/dev/null 2>&1) ||
    { echo "make-carry: apt-get download failed in $C/debs (run apt-get update first?)" >&2; exit 1; }
M=$(python3 scripts/fetch_models.py all-MiniLM-L6-v2 | tail -1)
mkdir -p "$C/all-MiniLM-L6-v2"
for f in 1_Pooling config.json config_sentence_transformers.json modules.json \
         sentence_bert_config.json special_tokens_map.json tokenizer.json tokenizer_config.json vocab.txt; do
    cp -r "$M/$f" "$C/all-MiniLM-L6-v2/"
done
CU=$(scripts/fetch_cutlass.sh)
rm -rf "$C/cutlass"
for src in src/cuda/*_sm90.cu; do
    nvcc -std=c++17 -M -DSEMBED_HAVE_CUTLASS -I"$CU/include" -I"$CU/tools/util/include" -Isrc -Isrc/cuda \
         -Iinclude --expt-relaxed-constexpr -gencode arch=compute_90a,code=sm_90a "$src"
done | tr ' \\' '\n\n' | grep "^$CU/" | sort -u | while read -r f; do
        rel=${f#"$CU"/}
        mkdir -p "$C/cutlass/$(dirname "$rel")"
        cp "$f" "$C/cutlass/$rel"
    done
du -sh "$C"/*
