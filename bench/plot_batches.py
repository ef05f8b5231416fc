#!/usr/bin/env python3
"""plot_batches.py RESULTS_JSON OUT_PNG — draws the `batches` table that `sembed bench --device
cuda` wrote: ms per batch on the CPU and on the GPU against the batch size (log-log), the
speedup on a second axis, and the batch size from which the GPU wins. Needs matplotlib."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    r = json.load(open(sys.argv[1]))
    rows = r["rows"]
    b = [x["batch"] for x in rows]
    cpu = [x["ms_p50"] for x in rows]
    gpu = [x.get("gpu_ms_p50", 0) for x in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.loglog(b, cpu, "o-", label=f"CPU, {r['threads']} threads")
    if any(gpu):
        ax.loglog(b, gpu, "s-", label=f"GPU, {r.get('card', '')}")
        ax2 = ax.twinx()
        ax2.semilogx(b, [c / g for c, g in zip(cpu, gpu)], "k:", label="speedup")
        ax2.set_ylabel("speedup (CPU ms / GPU ms)")
        ax2.legend(loc="lower right")
        w = r.get("gpu_wins_from_batch", -1)
        if w and w > 0:
            ax.axvline(w, color="gray", lw=0.8)
            ax.text(w, max(cpu), f" GPU wins from {w}", va="top", fontsize=8)
    ax.set_xlabel("texts per batch (mixed corpus)")
    ax.set_ylabel("ms per batch (p50)")
    ax.set_title(f"sembed batches: {r['model'].rstrip('/').split('/')[-1]}")
    ax.legend(loc="upper left")
    ax.grid(True, which="both", lw=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
