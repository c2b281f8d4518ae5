#!/usr/bin/env bash
# Packs the Debian libraries lmlab builds against into .gpu/root.tar.gz, for a lent GPU machine
# whose image lacks them and reaches no package registry (the device tool's machines: CUDA, CMake,
# ninja, g++ and PyTorch, no OpenBLAS, yaml-cpp, GoogleTest, ... and no apt). Run it here, where
# apt works; then name `.gpu` in the device run's `carry` and run scripts/gpu_check.sh there, which
# unpacks it into /tmp/lmlab-gpu-root and builds against it (CMake hints, LD_LIBRARY_PATH,
# OPAL_PREFIX for Open MPI). The archive is ~22 MB (the device tool carries at most 64 MiB with
# the working tree).
#
#   bash scripts/gpu_bundle.sh          # (re)creates .gpu/root.tar.gz from Debian's packages
#
# The packages are downloaded (apt-get download) and unpacked (dpkg -x), never installed, so this
# machine is left as it was. Base libraries every image has (libc, libstdc++, libgcc, libgomp) are
# left out on purpose: the GPU machine's own, newer ones must be the ones loaded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
  # BLAS, OpenMP build (what CMakeLists.txt links), with its headers and Fortran run-time
  libopenblas0-openmp libopenblas-openmp-dev libgfortran5 libquadmath0
  # configs, checkpoints, CLI, tests, benchmarks
  libyaml-cpp0.7 libyaml-cpp-dev nlohmann-json3-dev libcxxopts-dev
  libgtest-dev libgmock-dev libbenchmark1debian libbenchmark-dev
  # the default corpus (tests and configs read /usr/share/games/fortunes)
  fortunes fortunes-min
  # Open MPI, for the NCCL check through mpirun (and what it loads)
  libopenmpi3 libopenmpi-dev openmpi-bin openmpi-common libhwloc15 libevent-core-2.1-7
  libevent-pthreads-2.1-7 libpmix2 libfabric1 libucx0 libibverbs1 librdmacm1 libnl-3-200
  libnl-route-3-200 libpsm2-2 libpsm-infinipath1 libnuma1 libmunge2 libpciaccess0 libltdl7
  libxnvctrl0
)

command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
  { echo "gpu_bundle: needs apt-get and dpkg (Debian)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "gpu_bundle: downloading ${#packages[@]} packages"
# apt-get download writes into the current directory; _apt cannot write to a mktemp dir, hence the
# chmod (otherwise apt warns and downloads as root anyway).
chmod 777 "$work"
(cd "$work" && apt-get download -qq "${packages[@]}") || {
  echo "gpu_bundle: apt-get download failed (run apt-get update first?)" >&2; exit 1; }

root="$work/root"
mkdir -p "$root"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$root"; done
# What the build and the runs do not read: documentation, manuals, Debian's lintian data, Fortran
# modules, the static OpenBLAS archives and its BLAS/LAPACK façades (lmlab calls cblas_* in
# libopenblas itself). GoogleTest and Google Benchmark are static-only: they stay.
rm -rf "$root"/usr/share/{doc,man,lintian,bug} "$root/usr/lib/x86_64-linux-gnu/fortran"
find "$root/usr/lib" -path '*openblas*' \( -name '*.a' -o -name 'liblapack*' -o -name 'libblas*' \) -delete
# The links Debian's maintainer scripts would make (update-alternatives): the OpenMP OpenBLAS as
# the libopenblas the loader finds, and Open MPI's commands under their usual names.
arch=x86_64-linux-gnu
ln -sf openblas-openmp/libopenblas.so.0 "$root/usr/lib/$arch/libopenblas.so.0"
for cmd in mpirun mpiexec mpicxx mpicc; do
  [ -e "$root/usr/bin/$cmd.openmpi" ] && ln -sf "$cmd.openmpi" "$root/usr/bin/$cmd"
done
mkdir -p .gpu
rm -rf .gpu/root .gpu/root.tar.gz  # (.gpu/root: where an older gpu_check.sh unpacked it)
tar -C "$root" -czf .gpu/root.tar.gz .
du -h .gpu/root.tar.gz | sed 's/^/gpu_bundle: /'
echo "gpu_bundle: carry .gpu in the device run, then: bash scripts/gpu_check.sh"
