"""NumPy's BLAS thread count, and the practical peak: NumPy's float32 square matmul.

Controlling the BLAS threads robustly: the benchmark runs each thread count in a fresh
subprocess with OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS set before NumPy
is imported (see runner.py). Inside a process (``--in-process``, the tests) it also sets
the count at run time, through threadpoolctl when installed, else through OpenBLAS's own
``openblas_set_num_threads`` found by ctypes in the loaded libraries; and it reports the
count the library says it uses, or None when no known library answers.
"""

from __future__ import annotations

import ctypes
import importlib.util
import time

import numpy as np

THREAD_ENV_VARS: tuple[str, ...] = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# OpenBLAS builds prefix/suffix their symbols (scipy-openblas: scipy_..._64_).
_OPENBLAS_PREFIXES = ("", "scipy_")
_OPENBLAS_SUFFIXES = ("", "64_")


def _openblas_libs() -> list:
    """ctypes handles of the OpenBLAS libraries mapped into this process (Linux only)."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f if "openblas" in ln.lower() and "/" in ln})
    except OSError:
        return []
    libs = []
    for path in paths:
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


def _openblas_fn(lib, name: str):
    for pre in _OPENBLAS_PREFIXES:
        for suf in _OPENBLAS_SUFFIXES:
            fn = getattr(lib, f"{pre}{name}{suf}", None)
            if fn is not None:
                return fn
    return None


def get_blas_threads() -> int | None:
    """The thread count NumPy's BLAS reports, or None when it cannot be asked."""
    if importlib.util.find_spec("threadpoolctl") is not None:
        from threadpoolctl import threadpool_info

        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return int(max(counts))
    for lib in _openblas_libs():
        fn = _openblas_fn(lib, "openblas_get_num_threads")
        if fn is not None:
            fn.restype = ctypes.c_int
            return int(fn())
    return None


def set_blas_threads(n: int) -> int | None:
    """Ask NumPy's BLAS to use ``n`` threads from now on; returns the count it reports."""
    if importlib.util.find_spec("threadpoolctl") is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")  # stays in force (not used as a context)
    else:
        for lib in _openblas_libs():
            fn = _openblas_fn(lib, "openblas_set_num_threads")
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn(int(n))
    return get_blas_threads()


def matmul_gflops(n: int = 2048, repeats: int = 5) -> dict:
    """Best-of-``repeats`` GFLOP/s of a float32 (n, n) @ (n, n) NumPy matmul (2*n^3 FLOPs)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return {"n": n, "best_s": best, "gflops": 2.0 * n**3 / best / 1e9}
