#!/usr/bin/env python3
"""Emulate int8-mode formats in float64 inside sentence-transformers and compare the vectors
with plain fp32 on the golden corpus, to choose a format before writing kernels. Each nn.Linear
of the encoder is replaced by the format's arithmetic (weights int8 per output channel, as
sembed's int8 mode; activations quantized per row at run time).

  python3 dev/cpu/int8_sim.py MODEL_DIR [n_texts [formats]]

Formats:
  x2      today's int8 mode: activations in two int8 digits (INT8X2) for qkv, FFN in and FFN out,
          one digit for attention out
  x1      one digit everywhere
  sqA     SmoothQuant (Xiao et al. 2022) with alpha A (e.g. sq0.5): per input channel k,
          s_k = max|x_k|^A / max|W_k|^(1-A) from calibration texts (bench/corpus/mixed.jsonl.gz,
          the first 64; not the evaluated texts); x/s in one digit, W·s in int8
  sqA+x2  SmoothQuant, and INT8X2 where x2 has it
  Env: SIM_ATT_BF16=1 rounds q, k and v to bf16 (attention on bf16 dot products);
  SQ_POW2=1 rounds s to powers of two; SQ_NCAL=N calibrates on N texts (64); SQ_WORST=1
  prints the three worst texts; SQ_TEXTFILE=F evaluates the texts of a JSON list instead.
  F:dddd  format F with the digits per GEMM given (qkv, attention out, FFN in, FFN out), e.g.
          sq0.5:1112 (INT8X2 for FFN out only); a: one uint8 digit with a zero point per row;
          e: per row, the uint8 digit where its relative L2 error is <= SIM_TAU (0.01), else
          INT8X2 (the share of rows that take two digits is printed per GEMM)
          o: e on the input without its SIM_NOUT (8) largest channels (by calibration max |x|,
          or with SIM_OSEL=ln by SIM_OC·|gamma| + |beta| of the LayerNorm before), which stay
          exact (an fp32 side product)
          p: e on each row without its own outlier channels (|x| > SIM_THETA (6) times the row's
          rms), which stay exact: today's INT8A at SIM_THETA=4
"""
import gzip
import json
import os
import sys

import numpy as np
import torch

from digits_sim import golden_corpus_sample  # the same evaluation texts (dev/cpu/digits_sim.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def quant_rows(a, ndig):
    """a (M, K) -> its value after ndig int8 digits per row (the reference's quantize_row(2))."""
    amax = np.max(np.abs(a), axis=-1, keepdims=True)
    amax[amax == 0] = 1.0
    s = amax / 127.0
    q = np.rint(a / s)
    out = q * s
    if ndig == 2:
        s2 = amax / 32258.0
        q2 = np.clip(np.rint((a - q * s) / s2), -127, 127)
        out = out + q2 * s2
    return out


def quant_rows_asym(a):
    """a (M, K) -> its value after one uint8 digit per row with a zero point (vpdpbusd's u8)."""
    lo = np.minimum(a.min(axis=-1, keepdims=True), 0)
    hi = np.maximum(a.max(axis=-1, keepdims=True), 0)
    s = (hi - lo) / 255.0
    s[s == 0] = 1.0
    z = np.rint(-lo / s)
    u = np.clip(np.rint(a / s) + z, 0, 255)
    return (u - z) * s


EXACT = {}  # which -> mean exact channels per row (digit p)
ROWS = {}  # which -> [rows, rows with two digits] for the e digit


def quant_rows_adaptive(a, which):
    """e: the uint8 digit for rows whose relative error is small enough, else INT8X2."""
    tau = float(os.environ.get("SIM_TAU", "0.01"))
    one = quant_rows_asym(a)
    norm = np.linalg.norm(a, axis=-1)
    norm[norm == 0] = 1.0
    two = np.linalg.norm(a - one, axis=-1) / norm > tau
    r = ROWS.setdefault(which, [0, 0])
    r[0] += a.shape[0]
    r[1] += int(two.sum())
    out = one
    if two.any():
        out = one.copy()
        out[two] = quant_rows(a[two], 2)
    return out


def make_fwd(fmt, W, b, stats, which):
    """which: 0 qkv, 1 attention out, 2 FFN in, 3 FFN out (the order of sembed's GEMMs)."""
    two = which != 1 and (fmt == "x2" or fmt.endswith("+x2"))
    asym = adapt = False
    outl = None
    rowwise = False
    if ":" in fmt:  # digits per GEMM (qkv, attention out, FFN in, FFN out), e.g. sq0.5:2112
        fmt, dig = fmt.split(":")
        two = dig[which] == "2"
        asym = dig[which] == "a"
        adapt = dig[which] in "eop"
        rowwise = dig[which] == "p"
        if dig[which] == "o":
            nout = int(os.environ.get("SIM_NOUT", "8"))
            outl = np.argsort(-stats)[:nout]
    s = None
    if fmt.startswith("sq"):
        alpha = float(fmt[2:].split("+")[0])
        xmax = np.maximum(stats, 1e-5)
        wmax = np.maximum(np.abs(W).max(axis=0), 1e-5)
        s = xmax**alpha / wmax ** (1 - alpha)
        if os.environ.get("SQ_POW2"):  # s rounded to a power of two (x/s and W·s exact)
            s = 2.0 ** np.rint(np.log2(s))
        W = W * s[None, :]
    Wq = quant_rows(W, 1)

    def fwd(x):
        shp = x.shape
        a = x.detach().double().reshape(-1, shp[-1]).numpy()
        if s is not None:
            a = a / s[None, :]
        if rowwise:  # per row: channels over SIM_THETA times the row's rms stay exact
            th = float(os.environ.get("SIM_THETA", "6"))
            rms = np.sqrt((a * a).mean(axis=-1, keepdims=True))
            big = np.abs(a) > th * rms
            EXACT.setdefault(which, []).append(big.sum(axis=-1).mean())
            main = np.where(big, 0.0, a)
            q = quant_rows_adaptive(main, which)
            q = np.where(big, a, q)
        elif adapt and outl is not None:
            main = a.copy()
            main[:, outl] = 0
            q = quant_rows_adaptive(main, which)
            q[:, outl] = a[:, outl]
        elif adapt:
            q = quant_rows_adaptive(a, which)
        else:
            q = quant_rows_asym(a) if asym else quant_rows(a, 2 if two else 1)
        y = q @ Wq.T + b
        t = torch.from_numpy(y.astype(np.float32)).reshape(*shp[:-1], W.shape[0])
        if which == 0 and os.environ.get("SIM_ATT_BF16"):  # attention's q, k, v in bf16
            t = t.to(torch.bfloat16).to(torch.float32)
        return t

    return fwd


def main():
    folder = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    fmts = sys.argv[3].split(",") if len(sys.argv) > 3 else ["x2", "x1", "sq0.5", "sq0.5+x2"]
    from sentence_transformers import SentenceTransformer

    texts = golden_corpus_sample(n)
    if os.environ.get("SQ_TEXTFILE"):  # a JSON list of texts instead
        texts = json.load(open(os.environ["SQ_TEXTFILE"]))
    with gzip.open(os.path.join(ROOT, "bench/corpus/mixed.jsonl.gz"), "rt") as f:
        calib = [json.loads(l) for _, l in zip(range(int(os.environ.get("SQ_NCAL", "64"))), f)]
    model = SentenceTransformer(folder, device="cpu")
    ref = model.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)
    enc = model[0].auto_model.encoder
    # sembed's four GEMMs per layer: q, k, v share their input (one qkv GEMM), then attention
    # out, FFN in, FFN out
    groups = []
    lns = {}  # group -> the LayerNorm whose output is its input (for SIM_OSEL=ln)
    prev_ln = model[0].auto_model.embeddings.LayerNorm
    for layer in enc.layer:
        at = layer.attention
        lns[len(groups)] = prev_ln
        groups.append(([at.self.query, at.self.key, at.self.value], 0))
        groups.append(([at.output.dense], 1))
        lns[len(groups)] = at.output.LayerNorm
        groups.append(([layer.intermediate.dense], 2))
        groups.append(([layer.output.dense], 3))
        prev_ln = layer.output.LayerNorm
    # calibration: per input channel max |x| of each GEMM's input
    stats = {}
    hooks = []
    for gi, (mods, _) in enumerate(groups):
        def hook(m, inp, out, gi=gi):
            v = inp[0].detach().abs().reshape(-1, inp[0].shape[-1]).max(dim=0).values.double().numpy()
            stats[gi] = np.maximum(stats.get(gi, v), v)
        hooks.append(mods[0].register_forward_hook(hook))
    with torch.no_grad():
        model.encode(calib, batch_size=16)
    for h in hooks:
        h.remove()
    if os.environ.get("SIM_OSEL") == "ln":  # outliers from the LayerNorm's weights alone
        c = float(os.environ.get("SIM_OC", "4"))
        for gi, ln in lns.items():
            stats[gi] = (c * ln.weight.detach().abs() + ln.bias.detach().abs()).double().numpy()
    print("%s: %d texts" % (os.path.basename(folder), len(texts)), flush=True)
    for fmt in fmts:
        ROWS.clear()
        saved = []
        for gi, (mods, which) in enumerate(groups):
            for m in mods:
                saved.append((m, m.forward))
                m.forward = make_fwd(fmt, m.weight.detach().double().numpy(),
                                     m.bias.detach().double().numpy(), stats[gi], which)
        with torch.no_grad():
            out = model.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)
        for m, f in saved:
            m.forward = f
        cos = (out * ref).sum(axis=1)
        if os.environ.get("SQ_WORST"):
            for i in np.argsort(cos)[:3]:
                print("    %.5f %r" % (cos[i], texts[i][:100]))
        if EXACT:
            print("    exact channels per row: " + " ".join("%d:%.2f" % (w, np.mean(v)) for w, v in sorted(EXACT.items())))
            EXACT.clear()
        two = "  two digits: " + " ".join("%d:%.3f" % (w, r[1] / r[0]) for w, r in sorted(ROWS.items())) if ROWS else ""
        print("  %-10s min cos %.5f  p1 %.5f  mean %.6f%s" % (fmt, cos.min(), np.percentile(cos, 1), cos.mean(), two),
              flush=True)


if __name__ == "__main__":
    main()
