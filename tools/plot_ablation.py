#!/usr/bin/env python3
"""Draws an ablation's plots from <out>/summary.json and its runs' CSV files (lmlab ablate calls
this; run it by hand to redraw):

  loss_curves.png  train loss (rolling mean) and whole-split val loss vs tokens: the mean over
                   seeds per variant as a line, the min-max over seeds as a band
  diagnostics.png  per block: gradient norm at init and after warmup, residual-stream RMS at init
                   and at the end, update/weight ratio after warmup (means over seeds)

usage: python3 tools/plot_ablation.py OUT_DIR
Needs python3-matplotlib (Debian). Exits 3 when matplotlib is missing.
"""
import csv
import json
import math
import os
import sys


def read_metrics(path):
    """metrics.csv -> (tokens, train_loss, val_tokens, val_loss) lists."""
    tok, train, vtok, val = [], [], [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                t = float(row["tokens"])
                tok.append(t)
                train.append(float(row["train_loss"]))
                if row.get("val_loss"):
                    vtok.append(t)
                    val.append(float(row["val_loss"]))
            except (KeyError, ValueError):
                continue
    return tok, train, vtok, val


def rolling(values, window):
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def band(series):
    """Equal-length prefix of each seed's series -> (mean, min, max) lists."""
    n = min(len(s) for s in series)
    cols = [[s[i] for s in series] for i in range(n)]
    return ([sum(c) / len(c) for c in cols], [min(c) for c in cols], [max(c) for c in cols])


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        print("plot_ablation: python3-matplotlib is missing (apt-get install python3-matplotlib)",
              file=sys.stderr)
        return 3
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    variants = summary["variants"]
    cmap = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    colors = {v["name"]: cmap(i % cmap.N) for i, v in enumerate(variants)}

    fig, (ax_t, ax_v) = plt.subplots(1, 2, figsize=(13, 5.2))
    for v in variants:
        trains, vals, tokens, vtokens = [], [], None, None
        for r in v["runs"]:
            if r["status"] != "finished":
                continue
            path = os.path.join(out, r["dir"], "metrics.csv")
            if not os.path.exists(path):
                continue
            tok, train, vtok, val = read_metrics(path)
            if not tok:
                continue
            trains.append(rolling(train, 9))
            vals.append(val)
            tokens = tok if tokens is None or len(tok) < len(tokens) else tokens
            vtokens = vtok if vtokens is None or len(vtok) < len(vtokens) else vtokens
        if not trains:
            continue
        c = colors[v["name"]]
        label = "%s (%d seeds)" % (v["name"], len(trains))
        mean, lo, hi = band(trains)
        ax_t.plot(tokens[:len(mean)], mean, color=c, lw=1.4, label=label)
        ax_t.fill_between(tokens[:len(mean)], lo, hi, color=c, alpha=0.12, lw=0)
        if vals and min(len(s) for s in vals) > 0:
            mean, lo, hi = band(vals)
            ax_v.plot(vtokens[:len(mean)], mean, color=c, lw=1.4, marker="o", ms=3, label=label)
            ax_v.fill_between(vtokens[:len(mean)], lo, hi, color=c, alpha=0.12, lw=0)
            for s in vals:  # each seed, thin: a mean hides seeds that failed to train
                ax_v.plot(vtokens[:len(s)], s, color=c, lw=0.6, ls=":", alpha=0.8)
    for ax, title in ((ax_t, "train loss (rolling mean of 9 logged steps)"),
                      (ax_v, "validation loss (whole split; dotted: each seed)")):
        ax.set_xlabel("training tokens")
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    # Zoom on the interesting part: the late curves, not the initial drop from ln(vocab).
    finals = [v["final_val_loss"]["mean"] for v in variants if v.get("final_val_loss")]
    if finals:
        lo_y = min(finals) - 0.15
        hi_y = max(finals) + 0.6
        for ax in (ax_t, ax_v):
            ax.set_ylim(lo_y, hi_y)
    ax_v.legend(fontsize=7, loc="upper right")
    fig.suptitle("%s: mean over seeds, band = min-max over seeds" % summary["name"])
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss_curves.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    panels = [
        (axes[0][0], "grad_norm_init", None, "gradient norm per block at init (step 0)", True),
        (axes[0][1], "grad_norm_after_warmup", None, "gradient norm per block after warmup", True),
        (axes[1][0], "residual_rms_final", "residual_rms_init",
         "residual-stream RMS after each block (solid: end, dashed: init)", True),
        (axes[1][1], "update_ratio_after_warmup", None, "update / weight norm per block after warmup", True),
    ]
    for ax, key, key2, title, logy in panels:
        for v in variants:
            d = v.get("diagnostics", {})
            ys = d.get(key) or []
            if not ys:
                continue
            layers = list(range(len(ys)))
            ax.plot(layers, ys, color=colors[v["name"]], marker="o", ms=3, lw=1.3, label=v["name"])
            if key2 and d.get(key2):
                ax.plot(layers, d[key2], color=colors[v["name"]], ls="--", lw=1.0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("block (0 = nearest the input)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if logy and any(line.get_ydata().size for line in ax.get_lines()):
            ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7)
    steps = [v.get("diagnostics", {}).get("step_after_warmup", -1) for v in variants]
    fig.suptitle("%s: per-layer diagnostics (mean over seeds; 'after warmup' = first eval step "
                 ">= warmup_iters, here step %s)" % (summary["name"], max(steps) if steps else "?"),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "diagnostics.png"), dpi=110)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
