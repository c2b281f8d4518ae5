#!/usr/bin/env bash
# A/B of lmlab builds (or settings) on one bench variant: runs `lmlab bench` with each binary in
# turn, --pairs rounds, and prints each one's median tokens/s and its ratio to the first. The
# builds alternate, so drift of a shared machine falls on all of them alike (docs/PERFORMANCE.md,
# "the log of changes", was measured this way).
#   bash bench/ab.sh CONFIG VARIANT BIN_A BIN_B... [--pairs 5] [--steps 40]
# A BIN may be a wrapper script that sets the environment, e.g. one that runs
# `LMLAB_GEMM=openblas exec build/lmlab "$@"`. The shell's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
# are unset (OpenBLAS picks its own kernels), as in every table of docs/PERFORMANCE.md.
set -euo pipefail
pairs=5 steps=40 bins=() pos=()
while (($#)); do
  case "$1" in
    --pairs) pairs="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    *) pos+=("$1"); shift ;;
  esac
done
((${#pos[@]} >= 3)) || { echo "usage: bash bench/ab.sh CONFIG VARIANT BIN_A BIN_B... [--pairs N] [--steps N]" >&2; exit 2; }
config="${pos[0]}" variant="${pos[1]}" bins=("${pos[@]:2}")
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for ((i = 1; i <= pairs; ++i)); do
  for b in "${bins[@]}"; do
    json="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$b" bench "$config" --variant "$variant" \
            --steps "$steps" --peak-n 0 --json)"
    echo "$b $json" >> "$results"
  done
done
/usr/bin/python3 - "$results" "$config" "$variant" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    b, j = line.split(" ", 1)
    runs.setdefault(b, []).append(json.loads(j)["tokens_per_s"])
print(f"{sys.argv[2]} {sys.argv[3]}: median tokens/s over {len(next(iter(runs.values())))} runs each")
base = None
for b, v in runs.items():
    m = statistics.median(v)
    base = base or m
    print(f"  {b:<40} {m:9.0f}  x{m / base:.3f}  (runs: {', '.join(f'{x:.0f}' for x in sorted(v))})")
PY
