"""The cell variants' semantics against onnxruntime: one ONNX LSTM, GRU or RNN node, built
by hand with onnx.helper from an rnnkit module's parameters (ONNX's gate orders: LSTM
[i, o, f, c] and P [i, o, f]; GRU [z, r, h]), with clip, peepholes, input_forget, other
activations and direction="reverse", gives rnnkit's outputs and final states.
"""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
helper, TensorProto = onnx.helper, onnx.TensorProto

T, B, N_IN, H = 5, 3, 4, 6
LENGTHS = np.array([5, 2, 4], dtype=np.int32)


def _blocks(a: np.ndarray, order: list[int], n: int) -> np.ndarray:
    """The n blocks of a's first axis, reordered."""
    parts = np.split(a, n, axis=0)
    return np.concatenate([parts[i] for i in order], axis=0)


def onnx_inputs(m, op: str) -> dict:
    """rnnkit module m's parameters as the ONNX node's W, R, B (and P), direction 0."""
    p = m.parameters()
    n, order = {"LSTM": (4, [0, 3, 1, 2]), "GRU": (3, [1, 0, 2]), "RNN": (1, [0])}[op]
    w = _blocks(p["weight_ih_l0"], order, n)[None]
    r = _blocks(p["weight_hh_l0"], order, n)[None]
    b = np.concatenate([_blocks(p["bias_ih_l0"], order, n), _blocks(p["bias_hh_l0"], order, n)])
    inputs = {"W": w, "R": r, "B": b[None]}
    if "weight_ph_l0" in p:
        inputs["P"] = _blocks(p["weight_ph_l0"], [0, 2, 1], 3)[None]  # [i, f, o] -> [i, o, f]
    return inputs


def run_onnx(op: str, inputs: dict, attrs: dict, x, h0, c0=None):
    names = ["X", "W", "R", "B", "sequence_lens", "initial_h"]
    feeds = {**inputs, "X": x, "sequence_lens": LENGTHS, "initial_h": h0[None]}
    if op == "LSTM":
        names += ["initial_c", "P"]
        feeds["initial_c"] = c0[None]
        if "P" not in feeds:
            feeds["P"] = np.zeros((1, 3 * H), np.float32)
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outputs, hidden_size=H, **attrs)
    graph_inputs = [
        helper.make_tensor_value_info(
            k, TensorProto.INT32 if k == "sequence_lens" else TensorProto.FLOAT, feeds[k].shape
        )
        for k in names
    ]
    graph_outputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, None) for k in outputs]
    graph = helper.make_graph([node], "cell", graph_inputs, graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {k: np.ascontiguousarray(feeds[k]) for k in names})


def onnx_activation_attrs(acts) -> dict:
    """ONNX's activations, activation_alpha and activation_beta of rnnkit Activations: each
    function that takes a parameter consumes the next value of its list."""
    attrs = {"activations": [a.name for a in acts]}
    alphas = [a.alpha for a in acts if a.alpha is not None]
    betas = [a.beta for a in acts if a.beta is not None]
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs


CASES = [
    ("LSTM", dict(clip=0.7)),
    ("LSTM", dict(peepholes=True, reverse=True)),
    ("LSTM", dict(input_forget=True, peepholes=True)),
    ("LSTM", dict(activations=["Sigmoid", "Softsign", ("ScaledTanh", 0.9, 1.1)], clip=1.5)),
    ("GRU", dict(clip=0.5, reverse=True)),
    ("GRU", dict(activations=["Sigmoid", ("Affine", 0.5, 0.2)], reset_after=False)),
    ("GRU", dict(activations=["Sigmoid", "Softsign"], clip=0.8)),
    ("RNN", dict(activations=["Softsign"], clip=0.6)),
    ("RNN", dict(activations=[("LeakyRelu", 0.1)], reverse=True)),
]


@pytest.mark.native
@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("op,kwargs", CASES)
def test_single_onnx_node_equals_rnnkit(op, kwargs, backend):
    m = getattr(rnnkit, op)(N_IN, H, backend=backend, seed=3, **kwargs).eval()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, N_IN)).astype(np.float32)
    h0 = rng.standard_normal((B, H)).astype(np.float32)
    c0 = rng.standard_normal((B, H)).astype(np.float32) if op == "LSTM" else None
    attrs = onnx_activation_attrs(m.activations)
    if m.clip is not None:
        attrs["clip"] = m.clip
    if m.reverse:
        attrs["direction"] = "reverse"
    if op == "LSTM" and m.input_forget:
        attrs["input_forget"] = 1
    if op == "GRU":
        attrs["linear_before_reset"] = int(m.reset_after)
    got = run_onnx(op, onnx_inputs(m, op), attrs, x, h0, c0)
    hx = (h0[None], c0[None]) if op == "LSTM" else h0[None]
    out, state = m(x, hx, lengths=LENGTHS)
    np.testing.assert_allclose(got[0][:, 0], out, rtol=1e-5, atol=1e-5)
    states = state if op == "LSTM" else (state,)
    for onnx_state, rnnkit_state in zip(got[1:], states):
        np.testing.assert_allclose(onnx_state, rnnkit_state, rtol=1e-5, atol=1e-5)
