#!/usr/bin/python3
"""Trains a YAML recipe (default configs/nanogpt_cpu.yaml) in PyTorch and in lmlab on the same data
and compares the validation losses: the recipe check of docs/recipe.md.

Usage (Debian's interpreter, which has python3-torch, numpy, yaml and matplotlib):
    /usr/bin/python3 tools/recipe_check.py --lmlab build/lmlab
    /usr/bin/python3 tools/recipe_check.py --lmlab build/lmlab --set train.max_iters=50 --init lmlab

Both sides get the config plus every --set and train.threads=N (2 by default). The PyTorch side
mirrors the trainer (train/run/trainer.cpp) piece by piece:
    data       the corpus (a file, or a directory's regular files except .dat, symlinks and hidden
               ones, sorted by name, concatenated), the char tokenizer (sorted set of code points),
               the split (n_train = floor(n (1 - val_fraction))) and the SAME batches: lmlab's
               counter-based sampler ported bit for bit (data_gen seed = train.seed + 1)
    model      tools/torch_reference.py's TransformerLM (the twin checked by the parity test)
    init       --init torch (default): torch.manual_seed(seed), N(0, init_std) for matrices and
               embeddings, init_std / sqrt(2 n_layer) for residual projections (wo, proj, w2),
               biases 0, norm gains 1: the same distribution as lmlab, other draws;
               --init lmlab: lmlab's exact draws (Tensor::randn ported), for pipeline checks
    optimizer  torch.optim.AdamW, decay on dim >= 2 only, clip_grad_norm_, lmlab's warmup + cosine
    precision  train.precision bf16: every forward (training and eval) under
               torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's mixed precision beside
               lmlab's (autograd/autocast.h); fp32 otherwise
    eval       the whole validation split in non-overlapping block_size windows, batches of
               max(B, 8192 / T) rows, token-weighted mean; at step 0, every eval_interval, the last
Both run with OMP_WAIT_POLICY=PASSIVE unless the environment sets it (see the comment below).
Writes OUT/torch/metrics.csv (lmlab's columns), OUT/lmlab/ (lmlab's run), the overlay PNG, and
prints final / best val losses, their difference and median tokens/s. Exit status 1 when the final
val losses differ by more than --tolerance (0.03).
"""
import argparse
import contextlib
import copy
import csv
import math
import os
import subprocess
import sys
import time

# libgomp's default wait policy spins: on a machine shared with other jobs, 2 OpenMP threads then
# run 4-15x slower (measured for both sides, docs/recipe.md). Passive waiting for both, unless set.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference  # noqa: E402
import plot_overlay  # noqa: E402

MASK = (1 << 64) - 1
HEADER = ["step", "tokens", "lr", "train_loss", "val_loss", "val_bpb", "val_subset_loss",
          "grad_norm", "clipped", "tokens_per_s", "elapsed_s"]


# ---------------------------------------------------------------- autograd/random.h, bit for bit
def mix64(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK
    return z ^ (z >> 31)


def random_bits(seed, counter):
    return mix64(mix64((seed + 0x9e3779b97f4a7c15) & MASK) ^ ((counter * 0xd1b54a32d192ed03) & MASK))


def uniform01(bits):
    return float(bits >> 11) * 2.0 ** -53


def randn_lmlab(n, seed, offset, std):
    """Tensor::randn's fill_normal: std * normal01(random_bits(seed, offset + i)), float64 -> float32."""
    u64 = np.uint64
    with np.errstate(over="ignore"):
        def mix(z):
            z = (z ^ (z >> u64(30))) * u64(0xbf58476d1ce4e5b9)
            z = (z ^ (z >> u64(27))) * u64(0x94d049bb133111eb)
            return z ^ (z >> u64(31))
        key = mix(np.array([(seed + 0x9e3779b97f4a7c15) & MASK], dtype=np.uint64))[0]
        counters = np.arange(offset, offset + n, dtype=np.uint64)
        bits = mix(key ^ (counters * u64(0xd1b54a32d192ed03)))
    u1 = ((bits >> u64(32)).astype(np.float64) + 1.0) * 2.0 ** -32
    u2 = (bits & u64(0xffffffff)).astype(np.float64) * 2.0 ** -32
    return (0.0 + std * (np.sqrt(-2.0 * np.log(u1)) * np.cos(6.283185307179586 * u2))).astype(np.float32)


# ---------------------------------------------------------------- data/: corpus, tokenizer, dataset
def load_corpus(path):
    """data/corpus.cpp: one file, or a directory's regular files (no symlink, .dat or hidden file)
    in byte order of their names, concatenated; strict UTF-8."""
    if not os.path.isdir(path):
        return open(path, "rb").read().decode("utf-8")
    names = sorted((e.name for e in os.scandir(path)
                    if not e.is_symlink() and e.is_file(follow_symlinks=False)
                    and not e.name.startswith(".") and not e.name.endswith(".dat")),
                   key=lambda s: s.encode("utf-8", "surrogateescape"))
    return b"".join(open(os.path.join(path, n), "rb").read() for n in names).decode("utf-8")


class Dataset:
    """data/dataset.cpp: split, sample_batch (counter-based starts) and the eval batches."""

    def __init__(self, tokens, val_fraction):
        self.tokens = tokens
        self.n_train = int(math.floor(len(tokens) * (1 - val_fraction)))
        self.offset = 0  # the data generator's offset; its seed is given per call

    def sample_batch(self, B, T, seed):
        rng = self.n_train - T
        first, self.offset = self.offset, self.offset + B
        starts = [min(int(uniform01(random_bits(seed, first + b)) * rng), rng - 1) for b in range(B)]
        w = np.stack([self.tokens[s:s + T + 1] for s in starts])
        return torch.from_numpy(w[:, :T]), torch.from_numpy(w[:, 1:])

    def eval_batches(self, B, T):
        """Full windows B at a time, then the short last window alone."""
        val = self.tokens[self.n_train:]
        p = len(val) - 1
        full = p // T
        for i in range(0, full, B):
            rows = np.stack([val[s:s + T + 1] for s in range(i * T, min(i + B, full) * T, T)])
            yield torch.from_numpy(rows[:, :T]), torch.from_numpy(rows[:, 1:])
        if p % T:
            w = val[full * T:][None, :]
            yield torch.from_numpy(w[:, :-1]), torch.from_numpy(w[:, 1:])


# ---------------------------------------------------------------- optim/schedule.cpp
def lr_at(o, it, decay_iters):
    if it < o["warmup_iters"]:
        return o["lr"] * (it + 1) / o["warmup_iters"]
    if o["schedule"] == "constant":
        return o["lr"]
    if it >= decay_iters:
        return o["min_lr"]
    ratio = (it - o["warmup_iters"]) / (decay_iters - o["warmup_iters"])
    return o["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (o["lr"] - o["min_lr"])


# ---------------------------------------------------------------- the recipe
def load_config(path, sets, threads, lmlab):
    """The config file with every model option it leaves out at the option table's default (from
    `build/lmlab options --json`, as lmlab reads it), then the --set overrides."""
    cfg = yaml.safe_load(open(path))
    defaults = {o["name"]: o["default"] for o in torch_reference.load_options(lmlab, None)}
    cfg["model"] = dict(defaults, **(cfg.get("model") or {}))
    for s in sets + [f"train.threads={threads}"]:
        key, _, value = s.partition("=")
        section, _, name = key.partition(".")
        if section not in cfg or name not in cfg[section]:
            sys.exit(f"recipe_check: --set {s}: no key {key} in {path}")
        cfg[section][name] = yaml.safe_load(value)
    return cfg


def init_std(name, c):
    """nn/attention.cpp, nn/mlp.cpp: std of a random weight; DeepNet's beta as lmlab."""
    beta = (8.0 * c["n_layer"]) ** -0.25 if c["norm_placement"] == "deepnorm" else 1.0
    out = c["init_std"] / math.sqrt(2.0 * c["n_layer"]) * beta
    if name.endswith(("attn.wo.weight", "mlp.proj.weight", "mlp.w2.weight")):
        return out
    if name.endswith(("attn.wv.weight", "mlp.fc.weight", "mlp.w1.weight", "mlp.w3.weight")):
        return c["init_std"] * beta
    return c["init_std"]


def initialize(model, c, seed, kind):
    """Random weights are the dim >= 2 parameters, drawn in registration order (lmlab's order);
    norm gains (known by the module that owns them, not by name) start at 1, biases at 0."""
    gains = {id(p) for mod in model.modules() if isinstance(mod, (torch_reference.Norm, torch_reference.HeadRmsNorm))
             for leaf, p in mod.named_parameters(recurse=False) if leaf == "weight"}
    torch.manual_seed(seed)
    offset = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() < 2:
                p.fill_(1.0 if id(p) in gains else 0.0)
            elif kind == "torch":
                p.normal_(0.0, init_std(name, c))
            else:
                p.copy_(torch.from_numpy(randn_lmlab(p.numel(), seed, offset, init_std(name, c))).view(p.shape))
                offset += p.numel()


def autocast(precision):
    """PyTorch's mixed precision for train.precision bf16 (matmuls in bf16, losses in fp32)."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def evaluate(model, data, batch, T, precision):
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in data.eval_batches(batch, T):
            with autocast(precision):
                loss = F.cross_entropy(model(x).view(-1, model.c["vocab_size"]).float(), y.reshape(-1))
            total += loss.item() * y.numel()
            count += y.numel()
    return total / count


def train_torch(cfg, init_kind, out_csv):
    m, d, o, r = cfg["model"], cfg["data"], cfg["optim"], cfg["train"]
    if d["tokenizer"] != "char" or m["dropout"] != 0 or o["name"] != "adamw":
        sys.exit("recipe_check: the PyTorch side supports the char tokenizer, dropout 0 and adamw")
    torch.set_num_threads(int(r["threads"]))
    text = load_corpus(d["corpus"])
    vocab = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    data = Dataset(np.array([index[ch] for ch in text], dtype=np.int64), float(d["val_fraction"]))
    c = dict(m, vocab_size=len(vocab), n_kv_head=m["n_kv_head"] or m["n_head"])  # 0: = n_head
    for k in ("rope_base", "norm_eps", "init_std"):
        c[k] = float(c[k])
    model = torch_reference.TransformerLM(c)
    initialize(model, c, int(r["seed"]), init_kind)
    opt = torch.optim.AdamW(torch_reference.adamw_groups(model, float(o["weight_decay"])), lr=float(o["lr"]),
                            betas=(float(o["beta1"]), float(o["beta2"])), eps=float(o["eps"]))
    o = {k: (float(v) if k in ("lr", "min_lr") else v) for k, v in o.items()}
    B, T, steps, accum = r["batch_size"], m["block_size"], r["max_iters"], r["grad_accum"]
    decay_iters = o["decay_iters"] if o["decay_iters"] > 0 else steps
    eval_batch = max(B, 8192 // T)
    data_seed = int(r["seed"]) + 1
    print(f"torch: {sum(p.numel() for p in model.parameters())} parameters, {len(vocab)} symbols, "
          f"{data.n_train} train / {len(text) - data.n_train} val tokens, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, init {init_kind}", flush=True)
    rows, t0, val = [], time.perf_counter(), float("nan")
    for it in range(steps):
        ts = time.perf_counter()
        lr = lr_at(o, it, decay_iters)
        for g in opt.param_groups:
            g["lr"] = lr
        loss_sum = 0.0
        for _ in range(accum):
            x, y = data.sample_batch(B, T, data_seed)
            with autocast(r["precision"]):
                loss = F.cross_entropy(model(x).view(-1, c["vocab_size"]).float(), y.reshape(-1))
            loss_sum += loss.item()
            (loss / accum if accum > 1 else loss).backward()
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float(o["grad_clip"])))
        opt.step()
        opt.zero_grad(set_to_none=True)
        rate = B * T * accum / max(time.perf_counter() - ts, 1e-9)
        is_eval = (it + 1) % r["eval_interval"] == 0 or it + 1 == steps or it == 0
        if is_eval:
            val = evaluate(model, data, eval_batch, T, r["precision"])
            print(f"torch: step {it + 1}/{steps} | loss {loss_sum / accum:.4f} | val {val:.4f} | "
                  f"lr {lr:.2e} | {rate:.0f} tok/s", flush=True)
        rows.append([it, (it + 1) * B * T * accum, f"{lr:.7g}", f"{loss_sum / accum:.7g}",
                     f"{val:.7g}" if is_eval else "", "", "", f"{norm:.7g}", int(norm > float(o["grad_clip"])),
                     f"{rate:.7g}", f"{time.perf_counter() - t0:.7g}"])
    os.makedirs(os.path.dirname(out_csv), exist_ok=True)
    with open(out_csv, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([HEADER] + rows)


def summary(path):
    """final and best val loss, median tokens/s and wall time of a metrics.csv."""
    rows = list(csv.DictReader(open(path)))
    vals = [float(r["val_loss"]) for r in rows if r["val_loss"]]
    rates = sorted(float(r["tokens_per_s"]) for r in rows)
    return dict(final=vals[-1], best=min(vals), tok_s=rates[len(rates) // 2], steps=len(rows),
                elapsed=float(rows[-1]["elapsed_s"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/nanogpt_cpu.yaml")
    ap.add_argument("--lmlab", default="build/lmlab", help="the lmlab binary")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="for both sides")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", choices=("torch", "lmlab"), default="torch")
    ap.add_argument("--out", default="runs/recipe_check", help="folder for both runs")
    ap.add_argument("--plot", default="docs/recipe_overlay.png")
    ap.add_argument("--tolerance", type=float, default=0.03)
    ap.add_argument("--skip-torch", action="store_true", help="reuse OUT/torch/metrics.csv")
    ap.add_argument("--skip-lmlab", action="store_true", help="reuse OUT/lmlab/metrics.csv")
    args = ap.parse_args()
    cfg = load_config(args.config, args.set, args.threads, args.lmlab)
    torch_csv = os.path.join(args.out, "torch", "metrics.csv")
    lmlab_dir = os.path.join(args.out, "lmlab")
    if not args.skip_torch:
        train_torch(copy.deepcopy(cfg), args.init, torch_csv)
    if not args.skip_lmlab:
        cmd = [args.lmlab, "train", args.config, "--run-dir", lmlab_dir, "--set", f"train.threads={args.threads}"]
        for s in args.set:
            cmd += ["--set", s]
        print("lmlab:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    a, b = summary(os.path.join(lmlab_dir, "metrics.csv")), summary(torch_csv)
    diff = a["final"] - b["final"]
    for name, s in (("lmlab", a), ("torch", b)):
        print(f"{name}: final val {s['final']:.4f}, best val {s['best']:.4f}, median {s['tok_s']:.0f} tok/s, "
              f"{s['steps']} steps in {s['elapsed']:.0f} s")
    print(f"final val difference lmlab - torch = {diff:+.4f} (tolerance {args.tolerance})")
    if args.plot:
        plot_overlay.plot([(os.path.join(lmlab_dir, "metrics.csv"), "lmlab"), (torch_csv, "PyTorch")],
                          args.plot, title=f"{os.path.basename(args.config)}, {args.threads} threads")
        print("wrote", args.plot)
    return 0 if abs(diff) <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
