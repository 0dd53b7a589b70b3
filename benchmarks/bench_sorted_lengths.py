"""The core's time for a batch whose lengths are sorted (non-increasing, as a
PackedSequence's) against the same sequences in a random order.

With sorted lengths each step's products run on the active rows only; in any other order
they run on all B rows. 2-layer LSTM and GRU stacks (64 -> 256, B = 32, T = 50, lengths
uniform in 10..50, float32, 1 thread), training (forward + backward) and inference; the
two orders alternate within each repeat; medians of CPU times. --proj-size P runs the
LSTM with a projection to P units (h_t = m_t W_hr^T) and leaves the GRU out.

    python benchmarks/bench_sorted_lengths.py --repeats 15 [--proj-size 128]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import rnnkit  # noqa: E402
from rnnkit import _native  # noqa: E402

T, B, INPUT, H, LAYERS = 50, 32, 64, 256, 2


def problem(
    mode: str, order: np.ndarray | None, rng: np.random.Generator, proj_size: int = 0
) -> dict:
    """Random weights and data; the batch in ``order`` (None: sorted by length); an LSTM
    with proj_size > 0 projects h to that many units."""
    gates = 4 if mode == "lstm" else 3
    R = proj_size or H  # the width of h
    bound = 1 / np.sqrt(H)

    def uniform(*shape):
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    weights = []
    for k in range(LAYERS):
        entry = (
            uniform(gates * H, INPUT if k == 0 else R),
            uniform(gates * H, R),
            uniform(gates * H),
            uniform(gates * H),
        )
        weights.append((*entry, uniform(proj_size, H)) if proj_size else entry)
    lengths = np.sort(rng.integers(10, T + 1, size=B))[::-1].astype(np.int64)
    x = rng.standard_normal((T, B, INPUT)).astype(np.float32)
    dout = rng.standard_normal((T, B, R)).astype(np.float32)
    if order is not None:
        lengths, x, dout = lengths[order], x[:, order], dout[:, order]
    h0 = np.zeros((LAYERS, B, R), np.float32)
    return {
        "mode": mode,
        "weights": weights,
        "lengths": np.ascontiguousarray(lengths),
        "x": np.ascontiguousarray(x),
        "dout": np.ascontiguousarray(dout),
        "h0": h0,
        "c0": np.zeros((LAYERS, B, H), np.float32) if mode == "lstm" else None,
    }


def train(p: dict) -> None:
    args = (p["mode"], p["x"], p["h0"], p["c0"], p["weights"], p["lengths"], None, True)
    cache = _native.stack_forward(*args, num_directions=1)[3]
    _native.stack_backward(p["mode"], cache, p["dout"], p["h0"], p["c0"])


def infer(p: dict) -> None:
    args = (p["mode"], p["x"], p["h0"], p["c0"], p["weights"], p["lengths"], None, False)
    _native.stack_forward(*args, num_directions=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--proj-size", type=int, default=0, help="LSTM projection (0: none)")
    args = parser.parse_args()
    rnnkit.set_num_threads(1)
    shuffle = np.random.default_rng(1).permutation(B)
    print("| cell | task | sorted ms | random order ms | random / sorted |")
    print("|---|---|---|---|---|")
    for mode in ("lstm",) if args.proj_size else ("lstm", "gru"):
        problems = {
            "sorted": problem(mode, None, np.random.default_rng(0), args.proj_size),
            "random": problem(mode, shuffle, np.random.default_rng(0), args.proj_size),
        }
        for task, fn in (("training", train), ("inference", infer)):
            times = {name: [] for name in problems}
            for i in range(2 + args.repeats):
                for name in problems if i % 2 == 0 else list(problems)[::-1]:
                    start = time.process_time()
                    fn(problems[name])
                    if i >= 2:
                        times[name].append(time.process_time() - start)
            s, r = (statistics.median(times[k]) for k in ("sorted", "random"))
            cell = mode.upper() + (f" proj_size={args.proj_size}" if args.proj_size else "")
            print(f"| {cell} | {task} | {1e3 * s:.1f} | {1e3 * r:.1f} | {r / s:.2f} |")


if __name__ == "__main__":
    main()
