#!/usr/bin/python3
"""Overlays the loss curves of several lmlab-style metrics.csv files on one PNG: the train loss
smoothed (a centred moving average) and the val loss as points, full run on the left, the second
half zoomed on the right.

usage: plot_overlay.py OUT_PNG CSV:LABEL [CSV:LABEL ...] [--title TITLE] [--window 51]
Needs Debian's python3-matplotlib (run it with /usr/bin/python3).
"""
import argparse
import csv
import importlib.util
import sys


def read(path):
    """(steps, train losses, val steps, val losses) of a metrics.csv."""
    steps, train, vsteps, val = [], [], [], []
    with open(path) as f:
        for row in csv.DictReader(f):
            steps.append(int(row["step"]))
            train.append(float(row["train_loss"]))
            if row.get("val_loss"):
                vsteps.append(int(row["step"]))
                val.append(float(row["val_loss"]))
    return steps, train, vsteps, val


def smooth(values, window):
    """Centred moving average. Near the start the window shrinks symmetrically (the first point is
    the raw value, so the fast early drop is not smeared); near the end it is cut off one-sided
    (the slow late curve is not left to one noisy batch)."""
    n, out = len(values), []
    prefix = [0.0]
    for v in values:
        prefix.append(prefix[-1] + v)
    for i in range(n):
        half = min(window // 2, i)
        lo, hi = i - half, min(n, i + half + 1)
        out.append((prefix[hi] - prefix[lo]) / (hi - lo))
    return out


def plot(runs, out_png, title="", window=51):
    """runs: [(csv path, label)]. Writes out_png."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    data = [(read(path), label) for path, label in runs]
    last = max(d[0][-1] for d, _ in data)
    for k, ((steps, train, vsteps, val), label) in enumerate(data):
        color = colors[k % len(colors)]
        smoothed = smooth(train, window)
        for ax in axes:
            ax.plot(steps, smoothed, lw=1.2, color=color, alpha=0.8,
                    label=f"{label} train ({window}-step mean)")
            ax.plot(vsteps, val, "o--", lw=1, ms=4, color=color,
                    label=f"{label} val (final {val[-1]:.4f})")
    axes[0].set_title(title or "loss")
    zoom_from = last // 2
    axes[1].set_xlim(zoom_from, last * 1.02)
    ys = [v for (steps, train, vsteps, val), _ in data
          for s, v in list(zip(steps, smooth(train, window))) + list(zip(vsteps, val)) if s >= zoom_from]
    if ys:
        pad = 0.05 * (max(ys) - min(ys) + 1e-3)
        axes[1].set_ylim(min(ys) - pad, max(ys) + pad)
    axes[1].set_title(f"zoom: steps {zoom_from} to {last}")
    for ax in axes:
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("png")
    ap.add_argument("runs", nargs="+", metavar="CSV:LABEL")
    ap.add_argument("--title", default="")
    ap.add_argument("--window", type=int, default=51)
    args = ap.parse_args()
    if importlib.util.find_spec("matplotlib") is None:
        print("plot_overlay.py: matplotlib is missing (apt-get install python3-matplotlib)", file=sys.stderr)
        return 1
    runs = [tuple(r.rsplit(":", 1)) if ":" in r else (r, r) for r in args.runs]
    plot(runs, args.png, args.title, args.window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
