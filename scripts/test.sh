#!/usr/bin/env bash
# The whole test suite: set-up (packages, configure, build), then every test under ctest.
# CUDA tests skip with a one-line reason when no GPU is visible.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
ctest --test-dir "${LMLAB_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" --timeout 600
