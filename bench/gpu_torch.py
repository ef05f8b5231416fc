#!/usr/bin/env python3
"""gpu_torch.py — the PyTorch peer of sembed's GPU benchmark (bench/gpu_bench.c), and its inputs.

    gpu_torch.py export OUT_DIR minilm|base TOKENIZER_DIR   random BertModel (seed 0) as an fp16
                                                            sentence-transformers folder sembed loads
    gpu_torch.py ids OUT_FILE SETS S L SEED                 random token ids ([CLS] ... [SEP])
    gpu_torch.py peer RESULTS_JSONL OUT_JSON WORKLOAD...    time transformers (fp16, SDPA) on the same
                                                            weights and ids, check sembed's vectors
                                                            against torch fp32, print the table last
    gpu_torch.py st-mixed MODEL_DIR CORPUS                  sentence-transformers encode fp16 on the
                                                            corpus at batch sizes 32..1024
    gpu_torch.py st-query MODEL_DIR TEXT                    the same for one text, p50 of 300
    gpu_torch.py st-ref MODEL_DIR CORPUS META OUT_PREFIX    golden texts + sentence-transformers fp32
                                                            vectors (tests/test_cuda_st.c reads them)
    gpu_torch.py profile WORKLOAD...                        torch.profiler per-kernel CUDA times
A WORKLOAD is label:model_dir:ids_file:sets:S:L:reps:sembed_vectors_file.
"""
import json
import os
import shutil
import sys

import numpy as np

SHAPES = {  # hidden, layers, heads, intermediate
    "minilm": (384, 6, 12, 1536),
    "base": (768, 12, 12, 3072),
}
PEAK_TFLOPS = 790.0  # H100 dense fp16/bf16 as measured here (BENCH.md)


def export(out, shape, tok_dir):
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel
    H, n_layers, A, I = SHAPES[shape]
    cfg = BertConfig(vocab_size=30522, hidden_size=H, num_hidden_layers=n_layers,
                     num_attention_heads=A, intermediate_size=I, max_position_embeddings=512,
                     hidden_act="gelu", layer_norm_eps=1e-12, type_vocab_size=2)
    torch.manual_seed(0)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    os.makedirs(os.path.join(out, "2_Normalize"), exist_ok=True)
    cfg.architectures = ["BertModel"]
    cfg.to_json_file(os.path.join(out, "config.json"))
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
          if not k.endswith("position_ids")}
    save_file(sd, os.path.join(out, "model.safetensors"))
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
              "modules.json"):
        shutil.copy(os.path.join(tok_dir, f), out)
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": H, "pooling_mode_cls_token": False,
                   "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                   "pooling_mode_mean_sqrt_len_tokens": False}, f)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 512, "do_lower_case": False}, f)
    with open(os.path.join(out, ".complete"), "w") as f:  # what tests/testlib.c looks for
        f.write("random weights, seed 0\n")
    print(f"exported {shape} ({H}x{n_layers}) to {out}")


def make_ids(out, sets, S, L, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30522, size=(sets, S, L), dtype=np.int32)
    ids[:, :, 0] = 101
    ids[:, :, L - 1] = 102
    ids.tofile(out)


def flops_per_token(H, n_layers, I, L):
    return n_layers * (8 * H * H + 4 * H * I + 4 * L * H)


def peer(results_path, out_json, workloads):
    import torch
    from transformers import BertModel
    dev = torch.device("cuda")
    card = torch.cuda.get_device_name(0)
    sembed = {}
    with open(results_path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                sembed[r["workload"]] = r
    models = {}
    rows, full = [], []
    for w in workloads:
        label, mdir, ids_file, sets, S, L, reps, vec_file = w.split(":")
        sets, S, L, reps = int(sets), int(S), int(L), int(reps)
        if mdir not in models:
            m16 = BertModel.from_pretrained(mdir, torch_dtype=torch.float16,
                                            attn_implementation="sdpa",
                                            add_pooling_layer=False).to(dev).eval()
            m32 = BertModel.from_pretrained(mdir, torch_dtype=torch.float32,
                                            attn_implementation="eager",
                                            add_pooling_layer=False).to(dev).eval()
            models[mdir] = (m16, m32)
        m16, m32 = models[mdir]
        ids = torch.from_numpy(np.fromfile(ids_file, dtype=np.int32).reshape(sets, S, L)
                               .astype(np.int64)).to(dev)
        mask = torch.ones((S, L), dtype=torch.int64, device=dev)

        def embed(model, x):
            h = model(input_ids=x, attention_mask=mask).last_hidden_state
            v = (h.float() * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            return torch.nn.functional.normalize(v, dim=-1)

        with torch.inference_mode():
            for i in range(10):
                embed(m16, ids[i % sets])
            torch.cuda.synchronize()
            times = []
            for i in range(reps):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                embed(m16, ids[i % sets])
                b.record()
                b.synchronize()
                times.append(a.elapsed_time(b))
            ref = embed(m32, ids[0]).cpu().numpy()
            t16 = embed(m16, ids[0]).cpu().numpy()
        times.sort()
        torch_ms = times[len(times) // 2]
        vec = np.fromfile(vec_file, dtype=np.float32).reshape(S, -1)
        cos = (vec * ref).sum(1) / (np.linalg.norm(vec, axis=1) * np.linalg.norm(ref, axis=1))
        cos16 = (t16 * ref).sum(1) / (np.linalg.norm(t16, axis=1) * np.linalg.norm(ref, axis=1))
        cfg = m16.config
        fl = flops_per_token(cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, L) * S * L
        s = sembed.get(label)
        s_ms = s["ms_p50"] if s else float("nan")
        r = {"card": card, "workload": label, "S": S, "L": L, "sembed_ms_p50": s_ms,
             "sembed_ms_p99": s["ms_p99"] if s else None, "torch_ms_p50": torch_ms,
             "torch_ms_p99": times[int(len(times) * 0.99)], "speedup": torch_ms / s_ms,
             "sembed_texts_per_s": S / s_ms * 1e3, "torch_texts_per_s": S / torch_ms * 1e3,
             "gflop": fl / 1e9, "sembed_frac_peak": fl / (s_ms * 1e-3) / (PEAK_TFLOPS * 1e12),
             "torch_frac_peak": fl / (torch_ms * 1e-3) / (PEAK_TFLOPS * 1e12),
             "min_cos_sembed_vs_torch_fp32": float(cos.min()),
             "min_cos_torch_fp16_vs_fp32": float(cos16.min())}
        full.append(r)
        print(json.dumps(r), flush=True)
    with open(out_json, "w") as f:
        json.dump(full, f, indent=1)
    print()
    print(f"{'card':<24} {'workload':<22} {'sembed ms':>10} {'torch ms':>9} {'ratio':>6} "
          f"{'sembed %peak':>12} {'torch %peak':>11} {'cos vs fp32':>11}")
    for r in full:
        print(f"{r['card'][:24]:<24} {r['workload']:<22} {r['sembed_ms_p50']:>10.3f} "
              f"{r['torch_ms_p50']:>9.3f} {r['speedup']:>6.2f} {100 * r['sembed_frac_peak']:>11.1f}% "
              f"{100 * r['torch_frac_peak']:>10.1f}% {r['min_cos_sembed_vs_torch_fp32']:>11.6f}")
    # `sembed bench --device cuda --mixed --query --peer` (GPU_JSON): texts to vectors, the peer
    # sentence-transformers encode fp16 (its best batch size for mixed)
    gj = os.environ.get("GPU_JSON")
    if gj and os.path.exists(gj):
        g = json.load(open(gj))
        card = g.get("card", "")
        mx, q = g.get("mixed", {}), g.get("query", {})
        if mx.get("texts"):
            s_ms = mx["ms"]
            st_ms = 1e3 * mx["texts"] / mx["st_fp16_best_texts_per_s"] if mx.get("st_fp16_best_texts_per_s") else float("nan")
            mean_len = mx["tokens"] / mx["texts"]
            fl = flops_per_token(384, 6, 1536, mean_len) * mx["tokens"]
            print(f"{card[:24]:<24} {'mixed-minilm texts->vec':<22} {s_ms:>10.3f} {st_ms:>9.3f} "
                  f"{st_ms / s_ms:>6.2f} {100 * fl / (s_ms * 1e-3) / (PEAK_TFLOPS * 1e12):>11.1f}% "
                  f"{100 * fl / (st_ms * 1e-3) / (PEAK_TFLOPS * 1e12):>10.1f}%  (peer: ST encode fp16, "
                  f"batch {mx.get('st_best_batch')})")
        if q.get("ms_p50"):
            st = q.get("st_fp16_ms_p50") or float("nan")
            print(f"{card[:24]:<24} {'query-minilm text->vec':<22} {q['ms_p50']:>10.3f} {st:>9.3f} "
                  f"{st / q['ms_p50']:>6.2f} {'':>12} {'':>11}  (p99 {q['ms_p99']:.3f}; peer: ST encode fp16)")


def profile(workloads):
    """torch.profiler's per-kernel CUDA time for the fp16 SDPA peer (5 batches per workload)."""
    import torch
    from torch.profiler import ProfilerActivity
    from transformers import BertModel
    dev = torch.device("cuda")
    for w in workloads:
        label, mdir, ids_file, sets, S, L = w.split(":")[:6]
        sets, S, L = int(sets), int(S), int(L)
        m16 = BertModel.from_pretrained(mdir, torch_dtype=torch.float16, attn_implementation="sdpa",
                                        add_pooling_layer=False).to(dev).eval()
        ids = torch.from_numpy(np.fromfile(ids_file, dtype=np.int32).reshape(sets, S, L)
                               .astype(np.int64)).to(dev)
        mask = torch.ones((S, L), dtype=torch.int64, device=dev)
        with torch.inference_mode():
            for i in range(5):
                m16(input_ids=ids[i % sets], attention_mask=mask)
            torch.cuda.synchronize()
            with torch.profiler.profile(activities=[ProfilerActivity.CUDA]) as prof:
                for i in range(5):
                    m16(input_ids=ids[i % sets], attention_mask=mask)
                torch.cuda.synchronize()
        print(f"--- torch fp16 SDPA per-kernel, {label} (sums over 5 batches)")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=90))


def _st_fp16(model_dir):
    import torch
    from sentence_transformers import SentenceTransformer
    m = SentenceTransformer(model_dir, device="cuda")
    m.half()
    return torch, m


def st_mixed(model_dir, corpus):
    """sentence-transformers encode (fp16, GPU) over the whole corpus, texts to normalized
    vectors, tokenization included, at batch sizes 32..1024; prints each and the best."""
    import gzip
    import time
    opener = gzip.open if corpus.endswith(".gz") else open
    texts = [json.loads(l) for l in opener(corpus, "rt")]
    torch, m = _st_fp16(model_dir)
    best = (0, 0.0)
    for bs in (32, 64, 128, 256, 512, 1024):
        m.encode(texts[:2048], batch_size=bs, normalize_embeddings=True)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        m.encode(texts, batch_size=bs, normalize_embeddings=True)
        torch.cuda.synchronize()
        tps = len(texts) / (time.perf_counter() - t0)
        print(f"batch {bs} texts_per_s {tps:.1f}", flush=True)
        if tps > best[1]:
            best = (bs, tps)
    print(f"best batch {best[0]} texts_per_s {best[1]:.1f}", flush=True)


def st_query(model_dir, text):
    """sentence-transformers encode (fp16, GPU) of one text, p50 of 300 after 20 warm-ups."""
    import time
    torch, m = _st_fp16(model_dir)
    times = []
    for i in range(320):
        t0 = time.perf_counter()
        m.encode([text], batch_size=1, normalize_embeddings=True)
        torch.cuda.synchronize()
        if i >= 20:
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"query ms_p50 {1e3 * times[len(times) // 2]:.4f} ms_p99 {1e3 * times[int(len(times) * 0.99)]:.4f}",
          flush=True)


def st_ref(model_dir, corpus, meta, out_prefix):
    """The golden texts (corpus lines at meta's corpus_indices) and sentence-transformers' fp32
    vectors for them on this machine's GPU (TF32 off): OUT.texts (u32 count, then u32 length +
    UTF-8 bytes per text) and OUT.f32 (count x dim, little-endian), for tests/test_cuda_st.c."""
    import gzip
    import struct
    import torch
    from sentence_transformers import SentenceTransformer
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    idx = json.load(open(meta))["corpus_indices"]
    lines = gzip.open(corpus, "rt").read().split("\n")
    texts = []
    for i in idx:
        t = json.loads(lines[i])
        texts.append(t if isinstance(t, str) else t["text"])
    m = SentenceTransformer(model_dir, device="cuda")
    v = m.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=False)
    v.astype("<f4").tofile(out_prefix + ".f32")
    with open(out_prefix + ".texts", "wb") as f:
        f.write(struct.pack("<I", len(texts)))
        for t in texts:
            b = t.encode("utf-8")
            f.write(struct.pack("<I", len(b)))
            f.write(b)
    print(f"st-ref: {len(texts)} texts, dim {v.shape[1]}, {model_dir}")


def main():
    cmd = sys.argv[1]
    if cmd == "export":
        export(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "ids":
        make_ids(sys.argv[2], *(int(x) for x in sys.argv[3:7]))
    elif cmd == "st-ref":
        st_ref(*sys.argv[2:6])
    elif cmd == "st-mixed":
        st_mixed(sys.argv[2], sys.argv[3])
    elif cmd == "st-query":
        st_query(sys.argv[2], sys.argv[3])
    elif cmd == "profile":
        profile(sys.argv[2:])
    elif cmd == "peer":
        peer(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
