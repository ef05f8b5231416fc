"""gpu_bindings.py BUILD MODEL_DIR — the library as programs use it, on a GPU (scripts/gpu-check.sh,
step `bindings`): bindings/python/sembed.py over BUILD/libsembed.so and the BUILD/sembed binary
with --device cuda / auto, against the CPU's fp32 vectors of the same texts (the golden corpus's
first 300): cosine >= 0.9999 in fp16 (0.999 in bf16), the binary's vectors the same bits as the
binding's, `auto` on the GPU, int8 refused on CUDA and kept on the CPU by `auto`. Exits 1 on any
failure, 77 without a GPU."""
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import sembed  # noqa: E402

build, model = sys.argv[1], sys.argv[2]
lib = os.path.join(build, "libsembed.so")
with gzip.open(os.path.join(ROOT, "tests/golden/tokenizer/corpus.jsonl.gz"), "rt") as f:
    texts = [json.loads(line) for _, line in zip(range(300), f)]
texts = [t for t in texts if "\x00" not in t]  # the CLI takes NUL-terminated arguments
failures = []


def check(ok, what):
    print("%s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


try:
    gpu = sembed.Model(model, device="cuda", lib=lib)
except sembed.SembedError as e:
    print("no usable CUDA device (%s): skipped" % e)
    sys.exit(77)
with sembed.Model(model, device="cpu", lib=lib) as cpu:
    ref = cpu.encode(texts)
check(gpu.device == "cuda:0", "device=cuda runs on %s" % gpu.device)
v16 = gpu.encode(texts)
cos16 = (v16.astype(np.float64) * ref).sum(1)
check(cos16.min() >= 0.9999, "python device=cuda fp16: min cosine to the CPU's fp32 %.7f over %d texts"
      % (cos16.min(), len(texts)))
one = gpu.encode(texts[7])
check(one.tobytes() == v16[7].tobytes(), "python device=cuda: a text alone gives its bits in the batch")
with sembed.Model(model, device="cuda", precision="bf16", lib=lib) as g16:
    vb = g16.encode(texts)
cosb = (vb.astype(np.float64) * ref).sum(1)
check(cosb.min() >= 0.999, "python device=cuda bf16: min cosine %.7f" % cosb.min())
try:
    sembed.Model(model, device="cuda", precision="int8", lib=lib)
    check(False, "int8 with device=cuda refused")
except sembed.SembedError as e:
    check(e.name == "UNSUPPORTED" and "'int8'" in str(e), "int8 with device=cuda refused: %s" % e)
with sembed.Model(model, device="auto", precision="int8", lib=lib) as a8, \
        sembed.Model(model, device="cpu", precision="int8", lib=lib) as c8:
    check(a8.device == "cpu", "int8 with device=auto runs on %s" % a8.device)
    check(a8.encode(texts[:20]).tobytes() == c8.encode(texts[:20]).tobytes(),
          "int8 with device=auto: the CPU's int8 bits")

with tempfile.TemporaryDirectory() as d:
    for dev in ("cuda", "auto"):
        out = os.path.join(d, dev + ".raw")
        r = subprocess.run([os.path.join(build, "sembed"), "embed", "-m", model, "-d", dev, "-f", "raw",
                            "-o", out, "--", *texts], capture_output=True, text=True)
        got = open(out, "rb").read() if r.returncode == 0 else b""
        check(got == v16.tobytes(), "sembed embed -d %s: the binding's GPU bits (rc %d %s)"
              % (dev, r.returncode, r.stderr.strip()[-200:]))
    r = subprocess.run([os.path.join(build, "sembed"), "embed", "-m", model, "-d", "cuda", "--precision",
                        "int8", "x"], capture_output=True, text=True)
    check(r.returncode == 1 and "'int8'" in r.stderr, "sembed embed -d cuda --precision int8 refused")
gpu.close()
print("gpu_bindings: %d failures" % len(failures))
sys.exit(1 if failures else 0)
