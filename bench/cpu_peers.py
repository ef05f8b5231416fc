#!/usr/bin/env python3
"""CPU peers benchmark (issue 6): sembed (fp32, int8, and on request fp32-strict as the peer
`sembed-fp32-strict`; through bindings/python/sembed.py on the build's libsembed.so) beside
sentence-transformers on torch fp32 and ONNX Runtime (fp32 and its dynamic int8 quantization,
the model exported to ONNX here with torch.onnx), all with the same thread count on the same
texts. Workloads of ../shared/BENCH.md: `mixed` (throughput, texts/s and real tokens/s) and
`query` (one text at a time, p50 and p99: over the query set, and as BENCH.md defines it, one
16-token query again and again). Also the int8 retrieval check: top-10 neighbour
overlap of int8 against fp32 over passages and queries. Where the CPU has AVX-512 VNNI and BF16,
also this machine's arithmetic peaks (dev/cpu/peak.c, built here with cc, before and after the
rounds) and the fraction of them each engine's products reach. Prints a ratio table last and
writes JSON. A benchmark: it reports speed and checks nothing.

Usage: python3 bench/cpu_peers.py [--build build-cpu] [--models all-MiniLM-L6-v2,bge-small-en-v1.5-dq]
Models are folders of the models cache (scripts/fetch_models.py NAME). For bge-small the default is
bge-small-en-v1.5-dq, the real bge-small-en-v1.5 with weights dequantized from an int8 ONNX export
(meaningful vectors, so the int8 overlap means something; `bge-small` names it too);
bge-small-en-v1.5-random (random weights, same shape; vectors crowd together) stays selectable.
Needs: pip install sentence-transformers torch onnxruntime onnx (benchmark only)."""
import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.environ.get("SEMBED_MODELS", os.path.expanduser("~/.cache/sembed/models"))


def load_texts(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(l) for l in f]


# ---- sembed through its Python binding (bindings/python/sembed.py over libsembed.so) ---------

sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import sembed as sembed_py  # noqa: E402


def shared_lib(build):
    """The build folder's libsembed.so, or exit naming the command that builds it."""
    path = os.path.join(build, "libsembed.so")
    if not os.path.exists(path):
        raise SystemExit("%s: not built: cmake --build %s --target sembed_shared" % (path, build))
    return path


class Sembed:
    def __init__(self, lib, model_dir, threads, precision):
        try:
            self.m = sembed_py.Model(model_dir, device="cpu", threads=threads, precision=precision,
                                     max_batch_tokens=8192, max_batch_texts=512, lib=lib)
        except sembed_py.SembedError as e:
            raise RuntimeError("sembed (%s): %s" % (precision, e))
        self.dim = self.m.dim

    def encode(self, texts):
        return self.m.encode(texts, numpy=True)

    def close(self):
        self.m.close()


# ---- peers -------------------------------------------------------------------------------

def st_model(model_dir, threads):
    import torch
    torch.set_num_threads(threads)
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(model_dir, device="cpu")


class OrtPeer:
    """The model's transformer exported to ONNX (dynamic batch and length), run by ONNX Runtime
    with all graph optimizations and intra_op threads; pooling and normalization in numpy, as
    sentence-transformers' modules do, from the same tokenizer (Hugging Face tokenizers)."""

    def __init__(self, st, tmp, threads, int8):
        import onnxruntime as ort
        import torch
        self.st = st
        fp32 = os.path.join(tmp, "model.onnx")
        if not os.path.exists(fp32):
            hf = st[0].auto_model.eval()
            ids = torch.ones(2, 16, dtype=torch.int64)

            class Wrap(torch.nn.Module):
                def __init__(self, m):
                    super().__init__()
                    self.m = m

                def forward(self, input_ids, attention_mask):
                    return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

            with torch.no_grad():
                torch.onnx.export(Wrap(hf), (ids, torch.ones_like(ids)), fp32,
                                  input_names=["input_ids", "attention_mask"], output_names=["h"],
                                  dynamic_axes={"input_ids": {0: "b", 1: "t"},
                                                "attention_mask": {0: "b", 1: "t"}, "h": {0: "b", 1: "t"}},
                                  opset_version=17, dynamo=False)
        path = fp32
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic
            path = os.path.join(tmp, "model.int8.onnx")
            if not os.path.exists(path):
                quantize_dynamic(fp32, path, weight_type=QuantType.QInt8, per_channel=True)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.tok = st.tokenizer
        self.max_len = st.max_seq_length
        pool = st[1]
        self.cls = getattr(pool, "pooling_mode_cls_token", False)
        self.normalize = any(type(m).__name__ == "Normalize" for m in st)

    def encode(self, texts):
        enc = self.tok(texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        h = self.sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        if self.cls:
            v = h[:, 0]
        else:
            m = mask[:, :, None].astype(np.float32)
            v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        if self.normalize:
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return v


# ---- workloads ---------------------------------------------------------------------------

def sorted_batches(texts, lens, batch):
    """Length-sorted batches (the peers' best configuration; sembed packs, so it gains little)."""
    order = sorted(range(len(texts)), key=lambda i: -lens[i])
    return [[texts[i] for i in order[b:b + batch]] for b in range(0, len(order), batch)]


def throughput(encode, batches, n_texts, n_tokens, reps):
    encode(batches[len(batches) // 2])  # warm-up
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for b in batches:
            encode(b)
        dt = time.perf_counter() - t0
        rates.append(dt)
    dt = statistics.median(rates)
    return {"texts_per_s": n_texts / dt, "tokens_per_s": n_tokens / dt, "seconds": dt, "reps": reps}


ALIASES = {"bge-small": "bge-small-en-v1.5-dq"}


def timed_calls(encode, texts):
    """Seconds of encode([t]) for each text, one call at a time."""
    out = []
    for t in texts:
        t0 = time.perf_counter()
        encode([t])
        out.append(time.perf_counter() - t0)
    return out


def latency(seconds):
    """p50 and p99 in ms of per-call times."""
    ts = sorted(seconds)
    return {"p50_ms": 1e3 * ts[len(ts) // 2], "p99_ms": 1e3 * ts[min(len(ts) - 1, int(len(ts) * 0.99))],
            "n": len(ts)}


def measure_peaks(threads, tmp):
    """This CPU's FMA and VNNI peaks on `threads` threads at once (GMAC/s), by dev/cpu/peak.c;
    None where the CPU lacks the instructions or no C compiler is found."""
    import shutil
    import subprocess
    flags = open("/proc/cpuinfo").read().split("\nflags")[1].split("\n")[0].split()
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc or not {"avx512f", "avx512_vnni", "avx512_bf16"} <= set(flags):
        return None
    exe = os.path.join(tmp, "peak")
    if not os.path.exists(exe):
        subprocess.run([cc, "-O2", "-mavx512f", "-mavx512vnni", "-mavx512bf16", "-pthread",
                        os.path.join(ROOT, "dev/cpu/peak.c"), "-o", exe], check=True)
    out = subprocess.run([exe, str(threads), "0.5"], check=True, capture_output=True, text=True).stdout
    peaks = {}
    for line in out.splitlines():
        if " %d thread" % threads not in line or "GMAC/s" not in line:
            continue
        gmacs = float(line.rsplit(",", 1)[1].split()[0])
        peaks["fma" if line.startswith("zmm FMA") else "vnni" if line.startswith("vpdpbusd") else "bf16"] = gmacs
    return peaks


def macs_per_token(mdir):
    """The encoder's matrix products per token (MACs): per layer 4 H² (q, k, v, attention out)
    and 2 H I (FFN); attention's scores and sums, which grow with the text, are left out."""
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    h, i = cfg["hidden_size"], cfg.get("intermediate_size", 4 * cfg["hidden_size"])
    return cfg["num_hidden_layers"] * (4 * h * h + 2 * h * i)


def model_dir(name):
    """The cached folder of a model (an alias resolved), or exit naming the command that fetches
    it: the stand-ins are built there, sha256 pinned, so every run measures the same weights."""
    name = ALIASES.get(name, name)
    d = os.path.join(MODELS, name)
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return d
    raise SystemExit("model %s is not under %s: run python3 scripts/fetch_models.py %s"
                     % (name, MODELS, name))


def topk_overlap(p_ref, q_ref, p_x, q_x, k=10):
    a = np.argsort(-(q_ref @ p_ref.T), axis=1)[:, :k]
    b = np.argsort(-(q_x @ p_x.T), axis=1)[:, :k]
    return float(np.mean([len(set(a[i]) & set(b[i])) / k for i in range(len(a))]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-cpu"))
    ap.add_argument("--models", default="all-MiniLM-L6-v2,bge-small-en-v1.5-dq",
                    help="model names of the cache; bge-small-en-v1.5-random for the random stand-in")
    ap.add_argument("--peers", default="sembed,sembed-int8,ort,ort-int8,st")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", default=os.path.join(ROOT, "bench/corpus/mixed.jsonl.gz"))
    ap.add_argument("--queries", default=os.path.join(ROOT, "bench/corpus/queries.jsonl.gz"))
    ap.add_argument("--n-texts", type=int, default=3000, help="mixed texts timed per repetition")
    ap.add_argument("--reps", type=int, default=5, help="interleaved rounds of the mixed pass (median)")
    ap.add_argument("--n-queries", type=int, default=1000, help="queries per engine, spread over the rounds")
    ap.add_argument("--peer-batch", default="8,16,64", help="batch sizes tried for the peers (best kept)")
    ap.add_argument("--sembed-batch", type=int, default=256)
    ap.add_argument("--retrieval", type=int, default=10000, help="passages for the int8 top-10 check (0: skip)")
    # the record (bench/results/cpu_peers.json) is replaced only when named: a smoke run with small
    # sizes would otherwise overwrite it
    ap.add_argument("--output", default=os.path.join(tempfile.gettempdir(), "sembed_cpu_peers.json"),
                    help="JSON results; bench/results/cpu_peers.json to replace the record")
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    import torch
    torch.set_num_threads(a.threads)
    peers = a.peers.split(",")
    corpus, queries = load_texts(a.corpus), load_texts(a.queries)
    mixed = corpus[:a.n_texts]
    lib = shared_lib(a.build)
    results = {"threads": a.threads, "n_texts": len(mixed), "cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": "),
               "loadavg_start": open("/proc/loadavg").read().split()[:3], "models": {}}
    tmp_root = tempfile.mkdtemp(prefix="sembed_peers_")
    results["peaks_start"] = measure_peaks(a.threads, tmp_root)
    if results["peaks_start"]:
        print("peaks (GMAC/s, %d threads): %s" % (a.threads, results["peaks_start"]), flush=True)
    for name in a.models.split(","):
        mdir = model_dir(name)
        print("== %s (%s)" % (name, mdir), flush=True)
        st = st_model(mdir, a.threads)
        lens = [len(x) for x in st.tokenizer(mixed, truncation=True, max_length=st.max_seq_length)["input_ids"]]
        n_tok = sum(lens)
        # BENCH.md's `query`: one query of about 16 tokens, timed again and again; the first of
        # the query file with 16 tokens under this model's tokenizer (the query-set p50 beside it
        # mixes 12- to 20-token queries)
        q16 = next((q for q in queries if len(st.tokenizer(q)["input_ids"]) == 16), None)
        if q16 is None:
            raise SystemExit("%s: no query of 16 tokens in %s" % (name, a.queries))
        print("  16-token query: %r" % q16, flush=True)
        R = results["models"][name] = {"dir": mdir, "real_tokens": n_tok, "query16_text": q16,
                                       "query16_tokens": 16, "macs_per_token": macs_per_token(mdir)}
        tmp = os.path.join(tmp_root, name)
        os.makedirs(tmp, exist_ok=True)
        # every engine first, then the timed rounds interleaved (engine after engine, round after
        # round), so that load from other processes drifting over the run hits all of them alike
        engines, closers = {}, []
        for peer in peers:
            if peer.startswith("sembed"):
                # sembed (fp32: bf16 + int8 parts on AMX), sembed-int8, sembed-fp32-strict (fp32 FMA only)
                prec = peer[len("sembed-"):] if peer.startswith("sembed-") else "fp32"
                try:
                    se = Sembed(lib, mdir, a.threads, prec)
                except RuntimeError as e:
                    print("  %s: %s" % (peer, e), flush=True)
                    continue
                engines[peer] = (se.encode, [a.sembed_batch])
                closers.append(se.close)
            elif peer.startswith("ort"):
                o = OrtPeer(st, tmp, a.threads, peer.endswith("int8"))
                engines[peer] = (o.encode, [int(x) for x in a.peer_batch.split(",")])
            elif peer == "st":
                engines[peer] = (lambda b: st.encode(b, batch_size=len(b), convert_to_numpy=True),
                                 [int(x) for x in a.peer_batch.split(",")])
            else:
                raise SystemExit("unknown peer %s" % peer)
        # each peer's best batch size, on a quarter of the texts
        sub = mixed[:max(1, len(mixed) // 4)]
        sub_lens = lens[:len(sub)]
        plan = {}
        for peer, (enc, sizes) in engines.items():
            best = None
            for bsz in sizes:
                r = throughput(enc, sorted_batches(sub, sub_lens, bsz), len(sub), sum(sub_lens), 1)
                print("  %-12s batch %4d (choice pass): %8.1f texts/s" % (peer, bsz, r["texts_per_s"]), flush=True)
                if not best or r["texts_per_s"] > best[1]:
                    best = (bsz, r["texts_per_s"])
            plan[peer] = (enc, best[0], sorted_batches(mixed, lens, best[0]))
        times = {peer: [] for peer in plan}
        lat = {peer: [] for peer in plan}
        lat16 = {peer: [] for peer in plan}
        for rnd in range(a.reps):
            for peer, (enc, bsz, batches) in plan.items():
                if rnd == 0:
                    enc(batches[len(batches) // 2])
                t0 = time.perf_counter()
                for b in batches:
                    enc(b)
                times[peer].append(time.perf_counter() - t0)
                for q in queries[:10]:
                    enc([q])
                nq = a.n_queries // a.reps
                lat[peer] += timed_calls(enc, [queries[(rnd * nq + i) % len(queries)] for i in range(nq)])
                lat16[peer] += timed_calls(enc, [q16] * nq)
            print("  round %d: %s" % (rnd, ", ".join("%s %.1f texts/s" % (p, len(mixed) / times[p][-1]) for p in plan)), flush=True)
        for peer, (enc, bsz, batches) in plan.items():
            dt = statistics.median(times[peer])
            R[peer] = {"mixed": {"texts_per_s": len(mixed) / dt, "tokens_per_s": n_tok / dt, "seconds": dt,
                                 "batch": bsz, "rounds": [len(mixed) / t for t in times[peer]]},
                       "query": latency(lat[peer]), "query16": latency(lat16[peer])}
            print("  %-12s mixed (batch %d, median of %d): %8.1f texts/s %9.0f tokens/s; query p50 %.3f ms p99 %.3f ms;"
                  " 16-token query p50 %.3f ms p99 %.3f ms"
                  % (peer, bsz, a.reps, R[peer]["mixed"]["texts_per_s"], R[peer]["mixed"]["tokens_per_s"],
                     R[peer]["query"]["p50_ms"], R[peer]["query"]["p99_ms"],
                     R[peer]["query16"]["p50_ms"], R[peer]["query16"]["p99_ms"]), flush=True)
        for c in closers:
            c()
        if a.retrieval and "sembed" in peers and "sembed-int8" in peers:
            passages = corpus[:a.retrieval]
            qs = queries[:500]
            vec = {}
            for prec in ["fp32", "int8"]:
                se = Sembed(lib, mdir, a.threads, prec)
                vec[prec] = (se.encode(passages), se.encode(qs))
                se.close()
            ov = topk_overlap(vec["fp32"][0], vec["fp32"][1], vec["int8"][0], vec["int8"][1])
            cos = np.sum(vec["fp32"][0] * vec["int8"][0], 1) / (
                np.linalg.norm(vec["fp32"][0], axis=1) * np.linalg.norm(vec["int8"][0], axis=1))
            R["int8_retrieval"] = {"passages": len(passages), "queries": len(qs), "top10_overlap": ov,
                                   "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}
            print("  int8 vs fp32: top-10 overlap %.4f over %d passages, %d queries; cosine min %.5f mean %.6f"
                  % (ov, len(passages), len(qs), cos.min(), cos.mean()), flush=True)
        results["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        results["peaks_end"] = measure_peaks(a.threads, tmp_root)
        os.makedirs(os.path.dirname(a.output), exist_ok=True)
        json.dump(results, open(a.output, "w"), indent=1)  # after each model: a long run keeps its part
    print("\n%d threads, %d mixed texts, %s; load average %s -> %s" % (a.threads, len(mixed), results["cpu"],
          " ".join(results["loadavg_start"]), " ".join(results["loadavg_end"])))
    # the larger of the two peak measurements (the VM's neighbours only ever lower them), and
    # each engine's matrix products a second (GMAC/s) against it
    peaks = {}
    for k in ("peaks_start", "peaks_end"):
        for unit, v in (results.get(k) or {}).items():
            peaks[unit] = max(v, peaks.get(unit, 0.0))
    for R in results["models"].values():
        for peer in peers:
            if peer in R and peaks:
                m = R[peer]["mixed"]
                m["gmacs"] = m["tokens_per_s"] * R["macs_per_token"] * 1e-9
                m["peak_fraction"] = m["gmacs"] / peaks["vnni" if peer.endswith("int8") else "fma"]
    json.dump(results, open(a.output, "w"), indent=1)
    print("q: the query set (12-20 tokens), q16: one 16-token query again and again (BENCH.md's `query`)")
    if peaks:
        print("%%peak: the mixed pass's matrix products (GMAC/s) over the FMA peak (fp32 engines) or the "
              "VNNI peak (int8), %.1f / %.1f GMAC/s on %d threads" % (peaks["fma"], peaks["vnni"], a.threads))
    print("%-26s %10s %10s %9s %9s %9s %6s  %s" % ("model / engine", "texts/s", "tok/s", "q p50 ms", "q p99 ms", "q16 p50",
                                                   "%peak", "sembed ratio (mixed; q p50; q16 p50)"))
    for name, R in results["models"].items():
        for peer in peers:
            if peer not in R:
                continue
            m, q, q16 = R[peer]["mixed"], R[peer]["query"], R[peer]["query16"]
            base = "sembed-int8" if peer.endswith("int8") else "sembed"
            if peer == "st":
                base = "sembed"
            ratio = ""
            if base in R and base != peer and not peer.startswith("sembed"):
                ratio = "%s %.2fx; %.2fx; %.2fx" % (base, R[base]["mixed"]["texts_per_s"] / m["texts_per_s"],
                                                    q["p50_ms"] / R[base]["query"]["p50_ms"],
                                                    q16["p50_ms"] / R[base]["query16"]["p50_ms"])
            frac = "%.0f%%" % (100 * m["peak_fraction"]) if "peak_fraction" in m else ""
            print("%-26s %10.1f %10.0f %9.3f %9.3f %9.3f %6s  %s" % (name[:14] + " " + peer, m["texts_per_s"],
                                                                   m["tokens_per_s"], q["p50_ms"], q["p99_ms"],
                                                                   q16["p50_ms"], frac, ratio))
    print("wrote %s" % a.output)


if __name__ == "__main__":
    main()
