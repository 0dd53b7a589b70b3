"""rnnkit.onnx on bad input: every mistake is a clear exception naming the node and what
is wrong, never a crash or an allocation of what a damaged file claims."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="rnnkit.onnx needs the onnx package (extra 'onnx')")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_cases import node_model, random_case  # noqa: E402
from rnnkit.onnx import load_recurrent  # noqa: E402

pytestmark = pytest.mark.native


def _case(op="LSTM", **attrs):
    case = random_case(np.random.default_rng(0), op, direction="forward")
    case["attrs"] = {"hidden_size": case["attrs"]["hidden_size"], **attrs}
    return case


def _node(case):
    return load_recurrent(node_model(case))["node"]


def test_hidden_size_disagreeing_with_the_weights():
    case = _case()
    case["attrs"]["hidden_size"] += 1
    with pytest.raises(ValueError, match=r"LSTM node 'node': hidden_size attribute is \d+ but R"):
        _node(case)


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("W", lambda a: a[:, :-1], r"W must have shape"),
        ("W", lambda a: a[..., :0], r"W must have shape"),
        ("R", lambda a: a[:, :, :-1], r"R must have shape"),
        ("R", lambda a: a[0], r"R must have shape"),
        ("B", lambda a: a[:, :-1], r"B must have shape"),
        ("W", lambda a: np.concatenate([a, a]), r"W must have shape"),
        ("W", lambda a: a.astype(np.int32), r"W must be a floating tensor"),
    ],
)
def test_wrong_weight_sizes(name, change, message):
    case = _case()
    case["inits"][name] = change(case["inits"][name])
    with pytest.raises(ValueError, match=r"LSTM node 'node': " + message):
        _node(case)


def test_wrong_peephole_size():
    case = _case()
    H = case["attrs"]["hidden_size"]
    case["inits"]["P"] = np.ones((1, 2 * H), np.float32)
    with pytest.raises(ValueError, match=r"P must have shape \(1, \d+\), got \(1, \d+\)"):
        _node(case)


def test_bad_attributes():
    for attrs, message in [
        ({"direction": "sideways"}, "direction must be one of"),
        ({"layout": 2}, "layout must be 0 or 1"),
        ({"clip": -1.0}, "clip must be positive"),
        ({"activations": ["Sigmoid", "Tanh"]}, "activations must list 3 functions"),
        ({"activations": ["Sigmoid", "Tanh", "Swish"]}, "unknown activation 'Swish'"),
        ({"linear_before_reset": 1}, "linear_before_reset is a GRU attribute"),
        ({"frobnicate": 1}, r"unknown attribute\(s\) \['frobnicate'\]"),
        ({"hidden_size": 0}, "hidden_size must be >= 1"),
        ({"hidden_size": 2**40}, "hidden_size must be >= 1"),
    ]:
        case = _case()
        case["attrs"].update(attrs)
        with pytest.raises(ValueError, match=message):
            _node(case)


def test_bad_call_arguments():
    case = _case()
    node = _node(case)
    X = case["feeds"]["X"]
    T, B, n_in = X.shape
    H = node.hidden_size
    bad = [
        ({"X": X[0]}, ValueError, r"X must have shape \(seq_length, batch, input_size\)"),
        (
            {"X": X[..., :-1] if n_in > 1 else X[..., :0]},
            ValueError,
            "X must have shape .*input_size=",
        ),
        ({"X": X[:0]}, ValueError, "X must hold at least one step"),
        ({"X": X.astype(np.int64)}, TypeError, "X must be a floating array"),
        (
            {"X": X, "sequence_lens": np.zeros(B, np.int32)},
            ValueError,
            r"sequence_lens must lie in 1\.\.seq_length",
        ),
        (
            {"X": X, "sequence_lens": np.full(B, T + 1)},
            ValueError,
            r"sequence_lens must lie in 1\.\.seq_length",
        ),
        ({"X": X, "sequence_lens": np.ones(B + 1, int)}, ValueError, "sequence_lens must be"),
        ({"X": X, "sequence_lens": np.ones(B)}, ValueError, "sequence_lens must be integers"),
        ({"X": X, "initial_h": np.zeros((1, B, H + 1))}, ValueError, "initial_h must be"),
        ({"X": X, "initial_c": np.zeros((B, 1, H))}, ValueError, "initial_c must be"),
    ]
    for kwargs, error, message in bad:
        with pytest.raises(error, match=r"LSTM node 'node': " + message):
            node(**kwargs)
    gru = _node(_case("GRU"))
    with pytest.raises(ValueError, match="initial_c is an LSTM input"):
        gru(X, initial_c=np.zeros((1, B, gru.hidden_size)))


def test_weights_that_are_not_constant():
    case = _case()
    model = node_model(case)
    model.graph.input.append(helper.make_tensor_value_info("W2", TensorProto.FLOAT, None))
    model.graph.node[0].input[1] = "W2"
    with pytest.raises(ValueError, match=r"LSTM node 'node': input W \('W2'\).*graph input"):
        load_recurrent(model)
    model.graph.node.insert(0, helper.make_node("Relu", ["W"], ["W2"], name="act"))
    with pytest.raises(ValueError, match=r"input W \('W2'\).*node 'act' \(Relu\)"):
        load_recurrent(model)
    model.graph.node[1].input[1] = "nowhere"
    with pytest.raises(ValueError, match=r"'nowhere' is not defined"):
        load_recurrent(model)


def test_bad_constant_expressions():
    case = _case()
    model = node_model(case)
    g = model.graph
    g.initializer.append(numpy_helper.from_array(np.array([7, 7], np.int64), "bad_shape"))
    g.node.insert(0, helper.make_node("Reshape", ["W", "bad_shape"], ["W_bad"], name="rs"))
    g.node[1].input[1] = "W_bad"
    with pytest.raises(ValueError, match=r"input W .*node 'rs' \(Reshape\) cannot be evaluated"):
        load_recurrent(model)
    # a cycle: W_bad computed from itself
    del g.node[0]
    g.node.insert(0, helper.make_node("Identity", ["W_bad"], ["W_bad"], name="loop"))
    with pytest.raises(ValueError, match="depends on itself"):
        load_recurrent(model)


def test_damaged_tensors_are_refused_before_allocating():
    case = _case()
    model = node_model(case)
    W = model.graph.initializer[0]
    assert W.name == "W"
    W.dims[:] = [1, 10**12, 10**6]  # far more than the bytes it holds
    with pytest.raises(ValueError, match=r"initializer 'W': shape .* needs \d+ bytes, the tensor"):
        load_recurrent(model)
    W.dims[:] = [1, -4, 2]
    with pytest.raises(ValueError, match="negative dimension"):
        load_recurrent(model)
    W.dims[:] = [2**62, 2**62]
    with pytest.raises(ValueError, match="needs"):
        load_recurrent(model)
    W.data_type = TensorProto.STRING
    with pytest.raises(ValueError, match="element type STRING is not supported"):
        load_recurrent(model)


def test_truncated_and_garbage_bytes():
    data = node_model(_case()).SerializeToString()
    rng = np.random.default_rng(1)
    for bad in (data[: len(data) // 2], data[:-3], rng.bytes(len(data)), b"", b"\x00" * 64):
        with pytest.raises(ValueError, match="model"):
            load_recurrent(bad)


def test_model_argument_types_and_empty_models(tmp_path):
    with pytest.raises(TypeError, match="model must be a path, bytes or an onnx.ModelProto"):
        load_recurrent(3)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_recurrent(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\xff" * 100)
    with pytest.raises(ValueError, match="junk.onnx"):
        load_recurrent(tmp_path / "junk.onnx")
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    with pytest.raises(ValueError, match="no RNN, GRU or LSTM node"):
        load_recurrent(helper.make_model(graph))


def test_missing_and_misplaced_inputs():
    case = _case("GRU")
    model = node_model(case)
    model.graph.node[0].input[2] = ""
    with pytest.raises(ValueError, match="GRU node 'node': input R is missing"):
        load_recurrent(model)
    model = node_model(case)
    inputs = list(model.graph.node[0].input)[:3] + ["", "", "", "", "P"]
    del model.graph.node[0].input[:]
    model.graph.node[0].input.extend(inputs)
    with pytest.raises(ValueError, match="initial_c and P are LSTM inputs"):
        load_recurrent(model)
