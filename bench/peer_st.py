#!/usr/bin/env python3
"""The sentence-transformers peer of `sembed bench`: encode() on torch (fp32, CPU) with the same
model folder, texts, batch sizes and thread count; prints `batch B ms P50 texts_per_s X` lines.
Run by `sembed bench --peer`; needs `pip install sentence-transformers torch`."""
import argparse
import gzip
import json
import statistics
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--batches", default="1,10,50,100")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    import sentence_transformers
    from sentence_transformers import SentenceTransformer
    print("version sentence-transformers %s, torch %s" % (sentence_transformers.__version__, torch.__version__), flush=True)
    opener = gzip.open if a.corpus.endswith(".gz") else open
    texts = [json.loads(l) for l in opener(a.corpus, "rt")]
    m = SentenceTransformer(a.model, device="cpu")
    for b in [int(x) for x in a.batches.split(",")]:
        b = min(b, len(texts))
        for _ in range(2):
            m.encode(texts[:b], batch_size=b)
        times, done, pos, start = [], 0, 0, time.perf_counter()
        while time.perf_counter() - start < a.seconds or len(times) < 5:
            if pos + b > len(texts):
                pos = 0
            t0 = time.perf_counter()
            m.encode(texts[pos:pos + b], batch_size=b)
            times.append(time.perf_counter() - t0)
            done += b
            pos += b
        print("batch %d ms %.4f texts_per_s %.1f" % (b, 1e3 * statistics.median(times), done / sum(times)), flush=True)


if __name__ == "__main__":
    main()
