#!/usr/bin/env python3
"""Emulate candidate fp32-mode weight/activation formats in float64 and compare the vectors
with plain fp32 (sentence-transformers on the same folder), to choose a format before writing
kernels. Each nn.Linear of the encoder is replaced by the format's arithmetic.

  python3 dev/cpu/digits_sim.py ~/.cache/sembed/models/all-MiniLM-L6-v2 [n_texts]

Formats (x: activation row, w: weight row of one output channel):
  split   today's FP32 split: xh·wh + xl·wh (bf16 parts) + INT8X2(x)·int8(wl), 3 bytes/weight
  split1  the same with one int8 digit of x against wl (half the int8 tile products)
  w2x2    w as two int8 digits per output channel (2 bytes), x as INT8X2; q1w1 + (q1w2 + q2w1)/254
  w2x3    the same with a third activation digit; + q3w1/254^2
  w2x2f   w2x2 with the q2w2/254^2 term too
  fp16w   fp16 weights, exact fp32 activations (2 bytes; the precision bound of fp16 storage)
  bf16w   bf16 weights, x hi/lo (2 bytes; shows what bf16 storage alone gives)
"""
import gzip
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bf16(a):
    """Round float64 -> float32 -> bf16 (nearest even), back as float64."""
    t = torch.from_numpy(np.asarray(a, dtype=np.float32)).to(torch.bfloat16).to(torch.float32)
    return t.numpy().astype(np.float64)


def digits(a, n, axis):
    """n int8 digits of a along rows (axis=-1 max): a ~ s*(d1 + d2/254 + ...)."""
    s = np.max(np.abs(a), axis=axis, keepdims=True) / 127.0
    s[s == 0] = 1.0
    out, r, step = [], a.copy(), s
    for i in range(n):
        q = np.clip(np.rint(r / step), -127, 127)
        out.append(q)
        r = r - q * step
        step = step / 254.0
    return out, s


def linear(fmt, x, W, b):
    """x (M, K) float64, W (N, K) float64 -> (M, N)."""
    if fmt in ("split", "split1"):
        wh = bf16(W)
        wl = W - wh
        sl = np.max(np.abs(wl), axis=1, keepdims=True) / 127.0
        sl[sl == 0] = 1.0
        wlq = np.clip(np.rint(wl / sl), -127, 127)
        xh = bf16(x)
        xl = bf16(x - xh)
        (q1, q2), sx = digits(x, 2, -1)
        if fmt == "split1":
            q2 = 0 * q2
        y = (xh + xl) @ wh.T + ((q1 + q2 / 254.0) * sx) @ (wlq * sl).T
        return y + b
    if fmt.startswith("w2"):
        (w1, w2), sw = digits(W, 2, 1)
        nx = 3 if fmt == "w2x3" else 2
        xs, sx = digits(x, nx, -1)
        acc = xs[0] @ w1.T + (xs[0] @ w2.T + xs[1] @ w1.T) / 254.0
        if fmt == "w2x3":
            acc += (xs[2] @ w1.T) / 254.0**2
        if fmt in ("w2x3", "w2x2f"):
            acc += (xs[1] @ w2.T) / 254.0**2
        return acc * sx * sw.T + b
    if fmt == "fp16w":
        return x @ W.astype(np.float16).astype(np.float64).T + b
    if fmt == "bf16w":
        xh = bf16(x)
        return (xh + bf16(x - xh)) @ bf16(W).T + b
    raise ValueError(fmt)


def golden_corpus_sample(n):
    """n texts spread evenly over the golden tokenizer corpus (tests/golden/tokenizer)."""
    texts = []
    with gzip.open(os.path.join(ROOT, "tests/golden/tokenizer/corpus.jsonl.gz"), "rt") as f:
        for line in f:
            v = json.loads(line)
            texts.append(v["text"] if isinstance(v, dict) else v)
    step = max(1, len(texts) // n)
    return texts[::step][:n]


def main():
    folder = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    from sentence_transformers import SentenceTransformer

    texts = golden_corpus_sample(n)
    model = SentenceTransformer(folder, device="cpu")
    ref = model.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)
    enc = model[0].auto_model.encoder
    lins = [m for m in enc.modules() if isinstance(m, torch.nn.Linear)]
    orig = [m.forward for m in lins]
    print("%s: %d texts, %d Linear layers" % (os.path.basename(folder), len(texts), len(lins)))
    fmts = sys.argv[3].split(",") if len(sys.argv) > 3 else ["split", "split1", "w2x2", "w2x2f", "w2x3", "fp16w", "bf16w"]
    for fmt in fmts:
        for m in lins:
            W = m.weight.detach().double().numpy()
            b = m.bias.detach().double().numpy()

            def fwd(x, W=W, b=b, fmt=fmt):
                shp = x.shape
                y = linear(fmt, x.detach().double().reshape(-1, shp[-1]).numpy(), W, b)
                return torch.from_numpy(y.astype(np.float32)).reshape(*shp[:-1], W.shape[0])

            m.forward = fwd
        with torch.no_grad():
            out = model.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)
        d = np.abs(out - ref).max(axis=1)
        cos = (out * ref).sum(axis=1)
        print("  %-6s max abs %.3g (p50 %.3g)  min cos %.9f" % (fmt, d.max(), np.median(d), cos.min()),
              flush=True)
    for m, f in zip(lins, orig):
        m.forward = f


if __name__ == "__main__":
    main()
