#!/usr/bin/python3
"""PyTorch side of `bench/compare.sh`: the identical model and training step, timed the same way.

Usage (Debian's interpreter, which has python3-torch):
    /usr/bin/python3 tools/bench_torch.py RESOLVED.json [--steps N] [--warmup N] [--threads N]
                                          [--best-threads]

RESOLVED.json is what `lmlab bench CONFIG --resolved` prints: the model config (tools/
torch_twin.py's TransformerLM mirrors nn::TransformerLM key for key), batch size and the AdamW
settings. One step is what lmlab's trainer and `lmlab bench` time: forward, mean cross-entropy,
loss.item(), backward, clip_grad_norm_, AdamW step (nanoGPT's two groups, foreach off as in
torch 1.13's default for CPU tensors), zero_grad(set_to_none=True). Token ids are drawn uniformly at
random (the cost of a step does not depend on them). --best-threads first times 5 steps at every
thread count from 1 to N and keeps the fastest (PyTorch's best setting, as the comparison asks for).
Prints one JSON line:
    {"framework": "pytorch", "tokens_per_s": median, "step_ms": median, "steps": N, "threads": n,
     "peak_rss_mb": ..., "step_rss_mb": ..., "torch": version, "blas": ...}
step_rss_mb is the peak resident memory minus the resident memory before the first step (the
process's own baseline -- the interpreter and libtorch -- excluded), as `lmlab bench` reports it.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_twin import TransformerLM, adamw_groups  # noqa: E402


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("resolved", help="JSON from `lmlab bench CONFIG --resolved`")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the config's / all cores)")
    ap.add_argument("--best-threads", action="store_true", help="use the fastest of 1..threads")
    a = ap.parse_args()
    with open(a.resolved) as f:
        r = json.load(f)
    c, B, T = r["model"], r["batch_size"], r["model"]["block_size"]
    threads = a.threads or r.get("threads") or os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(r.get("seed", 1337))
    model = TransformerLM(c)
    with torch.no_grad():  # nanoGPT's init; the step's cost does not depend on it
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, c["init_std"])
    o = r["optim"]
    opt = torch.optim.AdamW(adamw_groups(model, o["weight_decay"]), lr=o["lr"],
                            betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    gen = torch.Generator().manual_seed(1)
    V = c["vocab_size"]

    def step():
        x = torch.randint(0, V, (B, T), generator=gen)
        y = torch.randint(0, V, (B, T), generator=gen)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, V), y.view(-1))
        loss.item()
        loss.backward()
        if o["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)

    def timed(n):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t0)
        return ts

    base_rss = rss_mb()
    for _ in range(a.warmup):
        step()
    tried = {}
    if a.best_threads and threads > 1:
        for t in range(1, threads + 1):
            torch.set_num_threads(t)
            step()
            tried[t] = B * T / statistics.median(timed(5))
        threads = max(tried, key=tried.get)
        torch.set_num_threads(threads)
    times = timed(a.steps)
    med = statistics.median(times)
    with open("/proc/self/maps") as f:  # which BLAS library the process really loaded
        maps = f.read()
    libs = sorted({l.split()[-1] for l in maps.splitlines() if "blas" in l.split()[-1] or "mkl" in l.split()[-1]})
    blas = ", ".join(libs) or "unknown"
    print(json.dumps({"framework": "pytorch", "tokens_per_s": B * T / med, "step_ms": med * 1e3,
                      "steps": a.steps, "threads": threads, "peak_rss_mb": peak_rss_mb(),
                      "step_rss_mb": peak_rss_mb() - base_rss, "torch": torch.__version__,
                      "threads_tried": tried, "blas": blas, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "")}))


if __name__ == "__main__":
    main()
