"""A torch training step, plain torch against the same model patched onto rnnkit.torch.

    Embedding(1000, 64) -> 2-layer LSTM or GRU (64 -> 256, batch_first) -> Linear(256, 1000)
    -> cross entropy -> Adam;  B = 32, T = 50

For each cell (LSTM, GRU) and input (padded Tensor; PackedSequence with lengths uniform in
10..50) it times a training step, an inference forward (no_grad), and the recurrent layer
alone (forward + backward, and forward under no_grad).

Each engine runs in a process of its own, as a user runs one or the other: a torch
process never imports rnnkit. Measured in one process, interleaved, plain torch's step
ran 10-15% slower than in a process of its own (glibc returned heap memory that torch's
next step faulted in again, docs/performance.md), which flattered rnnkit. So every
round starts a fresh torch process and a fresh rnnkit process (the order alternating
between rounds) with torch.set_num_threads(n) (rnnkit.torch follows it); each times every
task ``--repeats`` times after a warm-up. The table gives the median over rounds of each
engine's median time, and of torch/rnnkit per round (the range over rounds in brackets);
the recurrent layer's share of the step is a median of per-step shares within a process.
Times are wall-clock by default; ``--clock cpu`` takes the process's CPU time instead,
the steadier measure at 1 thread on a machine that other jobs share (a process waiting
for a core is not charged for the wait). rnnkit's teams run on torch's OpenMP threads,
as importing rnnkit.torch sets up, unless ``--own-pool`` (the output says which).

    python benchmarks/bench_torch_bridge.py                 # 1 and 2 threads
    python benchmarks/bench_torch_bridge.py --threads 1 --rounds 3 --json out.json
    python benchmarks/bench_torch_bridge.py --threads 1 --clock cpu  # CPU time
    python benchmarks/bench_torch_bridge.py --threads 2 --own-pool  # rnnkit's own threads
    python benchmarks/bench_torch_bridge.py --recompute     # keeping the cache vs recomputing
    python benchmarks/bench_torch_bridge.py --overhead      # the bridge vs the core alone
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOCAB, EMBED, HIDDEN, LAYERS, BATCH, STEPS = 1000, 64, 256, 2, 32, 50


TASKS = ("training step", "inference", "recurrent layer, training", "recurrent layer, inference")


def child(engine: str, threads: int, repeats: int, warmup: int, clock: str, own_pool: bool) -> dict:
    """Run in a fresh process: every configuration on ``engine`` ("torch" or "rnnkit") at
    ``threads`` threads, timed with ``clock`` ("wall" or "cpu"). A torch process does not
    import rnnkit; an rnnkit process runs its teams on torch's OpenMP threads (what
    importing rnnkit.torch sets up) or, with ``own_pool``, on rnnkit's own pool. Returns
    {"teams": ..., "times": {"cell|input|task": [seconds per repeat]}, "faults": {the same
    keys: [minor page faults per repeat]}}."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.set_num_threads(threads)
    teams = None
    if engine == "rnnkit":
        sys.path.insert(0, str(ROOT / "python"))
        import rnnkit.torch as rt

        if own_pool:
            rt.use_torch_threads(False)
        teams = "torch's OpenMP threads" if rt.torch_threads_in_use() else "rnnkit's pool"
    now = time.process_time if clock == "cpu" else time.perf_counter

    class Model(torch.nn.Module):
        def __init__(self, cell: type) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, EMBED)
            self.rnn = cell(EMBED, HIDDEN, num_layers=LAYERS, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, VOCAB)

        def forward(self, tokens, lengths):
            x = self.emb(tokens)  # (B, T, E)
            return self.head(run_rnn(self.rnn, x, lengths))

    def run_rnn(rnn, x, lengths):
        """(B, T, E) -> (B, T, H); with lengths, through a PackedSequence."""
        if lengths is None:
            return rnn(x)[0]
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=STEPS)[0]

    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB, (BATCH, STEPS), generator=gen)
    targets = torch.randint(0, VOCAB, (BATCH, STEPS), generator=gen)
    packed_lengths = torch.randint(10, STEPS + 1, (BATCH,), generator=gen)
    times, faults = {}, {}  # per task: seconds and minor page faults, per repeat
    for cell in (torch.nn.LSTM, torch.nn.GRU):
        torch.manual_seed(0)  # the same weights in both engines' processes
        model = Model(cell)
        if engine == "rnnkit":
            model = rt.patch(model)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for packed in (False, True):
            lengths = packed_lengths if packed else None
            labels = targets.clone()
            if packed:  # no loss past a sequence's end
                labels[torch.arange(STEPS)[None, :] >= lengths[:, None]] = -100
            x_rnn = model.emb(tokens).detach().requires_grad_(True)
            dout = torch.randn(BATCH, STEPS, HIDDEN, generator=gen)

            def train(lengths=lengths, labels=labels, model=model, opt=opt):
                logits = model(tokens, lengths)
                loss = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, VOCAB), labels.reshape(-1), ignore_index=-100
                )
                opt.zero_grad()
                loss.backward()
                opt.step()

            def infer(lengths=lengths, model=model):
                with torch.no_grad():
                    model(tokens, lengths)

            def rnn_train(lengths=lengths, x_rnn=x_rnn, dout=dout, model=model):
                out = run_rnn(model.rnn, x_rnn, lengths)
                torch.autograd.backward(out, dout)

            def rnn_infer(lengths=lengths, x_rnn=x_rnn, model=model):
                with torch.no_grad():
                    run_rnn(model.rnn, x_rnn, lengths)

            # Repeats: every task once, in turn, so that drift within the process touches
            # all alike and a layer's share is taken within one repeat.
            runs = dict(zip(TASKS, (train, infer, rnn_train, rnn_infer)))
            config = f"{cell.__name__}|{'PackedSequence' if packed else 'padded'}"
            for task in TASKS:
                times[f"{config}|{task}"] = []
                faults[f"{config}|{task}"] = []
            for i in range(warmup + repeats):
                for task, fn in runs.items():
                    faulted = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    start = now()
                    fn()
                    elapsed = now() - start
                    if i >= warmup:
                        times[f"{config}|{task}"].append(elapsed)
                        faulted = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faulted
                        faults[f"{config}|{task}"].append(faulted)
    return {"teams": teams, "times": times, "faults": faults}


def compare(rounds: list[dict], threads: int, clock: str) -> list[dict]:
    """One result per configuration and task from ``rounds`` ({"torch": child output,
    "rnnkit": child output} each): medians over rounds of each engine's median time and
    of the per-round torch/rnnkit, with the ratio's range, and each engine's median share
    of the recurrent layer in its step (per repeat, within its process)."""
    results = []
    for key in rounds[0]["torch"]["times"]:
        cell, input_kind, task = key.split("|")
        whole = key.rsplit("|", 1)[0] + (
            "|training step" if task.endswith("training") else "|inference"
        )
        med = {
            e: [statistics.median(r[e]["times"][key]) for r in rounds] for e in ("torch", "rnnkit")
        }
        ratios = [a / b for a, b in zip(med["torch"], med["rnnkit"])]
        share = {
            e: statistics.median(
                a / b for r in rounds for a, b in zip(r[e]["times"][key], r[e]["times"][whole])
            )
            for e in ("torch", "rnnkit")
        }
        results.append(
            {
                "cell": cell,
                "input": input_kind,
                "task": task,
                "threads": threads,
                "clock": clock,
                "rounds": len(rounds),
                "rnnkit_teams": rounds[0]["rnnkit"]["teams"],
                "torch_ms": 1e3 * statistics.median(med["torch"]),
                "rnnkit_ms": 1e3 * statistics.median(med["rnnkit"]),
                "ratio": statistics.median(ratios),
                "ratio_low": min(ratios),
                "ratio_high": max(ratios),
                "torch_share": share["torch"],
                "rnnkit_share": share["rnnkit"],
                **{
                    f"{e}_faults": statistics.median(f for r in rounds for f in r[e]["faults"][key])
                    for e in ("torch", "rnnkit")
                },
            }
        )
    return results


def recompute_cost(repeats: int, warmup: int) -> list[str]:
    """The recurrent layer's training step (the operators alone, 1 thread) with the backward
    using the forward's saved cache, against a copied handle, which makes the backward run
    the forward again: what recomputing instead of keeping the cache would cost."""
    import torch

    sys.path.insert(0, str(ROOT / "python"))
    import rnnkit.torch as rt

    torch.set_num_threads(1)
    lines = []
    for cell in (rt.LSTM, rt.GRU):
        module = cell(EMBED, HIDDEN, num_layers=LAYERS)
        x = torch.randn(STEPS, BATCH, EMBED)
        weights = [getattr(module, n).detach() for n in module._flat_weights_names]
        h0 = torch.zeros(LAYERS, BATCH, HIDDEN)
        c0 = h0 if cell is rt.LSTM else None
        mode = cell.__name__.lower()

        def step(copy_handle, mode=mode, x=x, weights=weights, h0=h0, c0=c0):
            args = (x, h0, c0, weights, None, [], 1, True)
            out, h_n, c_n, handle = torch.ops.rnnkit.stack_forward(mode, *args, True)
            handle = handle.clone() if copy_handle else handle
            dc_n = None if c0 is None else torch.zeros_like(h_n)
            grads = (torch.ones_like(out), torch.zeros_like(h_n), dc_n)
            torch.ops.rnnkit.stack_backward(mode, handle, *args, *grads)

        times = {False: [], True: []}
        for i in range(warmup + repeats):
            for copy_handle in (False, True) if i % 2 == 0 else (True, False):
                start = time.perf_counter()
                step(copy_handle)
                if i >= warmup:
                    times[copy_handle].append(time.perf_counter() - start)
        kept, again = statistics.median(times[False]), statistics.median(times[True])
        lines.append(
            f"{cell.__name__}: backward from the saved cache {1e3 * kept:.1f} ms, "
            f"recomputing the forward {1e3 * again:.1f} ms (+{100 * (again / kept - 1):.0f}%)"
        )
    return lines


def bridge_overhead(repeats: int, warmup: int) -> list[str]:
    """1 thread: the recurrent layer's forward + backward with a PackedSequence through
    rnnkit.torch (pack_padded_sequence, the bridge, autograd, pad_packed_sequence) against
    the core called directly on the same problem in sorted order, and torch's packing alone
    (the same calls around a layer that only repeats its input's columns: what torch's own
    module pays too). Between them, to split the bridge's cost: the module on a ready
    PackedSequence (no packing or unpacking), and the rnnkit::stack_forward operator with
    autograd on the sorted padded problem (no module). Every run starts without gradients
    (as after a training step's zero_grad). Medians of CPU times, all alternating."""
    import numpy as np
    import torch
    from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

    sys.path.insert(0, str(ROOT / "python"))
    import rnnkit
    import rnnkit.torch as rt
    from rnnkit import _native

    torch.set_num_threads(1)
    rnnkit.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, STEPS + 1, (BATCH,), generator=gen)
    order = torch.argsort(lengths, descending=True)
    sorted_lengths = lengths[order].numpy().copy()
    h0 = np.zeros((LAYERS, BATCH, HIDDEN), np.float32)
    state, op_lengths = torch.from_numpy(h0), torch.from_numpy(sorted_lengths)
    lines = []
    for cell in (rt.LSTM, rt.GRU):
        rnn = cell(EMBED, HIDDEN, num_layers=LAYERS, batch_first=True)
        x = torch.randn(BATCH, STEPS, EMBED, generator=gen).requires_grad_(True)
        dout = torch.randn(BATCH, STEPS, HIDDEN, generator=gen)
        mode = cell.__name__.lower()
        x_sorted = x.detach()[order].transpose(0, 1).contiguous().numpy()
        dout_sorted = dout[order].transpose(0, 1).contiguous().numpy()
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        weights = [
            tuple(getattr(rnn, f"{n}_l{k}").detach().numpy() for n in names) for k in range(LAYERS)
        ]
        c0 = h0 if cell is rt.LSTM else None

        def bridge(rnn=rnn, x=x, dout=dout):
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out = pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=STEPS)[0]
            torch.autograd.backward(out, dout)

        def core(mode=mode, x=x_sorted, dout=dout_sorted, weights=weights, c0=c0):
            args = (mode, x, h0, c0, weights, sorted_lengths, None, True)
            cache = _native.stack_forward(*args, num_directions=1)[3]
            _native.stack_backward(mode, cache, dout, h0, c0)

        ready = pack_padded_sequence(x.detach(), lengths, batch_first=True, enforce_sorted=False)
        ready_data = ready.data.clone().requires_grad_(True)
        ready_dout = torch.randn(ready_data.shape[0], HIDDEN, generator=gen)
        x_op = torch.from_numpy(x_sorted).requires_grad_(True)
        op_weights = [getattr(rnn, n) for n in rnn._flat_weights_names]

        def module(rnn=rnn, data=ready_data, ready=ready, dout=ready_dout):
            packed = PackedSequence(
                data, ready.batch_sizes, ready.sorted_indices, ready.unsorted_indices
            )
            torch.autograd.backward(rnn(packed)[0].data, dout)

        def operator(mode=mode, x=x_op, weights=op_weights, dout=dout_sorted):
            c = state if mode == "lstm" else None
            args = (x, state, c, weights, op_lengths, [], 1, True, True)
            out = torch.ops.rnnkit.stack_forward(mode, *args)[0]
            torch.autograd.backward(out, torch.from_numpy(dout))

        def packing(x=x, dout=dout):
            p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            data = p.data.repeat(1, HIDDEN // EMBED)  # (rows, H): a stand-in layer
            q = PackedSequence(data, p.batch_sizes, p.sorted_indices, p.unsorted_indices)
            out = pad_packed_sequence(q, batch_first=True, total_length=STEPS)[0]
            torch.autograd.backward(out, dout)

        runs = (
            ("bridge", bridge),
            ("module", module),
            ("operator", operator),
            ("core", core),
            ("packing", packing),
        )
        times = {name: [] for name, _ in runs}
        leaves = [*rnn.parameters(), x, ready_data, x_op]
        for i in range(warmup + repeats):
            for name, fn in runs if i % 2 == 0 else runs[::-1]:
                for t in leaves:  # as a training step's zero_grad: no gradient to add to
                    t.grad = None
                start = time.process_time()
                fn()
                if i >= warmup:
                    times[name].append(time.process_time() - start)
        b, m, o, c, p = (statistics.median(times[name]) for name, _ in runs)
        lines.append(
            f"{cell.__name__} PackedSequence forward + backward: through rnnkit.torch "
            f"{1e3 * b:.1f} ms, the core alone {1e3 * c:.1f} ms (+{100 * (b / c - 1):.0f}%), "
            f"torch's packing and unpacking alone {1e3 * p:.1f} ms; the module on a ready "
            f"PackedSequence {1e3 * m:.1f} ms, the operator on the sorted padded problem "
            f"{1e3 * o:.1f} ms"
        )
    return lines


def table(results: list[dict]) -> str:
    """Markdown: one row per cell, input and task; torch/rnnkit and ms per thread count."""
    threads = sorted({r["threads"] for r in results})
    head = "| cell | input | task | " + " | ".join(
        f"{n} thread{'s' if n > 1 else ''}: torch ms / rnnkit ms (torch/rnnkit [range])"
        for n in threads
    )
    lines = [head + " |", "|---" * (3 + len(threads)) + "|"]
    keys = list(dict.fromkeys((r["cell"], r["input"], r["task"]) for r in results))
    for key in keys:
        cells = []
        for n in threads:
            r = next(
                r
                for r in results
                if (r["cell"], r["input"], r["task"]) == key and r["threads"] == n
            )
            cells.append(
                f"{r['torch_ms']:.1f} / {r['rnnkit_ms']:.1f} (**{r['ratio']:.2f}** "
                f"[{r['ratio_low']:.2f}-{r['ratio_high']:.2f}])"
            )
        lines.append(f"| {' | '.join(key)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shares(results: list[dict]) -> str:
    """The recurrent layer's share of the training step and of inference, and the training
    step's page faults, per engine."""
    out = []
    for r in results:
        if r["task"].startswith("recurrent layer"):
            whole = "training step" if r["task"].endswith("training") else "inference"
            out.append(
                f"{r['cell']} {r['input']} {whole}, {r['threads']} thread(s): recurrent layer "
                f"{100 * r['torch_share']:.0f}% of torch's, "
                f"{100 * r['rnnkit_share']:.0f}% of rnnkit's"
            )
        elif r["task"] == "training step":
            out.append(
                f"{r['cell']} {r['input']} training step, {r['threads']} thread(s): minor page "
                f"faults per step (median) torch {r['torch_faults']:.0f}, "
                f"rnnkit {r['rnnkit_faults']:.0f}"
            )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=9, help="timed steps per task and process")
    p.add_argument(
        "--rounds", type=int, default=3, help="torch and rnnkit processes per thread count"
    )
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="wall-clock or CPU time"
    )
    p.add_argument("--json", help="write the results here")
    p.add_argument(
        "--recompute", action="store_true", help="only time keeping vs recomputing the cache"
    )
    p.add_argument(
        "--overhead", action="store_true", help="only time the bridge against the core alone"
    )
    p.add_argument(
        "--own-pool",
        action="store_true",
        help="rnnkit's teams on its own pool instead of torch's OpenMP threads",
    )
    p.add_argument("--child", nargs=2, metavar=("ENGINE", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        engine, threads = args.child[0], int(args.child[1])
        out = child(engine, threads, args.repeats, args.warmup, args.clock, args.own_pool)
        print(json.dumps(out))
        return
    if args.recompute:
        print("\n".join(recompute_cost(args.repeats, args.warmup)))
        return
    if args.overhead:
        print("\n".join(bridge_overhead(args.repeats, args.warmup)))
        return
    results = []
    for n in args.threads:
        env = {**os.environ, "OMP_NUM_THREADS": str(n)}
        rounds = []
        for i in range(args.rounds):
            done = {}
            for engine in ("torch", "rnnkit") if i % 2 == 0 else ("rnnkit", "torch"):
                command = [
                    *(sys.executable, __file__, "--child", engine, str(n)),
                    *("--repeats", str(args.repeats), "--warmup", str(args.warmup)),
                    *("--clock", args.clock, *(["--own-pool"] if args.own_pool else [])),
                ]
                run = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                done[engine] = json.loads(run.stdout.strip().splitlines()[-1])
                print(f"{n} thread(s), round {i + 1}/{args.rounds}: {engine} done", flush=True)
            rounds.append(done)
        results += compare(rounds, n, args.clock)
    print(table(results))
    print()
    for n in args.threads:
        teams = {r["rnnkit_teams"] for r in results if r["threads"] == n}
        print(
            f"{n} thread(s): {args.clock} clock, {args.rounds} rounds of a torch and an "
            f"rnnkit process, {args.repeats} repeats each; rnnkit's teams on "
            f"{', '.join(sorted(teams))}"
        )
    print()
    print(shares(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
