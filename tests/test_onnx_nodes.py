"""rnnkit.onnx against ONNX's own RNN/GRU/LSTM node tests and against onnxruntime on random
single-node models covering the operators' attributes."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="rnnkit.onnx needs the onnx package (extra 'onnx')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")

from onnx import numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402
from onnx_cases import (  # noqa: E402
    INPUT_ROLES,
    as_layout0,
    node_model,
    onnx_node_test_cases,
    outputs_as_layout1,
    random_case,
    run_onnxruntime,
)
from rnnkit.onnx import load_recurrent  # noqa: E402

pytestmark = pytest.mark.native
RUNTIME_INPUTS = ("X", "sequence_lens", "initial_h", "initial_c")
OPS = ("RNN", "GRU", "LSTM")


def _close(got, want, tol=1e-4):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


_NODE_CASES = onnx_node_test_cases()


def test_every_onnx_node_case_is_collected():
    names = {c.name for c in _NODE_CASES}
    assert len(names) == 18
    assert {"test_lstm_with_peepholes", "test_gru_batchwise", "test_simple_rnn_reverse"} <= names


@pytest.mark.parametrize("case", _NODE_CASES, ids=lambda c: c.name)
def test_onnx_node_cases(case):
    """Each case's W, R, B, P (graph inputs there) become initializers; the node's outputs
    that the case lists must equal its expected values to its own tolerance."""
    node = case.model.graph.node[0]
    roles = {role: name for role, name in zip(INPUT_ROLES, node.input) if name}
    graph_inputs = [i.name for i in case.model.graph.input]
    graph_outputs = [o.name for o in case.model.graph.output]
    for inputs, expected in case.data_sets:
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        values = dict(zip(graph_inputs, inputs))
        feeds = {}
        for role, name in roles.items():
            if role in RUNTIME_INPUTS:
                feeds[role] = values[name]
            else:
                model.graph.initializer.append(numpy_helper.from_array(values[name], name))
        (loaded,) = load_recurrent(model).values()
        got = dict(zip(node.output, loaded(**feeds)))
        for name, want in zip(graph_outputs, expected):
            np.testing.assert_allclose(got[name], want, rtol=case.rtol, atol=case.atol)


@pytest.mark.parametrize("op", OPS)
def test_random_nodes_equal_onnxruntime(op):
    rng = np.random.default_rng({"RNN": 1, "GRU": 2, "LSTM": 3}[op])
    for i in range(60):
        case = random_case(rng, op)
        model = node_model(case)
        node = load_recurrent(model)["node"]
        want = run_onnxruntime(model, case["feeds"])
        _close(node(**case["feeds"]), want)
        if i % 4 == 0:  # the NumPy reference too
            modules = node.module if isinstance(node.module, tuple) else (node.module,)
            for module in modules:
                module.backend = "numpy"
            _close(node(**case["feeds"]), want)


@pytest.mark.parametrize("op", OPS)
def test_random_layout1_nodes_equal_onnxruntime_in_layout0(op):
    """onnxruntime refuses layout=1: the same node in layout 0 on the transposed inputs is
    the oracle."""
    rng = np.random.default_rng({"RNN": 4, "GRU": 5, "LSTM": 6}[op])
    for _ in range(25):
        case = random_case(rng, op, layout=1)
        got = load_recurrent(node_model(case))["node"](**case["feeds"])
        flat = as_layout0(case)
        _close(got, outputs_as_layout1(run_onnxruntime(node_model(flat), flat["feeds"])))


@pytest.mark.parametrize("op", OPS)
def test_plain_layout1_nodes_equal_the_onnx_reference_evaluator(op):
    """ONNX's reference evaluator runs layout=1 (but ignores activations, clip and
    sequence_lens): plain forward nodes only."""
    rng = np.random.default_rng(7)
    for _ in range(5):
        case = random_case(rng, op, layout=1, direction="forward")
        keep = ("hidden_size", "layout", "linear_before_reset")
        case["attrs"] = {k: v for k, v in case["attrs"].items() if k in keep}
        case["inits"].pop("P", None)
        case["feeds"].pop("sequence_lens", None)
        model = node_model(case)
        want = ReferenceEvaluator(model).run(None, case["feeds"])
        _close(load_recurrent(model)["node"](**case["feeds"]), want)


def test_opsets_7_to_22_read_the_same_node():
    """Without layout (opset >= 14) the operators' attributes are the same since opset 7."""
    rng = np.random.default_rng(8)
    case = random_case(rng, "GRU")
    want = run_onnxruntime(node_model(case, opset=14), case["feeds"])
    for opset in (7, 10, 13, 22):
        _close(load_recurrent(node_model(case, opset=opset))["node"](**case["feeds"]), want)
