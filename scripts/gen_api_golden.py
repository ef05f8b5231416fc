#!/usr/bin/env python3
"""gen_api_golden.py — writes tests/golden/api/minilm_variants.json: sentence-transformers'
vectors for variants of all-MiniLM-L6-v2 that exercise the encode options of sembed.h (prompts
by name, literal and default; Pooling include_prompt false; do_lower_case; Matryoshka
dimensions). Not a test; tests/test_encode_api.c reads what it writes and builds the same
variant folders (symlinks to the cached model plus the config files listed in the JSON).

    pip install sentence-transformers torch
    python3 scripts/fetch_models.py all-MiniLM-L6-v2
    python3 scripts/gen_api_golden.py

The JSON holds the texts, and per variant the files that differ from the model's folder and the
cases: encode options, sentence-transformers' n_tokens, and the vectors (base64 of float32,
little-endian, row-major).
"""
import base64
import gzip
import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests/golden/tokenizer/corpus.jsonl.gz")
OUT = os.path.join(ROOT, "tests/golden/api/minilm_variants.json")
CACHE = os.path.expanduser(os.environ.get("SEMBED_MODELS", "~/.cache/sembed/models"))
MODEL = "all-MiniLM-L6-v2"

PROMPTS = json.dumps({"prompts": {"query": "query: ", "passage": "passage: ",
                                  "title": "Title of the document: ", "none": ""},
                      "default_prompt_name": "query"})
POOL_NO_PROMPT = json.dumps({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True,
                             "include_prompt": False})
POOL_MAX_NO_PROMPT = json.dumps({"word_embedding_dimension": 384, "pooling_mode_max_tokens": True,
                                 "include_prompt": False})
POOL_CLS_NO_PROMPT = json.dumps({"word_embedding_dimension": 384, "pooling_mode_cls_token": True,
                                 "include_prompt": False})
LOWER = json.dumps({"max_seq_length": 256, "do_lower_case": True})

# all-MiniLM-L6-v2's BertNormalizer lowercases already, which makes do_lower_case a no-op there;
# the cased variants turn that off, so that the case of the text matters and do_lower_case is
# what restores it: in tokenizer.json's normalizer (fields merged) for sembed, and in
# tokenizer_config.json, from which transformers 5 rebuilds a BertTokenizer's normalizer.
CASED = {"lowercase": False}

# (variant, files, tokenizer.json normalizer fields, cases); a case is the options of
# sembed_encode_opts (None fields omitted)
VARIANTS = [
    ("prompts", {"config_sentence_transformers.json": PROMPTS}, None,
     [{}, {"prompt_name": "passage"}, {"prompt_name": "none"},
      {"prompt": "Represent this sentence for retrieval: "}, {"prompt": ""},
      {"prompt_name": "title", "dimensions": 64}]),
    ("no_include_prompt", {"config_sentence_transformers.json": PROMPTS,
                           "1_Pooling/config.json": POOL_NO_PROMPT}, None,
     [{}, {"prompt_name": "title"}, {"prompt": ""}]),
    ("no_include_prompt_max", {"config_sentence_transformers.json": PROMPTS,
                               "1_Pooling/config.json": POOL_MAX_NO_PROMPT}, None,
     [{}, {"prompt_name": "passage"}]),
    ("no_include_prompt_cls", {"config_sentence_transformers.json": PROMPTS,
                               "1_Pooling/config.json": POOL_CLS_NO_PROMPT}, None,
     [{}, {"prompt": ""}]),
    ("cased_tokenizer", {"tokenizer_config.json": "CASED"}, CASED, [{}]),
    ("lower_case", {"sentence_bert_config.json": LOWER, "tokenizer_config.json": "CASED"}, CASED,
     [{}, {"prompt": "QUERY İN CAPİTALS: "}]),
    ("plain", {}, None, [{"dimensions": 128}, {"dimensions": 7}, {}]),
]

HANDWRITTEN = [
    "",
    "ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ: Ο ΔΡΟΜΟΣ.",           # capital sigma at word ends
    "Hello [CLS] World [SEP] and [MASK]",  # literal special tokens
    "İSTANBUL'DA İYİ BİR GÜN",             # U+0130
    "Straße STRASSE ẞ ǅemal ǈ Ǌ",          # ß, capital sharp s, titlecase digraphs
    "The Quick Brown Fox Jumps Over The Lazy Dog.",
]


def select_corpus(corpus, n=6):
    by_len = sorted(range(len(corpus)), key=lambda i: (len(corpus[i].encode("utf-8")), i))
    picks = [by_len[k * (len(by_len) - 1) // (n - 2)] for k in range(1, n - 2)]
    picks += by_len[-2:]  # beyond max_seq_length: truncated, prompt included
    return [corpus[i] for i in picks]


def build_variant(src, dst, files, normalizer):
    """The folder the test builds too: every file of src linked, the variant's files written,
    tokenizer.json rewritten with `normalizer`'s fields merged into its normalizer."""
    os.makedirs(dst)
    for name in sorted(os.listdir(src)):
        p = os.path.join(src, name)
        if name.startswith("."):
            continue
        if os.path.isdir(p):
            os.makedirs(os.path.join(dst, name))
            for f in sorted(os.listdir(p)):
                os.symlink(os.path.join(p, f), os.path.join(dst, name, f))
        else:
            os.symlink(p, os.path.join(dst, name))
    for rel, text in files.items():
        path = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    if normalizer:
        path = os.path.join(dst, "tokenizer.json")
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        tj["normalizer"].update(normalizer)
        os.unlink(path)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)


def main():
    import numpy as np
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    src = os.path.join(CACHE, MODEL)
    if not os.path.isdir(src):
        sys.exit(f"{src}: not cached (python3 scripts/fetch_models.py {MODEL})")
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        corpus = [json.loads(line) for line in f]
    texts = HANDWRITTEN + select_corpus(corpus)
    with open(os.path.join(src, "tokenizer_config.json"), encoding="utf-8") as f:
        tc = json.load(f)
    tc["do_lower_case"] = False
    cased_tc = json.dumps(tc)
    out = {"model": MODEL, "texts": texts,
           "versions": {"sentence_transformers": sentence_transformers.__version__,
                        "torch": torch.__version__},
           "tolerance": "cosine >= 0.99999 and max abs <= 1e-4 per vector",
           "variants": []}
    tmp = tempfile.mkdtemp(prefix="sembed_api_golden_")
    try:
        for name, files, normalizer, cases in VARIANTS:
            folder = os.path.join(tmp, name)
            files = {k: cased_tc if v == "CASED" else v for k, v in files.items()}
            build_variant(src, folder, files, normalizer)
            model = SentenceTransformer(folder, device="cpu")
            normalizes = any(type(m).__name__ == "Normalize" for m in model)
            v = {"name": name, "files": files, "tokenizer_normalizer": normalizer or {},
                 "cases": []}
            for opts in cases:
                kw = {}
                if "prompt_name" in opts:
                    kw["prompt_name"] = opts["prompt_name"]
                if "prompt" in opts:
                    kw["prompt"] = opts["prompt"]
                if "dimensions" in opts:  # truncate, then normalize again when the model does
                    kw["truncate_dim"] = opts["dimensions"]
                    kw["normalize_embeddings"] = normalizes
                emb = model.encode(texts, batch_size=4, convert_to_numpy=True, **kw)
                emb = np.ascontiguousarray(emb, dtype="<f4")
                # the text each input became, for n_tokens (the prompt as encode picks it)
                prompt = opts.get("prompt")
                if prompt is None:
                    pn = opts.get("prompt_name", model.default_prompt_name)
                    prompt = model.prompts.get(pn, "") if pn else ""
                feats = model.tokenize([prompt + t for t in texts])
                n_tokens = [int(x) for x in feats["attention_mask"].sum(dim=1)]
                v["cases"].append({"opts": opts, "dim": int(emb.shape[1]), "n_tokens": n_tokens,
                                   "vectors": base64.b64encode(emb.tobytes()).decode("ascii")})
                print(f"{name} {opts}: {emb.shape}", file=sys.stderr)
            out["variants"].append(v)
    finally:
        shutil.rmtree(tmp)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
