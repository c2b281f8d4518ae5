#!/usr/bin/env bash
# GPU verification on a machine with an NVIDIA GPU: configure and build with CUDA (ninja), run the
# CUDA parity tests and then the whole suite under ctest, run the GPU train-step benchmark next to
# the same model in PyTorch (eager and torch.compile), and print one table.
#
#   scripts/gpu_check.sh            # everything: one call of about 4 minutes on a lent H200
#   SKIP_SUITE=1 scripts/gpu_check.sh   # only the CUDA tests, not the whole suite
#   SKIP_BENCH=1 / ONLY_BENCH=1         # the build and tests only / the build and benchmarks only
#   BENCH_CONFIGS="gpt2s tiny" TF32_CONFIGS=gpt2s STEPS=20 WARMUP=5 TF32_TOO=0 scripts/gpu_check.sh
#   ATTN_BENCH=0                        # without the attention-kernel benchmark
#   FP32=0 ATTN_COMPARE=0 T_SWEEP=""    # no FP32 rows / TF32 rows with flash attention only / no T sweep
# The benchmarks: the attention kernels alone (bench_gpu_attention: the cuBLAS path against the
# flash kernels), then every BENCH_CONFIGS model with FP32 GEMMs, then the TF32_CONFIGS ones again
# with TF32 (the tiny models are launch-bound: TF32 changes nothing there).
# The exit status is non-zero when a build or a test failed; the benchmarks run regardless.
#
# On the device tool's machines (no apt, none of Debian's libraries): run scripts/gpu_bundle.sh here
# first and carry `.gpu`; this script unpacks .gpu/root.tar.gz into $LMLAB_GPU_ROOT (outside the
# tree, so `.gpu` stays small enough to carry) and builds against it. With $OUT set
# (the device tool), the logs and the table are copied there as they are written.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD="${LMLAB_GPU_BUILD_DIR:-build-gpu}"
JOBS="${JOBS:-$(nproc)}"
STEPS="${STEPS:-20}"
WARMUP="${WARMUP:-5}"
BENCH_CONFIGS="${BENCH_CONFIGS:-default nanogpt_cpu gpt2s}"
TF32_CONFIGS="${TF32_CONFIGS:-gpt2s}"
TF32_TOO="${TF32_TOO:-1}"
FP32="${FP32:-1}"      # 0: only the TF32 rows
ATTN_COMPARE="${ATTN_COMPARE:-1}"  # TF32 rows also with the cuBLAS attention (--attention gemm)
T_SWEEP="${T_SWEEP:-2048 4096}"    # gpt2s TF32 at these block sizes (B x T = 8192), both attentions
PROFILE_STEPS="${PROFILE_STEPS:-3}"  # per-kernel GPU time table after each lmlab benchmark (0: none)
ATTN_BENCH="${ATTN_BENCH:-1}"  # bench_gpu_attention before the train-step benchmarks (0: skip)
LOG="$BUILD/gpu_check"
OUT_DIR="${OUT:-}"
status=0
failures=()  # what failed, by name, for the summary line
t0=$SECONDS
stage() { echo "== [$((SECONDS - t0)) s] $*"; }
keep() { [ -n "$OUT_DIR" ] && cp -f "$@" "$OUT_DIR/" 2>/dev/null; true; }
# Runs ctest with the given arguments into log $1; a failure sets status and names each failed test.
run_ctest() {
  local log=$1
  shift
  ctest --test-dir "$BUILD" --output-on-failure --timeout 900 "$@" > "$log" 2>&1 || status=1
  keep "$log"
  grep -E "tests passed|\*\*\*(Failed|Exception|Timeout)|\(Failed\)|Not Run" "$log" | tail -n 40
  # "100% tests passed, 0 tests failed out of N" (CMake 3.25) or "100% tests passed out of N" (4.x)
  grep -q "100% tests passed" "$log" || status=1
  local name
  while read -r name; do failures+=("$name"); done < <(
    sed -n '/The following tests FAILED:/,$p' "$log" | sed -n -E 's/^[[:space:]]+[0-9]+ - (.*) \([^)]*\)$/\1/p')
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
for tool in g++ cmake ninja nvcc python3; do
  printf '%-8s %s\n' "$tool" "$(command -v $tool >/dev/null && $tool --version 2>&1 | grep -m 1 -E '[0-9]+\.[0-9]+' || echo MISSING)"
done

# The libraries carried from Debian (scripts/gpu_bundle.sh): unpacked into $root; CMake gets
# their prefix, the OpenMP OpenBLAS by name (Debian's own OpenBLASConfig.cmake names absolute /usr
# paths), Open MPI its relocated prefix. Python (PyTorch) keeps the machine's own library path.
PY_LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
cmake_extra=()
if [ -f .gpu/root.tar.gz ]; then
  stage "unpacking the carried Debian libraries (.gpu/root.tar.gz)"
  root="${LMLAB_GPU_ROOT:-/tmp/lmlab-gpu-root}"
  rm -rf "$root" && mkdir -p "$root" && tar -C "$root" -xzf .gpu/root.tar.gz || { echo "unpack failed"; exit 1; }
  lib="$root/usr/lib/x86_64-linux-gnu"
  mkdir -p "$root/cmake/openblas"
  printf 'set(OpenBLAS_INCLUDE_DIRS "%s")\nset(OpenBLAS_LIBRARIES "%s")\n' \
    "$root/usr/include/x86_64-linux-gnu/openblas-openmp" "$lib/openblas-openmp/libopenblas.so.0" \
    > "$root/cmake/openblas/OpenBLASConfig.cmake"
  cmake_extra+=(-DCMAKE_PREFIX_PATH="$root/usr" -DOpenBLAS_DIR="$root/cmake/openblas"
                -DLMLAB_OPENBLAS_OPENMP_LIB="$lib/openblas-openmp/libopenblas.so.0")
  export OPAL_PREFIX="$root/usr"  # Open MPI finds its components and wrapper data under it,
  export PMIX_INSTALL_PREFIX="$lib/pmix2"  # and PMIx its own (checked with /proc/PID/maps)
  # Debian 12's libevent (under Open MPI) needs glibc 2.36; on an older image build without MPI
  # rather than link an lmlab that cannot start.
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  if [ -n "$glibc" ] && [ "$(printf '%s\n2.36\n' "$glibc" | sort -V | head -n 1)" != 2.36 ]; then
    echo "glibc $glibc < 2.36: building without MPI (the carried Open MPI needs 2.36)"
    cmake_extra+=(-DLMLAB_MPI=OFF)
  elif [ -x "$root/usr/bin/mpicxx.openmpi" ] && ! command -v mpicxx >/dev/null; then
    cmake_extra+=(-DMPI_CXX_COMPILER="$root/usr/bin/mpicxx.openmpi")
  fi
  export PATH="$PATH:$root/usr/bin"  # after the machine's own tools
  export LD_LIBRARY_PATH="$lib:$lib/openblas-openmp:$lib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # The tests and configs read the default corpus at its Debian path (a throwaway machine, as root).
  if [ ! -e /usr/share/games/fortunes ] && [ -w /usr/share ]; then
    mkdir -p /usr/share/games && cp -r "$root/usr/share/games/fortunes" /usr/share/games/
  fi
fi
# NCCL comes with PyTorch's wheels there (nvidia-nccl-cu13) and lmlab dlopens libnccl.so.2 by
# soname: add the wheel's folder to the search path when the system has no NCCL of its own.
if ! ldconfig -p 2>/dev/null | grep -q libnccl.so.2; then
  site=$(env LD_LIBRARY_PATH="$PY_LD_LIBRARY_PATH" python3 -c "import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))" 2>/dev/null)
  nccl=$([ -n "$site" ] && find "$site/nvidia" -name 'libnccl.so.2' 2>/dev/null | head -n 1)
  [ -n "$nccl" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$nccl")" && echo "NCCL: $nccl"
fi

stage "configure + build ($BUILD, -j$JOBS)"
mkdir -p "$BUILD"
if ! cmake -S . -B "$BUILD" -G Ninja -DLMLAB_CUDA=ON -DLMLAB_BUILD_BENCH=ON \
     -DCMAKE_BUILD_TYPE=Release "${cmake_extra[@]}" > "$BUILD/configure.log" 2>&1; then
  cat "$BUILD/configure.log"; keep "$BUILD/configure.log"; echo "configure failed"; exit 1
fi
grep "lmlab:" "$BUILD/configure.log"
if ! ninja -C "$BUILD" -j "$JOBS" > "$BUILD/build.log" 2>&1; then
  grep -E -B2 -A12 "error|FAILED" "$BUILD/build.log" | head -n 80; keep "$BUILD/build.log"
  echo "build failed"; exit 1
fi
mkdir -p "$LOG"

if [ "${ONLY_BENCH:-0}" != 1 ]; then
  # The CUDA-only suites (Cuda*), the GPU half of the device-generic ones (.../cuda) and the
  # modules moved between devices.
  stage "CUDA tests"
  run_ctest "$LOG/ctest_cuda.txt" -R 'Cuda|/cuda$|ModuleToDevice' -j 4
  if [ "${SKIP_SUITE:-0}" != 1 ]; then
    stage "whole suite (the CUDA tests again among them)"
    run_ctest "$LOG/ctest_all.txt" -j "$JOBS"
  fi

  # Data parallelism's NCCL path with one rank (the GPU machine has one GPU): the gradients go
  # through ncclAllReduce; the run must finish like a plain one (docs/distributed.md).
  if command -v mpirun >/dev/null && [ -x "$BUILD/lmlab" ] &&
     "$BUILD/lmlab" --version | grep -q "MPI data parallelism built"; then
    stage "NCCL: mpirun -np 1 lmlab train tiny on cuda"
    rm -rf "$LOG/nccl_run"
    if mpirun --allow-run-as-root -np 1 "$BUILD/lmlab" train configs/tiny.yaml --set train.device=cuda \
         --set train.max_iters=50 --run-dir "$LOG/nccl_run" --no-plot > "$LOG/nccl.txt" 2>&1; then
      tail -n 3 "$LOG/nccl.txt"
      grep -q '"ranks": 1' "$LOG/nccl_run/result.json" && grep -q allreduce_ms "$LOG/nccl_run/result.json" \
        && echo "NCCL one-rank run: ok" ||
        { echo "NCCL one-rank run: no all-reduce recorded"; status=1; failures+=("NCCL one-rank run"); }
    else
      tail -n 20 "$LOG/nccl.txt"; echo "NCCL one-rank run: FAILED"; status=1
      failures+=("NCCL one-rank run")
    fi
    keep "$LOG/nccl.txt"
  else
    echo "NCCL one-rank run: skipped (no mpirun, or lmlab built without MPI: $("$BUILD/lmlab" --version 2>&1 | tail -n 1))"
  fi
fi

: > "$LOG/results.txt"
if [ "${SKIP_BENCH:-0}" != 1 ] && [ "$ATTN_BENCH" = 1 ]; then
  # Attention forward + backward alone at B 8, NH 12, HS 64, T 1024-4096: times, the memory of
  # att + dscores against the flash kernels' lse, and the largest difference of their results
  # (MISMATCH past 1e-2: a failure).
  stage "attention kernels: the cuBLAS path against the flash kernels"
  "$BUILD/bench/bench_gpu_attention" 2>&1 | tee "$LOG/attention.txt" ||
    { status=1; failures+=("bench_gpu_attention"); }
  grep -q MISMATCH "$LOG/attention.txt" &&
    { status=1; failures+=("bench_gpu_attention: flash differs from cuBLAS"); }
  keep "$LOG/attention.txt"
  # The row norms alone (QK-norm's rows of 24-128 values run one warp per row): times and GB/s.
  stage "row norms: short rows (one warp each) to long rows (one block each)"
  "$BUILD/bench/bench_gpu_norm" 2>&1 | tee "$LOG/norm.txt" ||
    { status=1; failures+=("bench_gpu_norm"); }
  keep "$LOG/norm.txt"
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  stage "benchmarks (median of $STEPS steps after $WARMUP warm-up steps)"
  modes=""
  [ "$FP32" = 1 ] && modes="0"
  [ "$TF32_TOO" = 1 ] && modes="$modes 1"
  for tf32 in $modes; do
    for cfg in $BENCH_CONFIGS; do
      [ "$tf32" = 1 ] && [[ " $TF32_CONFIGS " != *" $cfg "* ]] && continue
      attns="flash"
      [ "$tf32" = 1 ] && [ "$ATTN_COMPARE" = 1 ] && attns="gemm flash"
      for attn in $attns; do
        "$BUILD/bench/bench_gpu_train" --config "$cfg" --steps "$STEPS" --warmup "$WARMUP" \
          --tf32 "$tf32" --profile "$PROFILE_STEPS" --attention "$attn" |
          tee -a "$LOG/results.txt" ||
          { status=1; failures+=("bench_gpu_train $cfg tf32=$tf32 attention=$attn"); }
      done
      env LD_LIBRARY_PATH="$PY_LD_LIBRARY_PATH" python3 tools/bench_torch_gpu.py --config "$cfg" \
        --mode both --steps "$STEPS" --warmup "$WARMUP" --tf32 "$tf32" --profile "$PROFILE_STEPS" \
        | tee -a "$LOG/results.txt" \
        || echo "RESULT config=$cfg mode=eager error=torch_failed tf32=$tf32" >> "$LOG/results.txt"
      keep "$LOG/results.txt"
    done
  done
fi

if [ "${SKIP_BENCH:-0}" != 1 ] && [ -n "$T_SWEEP" ]; then
  stage "T sweep: gpt2s TF32 at T = $T_SWEEP (B x T = 8192 tokens a step)"
  for T in $T_SWEEP; do
    for attn in gemm flash; do
      "$BUILD/bench/bench_gpu_train" --config gpt2s --steps "$STEPS" --warmup "$WARMUP" --tf32 1 \
        --block-size "$T" --batch $((8192 / T)) --attention "$attn" | tee -a "$LOG/results.txt" ||
        { status=1; failures+=("bench_gpu_train gpt2s T=$T attention=$attn"); }
    done
  done
  keep "$LOG/results.txt"
fi

stage "table"
python3 - "$LOG/results.txt" <<'PY' | tee "$LOG/table.md"
import sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    kv = dict(p.split("=", 1) for p in line.split()[1:])
    key = (kv["config"], kv.get("tf32", "0"), kv.get("T", "-"))
    mode = kv.get("mode", "lmlab")
    rows.setdefault(key, {})[mode] = kv
def tok(r, m):
    v = r.get(m, {}).get("tok_s")
    return float(v) if v else None
def fmt(v, spec):
    return format(v, spec) if v is not None else "-"
print("| config | T | GEMM | lmlab tok/s | lmlab, cuBLAS attention | torch eager tok/s | "
      "torch.compile tok/s | lmlab/eager | lmlab/compile | lmlab MFU | lmlab peak GB "
      "(cuBLAS attention) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for (cfg, tf32, T), r in rows.items():
    l, g = tok(r, "lmlab"), tok(r, "lmlab_gemm_attention")
    e, c = tok(r, "eager"), tok(r, "compile")
    mfu = r.get("lmlab", {}).get("mfu")
    peak = r.get("lmlab", {}).get("peak_gb", "-")
    peak_g = r.get("lmlab_gemm_attention", {}).get("peak_gb", "-")
    print(f"| {cfg} | {T} | {'TF32' if tf32 == '1' else 'FP32'} | {fmt(l, '.0f')} | "
          f"{fmt(g, '.0f')} | {fmt(e, '.0f')} | "
          f"{fmt(c, '.0f')} | {fmt(l / e if l and e else None, '.2f')} | "
          f"{fmt(l / c if l and c else None, '.2f')} | "
          f"{fmt(float(mfu) * 100 if mfu else None, '.1f')}% | {peak} ({peak_g}) |")
print("MFU: 6N + 12LTC FLOPs per token vs H200 SXM dense peak (FP32 67, TF32 494.7 TFLOP/s).")
PY
keep "$LOG/table.md"
if [ $status = 0 ]; then
  echo "gpu_check: [$((SECONDS - t0)) s] all builds and tests passed"
else
  # Each name once (the whole suite repeats the CUDA tests' failures).
  named=$(printf '%s\n' "${failures[@]}" | awk 'NF && !seen[$0]++' | paste -sd ',' - | sed 's/,/, /g')
  echo "gpu_check: [$((SECONDS - t0)) s] FAILURES: ${named:-see the logs} (logs in $LOG)"
fi
exit $status
