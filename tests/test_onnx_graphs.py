"""rnnkit.onnx.load_recurrent on whole graphs: nodes inside If / Loop / Scan bodies,
weights behind constant expressions, constant default inputs, the modules it builds, and a
real model (silero-vad's LSTMs)."""

import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="rnnkit.onnx needs the onnx package (extra 'onnx')")
pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")

import rnnkit  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_cases import node_model, random_case, run_onnxruntime  # noqa: E402
from rnnkit.onnx import load_recurrent  # noqa: E402

pytestmark = pytest.mark.native
F32 = np.float32


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _value(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def _weights(rng, op, D, H, n_in):
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    return {
        "W": rng.uniform(-1, 1, (D, G * H, n_in)).astype(F32),
        "R": rng.uniform(-1, 1, (D, G * H, H)).astype(F32),
        "B": rng.uniform(-1, 1, (D, 2 * G * H)).astype(F32),
    }


def test_nodes_inside_if_branches_see_the_outer_initializers():
    rng = np.random.default_rng(0)
    lstm_w, gru_w = _weights(rng, "LSTM", 1, 4, 3), _weights(rng, "GRU", 2, 4, 3)
    outer = [numpy_helper.from_array(v, f"lstm_{k}") for k, v in lstm_w.items()]
    then_nodes = [
        helper.make_node("Identity", ["lstm_W"], ["W_inner"]),
        helper.make_node("LSTM", ["X", "W_inner", "lstm_R", "lstm_B"], ["Y"], hidden_size=4),
    ]
    then_branch = helper.make_graph(then_nodes, "then", [], [_value("Y")])
    else_nodes = [
        helper.make_node(
            "GRU",
            ["X", "W", "R", "B"],
            ["Y_else"],
            name="gru",
            hidden_size=4,
            direction="bidirectional",
        ),
    ]
    else_inits = [numpy_helper.from_array(v, k) for k, v in gru_w.items()]
    else_branch = helper.make_graph(
        else_nodes, "else", [], [_value("Y_else")], initializer=else_inits
    )
    if_node = helper.make_node(
        "If", ["cond"], ["out"], then_branch=then_branch, else_branch=else_branch
    )
    model = _model(
        [if_node],
        [_value("X", shape=[5, 2, 3]), _value("cond", TensorProto.BOOL, [])],
        [_value("out")],
        outer,
    )
    nodes = load_recurrent(model)
    assert sorted(nodes) == ["Y", "gru"]  # unnamed: keyed by its first output
    assert isinstance(nodes["Y"].module, rnnkit.LSTM)
    assert nodes["gru"].module.bidirectional
    x = rng.standard_normal((5, 2, 3)).astype(F32)
    for cond, key in ((True, "Y"), (False, "gru")):
        (want,) = run_onnxruntime(model, {"X": x, "cond": np.array(cond)})
        np.testing.assert_allclose(nodes[key](x)[0], want, rtol=1e-5, atol=1e-5)


def test_node_inside_a_loop_body():
    rng = np.random.default_rng(1)
    weights = _weights(rng, "RNN", 1, 3, 2)
    body_nodes = [
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        helper.make_node("Identity", ["x_in"], ["x_out"]),
        helper.make_node("RNN", ["x_in", "W", "R", "B"], ["Y"], name="rnn", hidden_size=3),
    ]
    body = helper.make_graph(
        body_nodes,
        "body",
        [
            _value("iter", TensorProto.INT64, []),
            _value("cond_in", TensorProto.BOOL, []),
            _value("x_in"),
        ],
        [_value("cond_out", TensorProto.BOOL, []), _value("x_out"), _value("Y")],
    )
    loop = helper.make_node("Loop", ["trips", "cond", "X"], ["x_final", "Ys"], body=body)
    model = _model(
        [loop],
        [
            _value("X", shape=[4, 2, 2]),
            _value("trips", TensorProto.INT64, []),
            _value("cond", TensorProto.BOOL, []),
        ],
        [_value("x_final"), _value("Ys")],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    x = rng.standard_normal((4, 2, 2)).astype(F32)
    feeds = {"X": x, "trips": np.array(1, dtype=np.int64), "cond": np.array(True)}
    _, ys = run_onnxruntime(model, feeds)
    node = load_recurrent(model)["rnn"]
    np.testing.assert_allclose(node(x)[0], ys[0], rtol=1e-5, atol=1e-5)


def test_node_inside_a_scan_body():
    rng = np.random.default_rng(10)
    weights = _weights(rng, "GRU", 1, 3, 2)
    body = helper.make_graph(
        [helper.make_node("GRU", ["x_t", "W", "R", "B"], ["Y"], name="gru", hidden_size=3)],
        "body",
        [_value("x_t")],
        [_value("Y")],
    )
    scan = helper.make_node("Scan", ["X"], ["Ys"], body=body, num_scan_inputs=1)
    model = _model(
        [scan],
        [_value("X", shape=[1, 4, 2, 2])],
        [_value("Ys")],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    x = rng.standard_normal((1, 4, 2, 2)).astype(F32)
    (ys,) = run_onnxruntime(model, {"X": x})
    node = load_recurrent(model)["gru"]
    np.testing.assert_allclose(node(x[0])[0], ys[0], rtol=1e-5, atol=1e-5)


def test_weights_through_constant_expressions():
    """W from a Constant in another layout (Reshape, Transpose, Unsqueeze), R from a Concat of
    a Split, B from a float64 initializer through Cast and Slice: the same results as the
    plain initializers."""
    rng = np.random.default_rng(2)
    H, n_in = 3, 2
    w = _weights(rng, "LSTM", 1, H, n_in)
    flat_w_t = w["W"][0].T.reshape(-1)  # (I*4H,): W transposed, flattened
    b64 = np.concatenate([w["B"][0].astype(np.float64), [7.0, 8.0]])  # two extra values
    i64 = np.int64
    inits = [
        numpy_helper.from_array(np.array([n_in, 4 * H], dtype=i64), "shape_i4h"),
        numpy_helper.from_array(np.array([0], dtype=i64), "axis0"),
        numpy_helper.from_array(w["R"], "R_full"),
        numpy_helper.from_array(b64, "B64"),
        numpy_helper.from_array(np.array([0], dtype=i64), "b_start"),
        numpy_helper.from_array(np.array([8 * H], dtype=i64), "b_end"),
    ]
    nodes = [
        helper.make_node("Constant", [], ["W_flat"], value=numpy_helper.from_array(flat_w_t, "c")),
        helper.make_node("Reshape", ["W_flat", "shape_i4h"], ["W_t"]),
        helper.make_node("Transpose", ["W_t"], ["W_2d"], perm=[1, 0]),
        helper.make_node("Unsqueeze", ["W_2d", "axis0"], ["W"]),
        helper.make_node("Split", ["R_full"], ["R_a", "R_b"], axis=1, num_outputs=2),
        helper.make_node("Concat", ["R_a", "R_b"], ["R"], axis=1),
        helper.make_node("Cast", ["B64"], ["B_f32"], to=TensorProto.FLOAT),
        helper.make_node("Slice", ["B_f32", "b_start", "b_end"], ["B_1d"]),
        helper.make_node("Unsqueeze", ["B_1d", "axis0"], ["B"]),
        helper.make_node(
            "LSTM", ["X", "W", "R", "B"], ["Y", "Y_h", "Y_c"], name="lstm", hidden_size=H
        ),
    ]
    model = _model(nodes, [_value("X", shape=[3, 2, n_in])], [_value("Y")], inits, opset=18)
    x = rng.standard_normal((3, 2, n_in)).astype(F32)
    (want,) = run_onnxruntime(model, {"X": x})
    node = load_recurrent(model)["lstm"]
    np.testing.assert_allclose(node(x)[0], want, rtol=1e-5, atol=1e-5)
    # ONNX's gate blocks [i, o, f, c] are rnnkit's [i, f, g, o]
    blocks = [w["R"][0][k * H : (k + 1) * H] for k in (0, 2, 3, 1)]
    np.testing.assert_array_equal(node.module.parameters()["weight_hh_l0"], np.concatenate(blocks))


def test_constant_initial_state_and_lengths_are_the_defaults():
    rng = np.random.default_rng(3)
    case = random_case(rng, "GRU", direction="forward")
    T, B = case["feeds"]["X"].shape[:2]
    H = case["attrs"]["hidden_size"]
    h0 = rng.standard_normal((1, B, H)).astype(F32)
    lens = rng.integers(1, T + 1, B).astype(np.int32)
    case["feeds"].update(initial_h=h0, sequence_lens=lens)
    want = run_onnxruntime(node_model(case), case["feeds"])
    as_constants = {**case, "inits": {**case["inits"], "initial_h": h0, "sequence_lens": lens}}
    as_constants["feeds"] = {"X": case["feeds"]["X"]}
    node = load_recurrent(node_model(as_constants))["node"]
    for got, expected in zip(node(case["feeds"]["X"]), want):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_module_is_a_trainable_rnnkit_module():
    rng = np.random.default_rng(4)
    case = random_case(rng, "LSTM", direction="bidirectional")
    case["attrs"] = {"hidden_size": case["attrs"]["hidden_size"], "direction": "bidirectional"}
    node = load_recurrent(node_model(case))["node"]
    lstm = node.module
    assert isinstance(lstm, rnnkit.LSTM) and not lstm.training and lstm.backend == "native"
    assert "activations" not in repr(lstm)  # ONNX's defaults are the usual cells
    x = case["feeds"]["X"]
    lstm.train()
    out, _ = lstm(x)
    dx, _ = lstm.backward(np.ones_like(out), (None, None))
    assert dx.shape == x.shape
    assert all(np.any(g != 0) for name, g in lstm.grads.items() if "weight" in name)


def test_different_activations_per_direction_run_two_modules():
    rng = np.random.default_rng(5)
    case = random_case(rng, "RNN", direction="bidirectional")
    case["attrs"]["activations"] = ["Tanh", "Relu"]
    case["attrs"].pop("activation_alpha", None)
    case["attrs"].pop("activation_beta", None)
    node = load_recurrent(node_model(case))["node"]
    forward, backward = node.module
    assert forward.nonlinearity == "tanh" and not forward.reverse
    assert backward.nonlinearity == "relu" and backward.reverse
    want = run_onnxruntime(node_model(case), case["feeds"])
    for got, expected in zip(node(**case["feeds"]), want):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_float64_and_float16_weights():
    rng = np.random.default_rng(6)
    case = random_case(rng, "GRU", direction="forward")
    case["attrs"] = {"hidden_size": case["attrs"]["hidden_size"], "linear_before_reset": 1}
    case["feeds"] = {"X": case["feeds"]["X"]}
    want = run_onnxruntime(node_model(case), case["feeds"])
    for dtype, tol in ((np.float64, 1e-5), (np.float16, 2e-2)):
        typed = {**case, "inits": {k: v.astype(dtype) for k, v in case["inits"].items()}}
        node = load_recurrent(node_model(typed))["node"]
        got = node(case["feeds"]["X"].astype(dtype))
        assert all(g.dtype == dtype for g in got)
        assert node.module.dtype == (np.float64 if dtype == np.float64 else np.float32)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.astype(F32), w, rtol=tol, atol=tol)


def test_same_name_twice_gets_a_suffix():
    rng = np.random.default_rng(7)
    w = _weights(rng, "RNN", 1, 2, 2)
    nodes = [
        helper.make_node("RNN", ["X", "W", "R"], ["Y1"], name="rnn", hidden_size=2),
        helper.make_node("RNN", ["X", "W", "R"], ["Y2"], name="rnn", hidden_size=2),
    ]
    inits = [numpy_helper.from_array(w[k], k) for k in ("W", "R")]
    model = _model(nodes, [_value("X", shape=[2, 1, 2])], [_value("Y1"), _value("Y2")], inits)
    assert sorted(load_recurrent(model)) == ["rnn", "rnn#2"]


def test_path_and_bytes(tmp_path):
    case = random_case(np.random.default_rng(8), "LSTM")
    model = node_model(case)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    want = load_recurrent(model)["node"](**case["feeds"])
    for source in (path, str(path), model.SerializeToString()):
        for got, expected in zip(load_recurrent(source)["node"](**case["feeds"]), want):
            np.testing.assert_array_equal(got, expected)


def test_import_rnnkit_does_not_import_onnx_and_a_missing_onnx_names_the_extra():
    code = (
        "import sys\n"
        "import rnnkit\n"
        "assert 'onnx' not in sys.modules, 'import rnnkit imported onnx'\n"
        "sys.modules['onnx'] = None\n"  # as if onnx were not installed
        "try:\n"
        "    import rnnkit.onnx\n"
        "except ImportError as exc:\n"
        "    assert 'rnnkit[onnx]' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('no ImportError')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def _silero_model(name):
    silero_vad = pytest.importorskip(
        "silero_vad",
        reason="silero-vad is not installed (pip install --no-deps silero-vad==6.2.3)",
    )
    path = os.path.join(os.path.dirname(silero_vad.__file__), "data", name)
    if not os.path.isfile(path):
        pytest.skip(f"silero-vad installed without {name}")
    return path


def _inline_lstm_branches(graph, taken):
    """Replace each If node of ``graph`` whose ``taken`` branch holds an LSTM node by that
    branch's nodes (the condition must select it for the inputs used)."""
    out = []
    for node in graph.node:
        branch = next((a.g for a in node.attribute if a.name == taken), None)
        if node.op_type != "If" or not any(n.op_type == "LSTM" for n in branch.node):
            out.append(node)
            continue
        out.extend(branch.node)
        for src, dst in zip(branch.output, node.output):
            out.append(helper.make_node("Identity", [src.name], [dst]))
        graph.initializer.extend(branch.initializer)
    del graph.node[:]
    graph.node.extend(out)


def test_silero_vad_lstm_nodes_equal_onnxruntime():
    """The LSTM nodes of silero-vad (inside If branches, weights through Unsqueeze chains
    over initializers): each node's outputs on the real X and states that the model feeds
    it equal onnxruntime's. The If nodes are inlined (sr = 16000 takes then_branch) so that
    onnxruntime can return the tensors around the LSTMs."""
    model = onnx.load(_silero_model("silero_vad_16k_op15.onnx"))
    nodes = load_recurrent(model)
    assert len(nodes) == 2
    flat = onnx.ModelProto()
    flat.CopyFrom(model)
    _inline_lstm_branches(flat.graph, "then_branch")
    lstms = [n for n in flat.graph.node if n.op_type == "LSTM"]
    wanted = []
    for n in lstms:
        wanted += [n.input[0], n.input[5], n.input[6], *n.output]
    flat.graph.output.extend(_value(name) for name in wanted)
    rng = np.random.default_rng(9)
    feeds = {
        "input": rng.uniform(-0.5, 0.5, (2, 512)).astype(F32),
        "state": rng.uniform(-0.5, 0.5, (2, 2, 128)).astype(F32),
        "sr": np.array(16000, dtype=np.int64),
    }
    values = dict(zip(wanted, run_onnxruntime(flat, feeds)[2:]))
    for n in lstms:
        node = nodes[n.name]
        x, h0, c0 = (values[name] for name in (n.input[0], n.input[5], n.input[6]))
        got = node(x, initial_h=h0, initial_c=c0)
        for g, name in zip(got, n.output):
            np.testing.assert_allclose(g, values[name], rtol=1e-4, atol=1e-5)


def test_silero_vad_if_model_loads_its_four_lstms():
    nodes = load_recurrent(_silero_model("silero_vad.onnx"))
    assert len(nodes) == 4
    for node in nodes.values():
        assert (node.op, node.input_size, node.hidden_size) == ("LSTM", 128, 128)
        y, h, c = node(np.zeros((1, 3, 128), F32))
        assert y.shape == (1, 1, 3, 128) and h.shape == c.shape == (1, 3, 128)
