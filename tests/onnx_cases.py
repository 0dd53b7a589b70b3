"""Single-node ONNX models for the rnnkit.onnx tests: random RNN / GRU / LSTM nodes over
the operators' attributes, and runners for onnxruntime and ONNX's own node test cases."""

from __future__ import annotations

import importlib

import numpy as np
from onnx import TensorProto, helper, numpy_helper

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
ACTIVATION_COUNT = {"RNN": 1, "GRU": 2, "LSTM": 3}
# ONNX activation -> how many of (alpha, beta) it takes.
PARAMETERS = {
    "Relu": 0,
    "Tanh": 0,
    "Sigmoid": 0,
    "Softsign": 0,
    "Softplus": 0,
    "LeakyRelu": 1,
    "ThresholdedRelu": 1,
    "Elu": 1,
    "HardSigmoid": 2,
    "ScaledTanh": 2,
    "Affine": 2,
}
BOUNDED = ["Sigmoid", "HardSigmoid", "Tanh", "ScaledTanh", "Softsign"]
INPUT_ROLES = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")


def random_case(
    rng: np.random.Generator, op: str, layout: int = 0, direction: str | None = None
) -> dict:
    """A random node of type ``op``: its attributes, weights (as initializers) and inputs
    (``direction``: a random one when None)."""
    T, B, n_in, H = (int(v) for v in rng.integers(1, [6, 5, 5, 6]))
    if direction is None:
        direction = str(rng.choice(["forward", "reverse", "bidirectional"]))
    D = 2 if direction == "bidirectional" else 1
    G = GATES[op]
    attrs: dict = {"hidden_size": H, "direction": direction}
    if layout:
        attrs["layout"] = 1
    if rng.random() < 0.6:
        names, alphas, betas = [], [], []
        # LSTM and GRU gates (their f) bounded: an unbounded gate lets the state grow
        # geometrically, and onnxruntime's Softplus overflows to inf past x = 88.
        per_direction = [
            [
                str(rng.choice(BOUNDED if op != "RNN" and k == 0 else list(PARAMETERS)))
                for k in range(ACTIVATION_COUNT[op])
            ]
            for _ in range(D)
        ]
        if D == 2 and rng.random() < 0.5:
            per_direction[1] = per_direction[0]
        for name in sum(per_direction, []):
            names.append(name)
            # Explicit parameters: onnxruntime's defaults for Affine, ScaledTanh and
            # ThresholdedRelu (0) differ from the ONNX operators' that rnnkit uses.
            if PARAMETERS[name] >= 1:
                alphas.append(float(rng.uniform(0.1, 1.0)))
            if PARAMETERS[name] == 2:
                betas.append(float(rng.uniform(0.0, 0.8)))
        attrs["activations"] = names
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    if rng.random() < 0.3:
        attrs["clip"] = float(rng.uniform(0.5, 3.0))
    if op == "LSTM" and rng.random() < 0.3:
        attrs["input_forget"] = 1
    if op == "GRU":
        attrs["linear_before_reset"] = int(rng.integers(0, 2))
    f32 = np.float32
    inits = {
        "W": rng.uniform(-1, 1, (D, G * H, n_in)).astype(f32),
        "R": rng.uniform(-1, 1, (D, G * H, H)).astype(f32),
    }
    if rng.random() < 0.7:
        inits["B"] = rng.uniform(-1, 1, (D, 2 * G * H)).astype(f32)
    if op == "LSTM" and rng.random() < 0.5:
        inits["P"] = rng.uniform(-1, 1, (D, 3 * H)).astype(f32)
    feeds = {"X": rng.standard_normal((B, T, n_in) if layout else (T, B, n_in)).astype(f32)}
    if rng.random() < 0.5:
        feeds["sequence_lens"] = rng.integers(1, T + 1, B).astype(np.int32)
    state_shape = (B, D, H) if layout else (D, B, H)
    if rng.random() < 0.5:
        feeds["initial_h"] = rng.standard_normal(state_shape).astype(f32)
    if op == "LSTM" and rng.random() < 0.5:
        feeds["initial_c"] = rng.standard_normal(state_shape).astype(f32)
    return {"op": op, "attrs": attrs, "inits": inits, "feeds": feeds}


def node_model(case: dict, opset: int = 14):
    """The case as a model: X and the given runtime inputs as graph inputs, W, R, B, P as
    initializers; outputs Y, Y_h (and Y_c)."""
    op, feeds = case["op"], case["feeds"]
    present = set(case["inits"]) | set(feeds)
    inputs = [role if role in present else "" for role in INPUT_ROLES]
    while inputs[-1] == "":
        inputs.pop()
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, inputs, outputs, name="node", **case["attrs"])
    graph = helper.make_graph(
        [node],
        "case",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for n, v in feeds.items()
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=[numpy_helper.from_array(v, n) for n, v in case["inits"].items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def run_onnxruntime(model, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def onnx_node_test_cases() -> list:
    """ONNX's own node test cases of the RNN, GRU and LSTM operators (the models and data
    of onnx/backend/test/data/node/test_{rnn,gru,lstm}_*), built by onnx's case modules."""
    from onnx.backend.test.case import node

    node._TargetOpType = None  # collect every case these modules define
    before = len(node._NodeTestCases)
    for name in ("rnn", "gru", "lstm"):
        module = importlib.import_module(f"onnx.backend.test.case.node.{name}")
        if len(node._NodeTestCases) == before:  # imported earlier: define them again
            importlib.reload(module)
    cases = node._NodeTestCases[before:]
    return [c for c in cases if c.model.graph.node[0].op_type in ("RNN", "GRU", "LSTM")]


def as_layout0(case: dict) -> dict:
    """A layout-1 case as the same node in layout 0 (the batch-major inputs transposed)."""
    attrs = {k: v for k, v in case["attrs"].items() if k != "layout"}
    feeds = dict(case["feeds"])
    feeds["X"] = np.ascontiguousarray(feeds["X"].transpose(1, 0, 2))
    for name in ("initial_h", "initial_c"):
        if name in feeds:
            feeds[name] = np.ascontiguousarray(feeds[name].transpose(1, 0, 2))
    return {**case, "attrs": attrs, "feeds": feeds}


def outputs_as_layout1(outputs: list[np.ndarray]) -> list[np.ndarray]:
    """A layout-0 node's Y (T, D, B, H), Y_h, Y_c (D, B, H) in layout 1's (B, T, D, H) and
    (B, D, H)."""
    return [outputs[0].transpose(2, 0, 1, 3)] + [s.transpose(1, 0, 2) for s in outputs[1:]]
