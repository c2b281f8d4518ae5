#!/usr/bin/python3
"""Tokens/s and MFU of lmlab and PyTorch against width and context: docs/perf_scaling.png.

Usage (Debian's interpreter, which has python3-torch and matplotlib):
    /usr/bin/python3 tools/perf_scaling.py [--lmlab build/lmlab] [--steps 10] [--threads 2]
                                           [--out docs/perf_scaling.png]

The model is configs/nanogpt_cpu.yaml (4 layers, head size 32, GELU MLP, Pre-LN) with 2048 tokens
per step: the width sweep d = 64, 128, 256, 512 at T = 64 (B 32, n_head = d / 32); the context
sweep T = 32 ... 512 at d = 128 (B = 2048 / T). Each point runs `lmlab bench` and then
tools/bench_torch.py (same OpenBLAS library and kernels, PyTorch at its best thread count from 1 to
--threads), one after the other. MFU of both is against the sgemm peak lmlab measures. Writes the
PNG and a CSV beside it (every number), and prints the table.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_point(lmlab, sets, steps, threads, peak_n):
    base = [lmlab, "bench", os.path.join(ROOT, "configs/nanogpt_cpu.yaml"), "--threads", str(threads)]
    for s in sets:
        base += ["--set", s]
    a = json.loads(subprocess.run(base + ["--steps", str(steps), "--warmup", "2", "--peak-n", str(peak_n),
                                          "--json"], check=True, capture_output=True, text=True).stdout)
    resolved = subprocess.run(base + ["--resolved"], check=True, capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(resolved)
    env = dict(os.environ, OPENBLAS_CORETYPE=a["blas_core"],
               LD_LIBRARY_PATH=os.path.dirname(a["blas_library"]))
    b = json.loads(subprocess.run(["/usr/bin/python3", os.path.join(HERE, "bench_torch.py"), f.name,
                                   "--steps", str(steps), "--warmup", "2", "--threads", str(threads),
                                   "--best-threads"], check=True, capture_output=True, text=True,
                                  env=env).stdout)
    os.unlink(f.name)
    return a, b, json.loads(resolved)["flops_per_token"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lmlab", default=os.path.join(ROOT, "build/lmlab"))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/perf_scaling.png"))
    a = ap.parse_args()
    points = [("width", d, [f"model.n_embd={d}", f"model.n_head={d // 32}", "model.block_size=64",
                            "train.batch_size=32"]) for d in (64, 128, 256, 512)]
    points += [("context", t, ["model.n_embd=128", "model.n_head=4", f"model.block_size={t}",
                               f"train.batch_size={2048 // t}"]) for t in (32, 64, 128, 256, 512)]
    rows, peak = [], 0.0
    for sweep, x, sets in points:
        lm, pt, fpt = run_point(a.lmlab, sets, a.steps, a.threads, 0 if peak else 2048)
        peak = peak or lm["peak_gflops"]
        row = dict(sweep=sweep, x=x, lmlab_tok_s=lm["tokens_per_s"], torch_tok_s=pt["tokens_per_s"],
                   lmlab_mfu=lm["gflops"] / peak, torch_mfu=fpt * pt["tokens_per_s"] / 1e9 / peak,
                   ratio=lm["tokens_per_s"] / pt["tokens_per_s"], torch_threads=pt["threads"],
                   flops_per_token=fpt, peak_gflops=peak)
        rows.append(row)
        print(f"{sweep:8} {x:4}: lmlab {row['lmlab_tok_s']:8.0f} tok/s ({100 * row['lmlab_mfu']:4.1f}% MFU)  "
              f"pytorch {row['torch_tok_s']:8.0f} tok/s ({100 * row['torch_mfu']:4.1f}% MFU, "
              f"{pt['threads']} thr)  ratio {row['ratio']:.2f}", flush=True)
    csv_path = os.path.splitext(a.out)[0] + ".csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    for col, (sweep, label) in enumerate([("width", "width d (T 64, 4 layers, head size 32)"),
                                          ("context", "context T (d 128, 4 layers, B = 2048 / T)")]):
        rs = [r for r in rows if r["sweep"] == sweep]
        xs = [r["x"] for r in rs]
        for name, key, style in [("lmlab", "lmlab", "o-"), ("PyTorch 1.13 (eager)", "torch", "s--")]:
            ax[0][col].plot(xs, [r[f"{key}_tok_s"] for r in rs], style, label=name)
            ax[1][col].plot(xs, [100 * r[f"{key}_mfu"] for r in rs], style, label=name)
        for row in (0, 1):
            ax[row][col].set_xscale("log", base=2)
            ax[row][col].set_xticks(xs)
            ax[row][col].set_xticklabels([str(x) for x in xs])
            ax[row][col].grid(alpha=0.3)
            ax[row][col].legend()
        ax[0][col].set_yscale("log")
        ax[0][col].set_ylabel("tokens/s (training step)")
        ax[1][col].set_ylabel(f"MFU, % of sgemm peak {peak:.0f} GFLOP/s")
        ax[1][col].set_xlabel(label)
    fig.suptitle(f"Training-step throughput, {a.threads} threads, 2048 tokens/step (tools/perf_scaling.py)")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out} and {csv_path}")


if __name__ == "__main__":
    sys.exit(main())
