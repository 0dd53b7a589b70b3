"""Per-call cost of a one-step eval call (T=1, B=1, I=H), on one thread: the module's
sequence call, ``step``, the cell, against the baseline build's sequence call, torch and
(when installed) onnxruntime.

    python benchmarks/per_call.py --baseline /path/to/baseline/python [--rounds 5]

The parent runs rounds; each round runs one child process per build (the baseline build's
rnnkit, then this tree's), alternately, so both see the same machine load. Each child
times every case (median of repeats of a loop of calls) and prints JSON; the table gives
each case's median over the rounds, in microseconds per call.
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


def per_call_us(f, calls: int, repeats: int = 7) -> float:
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(times)


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
    results[f"{kind} H={H} sequence call"] = per_call_us(lambda: m(x), calls)
    if build == "baseline":
        return
    x_t = x[0]
    state = m.step(x_t)[1]
    results[f"{kind} H={H} step"] = per_call_us(lambda: m.step(x_t, state), calls)
    cell = getattr(rnnkit, kind + "Cell")(H, H, seed=0).eval()
    h = np.zeros((1, H), np.float32)
    hx = (h, h) if kind == "LSTM" else h
    results[f"{kind} H={H} cell"] = per_call_us(lambda: cell(x_t, hx), calls)

    import torch

    torch.set_num_threads(1)
    tm = getattr(torch.nn, kind)(H, H).eval()
    m.load_state_dict(tm.state_dict())
    xt = torch.from_numpy(x)
    tc = getattr(torch.nn, kind + "Cell")(H, H).eval()
    with torch.no_grad():
        results[f"{kind} H={H} torch module"] = per_call_us(lambda: tm(xt), calls)
        results[f"{kind} H={H} torch cell"] = per_call_us(lambda: tc(xt[0]), calls)
    sess = onnx_session(kind, tm, H)
    if sess is not None:
        y = sess.run(None, {"X": x})[0]
        np.testing.assert_allclose(y.reshape(1, 1, H), m(x)[0], rtol=1e-4, atol=1e-5)
        results[f"{kind} H={H} onnxruntime"] = per_call_us(lambda: sess.run(None, {"X": x}), calls)


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
            cmd = [sys.executable, __file__, "--baseline", args.baseline, "--child", build]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            runs[build].append(json.loads(out.stdout))

    def median(build: str, case: str) -> float | None:
        values = [r[case] for r in runs[build] if case in r]
        return statistics.median(values) if values else None

    columns = ["baseline call", "call", "step", "cell", "torch module", "torch cell", "onnxruntime"]
    print("| case | " + " | ".join(columns) + " | step / ort | call / ort |")
    print("|---" * (len(columns) + 3) + "|")
    for kind in KINDS:
        for H in SIZES:
            base = f"{kind} H={H} "
            row = [
                median("baseline", base + "sequence call"),
                median("current", base + "sequence call"),
                median("current", base + "step"),
                median("current", base + "cell"),
                median("current", base + "torch module"),
                median("current", base + "torch cell"),
                median("current", base + "onnxruntime"),
            ]
            ort = row[-1]
            ratios = [f"{ort / row[2]:.1f}x", f"{ort / row[1]:.1f}x"] if ort else ["-", "-"]
            cells = ["-" if v is None else f"{v:.1f}" for v in row]
            print(f"| {kind} H={H} | " + " | ".join(cells + ratios) + " |")


if __name__ == "__main__":
    main()
