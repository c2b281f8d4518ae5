#!/usr/bin/env bash
# Installs what lmlab needs from Debian (only what is missing), then configures and builds Release
# into build/. Idempotent and non-interactive; safe to run again after every pull.
#   LMLAB_CUDA=AUTO|ON|OFF   passed to CMake (AUTO: the CUDA backend builds when nvcc exists)
#   LMLAB_BUILD_DIR=build    where to build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-dev            # BLAS (cblas_sgemm)
  libopenblas0-openmp        # its OpenMP build, which lmlab links (shares lmlab's thread pool)
  libdnnl-dev                # oneDNN: float32 GEMMs (faster than OpenBLAS on the model's shapes)
  libgtest-dev googletest    # unit tests
  libbenchmark-dev           # bench/
  libcxxopts-dev             # the CLI
  libyaml-cpp-dev            # configs
  nlohmann-json3-dev         # checkpoint headers, reports
  libopenmpi-dev openmpi-bin # data-parallel training: mpirun -np N lmlab train (docs/distributed.md)
  python3 python3-matplotlib # plots (tools/)
  fortunes                   # the default corpus
  clang libclang-rt-14-dev   # scripts/test.sh's sanitizer + libFuzzer build (ASan, UBSan, libFuzzer)
  clang-format               # scripts/test.sh checks that every C++ file is formatted
  libomp-14-dev              # OpenMP for that clang build
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# nvcc is often installed outside PATH (/usr/local/cuda); CMake finds it there itself.
build_dir="${LMLAB_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLMLAB_CUDA="${LMLAB_CUDA:-AUTO}" \
  >"$build_dir.configure.log" 2>&1 || { cat "$build_dir.configure.log"; exit 1; }
grep -E "lmlab:" "$build_dir.configure.log" || true
rm -f "$build_dir.configure.log"
cmake --build "$build_dir" -j "$(nproc)"
echo "setup: built $build_dir/lmlab"
