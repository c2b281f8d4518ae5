#!/usr/bin/env python3
"""Draws train (and val, where present: whole-split points, subset estimates dashed) loss against
step from an lmlab metrics.csv.

usage: plot_metrics.py METRICS_CSV OUT_PNG [--title TITLE]
Needs Debian's python3-matplotlib (run it with /usr/bin/python3).
"""
import argparse
import csv
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("csv")
    ap.add_argument("png")
    ap.add_argument("--title", default="lmlab")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_metrics.py: matplotlib is missing (apt-get install python3-matplotlib)",
              file=sys.stderr)
        return 1
    steps, train, vsteps, val, ssteps, sub = [], [], [], [], [], []
    with open(args.csv) as f:
        for row in csv.DictReader(f):
            steps.append(int(row["step"]))
            train.append(float(row["train_loss"]))
            if row.get("val_loss"):
                vsteps.append(int(row["step"]))
                val.append(float(row["val_loss"]))
            if row.get("val_subset_loss"):  # train.val_subset_interval
                ssteps.append(int(row["step"]))
                sub.append(float(row["val_subset_loss"]))
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(steps, train, lw=0.8, alpha=0.6, label="train (per step)")
    if val:
        ax.plot(vsteps, val, "o-", lw=1.8, ms=3, label="val (whole split)")
    if sub:
        ax.plot(ssteps, sub, "--", lw=1.0, label="val (estimate on a fixed subset)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
