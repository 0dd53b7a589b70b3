"""An LSTM with a projection (proj_size), rnnkit.LSTM against torch.nn.LSTM, same weights.

For each size it times inference (eval mode / no_grad) and training (forward and the
backward of out.sum()) at one thread, float32, one layer. Each measurement is a fresh
process per engine, the engines alternating over rounds; a process reports its best of
``--repeats`` calls after a warm-up, and the table gives the medians over rounds.

    python benchmarks/bench_lstm_projection.py
    python benchmarks/bench_lstm_projection.py --rounds 9 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

SIZES = [(100, 32, 256, 256, 128), (50, 64, 512, 512, 256)]  # T, B, I, H, P


def child(T: int, B: int, I: int, H: int, P: int, engine: str, mode: str, repeats: int) -> None:  # noqa: E741
    """Prints the best time (seconds) of ``repeats`` calls of one engine and mode."""
    import numpy as np
    import rnnkit
    import torch

    torch.set_num_threads(1)
    rnnkit.set_num_threads(1)
    torch.manual_seed(0)
    ref = torch.nn.LSTM(I, H, proj_size=P)
    x = torch.randn(T, B, I)
    training = mode == "training"
    if engine == "torch":
        xt = x.clone().requires_grad_(training)

        def run() -> None:
            if training:
                ref(xt)[0].sum().backward()
            else:
                with torch.no_grad():
                    ref(xt)
    else:
        m = rnnkit.LSTM(I, H, proj_size=P)
        m.load_state_dict(ref.state_dict())
        m.train(training)
        xn = x.numpy()

        def run() -> None:
            out, _ = m(xn)
            if training:
                m.backward(np.ones_like(out))

    for _ in range(2):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    print(min(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=8, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        *sizes, engine, mode, repeats = args.child
        child(*map(int, sizes), engine, mode, int(repeats))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print("| T, B, I=H, P | mode | torch ms | rnnkit ms | torch/rnnkit |")
    print("|---|---|---|---|---|")
    for size in SIZES:
        for mode in ("inference", "training"):
            times: dict[str, list[float]] = {"torch": [], "rnnkit": []}
            for r in range(args.rounds):
                order = ("torch", "rnnkit") if r % 2 == 0 else ("rnnkit", "torch")
                for engine in order:
                    command = [sys.executable, __file__, "--child", *map(str, size)]
                    command += [engine, mode, str(args.repeats)]
                    out = subprocess.run(command, env=env, capture_output=True, text=True)
                    times[engine].append(float(out.stdout.strip().splitlines()[-1]))
            t, k = (statistics.median(times[e]) for e in ("torch", "rnnkit"))
            T, B, I, H, P = size  # noqa: E741
            print(f"| {T}, {B}, {H}, {P} | {mode} | {t * 1e3:.1f} | {k * 1e3:.1f} | {t / k:.2f} |")


if __name__ == "__main__":
    main()
