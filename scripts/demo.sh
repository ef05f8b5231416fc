#!/usr/bin/env bash
# The main job on the default model, as far as sembed does it today: tokenize a handful of
# sentences (tricky ones included) and show the tokens and their byte offsets.
# Usage: scripts/demo.sh SEMBED_BINARY MODEL_DIR
set -euo pipefail
sembed=$1
model=$2
echo "sembed $("$sembed" version | cut -d' ' -f2) — tokenizer of $(basename "$model")"
echo
"$sembed" tokenize -m "$model" \
    "The quick brown fox jumps over the lazy dog." \
    "Café déjà vu — naïve coöperation in Zürich." \
    "東京は日本の首都です。한국어도 됩니다." \
    "Emoji glued to words: great😀 and a literal [SEP] token." \
    "supercalifragilisticexpialidocious-but-much-longer-than-one-hundred-characters-in-a-single-word-without-any-spaces-at-all" |
python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(" ".join(r["tokens"]))
    print("   ids:", r["ids"][:24], "..." if len(r["ids"]) > 24 else "")
    print()
'
