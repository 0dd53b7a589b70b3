"""torch and rnnkit alternating in one process: how long rnnkit takes right after a torch
call, and torch right after an rnnkit call, with rnnkit's teams on its own pool or on
torch's OpenMP threads (rnnkit.torch.use_torch_threads).

    python benchmarks/torch_then_rnnkit.py [--threads 2] [--rounds 3] [--iters 15]
        [--cases lstm-inference lstm-training gru-inference] [--shape 1000 16 128]
        [--pause 0] [--baseline DIR]

One iteration: torch's own nn.LSTM/GRU/RNN on x (by default T=1000, B=16, I=H=128;
float32; under no_grad for inference, forward + backward for training), then, after
``--pause`` seconds, rnnkit's (numpy API) on the same x. Each round runs a child per
case and build, alternately.

Settings: ``torch-threads`` (this checkout, rnnkit.torch imported: rnnkit's large teams
on torch's threads) and ``own-pool`` (the same after use_torch_threads(False)), which one
child alternates iteration by iteration, and with ``--baseline DIR`` ``baseline`` (the
rnnkit package under DIR, rnnkit.torch imported) in a child of its own.
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
import json, time
import numpy as np
import torch
import rnnkit
import rnnkit.torch as rt
torch.set_num_threads({threads})
rnnkit.set_num_threads({threads})
T, B, H = {shape}
cell, mode = "{case}".split("-")
training = mode == "training"
x = np.random.default_rng(0).standard_normal((T, B, H)).astype(np.float32)
tm = getattr(torch.nn, cell.upper())(H, H)
rm = getattr(rnnkit, cell.upper())(H, H, seed=0)
rm.train(training)
tx = torch.from_numpy(x)
g = np.ones((T, B, H), np.float32)
settings = {settings}

def run_torch():
    if training:
        tm(tx.requires_grad_())[0].sum().backward()
    else:
        with torch.no_grad():
            tm(tx)

def run_rnnkit():
    out, _ = rm(x)
    if training:
        rm.backward(g)

times = {{name: {{"torch": [], "rnnkit": []}} for name in settings}}
for i in range(len(settings) * ({warmup} + {iters})):
    name = settings[i % len(settings)]
    if name != "baseline":
        rt.use_torch_threads(name == "torch-threads")
    t0 = time.perf_counter()
    run_torch()
    t1 = time.perf_counter()
    time.sleep({pause})
    t_start = time.perf_counter()
    run_rnnkit()
    t2 = time.perf_counter()
    if i >= len(settings) * {warmup}:
        times[name]["torch"].append(t1 - t0)
        times[name]["rnnkit"].append(t2 - t_start)
print(json.dumps(times))
"""


CASES = tuple(f"{c}-{m}" for c in ("lstm", "gru", "rnn") for m in ("inference", "training"))
DEFAULT_CASES = ("lstm-inference", "lstm-training", "gru-inference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(DEFAULT_CASES))
    parser.add_argument("--shape", nargs=3, type=int, default=[1000, 16, 128], help="T B H")
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds between torch's call and rnnkit's"
    )
    parser.add_argument("--baseline", help="a directory holding another rnnkit package")
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parents[1] / "python")
    # One child alternates this checkout's two settings iteration by iteration (the same
    # load for both); the baseline runs in a child of its own, interleaved with it.
    children = [(here, ["torch-threads", "own-pool"])]
    if args.baseline:
        children.append((args.baseline, ["baseline"]))
    names = [name for _, settings in children for name in settings]
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for case in args.cases:
            for path, settings in children:
                code = CHILD.format(
                    case=case,
                    threads=args.threads,
                    iters=args.iters,
                    warmup=args.warmup,
                    settings=settings,
                    shape=tuple(args.shape),
                    pause=args.pause,
                )
                env = {**os.environ, "PYTHONPATH": path}
                done = subprocess.run(
                    [sys.executable, "-c", code], env=env, capture_output=True, text=True
                )
                if done.returncode != 0:
                    sys.exit(f"{case} {settings} failed:\n{done.stderr}")
                for name, times in json.loads(done.stdout).items():
                    runs.setdefault((case, name), []).append(times)
                    med = {k: f"{statistics.median(v) * 1e3:.1f}" for k, v in times.items()}
                    print(f"{case} {name}: median ms {med}", file=sys.stderr, flush=True)
    print(
        f"{args.threads} threads, ms: median of each child's iterations, then the median "
        f"over {args.rounds} rounds (their range), and the fastest iteration of all"
    )
    print("| case | setting | rnnkit after torch | fastest | torch after rnnkit | fastest |")
    print("|---|---|---|---|---|---|")
    for case in args.cases:
        for name in names:
            cols = []
            for key in ("rnnkit", "torch"):
                ms = [statistics.median(r[key]) * 1e3 for r in runs[(case, name)]]
                fastest = min(min(r[key]) for r in runs[(case, name)]) * 1e3
                cols.append(f"{statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f})")
                cols.append(f"{fastest:.1f}")
            print(f"| {case} | {name} | {' | '.join(cols)} |")


if __name__ == "__main__":
    main()
