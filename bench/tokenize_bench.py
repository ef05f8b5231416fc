#!/usr/bin/env python3
"""Tokenization throughput: sembed against Hugging Face tokenizers' encode_batch, same corpus,
same model, same truncation, 1 and 2 threads (each peer measured in this run, on this machine).

Usage: python3 bench/tokenize_bench.py [--model DIR] [--corpus FILE] [--bench build/bench_tokenize]
Writes bench/results/tokenize.json and prints a table. Needs `pip install tokenizers`.
"""
import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def hf_worker(model, corpus, threads, repeats):
    # RAYON_NUM_THREADS must be set before tokenizers starts its pool: run in a child process
    code = f"""
import json, gzip, time, statistics, sys
from tokenizers import Tokenizer
texts = [json.loads(l) for l in gzip.open({corpus!r}, 'rt')]
tok = Tokenizer.from_file({model!r} + '/tokenizer.json')
tok.no_padding()
ml = json.load(open({model!r} + '/sentence_bert_config.json'))['max_seq_length']
tok.enable_truncation(ml)
encs = tok.encode_batch(texts)
tokens = sum(len(e.ids) for e in encs)
times = []
for _ in range({repeats}):
    t0 = time.perf_counter(); tok.encode_batch(texts); times.append(time.perf_counter() - t0)
med = statistics.median(times)
print(json.dumps(dict(tool='tokenizers', threads={threads}, texts=len(texts), tokens=tokens,
                      seconds=med, tokens_per_s=tokens / med, texts_per_s=len(texts) / med)))
"""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def sembed_run(bench, model, corpus, threads, repeats):
    out = subprocess.run([bench, model, corpus, str(threads), str(repeats)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser(
        os.environ.get("SEMBED_MODELS", "~/.cache/sembed/models") + "/all-MiniLM-L6-v2"))
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus", "mixed.jsonl.gz"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench_tokenize"))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    import tokenizers
    rows = []
    for th in [int(x) for x in args.threads.split(",")]:
        s = sembed_run(args.bench, args.model, args.corpus, th, args.repeats)
        h = hf_worker(args.model, args.corpus, th, args.repeats)
        if s["tokens"] != h["tokens"]:
            print(f"warning: token counts differ: sembed {s['tokens']} vs tokenizers {h['tokens']}")
        rows.append((th, s, h))
    result = dict(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                  tokenizers_version=tokenizers.__version__, model=os.path.basename(args.model),
                  corpus=os.path.relpath(args.corpus, ROOT),
                  rows=[dict(threads=th, sembed=s, tokenizers=h,
                             ratio=s["tokens_per_s"] / h["tokens_per_s"]) for th, s, h in rows])
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "tokenize.json"), "w") as f:
        json.dump(result, f, indent=2)
    cpu = ""
    try:
        cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    except Exception:
        pass
    print(f"tokenization, {result['model']}, {rows[0][1]['texts']} texts of {result['corpus']}, "
          f"{cpu or result['machine']} ({result['cpus']} cores), tokenizers {result['tokenizers_version']}")
    print(f"{'threads':>7} {'sembed tok/s':>14} {'tokenizers tok/s':>17} {'ratio':>7}")
    for th, s, h in rows:
        print(f"{th:>7} {s['tokens_per_s']:>14,.0f} {h['tokens_per_s']:>17,.0f} "
              f"{s['tokens_per_s'] / h['tokens_per_s']:>6.2f}x")


if __name__ == "__main__":
    main()
