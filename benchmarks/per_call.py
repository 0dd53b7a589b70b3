"""Per-call cost of a one-step eval call (T=1, B=1, I=H), on one thread: the module's
sequence call, ``step``, the cell, against the baseline build's sequence call, torch and
(when installed) onnxruntime; and the step's bound, the core's GEMM over the packed
weights at one row (``_core._bench_gemm("packed", 1, G*H, H)``, once for W_ih and once
for W_hh: the time to stream the weights through the FMAs from where they live), and
NumPy's GEMV over the same weights.

    python benchmarks/per_call.py --baseline /path/to/baseline/python [--rounds 5]

The parent runs rounds; each round runs one child process per build (the baseline build's
rnnkit, then this tree's), alternately, so both see the same machine load. Each child
times every case of one kind and size in turn, repeat after repeat (so that rnnkit and
onnxruntime share the load), and prints JSON; the table gives each case's median over the
rounds, in microseconds of CPU time per call (the process's CPU time: on a shared machine
it does not count the time other processes hold the core, which the wall clock does;
every library runs on one thread, so it is the call's own time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

KINDS = ("LSTM", "GRU", "RNN")
SIZES = (64, 256)


def interleaved_us(cases: dict, calls: int, repeats: int = 7) -> dict[str, float]:
    """Median CPU microseconds per call of each function in ``cases``, timing each in turn
    for ``calls`` calls, ``repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for f in cases.values():
        f()
    for _ in range(repeats):
        for name, f in cases.items():
            t0 = time.process_time()
            for _ in range(calls):
                f()
            times[name].append((time.process_time() - t0) / calls * 1e6)
    return {name: statistics.median(v) for name, v in times.items()}


def onnx_session(kind: str, torch_module, H: int):
    """An onnxruntime session of one ONNX LSTM/GRU/RNN node holding torch_module's weights
    (ONNX's gate orders: LSTM i, o, f, c; GRU z, r, h), or None without onnxruntime."""
    try:
        import numpy as np
        import onnxruntime
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    p = {k: v.detach().numpy() for k, v in torch_module.state_dict().items()}
    w, r = p["weight_ih_l0"], p["weight_hh_l0"]
    b = np.concatenate([p["bias_ih_l0"], p["bias_hh_l0"]])
    blocks = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}[kind]

    def order(a):
        return np.concatenate([a[i * H : (i + 1) * H] for i in blocks])

    w, r = order(w)[None], order(r)[None]
    b = np.concatenate([order(b[: len(b) // 2]), order(b[len(b) // 2 :])])[None]
    attrs = {"hidden_size": H}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    node = helper.make_node(kind, ["X", "W", "R", "B"], ["Y"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, H])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(a.astype(np.float32), n)
            for a, n in ((w, "W"), (r, "R"), (b, "B"))
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # one that every recent onnxruntime reads
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        model.SerializeToString(),
        opts,
        providers=["CPUExecutionProvider"],
    )


def child(build: str) -> dict:
    import rnnkit

    rnnkit.set_num_threads(1)
    results: dict[str, float] = {}
    for kind in KINDS:
        for H in SIZES:
            measure(kind, H, build, results)
    return results


def measure(kind: str, H: int, build: str, results: dict[str, float]) -> None:
    """Times one kind and size into results (the baseline build: its sequence call only)."""
    import numpy as np
    import rnnkit

    calls = 4000 if H == 64 else 1000
    m = getattr(rnnkit, kind)(H, H, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((1, 1, H)).astype(np.float32)
    cases = {"sequence call": lambda: m(x)}
    if build == "current":
        import torch

        torch.set_num_threads(1)
        tm = getattr(torch.nn, kind)(H, H).eval()
        m.load_state_dict(tm.state_dict())
        x_t = x[0]
        state = m.step(x_t)[1]
        cell = getattr(rnnkit, kind + "Cell")(H, H, seed=0).eval()
        h = np.zeros((1, H), np.float32)
        hx = (h, h) if kind == "LSTM" else h
        xt = torch.from_numpy(x)
        tc = getattr(torch.nn, kind + "Cell")(H, H).eval()
        cases["step"] = lambda: m.step(x_t, state)
        cases["cell"] = lambda: cell(x_t, hx)

        def torch_module():
            with torch.no_grad():
                tm(xt)

        def torch_cell():
            with torch.no_grad():
                tc(xt[0])

        # NumPy's GEMV (its BLAS, one thread) over the same weights side by side, (G*H, 2H).
        w = m.parameters()
        w_cat = np.ascontiguousarray(np.hstack([w["weight_ih_l0"], w["weight_hh_l0"]]))
        v = np.ones(2 * H, np.float32)
        cases["numpy GEMV"] = lambda: w_cat @ v
        cases["torch module"] = torch_module
        cases["torch cell"] = torch_cell
        sess = onnx_session(kind, tm, H)
        if sess is not None:
            y = sess.run(None, {"X": x})[0]
            np.testing.assert_allclose(y.reshape(1, 1, H), m(x)[0], rtol=1e-4, atol=1e-5)
            cases["onnxruntime"] = lambda: sess.run(None, {"X": x})
    for name, us in interleaved_us(cases, calls).items():
        results[f"{kind} H={H} {name}"] = us
    if build == "current":
        G = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
        gemm = [rnnkit._core._bench_gemm("packed", 1, G * H, H)["cpu_median_s"] for _ in "ih"]
        results[f"{kind} H={H} bound"] = sum(gemm) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the baseline build's python/ dir")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=["baseline", "current"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python")
    runs: dict[str, list[dict]] = {"baseline": [], "current": []}
    for _ in range(args.rounds):
        for build, path in (("baseline", args.baseline), ("current", here)):
            env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
            env["OPENBLAS_NUM_THREADS"] = "1"  # NumPy's BLAS threads would spin on CPU time
            cmd = [sys.executable, __file__, "--baseline", args.baseline, "--child", build]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            runs[build].append(json.loads(out.stdout))

    def median(build: str, case: str) -> float | None:
        values = [r[case] for r in runs[build] if case in r]
        return statistics.median(values) if values else None

    columns = [
        "baseline call",
        "call",
        "step",
        "cell",
        "bound",
        "numpy GEMV",
        "torch module",
        "torch cell",
        "onnxruntime",
    ]
    ratios = ["ort / step", "ort / cell", "ort / call", "bound / step"]
    print("| case | " + " | ".join(columns + ratios) + " |")
    print("|---" * (len(columns) + len(ratios) + 1) + "|")
    for kind in KINDS:
        for H in SIZES:
            base = f"{kind} H={H} "
            row = {c: median("current", base + c) for c in columns}
            row["baseline call"] = median("baseline", base + "sequence call")
            row["call"] = median("current", base + "sequence call")
            ort, bound = row["onnxruntime"], row["bound"]
            shares = [
                f"{ort / row['step']:.1f}x" if ort else "-",
                f"{ort / row['cell']:.1f}x" if ort else "-",
                f"{ort / row['call']:.1f}x" if ort else "-",
                f"{bound / row['step']:.0%}",
            ]
            cells = ["-" if row[c] is None else f"{row[c]:.1f}" for c in columns]
            print(f"| {kind} H={H} | " + " | ".join(cells + shares) + " |")


if __name__ == "__main__":
    main()
