"""What rnnkit.torch adds around the core for a padded batch_first LSTM (1 thread, CPU time).

The recurrent layer of the torch training-step benchmark (2-layer LSTM 64 -> 256, B = 32,
T = 50, float32) at four levels, alternating in rounds after a warm-up:

- core: rnnkit._native.stack_forward + stack_backward on time-major C-contiguous arrays
  (the same arrays every call: no conversion, no copies);
- op: torch.ops.rnnkit.stack_forward on time-major tensors, backward through autograd
  (custom-operator dispatch, the handle, the weight gradients into torch memory);
- module: rt.LSTM(batch_first=True) on (B, T, I) input, backward through autograd (the
  checks, h0/c0, the transposes and their copies on top of the op);
- torch: torch.nn.LSTM on the same input (its oneDNN LSTM), for scale only: next to rnnkit
  in one process torch's steps page-fault more than alone (docs/performance.md, "The torch
  step's page faults"); bench_torch_bridge.py compares the engines in separate processes.

Training: forward + backward, the parameters' .grad set to None first (as
``optimizer.zero_grad()`` leaves them); inference: the forward under no_grad. Prints the
medians and each level's excess over the one below it. ``--steps``, ``--batch``,
``--input`` and ``--hidden`` change the sizes (tiny ones show the per-call cost).

    python benchmarks/bench_bridge_cost.py --repeats 41
    python benchmarks/bench_bridge_cost.py --steps 2 --batch 2 --input 4 --hidden 4 --repeats 401
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=31, help="timed calls per level")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=50, help="T")
    p.add_argument("--batch", type=int, default=32, help="B")
    p.add_argument("--input", type=int, default=64, help="I, the input size")
    p.add_argument("--hidden", type=int, default=256, help="H")
    args = p.parse_args()
    steps, batch, n_in, hidden = args.steps, args.batch, args.input, args.hidden

    import torch

    sys.path.insert(0, str(ROOT / "python"))
    import rnnkit
    import rnnkit.torch as rt
    from rnnkit import _native

    torch.set_num_threads(1)
    rnnkit.set_num_threads(1)
    torch.manual_seed(0)
    module = rt.LSTM(n_in, hidden, num_layers=LAYERS, batch_first=True)
    plain = torch.nn.LSTM(n_in, hidden, num_layers=LAYERS, batch_first=True)
    plain.load_state_dict(module.state_dict())
    weights = [getattr(module, n) for n in module._flat_weights_names]
    x_bf = torch.randn(batch, steps, n_in)  # (B, T, I)
    dout_bf = torch.randn(batch, steps, hidden)  # (B, T, H)
    x_tm = x_bf.transpose(0, 1).contiguous()  # (T, B, I)
    dout_tm = dout_bf.transpose(0, 1).contiguous()  # (T, B, H)
    zeros = torch.zeros(LAYERS, batch, hidden)  # h0 and c0 (L, B, H)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    arrays = [
        tuple(getattr(module, f"{n}_l{k}").detach().numpy() for n in names) for k in range(LAYERS)
    ]
    x_np, dout_np, zeros_np = x_tm.numpy(), dout_tm.numpy(), zeros.numpy()

    def clear_grads():
        for w in [*weights, *plain.parameters()]:
            w.grad = None

    def core_train():
        call = ("lstm", x_np, zeros_np, zeros_np, arrays, None, None, True)
        cache = _native.stack_forward(*call, num_directions=1)[3]
        _native.stack_backward("lstm", cache, dout_np, zeros_np, zeros_np)

    def op_train():
        clear_grads()
        x = x_tm.detach().requires_grad_(True)
        call = (x, zeros, zeros, weights, None, [], 1, True, True)
        out = torch.ops.rnnkit.stack_forward("lstm", *call)[0]
        torch.autograd.backward(out, dout_tm)

    def module_train(rnn=module):
        clear_grads()
        out = rnn(x_bf.detach().requires_grad_(True))[0]
        torch.autograd.backward(out, dout_bf)

    def core_infer():
        call = ("lstm", x_np, zeros_np, zeros_np, arrays, None, None, False)
        _native.stack_forward(*call, num_directions=1)

    def op_infer():
        with torch.no_grad():
            call = (x_tm, zeros, zeros, weights, None, [], 1, True, False)
            torch.ops.rnnkit.stack_forward("lstm", *call)

    def module_infer(rnn=module):
        with torch.no_grad():
            rnn(x_bf)

    levels = {
        "training": [
            ("core", core_train),
            ("op", op_train),
            ("module", module_train),
            ("torch", lambda: module_train(plain)),
        ],
        "inference": [
            ("core", core_infer),
            ("op", op_infer),
            ("module", module_infer),
            ("torch", lambda: module_infer(plain)),
        ],
    }
    for task, runs in levels.items():
        times = {name: [] for name, _ in runs}
        for i in range(args.warmup + args.repeats):
            for name, fn in runs if i % 2 == 0 else runs[::-1]:
                start = time.process_time()
                fn()
                if i >= args.warmup:
                    times[name].append(time.process_time() - start)
        medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
        digits = 2 if medians["core"] >= 1 else 4
        line = f"LSTM padded batch_first T={steps} B={batch} I={n_in} H={hidden}, {task}:"
        previous = None
        for name, ms in medians.items():
            extra = ""
            if previous is not None and name != "torch":
                extra = f" (+{ms - previous:.{digits}f})"
            line += f" {name} {ms:.{digits}f} ms{extra},"
            previous = ms
        print(line.rstrip(","))


if __name__ == "__main__":
    main()
