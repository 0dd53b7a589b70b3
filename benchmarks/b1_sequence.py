"""Where an eval forward of one sequence (T=100, B=1, I=H=128, one thread) spends its
time, for the LSTM and the GRU: the call; the same call without an input projection
(I = 1), whose difference to the call is what the projection costs; a call at T = 1 (the
per-call overhead); the core's GEMMs alone, the projection (100 rows) and 100 step
products (one row), from ``_core._bench_gemm`` (CPU time); and onnxruntime's call on the
same weights (when installed), interleaved with rnnkit's.

    python benchmarks/b1_sequence.py [--baseline /path/to/baseline/python] [--rounds 2]

Each round runs one child process per build (the baseline's rnnkit, when given, then this
tree's), alternately, so that both see the same machine load. Medians of 300 calls, in
microseconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

T, H = 100, 128


def median_us(f, repeats: int = 300) -> float:
    for _ in range(20):
        f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def child() -> None:
    import rnnkit
    from rnnkit import _core

    rnnkit.set_num_threads(1)
    for name, cls, gates in (("lstm", rnnkit.LSTM, 4), ("gru", rnnkit.GRU, 3)):
        row = {}
        for label, n_in, steps in (("call", H, T), ("I=1", 1, T), ("T=1", H, 1)):
            m = cls(n_in, H, seed=0).eval()
            x = np.random.default_rng(0).standard_normal((steps, 1, n_in)).astype(np.float32)
            row[label] = median_us(lambda m=m, x=x: m(x))
        gemm = _core._bench_gemm("packed", T, gates * H, H, repeats=9)["cpu_median_s"] * 1e6
        step = _core._bench_gemm("packed", 1, gates * H, H, repeats=9)["cpu_median_s"] * 1e6
        line = (
            f"{name}: call {row['call']:.0f}  at I=1 {row['I=1']:.0f}  at T=1 {row['T=1']:.1f}"
            f"  projection GEMM {gemm:.0f}  100 step products {100 * step:.0f}"
        )
        try:
            from rnnkit.bench.peers import onnx_model, onnxruntime_session
        except ImportError:
            print(line)
            continue
        m = cls(H, H, seed=0).eval()
        x = np.random.default_rng(0).standard_normal((T, 1, H)).astype(np.float32)
        session = onnxruntime_session(onnx_model(name, m.state_dict(), H, H), 1)
        ours, theirs = [], []
        for _ in range(300):  # alternating calls: both see the same load
            t0 = time.perf_counter()
            m(x)
            t1 = time.perf_counter()
            session.run(["out"], {"x": x})
            ours.append(t1 - t0)
            theirs.append(time.perf_counter() - t1)
        ratio = np.median(theirs) / np.median(ours)
        print(f"{line}  onnxruntime {np.median(theirs) * 1e6:.0f} (ort / rnnkit {ratio:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="python/ directory of a baseline build")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python")
    builds = ([("baseline", args.baseline)] if args.baseline else []) + [("this tree", here)]
    for r in range(args.rounds):
        for label, path in builds:
            env = dict(os.environ, PYTHONPATH=path)
            print(f"-- round {r + 1}, {label}", flush=True)
            subprocess.run([sys.executable, __file__, "--child"], env=env, check=True)


if __name__ == "__main__":
    main()
