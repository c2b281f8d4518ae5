#!/usr/bin/env python3
"""The table scripts/gpu_check.sh prints from its RESULT lines (bench_gpu_train and
tools/bench_torch_gpu.py): one row per (config, precision, T) with lmlab's, PyTorch eager's and
torch.compile's tokens/s, their ratios, lmlab's MFU and both peak memories; then, for gpt2s, one
line per goal of issue 18 ("goal met" / "goal missed"; reported, never enforced) and the PyTorch
runs that failed or were skipped. Standard library only (ctest runs it on a fixture:
BenchTest.GpuCheckTableJudgesTheGoals).

    python3 tools/gpu_check_table.py build-gpu/gpu_check/results.txt
"""
import sys


def parse(path):
    """RESULT lines -> rows {(config, precision, T): {mode: fields}}, failed runs, config order."""
    rows, failed, order = {}, [], {}
    for line in open(path):
        if not line.startswith("RESULT "):
            continue
        kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
        # precision= since the bf16 rows; older lines say only tf32=0|1
        prec = kv.get("precision") or ("tf32" if kv.get("tf32") == "1" else "fp32")
        if "error" in kv:
            failed.append(f"{kv.get('config', '?')} {prec.upper()} T={kv.get('T', '-')} "
                          f"{kv.get('mode', '?')}: {kv['error']}")
            continue
        order.setdefault(kv["config"], len(order))
        key = (kv["config"], prec, kv.get("T", "-"))
        rows.setdefault(key, {})[kv.get("mode", "lmlab")] = kv
    return rows, failed, order


RANK = {"fp32": 0, "tf32": 1, "bf16": 2}


def val(r, m, field):
    v = r.get(m, {}).get(field)
    return float(v) if v else None


def fmt(v, spec):
    return format(v, spec) if v is not None else "-"


def ratio(a, b):
    return a / b if a and b else None


# Issue 18's goals for gpt2s: lmlab tok/s against torch.compile's (bf16 >= 1.0x, TF32 >= 1.1x),
# bf16 MFU >= 45% of the bf16 peak, and peak memory <= PyTorch's (its smaller of eager and compile)
# at the same precision. Reported, never enforced: a missed goal leaves the exit status alone.


SPEED_GOAL = {"bf16": 1.0, "tf32": 1.1}
MFU_GOAL = {"bf16": 0.45}


def goals(cfg, prec, T, r):
    if cfg != "gpt2s" or "lmlab" not in r:
        return []
    out = []
    def verdict(ok, text):
        out.append((ok, f"{text}: {'goal met' if ok else 'goal missed'}"))
    lt, c = val(r, "lmlab", "tok_s"), val(r, "compile", "tok_s")
    if prec in SPEED_GOAL:
        if c:
            verdict(lt / c >= SPEED_GOAL[prec],
                    f"lmlab/torch.compile {lt / c:.2f}x >= {SPEED_GOAL[prec]:.1f}x")
        elif T == "1024":
            out.append((None, f"lmlab/torch.compile >= {SPEED_GOAL[prec]:.1f}x: not measured "
                              "(no torch.compile row)"))
    if prec in MFU_GOAL:
        mfu = val(r, "lmlab", "mfu")
        verdict(mfu >= MFU_GOAL[prec],
                f"MFU {100 * mfu:.1f}% >= {100 * MFU_GOAL[prec]:.0f}% of the {prec.upper()} peak")
    lp = val(r, "lmlab", "peak_gb")
    torch_peaks = [(val(r, m, "peak_gb"), m) for m in ("compile", "eager") if val(r, m, "peak_gb")]
    if lp is not None and torch_peaks:
        gb, m = min(torch_peaks)
        verdict(lp <= gb, f"peak memory {lp:.2f} GB <= torch {m}'s {gb:.2f} GB")
    elif T == "1024":
        out.append((None, "peak memory <= PyTorch's: not measured (no PyTorch row with peak_gb)"))
    return out


def main(path):
    rows, failed, order = parse(path)

    def sort_key(item):
        (cfg, prec, T), _ = item
        return order[cfg], RANK.get(prec, 9), int(T) if T.isdigit() else 0

    print("| config | T | precision | lmlab tok/s | lmlab, cuBLAS attention | torch eager tok/s | "
          "torch.compile tok/s | lmlab/eager | lmlab/compile | lmlab MFU | lmlab peak GB "
          "(cuBLAS attention) | torch peak GB eager / compile | issue 18 goals met |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    goal_lines = []
    for (cfg, prec, T), r in sorted(rows.items(), key=sort_key):
        l, g = val(r, "lmlab", "tok_s"), val(r, "lmlab_gemm_attention", "tok_s")
        e, c = val(r, "eager", "tok_s"), val(r, "compile", "tok_s")
        mfu = val(r, "lmlab", "mfu")
        gs = goals(cfg, prec, T, r)
        judged = [ok for ok, _ in gs if ok is not None]
        goal_lines += [f"- {cfg} T={T} {prec.upper()}: {text}" for _, text in gs]
        print(f"| {cfg} | {T} | {prec.upper()} | {fmt(l, '.0f')} | {fmt(g, '.0f')} | {fmt(e, '.0f')} | "
              f"{fmt(c, '.0f')} | {fmt(ratio(l, e), '.2f')} | {fmt(ratio(l, c), '.2f')} | "
              f"{fmt(mfu * 100 if mfu else None, '.1f')}% | "
              f"{fmt(val(r, 'lmlab', 'peak_gb'), '.2f')} ({fmt(val(r, 'lmlab_gemm_attention', 'peak_gb'), '.2f')}) | "
              f"{fmt(val(r, 'eager', 'peak_gb'), '.2f')} / {fmt(val(r, 'compile', 'peak_gb'), '.2f')} | "
              f"{f'{sum(judged)}/{len(judged)}' if judged else '-'} |")
    print("MFU: 6N + 12LTC FLOPs per token vs H200 SXM dense peak (FP32 67, TF32 494.7, BF16 989.4 "
          "TFLOP/s). BF16: lmlab --precision bf16 (autocast forward, TF32 for the GEMMs left fp32);")
    print("PyTorch autocast bf16, fused AdamW, flash SDPA. Peak GB over each whole run: lmlab's "
          "allocator (blocks at their size class), PyTorch's max_memory_allocated.")
    if goal_lines:
        print("\nGoals of issue 18 (gpt2s; reported, not enforced):")
        print("\n".join(goal_lines))
    if failed:
        print("\nPyTorch runs that failed or were skipped:")
        print("\n".join(f"- {f}" for f in failed))


if __name__ == "__main__":
    main(sys.argv[1])
