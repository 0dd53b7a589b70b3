#!/usr/bin/env bash
# Sanitizer check: builds rnnkit._core with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DRNNKIT_SANITIZE=ON) into build/sanitize, next to a copy of the Python package, and
# runs the tests that exercise native code against it. The development module in
# python/rnnkit is left alone. Exits non-zero on any test failure or sanitizer report.
#
#   .ci/sanitize.sh                 # the tests marked `native`
#   .ci/sanitize.sh tests/test_native.py -k lstm    # or any pytest arguments
#
# Needs GCC (its libasan is preloaded: CPython itself is not instrumented). Leak checking
# is off: CPython keeps its own allocations until exit. torch imports fine under the
# preload, so the tests that compare with torch run too.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${RNNKIT_SANITIZE_DIR:-build/sanitize}
cxx=${CXX:-g++}
start=$(date +%s)

# Every test module that calls the native core (directly or through the modules) carries
# the pytest marker `native`.
tests=(-m native tests)
# ASan's quarantine and shadow memory make resident memory grow by design: the
# memory-flatness test runs in the normal suite only.
# The damaged-HDF5 test makes the HDF5 library itself segfault in a child process, which
# rnnkit.keras turns into ValueError; ASan, inherited by the child, catches that SEGV
# first (a report and another exit status), so it runs in the normal suite only.
deselect=(--deselect tests/test_long_runs.py::test_ten_thousand_calls_leave_memory_flat
  --deselect tests/test_keras_files.py::test_a_file_that_crashes_the_hdf5_library_raises)
if [ "$#" -gt 0 ]; then
  tests=("$@")
  deselect=()
fi

# A copy of the package whose _core will be the instrumented one.
rm -rf "$build/pkg"
mkdir -p "$build/pkg"
cp -r python/rnnkit "$build/pkg/"
find "$build/pkg" \( -name '*.so' -o -name __pycache__ \) -prune -exec rm -rf {} +

# -O1 -g: readable stack traces, and a quicker compile than -O2 (this step is on CI's clock).
CXX=$cxx cmake -S . -B "$build/cmake" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DRNNKIT_SANITIZE=ON \
  -DRNNKIT_DEV_OUTPUT_DIR="$root/$build/pkg/rnnkit" \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build/cmake"
built=$(date +%s)
# The compiler CMake chose (CXX counts only when the build folder is first configured).
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/cmake/CMakeCache.txt")

so=$(ls "$build"/pkg/rnnkit/_core*.so)
if ! ldd "$so" | grep libasan >/dev/null; then
  echo "sanitize.sh: $so is not linked against libasan; is RNNKIT_SANITIZE honoured?" >&2
  exit 2
fi
asan=$("$cxx" -print-file-name=libasan.so)
stdcxx=$("$cxx" -print-file-name=libstdc++.so)
for lib in "$asan" "$stdcxx"; do
  [ -f "$lib" ] || { echo "sanitize.sh: $lib not found (GCC needed)" >&2; exit 2; }
done

# libstdc++ is preloaded too: ASan must see it at start-up to intercept __cxa_throw, or
# the first C++ exception (every argument error) aborts the process.
export LD_PRELOAD="$asan $stdcxx"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONPATH="$root/$build/pkg"
export PYTHONDONTWRITEBYTECODE=1

python - <<EOF
import rnnkit._core as core
assert core.__file__.startswith("$root/$build/pkg/"), core.__file__
EOF

log="$build/pytest.log"
set +e
python -m pytest -q -p no:cacheprovider "${deselect[@]}" "${tests[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
end=$(date +%s)

# A report from a child process (the tests start a few) or one that did not stop the run
# still fails the check.
if grep -Eq "ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$log"; then
  echo "sanitize.sh: sanitizer report in $log" >&2
  [ "$status" -ne 0 ] || status=1
fi
echo "sanitize.sh: build $((built - start)) s, tests $((end - built)) s, exit status $status"
exit "$status"
