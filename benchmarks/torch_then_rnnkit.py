"""torch and rnnkit alternating in one process: how long rnnkit takes right after a torch
call, and torch right after an rnnkit call, with rnnkit's teams on its own pool or on
torch's OpenMP threads (rnnkit.torch.use_torch_threads).

    python benchmarks/torch_then_rnnkit.py [--threads 2] [--rounds 3] [--iters 15]
        [--cases lstm-inference lstm-training gru-inference] [--baseline DIR]

One iteration: torch's own nn.LSTM/GRU on x (T=1000, B=16, I=H=128, float32; under
no_grad for inference, forward + backward for training), then rnnkit's LSTM/GRU (numpy
API) on the same x. Each (case, setting) runs in its own child process, settings
alternating round after round so that the machine's load hits them alike; each child
reports the medians of its iterations and the table gives the median over rounds.

Settings: ``torch-threads`` (this checkout, rnnkit.torch imported: rnnkit's teams on
torch's threads), ``own-pool`` (this checkout, rnnkit.torch imported, then
use_torch_threads(False)), and with ``--baseline DIR`` ``baseline`` (the rnnkit package
under DIR, rnnkit.torch imported).
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
if not {use_torch_threads}:
    rt.use_torch_threads(False)
torch.set_num_threads({threads})
rnnkit.set_num_threads({threads})
T, B, H = 1000, 16, 128
cell, mode = "{case}".split("-")
training = mode == "training"
x = np.random.default_rng(0).standard_normal((T, B, H)).astype(np.float32)
tm = getattr(torch.nn, cell.upper())(H, H)
rm = getattr(rnnkit, cell.upper())(H, H, seed=0)
rm.train(training)
tx = torch.from_numpy(x)
g = np.ones((T, B, H), np.float32)

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

t_torch, t_rnnkit = [], []
for i in range({warmup} + {iters}):
    t0 = time.perf_counter()
    run_torch()
    t1 = time.perf_counter()
    run_rnnkit()
    t2 = time.perf_counter()
    if i >= {warmup}:
        t_torch.append(t1 - t0)
        t_rnnkit.append(t2 - t1)
print(json.dumps({{"torch": sorted(t_torch)[len(t_torch) // 2],
                   "rnnkit": sorted(t_rnnkit)[len(t_rnnkit) // 2],
                   "torch_min": min(t_torch), "rnnkit_min": min(t_rnnkit),
                   "on_torch_threads": rt.torch_threads_in_use()
                   if hasattr(rt, "torch_threads_in_use") else False}}))
"""

CASES = ("lstm-inference", "lstm-training", "gru-inference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--baseline", help="a directory holding another rnnkit package")
    parser.add_argument("--no-own-pool", action="store_true", help="leave out the own-pool setting")
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parents[1] / "python")
    settings = [("torch-threads", here, True)]
    if not args.no_own_pool:
        settings.append(("own-pool", here, False))
    if args.baseline:
        settings.append(("baseline", args.baseline, True))
    results: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for case in args.cases:
            for name, path, use in settings:
                code = CHILD.format(
                    case=case,
                    threads=args.threads,
                    iters=args.iters,
                    warmup=args.warmup,
                    use_torch_threads=use,
                )
                env = {**os.environ, "PYTHONPATH": path}
                done = subprocess.run(
                    [sys.executable, "-c", code], env=env, capture_output=True, text=True
                )
                if done.returncode != 0:
                    sys.exit(f"{case} {name} failed:\n{done.stderr}")
                result = json.loads(done.stdout)
                results.setdefault((case, name), []).append(result)
                print(f"{case} {name}: {result}", file=sys.stderr, flush=True)
    print(
        f"{args.threads} threads, ms: each child's median over its iterations, then the "
        f"median over {args.rounds} rounds (their range); and the fastest iteration of all"
    )
    print("| case | setting | rnnkit after torch | fastest | torch after rnnkit | fastest |")
    print("|---|---|---|---|---|---|")
    for case in args.cases:
        for name, _, _ in settings:
            runs = results[(case, name)]
            cols = []
            for key in ("rnnkit", "torch"):
                ms = [r[key] * 1e3 for r in runs]
                fastest = min(r[key + "_min"] for r in runs) * 1e3
                cols.append(f"{statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f})")
                cols.append(f"{fastest:.1f}")
            print(f"| {case} | {name} | {' | '.join(cols)} |")


if __name__ == "__main__":
    main()
