#!/usr/bin/env bash
# The main job on the default model: embed a handful of sentences, print their cosine
# similarity matrix and each one's nearest neighbour, then show how one tricky sentence is
# tokenized. Usage: scripts/demo.sh SEMBED_BINARY MODEL_DIR
set -euo pipefail
sembed=$1
model=$2
echo "sembed $("$sembed" version | cut -d' ' -f2), model $(basename "$model"), on the CPU"
echo
"$sembed" similarity -m "$model" \
    "A man is eating food." \
    "A man is eating a piece of bread." \
    "The girl is carrying a baby." \
    "A man is riding a horse." \
    "A woman is playing violin." \
    "Two men pushed carts through the woods." \
    "A man is riding a white horse on an enclosed ground." \
    "A monkey is playing drums."
echo
echo "tokens of a tricky sentence (accents, CJK, an emoji glued to a word, a literal [SEP]):"
"$sembed" tokenize -m "$model" "Café déjà vu — 東京 great😀 [SEP] done" |
    python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("  " + " ".join(r["tokens"]))'
