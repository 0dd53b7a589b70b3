"""Fine-tune the LSTM of an ONNX model with rnnkit, write it back to ONNX, and time it.

    ONNX model with an LSTM node --load_recurrent--> rnnkit.LSTM (checked against
    onnxruntime) --fine-tune with a Linear head and Adam--> rnnkit.onnx.export -->
    onnxruntime (checked against rnnkit) --> rnnkit and onnxruntime timed on it

Without --model the script builds the starting model itself with onnx.helper: one LSTM
node (ONNX's layout and gate order, weights drawn from --seed) standing for a pretrained
encoder. The task is generated: sequences of --input-size noisy channels, and at every
step the target is the running mean of channel 0 so far, which the network must remember
across steps (many-to-many regression, mean squared error).

Needs onnx and onnxruntime (``pip install "rnnkit[onnx]" onnxruntime``).

    python examples/onnx_finetune.py
    python examples/onnx_finetune.py --model my.onnx --node /encoder/LSTM --steps 300
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from argtypes import ArgumentParser, float_in, int_at_least

try:
    import rnnkit
except ModuleNotFoundError:  # not installed: use the source checkout this script sits in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import rnnkit
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from rnnkit import nn, optim
from rnnkit.onnx import export, load_recurrent


def build_model(input_size: int, hidden_size: int, seed: int) -> onnx.ModelProto:
    """A model with one LSTM node "encoder": X (T, B, I) -> Y (T, 1, B, H), weights uniform
    in +-1/sqrt(H) in ONNX's shapes (W (1, 4H, I), R (1, 4H, H), B (1, 8H))."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(hidden_size)
    shapes = {
        "W": (1, 4 * hidden_size, input_size),
        "R": (1, 4 * hidden_size, hidden_size),
        "B": (1, 8 * hidden_size),
    }
    inits = [
        numpy_helper.from_array(rng.uniform(-bound, bound, s).astype(np.float32), name)
        for name, s in shapes.items()
    ]
    node = helper.make_node(
        "LSTM", ["X", "W", "R", "B"], ["Y"], name="encoder", hidden_size=hidden_size
    )
    graph = helper.make_graph(
        [node],
        "encoder",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", input_size])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 1, "B", hidden_size])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def make_batch(rng: np.random.Generator, T: int, B: int, input_size: int):
    """x (T, B, I) and the target (T, B, 1): the running mean of channel 0 up to each step."""
    x = rng.standard_normal((T, B, input_size)).astype(np.float32)
    steps = np.arange(1, T + 1, dtype=np.float32)[:, None]
    y = np.cumsum(x[:, :, 0], axis=0) / steps
    return x, y[..., None]


def session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def interleaved_medians(calls: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each call, run in turns (A B A B ...) after one
    warm-up each. The CPU time of this process is the steadier of the two on a machine
    that other jobs share (at one thread both libraries compute on the calling thread)."""
    for call in calls.values():
        call()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: tuple(np.median(np.array(t), axis=0).tolist()) for name, t in times.items()}


def parse_args(argv: Sequence[str] | None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="an ONNX file with an LSTM node (default: build one)")
    p.add_argument("--node", help="the LSTM node's name (default: the model's only LSTM)")
    p.add_argument("--input-size", type=int_at_least(1), default=8, help="I of a built model")
    p.add_argument("--hidden", type=int_at_least(1), default=64, help="H of a built model")
    p.add_argument("--steps", type=int_at_least(1), default=200, help="fine-tuning steps")
    p.add_argument("--seq-len", type=int_at_least(1), default=50)
    p.add_argument("--batch", type=int_at_least(1), default=32)
    p.add_argument("--lr", type=float_in(0.0), default=3e-3)
    p.add_argument("--threads", type=int_at_least(1), default=1, help="rnnkit's and ORT's")
    p.add_argument("--repeats", type=int_at_least(1), default=20, help="timed calls of each")
    p.add_argument("--out", help="where to write the fine-tuned model (default: a temp dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="print the summary only")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    say = (lambda *a: None) if args.quiet else print
    rnnkit.set_num_threads(args.threads)
    model = (
        onnx.load(args.model)
        if args.model
        else build_model(args.input_size, args.hidden, args.seed)
    )
    lstms = {k: v for k, v in load_recurrent(model).items() if v.op == "LSTM"}
    if args.node is None and len(lstms) != 1:
        raise SystemExit(f"the model has {len(lstms)} LSTM nodes ({sorted(lstms)}): pick --node")
    node = lstms[args.node] if args.node else next(iter(lstms.values()))
    if node.layout != 0 or node.num_directions != 1:
        raise SystemExit("this example fine-tunes a forward, layout-0 LSTM node")
    lstm = node.module
    I, H = node.input_size, node.hidden_size  # noqa: E741 (the equations' names)
    say(f"loaded {node!r}: {lstm!r}")

    rng = np.random.default_rng(args.seed)
    x, y = make_batch(rng, args.seq_len, args.batch, I)
    if not args.model:  # the built model's output is the node's Y: compare it directly
        (ort_y,) = session(model, args.threads).run(None, {"X": x})
        loaded_diff = float(np.max(np.abs(node(x)[0] - ort_y)))
        say(f"rnnkit vs onnxruntime on the original model: max |diff| {loaded_diff:.2e}")
    else:
        loaded_diff = None

    head = nn.Linear(H, 1, seed=args.seed)
    lstm.train()
    opt = optim.Adam([lstm, head], lr=args.lr)

    def loss_of(x, y, train: bool) -> float:
        out, _ = lstm(x)  # (T, B, H)
        pred = head(out)  # (T, B, 1)
        diff = pred - y
        if train:
            lstm.backward(head.backward(2 * diff / diff.size), (None, None))
        return float(np.mean(diff * diff))

    x_val, y_val = make_batch(np.random.default_rng(args.seed + 1), args.seq_len, 64, I)
    lstm.eval(), head.eval()
    before = loss_of(x_val, y_val, False)
    lstm.train(), head.train()
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        opt.zero_grad()
        loss = loss_of(*make_batch(rng, args.seq_len, args.batch, I), True)
        opt.step()
        if step % max(1, args.steps // 5) == 0:
            say(f"step {step:4d}  train loss {loss:.4f}")
    seconds = time.perf_counter() - start
    lstm.eval(), head.eval()
    after = loss_of(x_val, y_val, False)
    say(f"held-out loss {before:.4f} -> {after:.4f} after {args.steps} steps ({seconds:.1f} s)")

    out_dir = None if args.out else tempfile.TemporaryDirectory()
    path = args.out or str(Path(out_dir.name) / "finetuned.onnx")
    export(lstm, path)
    sess = session(onnx.load(path), args.threads)
    ort_out, ort_h, ort_c = sess.run(None, {"X": x_val})
    out, (h_n, c_n) = lstm(x_val)
    exported_diff = max(
        float(np.max(np.abs(a - b))) for a, b in ((ort_out, out), (ort_h, h_n), (ort_c, c_n))
    )
    say(f"wrote {path}; onnxruntime vs rnnkit on it: max |diff| {exported_diff:.2e}")

    times = interleaved_medians(
        {
            "rnnkit": lambda: lstm(x_val),
            "onnxruntime": lambda: sess.run(None, {"X": x_val}),
        },
        args.repeats,
    )
    T, B = x_val.shape[:2]
    (ours, ours_cpu), (theirs, theirs_cpu) = times["rnnkit"], times["onnxruntime"]
    print(
        f"forward T={T} B={B} I={I} H={H}, {args.threads} thread(s), median of "
        f"{args.repeats}: rnnkit {ours * 1e3:.2f} ms, onnxruntime {theirs * 1e3:.2f} ms "
        f"(wall, {theirs / ours:.2f}x); CPU {ours_cpu * 1e3:.2f} vs {theirs_cpu * 1e3:.2f} ms "
        f"({theirs_cpu / ours_cpu:.2f}x)"
    )
    if out_dir is not None:
        out_dir.cleanup()
    return {
        "loaded_diff": loaded_diff,
        "loss_before": before,
        "loss_after": after,
        "exported_diff": exported_diff,
        "times": times,
    }


if __name__ == "__main__":
    main()
