#!/usr/bin/env bash
# lmlab vs PyTorch on the same model, training step and threads, run alternately in one invocation
# (lmlab, PyTorch, lmlab, PyTorch, ...) so that a noisy, shared machine slows both alike. Prints,
# per variant, every pair's tokens/s and ratio, and the median ratio; then one summary table (MFU:
# the median over pairs of lmlab's GFLOP/s against the sgemm peak measured in the same pair).
#
#   bash bench/compare.sh CONFIG|SPEC [--pairs N] [--steps N] [--variant NAME]... [--threads N]
#                         [--lmlab PATH] [--json FILE]
#
# CONFIG|SPEC: a train config or a bench spec (configs/bench/small.yaml, medium.yaml). Defaults:
# 5 pairs of 20 timed steps (after 3 warm-up steps) per variant, the config's threads, build/lmlab.
# PyTorch runs tools/bench_torch.py (Debian's python3-torch) with the same OpenBLAS library (its
# OpenMP build when lmlab links it: LD_LIBRARY_PATH) and kernels (OPENBLAS_CORETYPE) lmlab used, at
# its best thread count from 1 to lmlab's (--best-threads). --json FILE keeps every measurement.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lmlab="$here/build/lmlab"
pairs=5 steps=20 threads="" json="" config="" variants=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pairs) pairs="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --variant) variants+=("$2"); shift 2 ;;
    --lmlab) lmlab="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [[ -z "$config" ]] || { echo "compare.sh: one CONFIG only" >&2; exit 2; }; config="$1"; shift ;;
  esac
done
[[ -n "$config" ]] || { echo "usage: bash bench/compare.sh CONFIG|SPEC [--pairs N] [--steps N]" >&2; exit 2; }
[[ -x "$lmlab" ]] || { echo "compare.sh: $lmlab not found: build first (bash scripts/setup.sh)" >&2; exit 1; }
py=/usr/bin/python3
"$py" -c "import torch" 2>/dev/null || { echo "compare.sh: $py cannot import torch (apt-get install python3-torch)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
targs=()
[[ -n "$threads" ]] && targs=(--threads "$threads")
# --list validates the config (and every variant) before anything runs.
all_variants="$("$lmlab" bench "$config" --list)"
if [[ ${#variants[@]} -eq 0 ]]; then mapfile -t variants <<< "$all_variants"; fi

: > "$tmp/all.jsonl"
for v in "${variants[@]}"; do
  va=()
  if "$lmlab" bench "$config" --variant "$v" --list >/dev/null 2>&1; then va=(--variant "$v"); fi
  "$lmlab" bench "$config" "${va[@]}" "${targs[@]}" --resolved > "$tmp/resolved.json"
  th="$("$py" -c "import json,sys,os; t=json.load(open(sys.argv[1]))['threads']; print(t if t>0 else os.cpu_count())" "$tmp/resolved.json")"
  echo "== $v ($th threads, $pairs pairs x $steps steps)"
  for ((i = 1; i <= pairs; ++i)); do
    # lmlab measures the sgemm peak in every pair (about a second), just before its steps: the
    # machine's speed drifts by 10-30% over minutes, and an MFU against a peak measured at another
    # moment moves with the drift (medium post_rms_kv2 on 2026-12-06: 74% in the pair that measured
    # the peak, 56-57% in the two after it, while PyTorch ran 10-20% slower too).
    a="$("$lmlab" bench "$config" "${va[@]}" --threads "$th" --steps "$steps" --peak-n 2048 --json)"
    core="$("$py" -c "import json,sys; print(json.loads(sys.argv[1])['blas_core'])" "$a")"
    libdir="$("$py" -c "import json,sys,os; print(os.path.dirname(json.loads(sys.argv[1])['blas_library']))" "$a")"
    b="$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OPENBLAS_CORETYPE="$core" \
         "$py" "$here/tools/bench_torch.py" "$tmp/resolved.json" --threads "$th" --best-threads --steps "$steps")"
    "$py" - "$v" "$i" "$a" "$b" >> "$tmp/all.jsonl" <<'PY'
import json, sys
v, i, a, b = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
r = a["tokens_per_s"] / b["tokens_per_s"]
print(f"   pair {i}: lmlab {a['tokens_per_s']:8.0f} tok/s   pytorch {b['tokens_per_s']:8.0f} tok/s "
      f"({b['threads']} threads)   ratio {r:5.2f}", file=sys.stderr)
print(json.dumps({"variant": v, "pair": i, "lmlab": a, "pytorch": b, "ratio": r}))
PY
  done
done

"$py" - "$tmp/all.jsonl" "$config" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{sys.argv[2]}: medians over pairs (ratio = lmlab / PyTorch tokens/s, per pair)")
print(f"{'variant':<14} {'lmlab tok/s':>11} {'torch tok/s':>11} {'ratio':>6} {'min':>5} {'max':>5} "
      f"{'GFLOP/s':>8} {'MFU':>6} {'RSS MB l/t':>12} {'step MB l/t':>12}")
for v in dict.fromkeys(r["variant"] for r in rows):
    rs = [r for r in rows if r["variant"] == v]
    med = lambda xs: statistics.median(xs)
    ratios = [r["ratio"] for r in rs]
    gf = med([r["lmlab"]["gflops"] for r in rs])
    # MFU per pair against the peak measured in that pair, then the median over pairs.
    mfu = med([r["lmlab"]["gflops"] / r["lmlab"]["peak_gflops"] for r in rs if r["lmlab"]["peak_gflops"]] or [0])
    print(f"{v:<14} {med([r['lmlab']['tokens_per_s'] for r in rs]):>11.0f} "
          f"{med([r['pytorch']['tokens_per_s'] for r in rs]):>11.0f} {med(ratios):>6.2f} "
          f"{min(ratios):>5.2f} {max(ratios):>5.2f} {gf:>8.1f} {100 * mfu:>5.1f}% "
          f"{med([r['lmlab']['peak_rss_mb'] for r in rs]):>5.0f}/{med([r['pytorch']['peak_rss_mb'] for r in rs]):<6.0f} "
          f"{med([r['lmlab']['step_rss_mb'] for r in rs]):>5.0f}/{med([r['pytorch']['step_rss_mb'] for r in rs]):<6.0f}")
r0 = rows[0]
peaks = [r["lmlab"]["peak_gflops"] for r in rows]
# The machine kind: speed ratios differ between CPU families (Intel Xeon and AMD EPYC machines).
cpu = open("/proc/cpuinfo").read()
model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in cpu.splitlines() if l.startswith("flags")), [])
isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
print(f"machine: {model}, {isa}, {len([l for l in cpu.splitlines() if l.startswith('processor')])} CPUs")
print(f"lmlab: GEMMs {r0['lmlab'].get('gemm_backend', '?')}; {r0['lmlab']['blas_library']}, core {r0['lmlab']['blas_core']}, {r0['lmlab']['threads']} threads, sgemm peak "
      f"{min(peaks):.1f}-{max(peaks):.1f} GFLOP/s over the run (MFU per pair against its own); PyTorch {r0['pytorch']['torch']} "
      f"({r0['pytorch']['blas']}, OPENBLAS_CORETYPE={r0['pytorch']['openblas_coretype']}), best of "
      f"1..{r0['lmlab']['threads']} threads per run: {sorted(set(r['pytorch']['threads'] for r in rows))}")
PY
if [[ -n "$json" ]]; then cp "$tmp/all.jsonl" "$json"; echo "every measurement: $json"; fi
