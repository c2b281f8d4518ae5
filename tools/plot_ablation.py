#!/usr/bin/env python3
"""Draws an ablation's plots from <out>/summary.json and its runs' CSV files (lmlab ablate calls
this; run it by hand to redraw):

  loss_curves.png  train loss (rolling mean) and val loss vs tokens: whole-split evaluations as dots,
                   subset estimates between them (metrics.csv val_subset_loss) dashed. A variant whose
                   seeds agree: the median over seeds as a line, the interquartile range as a band.
                   A variant the report calls unstable across seeds: one thin line per seed in its
                   colour, and an x at the end of each seed that did not train (its final val loss
                   in the upper half of the variant's spread) or diverged; never one line that no
                   run followed.
  diagnostics.png  per block: gradient norm at init and after warmup, residual-stream RMS at init
                   and at the end, update/weight ratio after warmup (means over seeds)
  sweep_<axis>.png for every numeric grid axis (a variant name "post-layernorm,n_layer=8" holds
                   the grid point n_layer=8): the final metric of every seed against the axis, the
                   median joined by a line, one line per variant and value of the other axes
  tune.png         a spec with tune: each variant's sweep metric against the tuned value (log x
                   for a wide positive range), its pick circled, values that diverged or did not
                   finish marked x on the top edge

usage: python3 tools/plot_ablation.py OUT_DIR [--log-x]
  --log-x  tokens on a log scale (the late differences of long runs, the early shape of short ones)
Needs python3-matplotlib (Debian). Exits 3 when matplotlib is missing.
"""
import csv
import json
import math
import os
import sys


def read_metrics(path):
    """metrics.csv -> dict of lists: tok, train (loss), vtok, val (whole-split val loss), stok,
    sub (subset estimates of the val loss, train.val_subset_interval; absent in older files)."""
    m = dict(tok=[], train=[], vtok=[], val=[], stok=[], sub=[])
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                t = float(row["tokens"])
                train = float(row["train_loss"])
            except (KeyError, ValueError, TypeError):
                continue
            m["tok"].append(t)
            m["train"].append(train)
            for col, xs, ys in (("val_loss", "vtok", "val"), ("val_subset_loss", "stok", "sub")):
                if row.get(col):
                    m[xs].append(t)
                    m[ys].append(float(row[col]))
    return m


def rolling(values, window):
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def quantile(values, q):
    """The q-quantile of `values`, linear between order statistics (numpy's default)."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def band(series):
    """Equal-length prefix of each seed's series -> (median, 25th, 75th percentile) lists."""
    n = min(len(s) for s in series)
    cols = [[s[i] for s in series] for i in range(n)]
    return ([quantile(c, 0.5) for c in cols], [quantile(c, 0.25) for c in cols],
            [quantile(c, 0.75) for c in cols])


def did_not_train(final, lo, hi):
    """In an unstable variant whose seeds' final val losses span [lo, hi]: a seed in the upper half
    of that spread did not train like the best one (a non-finite one never did)."""
    return not math.isfinite(final) or final > lo + 0.5 * (hi - lo)


def variant_curves(out, v):
    """Each run's (name, status, tokens, rolling train loss, val tokens, val loss), finished or
    diverged, in seed order."""
    curves = []
    for r in v["runs"]:
        if r["status"] not in ("finished", "diverged"):
            continue
        path = os.path.join(out, r["dir"], "metrics.csv")
        if not os.path.exists(path):
            continue
        m = read_metrics(path)
        if m["tok"]:
            m["train"] = rolling(m["train"], 9)
            curves.append(dict(m, seed=r["seed"], status=r["status"]))
    return curves


def draw_spread(ax_t, ax_v, curves, c, label):
    """A stable variant: the median over seeds and the interquartile band (finished runs only)."""
    done = [k for k in curves if k["status"] == "finished"]
    if not done:
        return
    tokens = min((k["tok"] for k in done), key=len)
    mid, lo, hi = band([k["train"] for k in done])
    ax_t.plot(tokens[:len(mid)], mid, color=c, lw=1.4, label=label)
    ax_t.fill_between(tokens[:len(mid)], lo, hi, color=c, alpha=0.15, lw=0)
    vals = [k["val"] for k in done if k["val"]]
    if len(vals) == len(done):
        vtokens = min((k["vtok"] for k in done), key=len)
        mid, lo, hi = band(vals)
        ax_v.plot(vtokens[:len(mid)], mid, color=c, lw=1.4, marker="o", ms=3, label=label)
        ax_v.fill_between(vtokens[:len(mid)], lo, hi, color=c, alpha=0.15, lw=0)
    subs = [k["sub"] for k in done if k["sub"]]
    if subs and len(subs) == len(done):
        stokens = min((k["stok"] for k in done), key=len)
        mid = band(subs)[0]
        ax_v.plot(stokens[:len(mid)], mid, color=c, lw=0.9, ls="--", alpha=0.8)


def draw_seeds(ax_t, ax_v, curves, c, label):
    """An unstable variant: every seed's own curve, an x where a seed did not train or diverged."""
    finals = [k["val"][-1] if k["val"] else math.inf for k in curves]
    finite = [f for f in finals if math.isfinite(f)] or [0.0]
    lo, hi = min(finite), max(finite)
    for i, k in enumerate(curves):
        ax_t.plot(k["tok"], k["train"], color=c, lw=0.8, alpha=0.85,
                  label=label if i == 0 else None)
        if k["val"]:
            ax_v.plot(k["vtok"], k["val"], color=c, lw=0.8, marker="o", ms=2.5, alpha=0.85,
                      label=label if i == 0 else None)
        if k["sub"]:
            ax_v.plot(k["stok"], k["sub"], color=c, lw=0.6, ls="--", alpha=0.7)
        if k["status"] == "diverged" or did_not_train(finals[i], lo, hi):
            ax_t.plot(k["tok"][-1], k["train"][-1], marker="x", ms=9, mew=2, color=c)
            if k["val"]:
                ax_v.plot(k["vtok"][-1], k["val"][-1], marker="x", ms=9, mew=2, color=c)


def unstable_variants(summary):
    return {c["variant"] for c in summary.get("comparisons", []) if c.get("unstable")}


def draw_loss_curves(out, summary, plt, log_x):
    variants = summary["variants"]
    cmap = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    unstable = unstable_variants(summary)
    fig, (ax_t, ax_v) = plt.subplots(1, 2, figsize=(13, 5.2))
    finals, estimated = [], False
    for i, v in enumerate(variants):
        curves = variant_curves(out, v)
        if not curves:
            continue
        estimated = estimated or any(k["sub"] for k in curves)
        c = cmap(i % cmap.N)
        if v["name"] in unstable:
            label = "%s (%d seeds, unstable: each seed; x = did not train)" % (v["name"], len(curves))
            draw_seeds(ax_t, ax_v, curves, c, label)
        else:
            draw_spread(ax_t, ax_v, curves, c, "%s (%d seeds)" % (v["name"], len(curves)))
        finals += [k["val"][-1] for k in curves if k["val"] and math.isfinite(k["val"][-1])]
    val_title = ("validation loss (dots: whole split; dashed: estimate on a fixed subset)"
                 if estimated else "validation loss (whole split)")
    for ax, title in ((ax_t, "train loss (rolling mean of 9 logged steps)"), (ax_v, val_title)):
        ax.set_xlabel("training tokens" + (" (log scale)" if log_x else ""))
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        if log_x:
            ax.set_xscale("log")
    if finals:  # zoom on the late curves, not the first drop from ln(vocab)
        for ax in (ax_t, ax_v):
            ax.set_ylim(min(finals) - 0.15, max(finals) + 0.6)
    ax_v.legend(fontsize=7, loc="upper right")
    fig.suptitle("%s: median over seeds, band = interquartile range; unstable variants: one line "
                 "per seed" % summary["name"])
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss_curves.png"), dpi=110)
    plt.close(fig)


def main():
    args = [a for a in sys.argv[1:] if a != "--log-x"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = args[0]
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
    draw_loss_curves(out, summary, plt, "--log-x" in sys.argv[1:])
    draw_diagnostics(out, summary, plt, MaxNLocator)
    draw_sweeps(out, summary, plt)
    if summary.get("tune"):
        draw_tune(out, summary, plt)
    return 0


def draw_diagnostics(out, summary, plt, MaxNLocator):
    variants = summary["variants"]
    cmap = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    colors = {v["name"]: cmap(i % cmap.N) for i, v in enumerate(variants)}
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


def grid_point(name):
    """'post-layernorm,lr=1.0e-3,n_layer=8' -> ('post-layernorm', {'lr': 0.001, 'n_layer': 8.0});
    a value that is not a number keeps the point in the variant's part."""
    base, point = [], {}
    for part in name.split(","):
        key, eq, value = part.partition("=")
        try:
            if not eq:
                raise ValueError
            point[key] = float(value)
        except ValueError:
            base.append(part)
    return ",".join(base), point


def draw_sweeps(out, summary, plt):
    """sweep_<axis>.png for every grid axis with two or more numeric values."""
    metric = summary.get("metric", "final_val_loss")
    rows = []  # (variant part, grid point, [metric of each finished seed])
    for v in summary["variants"]:
        base, point = grid_point(v["name"])
        got = [r["result"][metric] for r in v["runs"]
               if r["status"] == "finished" and isinstance(r.get("result", {}).get(metric), float)]
        rows.append((base, point, got))
    axes = sorted({k for _, p, _ in rows for k in p})
    for axis in axes:
        if len({p[axis] for _, p, _ in rows if axis in p}) < 2:
            continue
        series = {}  # (variant part, the other axes' values) -> [(x, seeds)]
        for base, point, got in rows:
            if axis in point and got:
                rest = ",".join("%s=%g" % (k, point[k]) for k in sorted(point) if k != axis)
                series.setdefault((base, rest), []).append((point[axis], got))
        fig, ax = plt.subplots(figsize=(7.5, 5))
        cmap = plt.get_cmap("tab10" if len(series) <= 10 else "tab20")
        for i, ((base, rest), pts) in enumerate(sorted(series.items())):
            pts.sort()
            c = cmap(i % cmap.N)
            label = ", ".join(x for x in (base, rest) if x) or "all runs"
            ax.plot([x for x, _ in pts], [quantile(g, 0.5) for _, g in pts], color=c, lw=1.4,
                    marker="o", ms=4, label=label)
            for x, g in pts:
                ax.scatter([x] * len(g), g, color=c, s=12, alpha=0.6)
        values = sorted({x for pts in series.values() for x, _ in pts})
        if min(values) > 0 and max(values) / min(values) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(values)
        ax.set_xticklabels(["%g" % x for x in values])
        ax.set_xlabel(axis)
        ax.set_ylabel(metric.replace("_", " ") + " (nats/token)")
        ax.set_title("%s: %s against %s (dots: seeds, line: median)" % (summary["name"], metric, axis))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "sweep_%s.png" % axis), dpi=110)
        plt.close(fig)


def draw_tune(out, summary, plt):
    """tune.png: the sweep's metric against the tuned value, one line per variant."""
    tune = summary["tune"]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    cmap = plt.get_cmap("tab10" if len(tune["variants"]) <= 10 else "tab20")
    numeric = all(is_number(p["value"]) for v in tune["variants"] for p in v["points"])
    xs_all = []
    failed = []  # (x, colour) of values that diverged or did not finish
    for i, v in enumerate(tune["variants"]):
        c = cmap(i % cmap.N)
        pts = [(float(p["value"]) if numeric else j, p) for j, p in enumerate(v["points"])]
        xs_all += [x for x, _ in pts]
        ok = [(x, p["metric"]) for x, p in pts if isinstance(p["metric"], (int, float))]
        failed += [(x, c) for x, p in pts if not isinstance(p["metric"], (int, float))]
        ax.plot([x for x, _ in ok], [y for _, y in ok], color=c, lw=1.4, marker="o", ms=4,
                label="%s (picked %s)" % (v["name"], v["picked"]))
        for x, p in pts:
            if p["value"] == v["picked"]:
                ax.scatter([x], [p["metric"]], s=120, facecolors="none", edgecolors=c, lw=1.6)
    if failed:
        top = ax.get_ylim()[1]
        for x, c in failed:
            ax.scatter([x], [top], marker="x", color=c, s=40, clip_on=False)
    values = sorted(set(xs_all))
    if numeric and min(values) > 0 and max(values) / min(values) >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(values)
    labels = [p["value"] for p in tune["variants"][0]["points"]]
    ax.set_xticklabels(["%g" % x for x in values] if numeric else labels)
    ax.set_xlabel(tune["key"])
    ax.set_ylabel(tune["metric"].replace("_", " ") + " (nats/token)")
    ax.set_title("%s: tuning sweep on seed %d (circled: each variant's pick; x: diverged)"
                 % (summary["name"], tune["seed"]), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "tune.png"), dpi=110)
    plt.close(fig)


def is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
