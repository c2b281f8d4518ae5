#!/usr/bin/env bash
# Data-parallel scaling on this machine: tokens/s of `lmlab train` with 1 rank and with 2 ranks
# (mpirun, one thread per rank, bound to a core each) at the small and medium bench sizes
# (configs/bench/{small,medium}.yaml, pre-LN, MHA), next to 1 rank with 2 threads, run in
# alternating rounds so that a noisy machine slows all alike. Prints the median of the rounds and
# the all-reduce time per step that result.json reports. docs/PERFORMANCE.md ("Data parallelism").
#
#   bash bench/scaling_mpi.sh [--rounds 3] [--small-steps 60] [--medium-steps 20] [--lmlab PATH]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lmlab="$here/build/lmlab" rounds=3 small_steps=60 medium_steps=20
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --small-steps) small_steps="$2"; shift 2 ;;
    --medium-steps) medium_steps="$2"; shift 2 ;;
    --lmlab) lmlab="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "scaling_mpi.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
# lmlab picks OpenBLAS's kernels itself (a value in the environment would be respected).
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE OMP_NUM_THREADS
mpirun=(mpirun --bind-to core)
[[ "$(id -u)" -ne 0 ]] || mpirun+=(--allow-run-as-root)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# size -> "sets" and the per-rank batch of the 1-rank baseline
declare -A sets=(
  [small]="model.norm_placement=pre model.norm=layernorm model.n_kv_head=4 train.batch_size=12"
  [medium]="model.norm_placement=pre model.norm=layernorm model.n_kv_head=8 model.n_layer=6 model.n_embd=256 model.n_head=8 model.block_size=128 train.batch_size=16"
)
declare -A steps=([small]=$small_steps [medium]=$medium_steps) batch=([small]=12 [medium]=16)

# run SIZE MODE -> prints "tokens_per_s allreduce_ms wait_ms" from result.json
run() {
  local size="$1" mode="$2" b="${batch[$1]}" args=() out="$work/$1_$2"
  for s in ${sets[$size]} "train.max_iters=${steps[$size]}" train.eval_interval=1000000 \
           train.sample_tokens=0 data.val_fraction=0.01 optim.decay_iters=1000; do
    args+=(--set "$s")
  done
  rm -rf "$out"
  case "$mode" in
    1r1t) "$lmlab" train "$here/configs/nanogpt_cpu.yaml" "${args[@]}" --set train.threads=1 --run-dir "$out" --quiet ;;
    1r2t) "$lmlab" train "$here/configs/nanogpt_cpu.yaml" "${args[@]}" --set train.threads=2 --run-dir "$out" --quiet ;;
    2r_same) "${mpirun[@]}" -np 2 "$lmlab" train "$here/configs/nanogpt_cpu.yaml" "${args[@]}" --set train.threads=1 \
               --set train.batch_size=$((b / 2)) --run-dir "$out" --quiet --no-plot ;;
    2r_double) "${mpirun[@]}" -np 2 "$lmlab" train "$here/configs/nanogpt_cpu.yaml" "${args[@]}" --set train.threads=1 \
               --run-dir "$out" --quiet --no-plot ;;
  esac
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["tokens_per_s"], j.get("allreduce_ms_median", 0), j.get("allreduce_wait_ms_median", 0), j["num_parameters"])' "$out/result.json"
}

modes=(1r1t 2r_same 2r_double 1r2t)
declare -A label=([1r1t]="1 rank x 1 thread, batch B" [2r_same]="2 ranks x 1 thread, B/2 each (same global batch)"
                  [2r_double]="2 ranks x 1 thread, B each (global 2B)" [1r2t]="1 rank x 2 threads, batch B")
echo "# bench/scaling_mpi.sh --rounds $rounds --small-steps $small_steps --medium-steps $medium_steps ($(date -u +%Y-%m-%d), $(nproc) cores)"
for size in small medium; do
  declare -A results=()
  for ((r = 0; r < rounds; ++r)); do
    for m in "${modes[@]}"; do results[$m]+="$(run "$size" "$m");"; done
  done
  python3 - "$size" "${batch[$size]}" <<PY
import statistics, sys
size, B = sys.argv[1], int(sys.argv[2])
res = {$(for m in "${modes[@]}"; do printf '"%s": "%s", ' "$m" "${results[$m]}"; done)}
label = {$(for m in "${modes[@]}"; do printf '"%s": "%s", ' "$m" "${label[$m]}"; done)}
rows = {m: [list(map(float, x.split())) for x in v.split(";") if x] for m, v in res.items()}
params = int(rows["1r1t"][0][3])
base = statistics.median(r[0] for r in rows["1r1t"])
print(f"\n## {size}: {params} parameters ({4 * params / 2**20:.1f} MiB of fp32 gradients), B = {B}")
print(f"{'setup':52} {'tok/s (median)':>15} {'rounds':>24} {'vs 1x1':>7} {'allreduce ms':>13} {'exposed ms':>11}")
for m, rs in rows.items():
    tps = [r[0] for r in rs]
    med = statistics.median(tps)
    ar = statistics.median(r[1] for r in rs); w = statistics.median(r[2] for r in rs)
    arf = f"{ar:13.2f}" if m.startswith("2r") else f"{'-':>13}"
    wf = f"{w:11.2f}" if m.startswith("2r") else f"{'-':>11}"
    print(f"{label[m]:52} {med:15.0f} {' '.join(f'{t:.0f}' for t in tps):>24} {med / base:7.2f} {arf} {wf}")
PY
  unset results
done
