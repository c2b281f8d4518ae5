#!/usr/bin/env bash
# GPU verification on a machine with an NVIDIA GPU: configure and build with CUDA (ninja), run the
# CUDA parity tests and then the whole suite under ctest, run the GPU train-step benchmark next to
# the same model in PyTorch (eager and torch.compile), and print one table.
#
#   scripts/gpu_check.sh            # everything (FP32 GEMMs, then the benchmark again with TF32)
#   SKIP_SUITE=1 scripts/gpu_check.sh   # only the CUDA tests, not the whole suite
#   BENCH_CONFIGS="gpt2s tiny" STEPS=20 WARMUP=5 TF32_TOO=0 scripts/gpu_check.sh
# The exit status is non-zero when a build or a test failed; the benchmarks run regardless.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD="${LMLAB_GPU_BUILD_DIR:-build-gpu}"
JOBS="${JOBS:-$(nproc)}"
STEPS="${STEPS:-20}"
WARMUP="${WARMUP:-5}"
BENCH_CONFIGS="${BENCH_CONFIGS:-tiny default nanogpt_cpu gpt2s}"
TF32_TOO="${TF32_TOO:-1}"
LOG="$BUILD/gpu_check"
status=0

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== configure + build ($BUILD, -j$JOBS)"
if ! cmake -S . -B "$BUILD" -G Ninja -DLMLAB_CUDA=ON -DLMLAB_BUILD_BENCH=ON \
     -DCMAKE_BUILD_TYPE=Release >/dev/null; then
  echo "configure failed"; exit 1
fi
ninja -C "$BUILD" -j "$JOBS" || { echo "build failed"; exit 1; }
mkdir -p "$LOG"

echo "== CUDA tests"
ctest --test-dir "$BUILD" -R 'Cuda|ModuleToDevice' --output-on-failure -j 4 --timeout 900 \
  | tee "$LOG/ctest_cuda.txt" || status=1
grep -q "0 tests failed" "$LOG/ctest_cuda.txt" || status=1
if [ "${SKIP_SUITE:-0}" != 1 ]; then
  echo "== whole suite"
  ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" --timeout 900 \
    | tee "$LOG/ctest_all.txt" | tail -n 15 || status=1
  grep -q "0 tests failed" "$LOG/ctest_all.txt" || status=1
fi

# Data parallelism's NCCL path with one rank (the GPU machine has one GPU): the gradients go through
# ncclAllReduce; the run must finish like a plain one (docs/distributed.md).
if command -v mpirun >/dev/null && [ -x "$BUILD/lmlab" ]; then
  echo "== NCCL: mpirun -np 1 lmlab train tiny on cuda"
  rm -rf "$LOG/nccl_run"
  if mpirun --allow-run-as-root -np 1 "$BUILD/lmlab" train configs/tiny.yaml --set train.device=cuda \
       --set train.max_iters=50 --run-dir "$LOG/nccl_run" --no-plot 2>&1 | tail -n 3; then
    grep -q '"ranks": 1' "$LOG/nccl_run/result.json" && grep -q allreduce_ms "$LOG/nccl_run/result.json" \
      && echo "NCCL one-rank run: ok" || { echo "NCCL one-rank run: no all-reduce recorded"; status=1; }
  else
    echo "NCCL one-rank run: FAILED"; status=1
  fi
fi

echo "== benchmarks (median of $STEPS steps after $WARMUP warm-up steps)"
: > "$LOG/results.txt"
modes="0"
[ "$TF32_TOO" = 1 ] && modes="0 1"
for tf32 in $modes; do
  for cfg in $BENCH_CONFIGS; do
    "$BUILD/bench/bench_gpu_train" --config "$cfg" --steps "$STEPS" --warmup "$WARMUP" \
      --tf32 "$tf32" | tee -a "$LOG/results.txt" || status=1
    python3 tools/bench_torch_gpu.py --config "$cfg" --mode both --steps "$STEPS" \
      --warmup "$WARMUP" --tf32 "$tf32" | tee -a "$LOG/results.txt" \
      || echo "RESULT config=$cfg mode=eager error=torch_failed tf32=$tf32" >> "$LOG/results.txt"
  done
done

echo "== table"
python3 - "$LOG/results.txt" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    kv = dict(p.split("=", 1) for p in line.split()[1:])
    key = (kv["config"], kv.get("tf32", "0"))
    mode = kv.get("mode", "lmlab")
    rows.setdefault(key, {})[mode] = kv
def tok(r, m):
    v = r.get(m, {}).get("tok_s")
    return float(v) if v else None
def fmt(v, spec):
    return format(v, spec) if v is not None else "-"
print("| config | GEMM | lmlab tok/s | torch eager tok/s | torch.compile tok/s | lmlab/eager | lmlab/compile | lmlab MFU |")
print("|---|---|---|---|---|---|---|---|")
for (cfg, tf32), r in rows.items():
    l, e, c = tok(r, "lmlab"), tok(r, "eager"), tok(r, "compile")
    mfu = r.get("lmlab", {}).get("mfu")
    print(f"| {cfg} | {'TF32' if tf32 == '1' else 'FP32'} | {fmt(l, '.0f')} | {fmt(e, '.0f')} | "
          f"{fmt(c, '.0f')} | {fmt(l / e if l and e else None, '.2f')} | "
          f"{fmt(l / c if l and c else None, '.2f')} | "
          f"{fmt(float(mfu) * 100 if mfu else None, '.1f')}% |")
print("MFU: 6N + 12LTC FLOPs per token vs H200 SXM dense peak (FP32 67, TF32 494.7 TFLOP/s).")
PY
echo "gpu_check: $([ $status = 0 ] && echo "all builds and tests passed" || echo "FAILURES (see $LOG)")"
exit $status
