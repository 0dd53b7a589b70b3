"""GEMM kernel benchmark: rnnkit's packed AVX2 sgemm against NumPy's BLAS (OpenBLAS).

    python benchmarks/bench_kernels.py [--threads 1 2] [--quick] [--json PATH]

Shapes (float32, C = A @ B.T with A (M, K), B (N, K)):
  square    M = N = K = 2048
  per-step  M = batch B in {1, 32, 64}, N = 4H, K = H, H in {128, 256, 512}: one LSTM step's
            h @ W_hh.T; rnnkit uses W_hh packed once (PackedB + gemm_packed), the way the
            cells do; M = 1 is the GEMV path that streams the packed weights
  merged    M = T*B (T = 50), N = 4H, K = H: the input projection over a whole sequence,
            rnnkit's gemm_nt packing both operands per call

Each thread count runs in a fresh process with OMP_NUM_THREADS / OPENBLAS_NUM_THREADS set
(OpenBLAS reads them when it loads). Results are checked against float64 NumPy first;
then each kernel is timed in batches of calls of >= 2 ms (rnnkit inside C++, NumPy from
Python with ``matmul(out=)``, whose ~1 us call overhead shows at the smallest shapes).
Two figures per kernel:
  wall  the best batch by the wall clock (the least disturbed by other processes)
  cpu   1 thread only: flops / process CPU seconds, best batch. It does not count the
        time other processes held the core, so on a shared machine it is the steadier
        figure. (With more threads CPU time says nothing about the wall time.)
The figure compared (% peak, ratio) is cpu at 1 thread and wall otherwise; % peak is
against this machine's measured 256-bit FMA throughput x threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

try:
    from rnnkit import _core
except ImportError:  # running from a checkout without installing: use python/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
    from rnnkit import _core


def shapes(quick: bool) -> list[tuple[str, int, int, int]]:
    """(group, M, N, K) in benchmark order."""
    hs = [128, 256] if quick else [128, 256, 512]
    out = [] if quick else [("square", 2048, 2048, 2048)]
    for h in hs:
        for b in (1, 32, 64):
            out.append(("per-step", b, 4 * h, h))
    for h in hs:
        for b in (32, 64):
            out.append(("merged", 50 * b, 4 * h, h))
    return out


def check(group: str, M: int, N: int, K: int) -> float:
    """Largest error of rnnkit's result against float64 NumPy, in units of the float32
    bound K * eps * (|A| @ |B|); raises when above 1."""
    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, (M, K)).astype(np.float32)
    B = rng.uniform(-1, 1, (N, K)).astype(np.float32)
    C = np.empty((M, N), np.float32)
    if group == "per-step":
        _core._gemm_packed("nt", A, B, C, False)
    else:
        _core._gemm("nt", A, B, C, False)
    ref = A.astype(np.float64) @ B.T.astype(np.float64)
    bound = K * np.finfo(np.float32).eps * (np.abs(A).astype(np.float64) @ np.abs(B.T))
    worst = float(np.max(np.abs(C - ref) / bound))
    if worst > 1:
        raise AssertionError(f"rnnkit GEMM {M}x{N}x{K} off by {worst:.2f} x the error bound")
    return worst


def time_numpy(M: int, N: int, K: int, repeats: int) -> tuple[float, float]:
    """(best wall, best process-CPU) seconds per call of np.matmul(A, B.T, out=C)."""
    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, (M, K)).astype(np.float32)
    B = rng.uniform(-1, 1, (N, K)).astype(np.float32)
    C = np.empty((M, N), np.float32)
    Bt = B.T
    t0 = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - t0 < 0.02:
        np.matmul(A, Bt, out=C)
        calls += 1
    batch = max(1, int(2e-3 / ((time.perf_counter() - t0) / calls)))
    wall, cpu = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(batch):
            np.matmul(A, Bt, out=C)
        wall.append((time.perf_counter() - t0) / batch)
        cpu.append((time.process_time() - c0) / batch)
    return min(wall), min(cpu)


def worker(threads: int, quick: bool) -> list[dict]:
    """Benchmark every shape at `threads` threads (this process's BLAS was set by env)."""
    _core.set_num_threads(threads)
    peak = _core._fma_peak_gflops(0.3) * threads
    rows = []
    for group, M, N, K in shapes(quick):
        err = check(group, M, N, K)
        flops = 2.0 * M * N * K
        repeats = 5 if group == "square" else 15
        kind = "packed" if group == "per-step" else "nt"
        r = _core._bench_gemm(kind, M, N, K, "float32", repeats)
        np_wall, np_cpu = time_numpy(M, N, K, repeats)
        rows.append(
            {
                "group": group,
                "M": M,
                "N": N,
                "K": K,
                "threads": threads,
                "isa": r["isa"],
                "rnnkit_kernel": "gemm_packed" if kind == "packed" else "gemm_nt",
                "rnnkit_gflops_wall": flops / r["min_s"] / 1e9,
                "rnnkit_gflops_cpu": flops / r["cpu_min_s"] / 1e9 if threads == 1 else None,
                "numpy_gflops_wall": flops / np_wall / 1e9,
                "numpy_gflops_cpu": flops / np_cpu / 1e9 if threads == 1 else None,
                "peak_gflops": peak,
                "max_error_vs_bound": err,
            }
        )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--quick", action="store_true", help="smaller set, no 2048^3")
    p.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    p.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        json.dump(worker(args.worker, args.quick), sys.stdout)
        return 0

    info = _core.cpu_info()
    print(f"rnnkit {_core.__version__}  numpy {np.__version__}  python {platform.python_version()}")
    print(f"cpu: {platform.processor() or platform.machine()}  cores: {os.cpu_count()}  {info}")
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    print(f"numpy blas: {blas.get('name', '?')} {blas.get('version', '')}")
    rows = []
    for t in args.threads:
        env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t))
        cmd = [sys.executable, __file__, "--worker", str(t)] + (["--quick"] if args.quick else [])
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        rows.extend(json.loads(out))

    head = (
        f"{'shape':>9} {'M':>5} {'N':>5} {'K':>5} {'thr':>3} | rnnkit GF/s {'wall':>6} {'cpu':>6} "
        f"{'%peak':>5} | numpy GF/s {'wall':>6} {'cpu':>6} | rnnkit/numpy"
    )
    print(head)
    print("-" * len(head))

    def fmt(v: float | None) -> str:
        return f"{v:>6.1f}" if v is not None else f"{'-':>6}"

    for r in rows:
        key = "cpu" if r["threads"] == 1 else "wall"
        ours, theirs = r[f"rnnkit_gflops_{key}"], r[f"numpy_gflops_{key}"]
        print(
            f"{r['group']:>9} {r['M']:>5} {r['N']:>5} {r['K']:>5} {r['threads']:>3} | "
            f"{'':>11} {fmt(r['rnnkit_gflops_wall'])} {fmt(r['rnnkit_gflops_cpu'])} "
            f"{100 * ours / r['peak_gflops']:>5.1f} | {'':>10} {fmt(r['numpy_gflops_wall'])} "
            f"{fmt(r['numpy_gflops_cpu'])} | {ours / theirs:>5.2f} ({key})"
        )
    peaks = sorted({(r["threads"], round(r["peak_gflops"], 1)) for r in rows})
    print(
        "peak (measured FMA throughput x threads): "
        + ", ".join(f"{t} thr {p} GF/s" for t, p in peaks)
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
