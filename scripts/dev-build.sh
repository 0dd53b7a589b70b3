#!/usr/bin/env bash
# Development build: compiles rnnkit._core into python/rnnkit/ so that
#   PYTHONPATH=python python -m pytest
# runs against the working tree without installing. Extra arguments go to CMake
# (for example -DRNNKIT_SANITIZE=ON). Users install with `pip install .` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${RNNKIT_BUILD_DIR:-build/dev}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" "$@" >/dev/null
cmake --build "$build_dir"
