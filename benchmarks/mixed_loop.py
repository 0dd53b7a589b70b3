"""A training loop that mixes rnnkit with NumPy's BLAS (and optionally torch), timed under
the process's default thread settings and with every pool pinned to one thread.

    python benchmarks/mixed_loop.py [--rounds 5] [--iters 200] [--torch] [--configs ...]
        [--pythonpath DIR ...]

One iteration: ``rnnkit.LSTM(64, 64)`` forward + backward on x (12, 32, 64), then one
NumPy ``(384, 64) @ (64, 256)``. Idle workers that spin after a parallel region (OpenMP's
do by default) take the cores that NumPy's OpenBLAS threads want next, and the other way
round. Each configuration runs in its own child process (the thread settings are read when
the libraries load), alternating configurations round after round so that the machine's
load hits them alike; each child reports the median and the 90th percentile of its
iteration times, and the table gives the median over rounds of each.

Configurations (``--configs``): ``default`` (no thread variable set), ``blas1``
(OPENBLAS_NUM_THREADS=1), ``omp1`` (OMP_NUM_THREADS=1), ``pinned`` (both) and ``passive``
(OMP_WAIT_POLICY=passive: OpenMP threads sleep at once), for each rnnkit build given with
``--pythonpath`` (default: this checkout's python/); with ``--torch`` the child imports
torch first (its own OpenMP runtime and thread pool in the process), and rnnkit.torch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
if {use_torch}:
    import torch  # noqa: F401
import numpy as np
import rnnkit
if {use_torch}:
    import rnnkit.torch  # noqa: F401  (rnnkit's teams on torch's threads where it has them)

rng = np.random.default_rng(0)
lstm = rnnkit.LSTM(64, 64)
x = rng.standard_normal((12, 32, 64)).astype(np.float32)
a = rng.standard_normal((384, 64)).astype(np.float32)
b = rng.standard_normal((64, 256)).astype(np.float32)
times = []
for i in range({warmup} + {iters}):
    t0 = time.perf_counter()
    out, _ = lstm(x)
    lstm.backward(np.ones_like(out), (None, None))
    c = a @ b
    times.append(time.perf_counter() - t0)
times = sorted(times[{warmup}:])
print(json.dumps({{"median": times[len(times) // 2], "p90": times[int(len(times) * 0.9)]}}))
"""


# The thread settings of each configuration (environment variables of the child).
CONFIGS = {
    "default": {},
    "blas1": {"OPENBLAS_NUM_THREADS": "1"},
    "omp1": {"OMP_NUM_THREADS": "1"},
    "pinned": {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    "passive": {"OMP_WAIT_POLICY": "passive"},
}


def run_child(pythonpath: str, config: str, use_torch: bool, iters: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    env["PYTHONPATH"] = pythonpath
    env.update(CONFIGS[config])
    code = CHILD.format(use_torch=use_torch, warmup=20, iters=iters)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--torch", action="store_true", help="import torch in the child")
    parser.add_argument(
        "--configs", nargs="+", default=["default", "pinned"], choices=list(CONFIGS)
    )
    parser.add_argument(
        "--pythonpath",
        nargs="+",
        default=[str(Path(__file__).resolve().parent.parent / "python")],
        help="rnnkit builds to compare (each a directory holding the rnnkit package)",
    )
    args = parser.parse_args()
    configs = [(p, c) for p in args.pythonpath for c in args.configs]
    results: dict = {c: [] for c in configs}
    for _ in range(args.rounds):
        for c in configs:
            results[c].append(run_child(c[0], c[1], args.torch, args.iters))
    print(f"torch imported: {args.torch}; {args.rounds} rounds x {args.iters} iterations")
    print(f"{'build':40s} {'config':8s} {'median ms':>10s} {'p90 ms':>10s}")
    for (path, config), runs in results.items():
        med = statistics.median(r["median"] for r in runs) * 1e3
        p90 = statistics.median(r["p90"] for r in runs) * 1e3
        print(f"{path:40s} {config:8s} {med:10.3f} {p90:10.3f}")


if __name__ == "__main__":
    main()
