"""Vanishing and exploding gradients in RNN, LSTM and GRU, and what gradient clipping does.

Part 1: how much of the gradient of a loss on the LAST output reaches the input k steps
earlier. Each cell runs forward over a random sequence; backward gets a gradient on the last
output only (grad_out is zero elsewhere), and the norm of dx[T-1-k] is read for each k.
Besides torch's default initialisation, two common remedies (a forget-gate bias of +2 for
the LSTM, an update-gate bias of +2 for the GRU) and an RNN with 3x larger recurrent weights
show the two ways it can go.

Part 2: an RNN with large recurrent weights (W_hh x 4) learns to recall the token it saw two
steps earlier, with SGD, twice from the same start: without clipping and with
clip_grad_norm(max_norm=1), for --runs seeds. The printed gradient norms are the ones before
clipping.

    python examples/gradients.py                   # both parts; gradients.png if matplotlib
    python examples/gradients.py --steps 100 --no-plot
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from argtypes import ArgumentParser, add_backend_argument, check_writable, float_in, int_at_least

try:
    import rnnkit
except ModuleNotFoundError:  # not installed: use the source checkout this script sits in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import rnnkit
from rnnkit import nn, optim
from rnnkit.optim import iter_param_grads

# name -> (class, constructor kwargs, parameter edit applied after construction)
CONFIGS = {
    "rnn": (rnnkit.RNN, {}, None),
    "lstm": (rnnkit.LSTM, {}, None),
    "gru": (rnnkit.GRU, {}, None),
    "lstm, forget bias +2": (rnnkit.LSTM, {}, ("bias_hh_l0", 1, 2.0)),  # blocks [i, f, g, o]
    "gru, update bias +2": (rnnkit.GRU, {}, ("bias_hh_l0", 1, 2.0)),  # blocks [r, z, n]
    "rnn, W_hh x 3": (rnnkit.RNN, {}, ("weight_hh_l0", None, 3.0)),
}


def build(name: str, input_size: int, hidden: int, backend: str, seed: int):
    """A float64 module of configuration ``name`` (see CONFIGS)."""
    cls, kwargs, edit = CONFIGS[name]
    m = cls(input_size, hidden, dtype="float64", backend=backend, seed=seed, **kwargs)
    if edit is not None:
        param, block, value = edit
        p = m.parameters()[param]  # live array: edits change the module
        if block is None:
            p *= value
        else:
            p[block * hidden : (block + 1) * hidden] += value
    return m


def gradient_by_distance(
    name: str, T: int, batch: int, input_size: int, hidden: int, backend: str, seed: int
) -> np.ndarray:
    """norm(d loss / d x[T-1-k]) for k = 0..T-1, where the loss reads only the last output."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, batch, input_size))  # (T, B, I)
    m = build(name, input_size, hidden, backend, seed)
    out, _ = m(x)  # (T, B, H)
    grad_out = np.zeros_like(out)
    grad_out[-1] = rng.standard_normal((batch, hidden))  # loss = sum(out[T-1] * r)
    dx, _ = m.backward(grad_out, None)  # (T, B, I)
    norms = np.linalg.norm(dx.reshape(T, -1), axis=1)  # (T,)
    return norms[::-1]  # index k = steps back from the last one


def global_norm(modules) -> float:
    return math.sqrt(
        sum(float(np.sum(g.astype(np.float64) ** 2)) for _, _, g in iter_param_grads(modules))
    )


def recall_batch(rng: np.random.Generator, T: int, batch: int, k: int):
    """Inputs (T, B, K): 2 x one-hot tokens; targets (T, B): the token two steps back.

    The first two steps have no target (-100, ignored by the loss).
    """
    tokens = rng.integers(0, k, size=(T, batch))
    targets = np.full((T, batch), -100)
    targets[2:] = tokens[:-2]
    return 2.0 * np.eye(k)[tokens], targets


def train_exploding(args: argparse.Namespace, clip: float | None, seed: int) -> dict:
    """SGD on the recall task from the start given by ``seed``; losses and norms per step.

    With large weights the network is chaotic: rounding differences (float32, or another
    backend's summation order) change the trajectory after some tens of steps, so the runs
    use float64 and the example reports several seeds, not one.
    """
    rng = np.random.default_rng(seed)
    rnn = rnnkit.RNN(args.tokens, args.hidden, dtype="float64", backend=args.backend, seed=seed + 1)
    rnn.parameters()["weight_hh_l0"][...] *= args.gain  # large weights: gradients explode
    head = nn.Linear(args.hidden, args.tokens, dtype="float64", seed=seed + 2)
    opt = optim.SGD([rnn, head], lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    losses, before, after = [], [], []
    for _ in range(args.steps):
        x, y = recall_batch(rng, args.seq_len, args.batch_size, args.tokens)
        opt.zero_grad()
        out, _ = rnn(x)  # (T, B, H)
        losses.append(loss_fn(head(out), y))
        rnn.backward(head.backward(loss_fn.backward()), None)
        if clip is None:
            before.append(global_norm([rnn, head]))
        else:
            before.append(rnnkit.clip_grad_norm([rnn, head], clip))
        after.append(global_norm([rnn, head]))
        opt.step()
    w = rnn.parameters()["weight_hh_l0"]
    return {
        "loss": losses,
        "norm": before,
        "norm_after": after,
        "max_abs_w_hh": float(np.abs(w).max()),
    }


def plot(ks: np.ndarray, curves: dict, path: str) -> bool:
    """Log-scale plot of the gradient norms; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, norms in curves.items():
        ax.semilogy(ks, norms, label=name)
    ax.set_xlabel("k (steps back from the last output)")
    ax.set_ylabel("|| d loss / d x[T-1-k] ||")
    ax.set_title("Gradient reaching earlier inputs (default init unless noted)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    positive = int_at_least(1)
    g = p.add_argument_group("part 1: gradient vs distance")
    g.add_argument("--length", type=positive, default=100, help="sequence length T")
    g.add_argument("--input-size", type=positive, default=16, help="input features")
    g.add_argument(
        "--plot", default="gradients.png", help="PNG written when matplotlib is installed"
    )
    g.add_argument("--no-plot", action="store_true", help="print the table only")
    g = p.add_argument_group("part 2: training an exploding RNN with and without clipping")
    g.add_argument("--steps", type=positive, default=200, help="SGD steps per run")
    g.add_argument("--lr", type=float_in(0), default=0.5, help="SGD learning rate")
    g.add_argument("--gain", type=float_in(0), default=4.0, help="factor applied to W_hh")
    g.add_argument("--max-norm", type=float_in(0), default=1.0, help="clip_grad_norm's max_norm")
    g.add_argument("--runs", type=positive, default=3, help="seeds --seed, --seed+1, ... to train")
    g.add_argument(
        "--seq-len",
        type=int_at_least(3),
        default=50,
        help="sequence length of the task (the first two steps have no target)",
    )
    g.add_argument("--tokens", type=int_at_least(2), default=4, help="distinct input tokens")
    p.add_argument("--hidden", type=positive, default=64, help="hidden size (both parts)")
    p.add_argument("--batch-size", type=positive, default=32, help="sequences per batch")
    add_backend_argument(p)
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of data and weights")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.no_plot:
        check_writable(parser, "--plot", args.plot)
    start = time.perf_counter()

    # ---- part 1
    curves = {
        name: gradient_by_distance(
            name,
            args.length,
            args.batch_size,
            args.input_size,
            args.hidden,
            args.backend,
            args.seed,
        )
        for name in CONFIGS
    }
    ks = np.arange(args.length)
    shown = [k for k in (0, 1, 2, 5, 10, 20, 50, 99, 199, 499) if k < args.length]
    print(
        f"Part 1: || d loss / d x[T-1-k] ||, loss on the last output only (T={args.length}, "
        f"B={args.batch_size}, I={args.input_size}, H={args.hidden}, float64)"
    )
    width = max(len(n) for n in CONFIGS)
    print(f"{'k':>{width}} " + " ".join(f"{k:>8d}" for k in shown))
    for name, norms in curves.items():
        print(f"{name:>{width}} " + " ".join(f"{norms[k]:8.1e}" for k in shown))
    if not args.no_plot:
        if plot(ks, curves, args.plot):
            print(f"plot written to {args.plot}")
        else:
            print("(matplotlib is not installed: table only; pip install matplotlib for a plot)")

    # ---- part 2
    print(
        f"\nPart 2: RNN with W_hh x {args.gain:g}, recall the token 2 steps back "
        f"(T={args.seq_len}, {args.tokens} tokens, chance loss {math.log(args.tokens):.3f}), "
        f"SGD lr={args.lr:g}, {args.steps} steps"
    )
    runs = [
        {
            "no clipping": train_exploding(args, None, seed),
            "clipped": train_exploding(args, args.max_norm, seed),
        }
        for seed in range(args.seed, args.seed + args.runs)
    ]
    plain, clipped = runs[0]["no clipping"], runs[0]["clipped"]
    print(f"seed {args.seed}:")
    print(f"{'step':>6}  {'no clipping':^22}  {f'clip_grad_norm({args.max_norm:g})':^22}")
    print(f"{'':>6}  {'loss':>9} {'grad norm':>12}  {'loss':>9} {'grad norm':>12}")
    every = max(1, args.steps // 10)
    for i in [*range(0, args.steps, every), args.steps - 1]:
        print(
            f"{i:6d}  {plain['loss'][i]:9.3f} {plain['norm'][i]:12.3e}  "
            f"{clipped['loss'][i]:9.3f} {clipped['norm'][i]:12.3e}"
        )
    tail = max(1, args.steps // 10)
    print(
        f"per seed: highest loss after step 0 / mean loss of the last {tail} steps / "
        f"max |W_hh| at the end"
    )
    summary: dict[str, float] = {}
    for label in ("no clipping", "clipped"):
        finals = []
        cells = []
        for run in runs:
            r = run[label]
            finals.append(float(np.mean(r["loss"][-tail:])))
            cells.append(f"{max(r['loss'][1:]):6.2f} /{finals[-1]:6.3f} /{r['max_abs_w_hh']:7.2f}")
        summary[label] = float(np.mean(finals))
        print(f"{label:>12}: " + "   ".join(cells) + f"   mean final loss {summary[label]:.3f}")
    # What clipping guarantees, whatever the rounding: no step applies a larger gradient.
    applied = {
        label: max(max(run[label]["norm_after"]) for run in runs)
        for label in ("no clipping", "clipped")
    }
    print(
        f"largest gradient norm applied in a step: {applied['no clipping']:.3g} without "
        f"clipping, {applied['clipped']:.6f} with clip_grad_norm (at most {args.max_norm:g})"
    )
    print(f"done in {time.perf_counter() - start:.1f} s")
    return {"curves": curves, "runs": runs, "summary": summary}


if __name__ == "__main__":
    main()
