#!/usr/bin/env python3
"""A cost model on paper of a data-parallel training step for N ranks (docs/PERFORMANCE.md).

step(N) = compute + allreduce, where compute is one rank's forward + backward + optimizer step on
its own rows (unchanged with N: the per-rank batch is fixed, "weak scaling") and allreduce is a
ring all-reduce of the fp32 gradients in buckets:

    allreduce = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency * buckets

(each byte crosses each link twice: reduce-scatter then all-gather; each bucket pays 2 (N - 1)
message latencies). Without overlap a step takes compute + allreduce; with perfect overlap of all
buckets but the last, max(compute, allreduce) + allreduce / buckets. The inputs are measured on
this machine where they can be (lmlab bench: GFLOP/s; bench/allreduce_mpi: shared-memory latency
and bandwidth) and stated where they cannot (the networks).

    python3 tools/dp_cost_model.py                      # the tables in docs/PERFORMANCE.md
    python3 tools/dp_cost_model.py --gflops 250 --ranks 1 2 4 8 16 64
"""
import argparse

# name -> (parameters, FLOPs per token, tokens per rank per step, what the numbers are)
MODELS = {
    "medium": (4_783_616, 63.169e9 / 2048, 16 * 128,
               "configs/bench/medium.yaml pre_ln_kv8: 6 layers, d 256, T 128, B 16 per rank"),
    "gpt2-small": (124_439_808, 6 * (12 * 12 * 768 ** 2 + 768 * 50257) + 12 * 12 * 1024 * 768, 8 * 1024,
                   "GPT-2 small: 12 layers, d 768, 12 heads, T 1024, vocab 50257 tied, B 8 per rank"),
}

NETWORKS = {  # name -> (bandwidth bytes/s, latency s)
    "10 Gbit/s Ethernet (TCP)": (10e9 / 8, 50e-6),
    "100 Gbit/s (RoCE / InfiniBand)": (100e9 / 8, 5e-6),
}


def allreduce_s(n, nbytes, bandwidth, latency, buckets):
    if n == 1:
        return 0.0
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency * buckets


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gflops", type=float, default=197.0,
                    help="achieved training GFLOP/s of one rank (default: lmlab bench, medium, 2 threads)")
    ap.add_argument("--bucket-mb", type=float, default=8.0, help="train.bucket_mb")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8, 16, 64])
    ap.add_argument("--model", choices=sorted(MODELS), action="append")
    a = ap.parse_args()
    for name in a.model or list(MODELS):
        params, flops_tok, tokens, what = MODELS[name]
        nbytes = 4 * params
        buckets = max(1, round(nbytes / (a.bucket_mb * 2 ** 20)))
        compute = flops_tok * tokens / (a.gflops * 1e9)
        print(f"\n### {name}: {what}")
        print(f"{params / 1e6:.2f} M parameters = {nbytes / 2 ** 20:.1f} MiB of gradients in {buckets} "
              f"bucket(s); {flops_tok / 1e6:.1f} MFLOP/token x {tokens} tokens per rank at "
              f"{a.gflops:.0f} GFLOP/s = {compute * 1e3:.0f} ms compute per step\n")
        print("| network | N | all-reduce ms | step ms, no overlap | step ms, overlapped | "
              "efficiency (no overlap - overlapped) | global tokens/s (no overlap) |")
        print("|---|---|---|---|---|---|---|")
        for net, (bw, lat) in NETWORKS.items():
            for n in a.ranks:
                ar = allreduce_s(n, nbytes, bw, lat, buckets)
                plain = compute + ar
                over = max(compute, ar) + ar / buckets
                print(f"| {net} | {n} | {ar * 1e3:.1f} | {plain * 1e3:.0f} | {over * 1e3:.0f} | "
                      f"{compute / plain:.0%} - {compute / over:.0%} | {n * tokens / plain:,.0f} |")


if __name__ == "__main__":
    main()
