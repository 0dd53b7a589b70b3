"""First timing of the native core: one LSTM layer, T=100 B=32 I=H=256, float32, 1 thread.

Times rnnkit's native backend, the NumPy reference and torch.nn.LSTM on the same weights:
"forward" is an inference forward (no state kept: training=False / torch.no_grad()),
"forward+backward" a training forward then the backward of sum(out * dout). Results are
checked against torch first. Each repeat runs every (implementation, pass) once, in an
order rotated between repeats, after one warm-up; the median is reported.

    PYTHONPATH=python python benchmarks/first_timing.py [--repeats 5] [--json PATH]
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy / torch load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import rnnkit  # noqa: E402
import torch  # noqa: E402
from rnnkit import _native, reference  # noqa: E402

T, B, IN, H = 100, 32, 256, 256  # IN: input features


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def make_case(seed: int = 0):
    """Weights (one layer, one direction), inputs and output gradient, float32."""
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    weights = [
        tuple(
            rng.uniform(-k, k, shape).astype(np.float32)
            for shape in ((4 * H, IN), (4 * H, H), (4 * H,), (4 * H,))
        )
    ]
    x = rng.standard_normal((T, B, IN)).astype(np.float32)
    zeros = np.zeros((1, B, H), np.float32)
    dout = rng.standard_normal((T, B, H)).astype(np.float32)
    return weights, x, zeros, dout


def backend_runs(backend, weights, x, zeros, dout):
    """(forward, forward+backward) callables for an rnnkit backend (native or reference)."""

    def forward():
        return backend.stack_forward(
            "lstm", x, zeros, zeros, weights, None, None, False, num_directions=1
        )[0]

    def forward_backward():
        out, _, _, cache = backend.stack_forward(
            "lstm", x, zeros, zeros, weights, None, None, True, num_directions=1
        )
        dx, _, _, dweights = backend.stack_backward("lstm", cache, dout, zeros, zeros)
        return out, dx, dweights[0][1]

    return forward, forward_backward


def torch_runs(weights, x, dout):
    module = torch.nn.LSTM(IN, H)
    with torch.no_grad():
        for name, w in zip(
            ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), weights[0]
        ):
            getattr(module, name).copy_(torch.from_numpy(w))
    xt = torch.from_numpy(x)
    doutt = torch.from_numpy(dout)

    def forward():
        with torch.no_grad():
            return module(xt)[0].numpy()

    def forward_backward():
        module.zero_grad()
        xg = xt.clone().requires_grad_(True)
        out = module(xg)[0]
        out.backward(doutt)
        return out.detach().numpy(), xg.grad.numpy(), module.weight_hh_l0.grad.numpy()

    return forward, forward_backward


def check(name, got, want, tol=1e-4):
    err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    if err > tol:
        raise SystemExit(f"{name}: relative error {err:.2e} > {tol:.0e}; not timing")
    return err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    rnnkit.set_num_threads(1)
    torch.set_num_threads(1)
    weights, x, zeros, dout = make_case()
    impls = {
        "native": backend_runs(_native, weights, x, zeros, dout),
        "numpy": backend_runs(reference, weights, x, zeros, dout),
        "torch": torch_runs(weights, x, dout),
    }

    # Check first: every implementation against torch.
    want_out = impls["torch"][0]()
    want_fb = impls["torch"][1]()
    errors = {}
    for name in ("native", "numpy"):
        errors[name] = {"out": check(f"{name} out", impls[name][0](), want_out)}
        for label, got, want in zip(("out", "dx", "dw_hh"), impls[name][1](), want_fb):
            errors[name][f"train {label}"] = check(f"{name} {label}", got, want)

    passes = ("forward", "forward+backward")
    times = {(n, p): [] for n in impls for p in passes}
    jobs = [(n, i, p) for n in impls for i, p in enumerate(passes)]
    for repeat in range(args.repeats + 1):  # repeat 0 is the warm-up
        shift = repeat % len(jobs)
        for name, index, pass_name in jobs[shift:] + jobs[:shift]:
            start = time.perf_counter()
            impls[name][index]()
            elapsed = time.perf_counter() - start
            if repeat > 0:
                times[(name, pass_name)].append(elapsed)

    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"rnnkit {rnnkit.__version__}  numpy {np.__version__}  torch {torch.__version__}")
    print(
        f"CPU: {cpu_name()}  threads: rnnkit {rnnkit.get_num_threads()}, "
        f"torch {torch.get_num_threads()}, BLAS 1 (OPENBLAS/MKL/OMP_NUM_THREADS=1)"
    )
    print(
        f"LSTM T={T} B={B} I={IN} H={H} float32, 1 layer, 1 direction; "
        f"median of {args.repeats} (after 1 warm-up), interleaved"
    )
    print(
        "max relative error vs torch: "
        + ", ".join(f"{n} {max(e.values()):.1e}" for n, e in errors.items())
    )
    print(f"\n{'pass':<18}" + "".join(f"{n:>12}" for n in impls) + f"{'native/torch':>14}")
    for p in passes:
        row = "".join(f"{medians[(n, p)] * 1e3:>10.1f}ms" for n in impls)
        print(f"{p:<18}{row}{medians[('native', p)] / medians[('torch', p)]:>13.1f}x")
    if args.json:
        record = {
            "case": {"cell": "lstm", "T": T, "B": B, "I": IN, "H": H, "dtype": "float32"},
            "threads": 1,
            "cpu": cpu_name(),
            "versions": {
                "rnnkit": rnnkit.__version__,
                "numpy": np.__version__,
                "torch": torch.__version__,
            },
            "repeats": args.repeats,
            "median_s": {f"{n} {p}": medians[(n, p)] for n, p in medians},
            "all_s": {f"{n} {p}": times[(n, p)] for n, p in times},
            "max_rel_error_vs_torch": errors,
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
