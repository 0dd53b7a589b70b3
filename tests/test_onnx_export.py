"""rnnkit.onnx.export: random modules written as ONNX models give onnxruntime the module's
own results, and load back through load_recurrent."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="rnnkit.onnx needs the onnx package (extra 'onnx')")
pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported models")

import rnnkit  # noqa: E402
from onnx_cases import BOUNDED, run_onnxruntime  # noqa: E402
from rnnkit.onnx import export, load_recurrent  # noqa: E402

pytestmark = pytest.mark.native
ANY_ACTIVATION = ["Tanh", "Relu", "Sigmoid", "Softsign", "LeakyRelu", "Elu", "Affine"]


def _random_module(rng, cls):
    kwargs = {
        "num_layers": int(rng.integers(1, 4)),
        "bias": bool(rng.random() < 0.8),
        "batch_first": bool(rng.random() < 0.5),
        "dropout": float(rng.choice([0.0, 0.3])),
        "seed": int(rng.integers(1000)),
    }
    if rng.random() < 0.3:
        kwargs["reverse"] = True
    else:
        kwargs["bidirectional"] = bool(rng.random() < 0.5)
    if cls is rnnkit.RNN:
        kwargs["nonlinearity"] = str(rng.choice(["tanh", "relu"]))
    if cls is rnnkit.GRU:
        kwargs["reset_after"] = bool(rng.random() < 0.5)
    if rng.random() < 0.4:
        count = {rnnkit.RNN: 1, rnnkit.GRU: 2, rnnkit.LSTM: 3}[cls]
        acts = [str(rng.choice(BOUNDED if cls is not rnnkit.RNN else ANY_ACTIVATION))]
        acts += [str(rng.choice(ANY_ACTIVATION)) for _ in range(count - 1)]
        acts = [(a, float(rng.uniform(0.2, 1.0))) if a in ("LeakyRelu", "Elu") else a for a in acts]
        kwargs["activations"] = acts
        kwargs.pop("nonlinearity", None)
    if rng.random() < 0.3:
        kwargs["clip"] = float(rng.uniform(0.5, 3.0))
    if cls is rnnkit.LSTM:
        kwargs["peepholes"] = bool(rng.random() < 0.4)
        kwargs["input_forget"] = bool(rng.random() < 0.3)
    input_size, hidden_size = (int(v) for v in rng.integers(1, 6, 2))
    return cls(input_size, hidden_size, **kwargs)


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.GRU, rnnkit.LSTM], ids=lambda c: c.__name__)
def test_random_modules_round_trip_through_onnxruntime(cls, tmp_path):
    rng = np.random.default_rng({rnnkit.RNN: 0, rnnkit.GRU: 1, rnnkit.LSTM: 2}[cls])
    for i in range(12):
        module = _random_module(rng, cls)
        if getattr(module, "peepholes", False):  # fresh peephole weights may be zeros
            for name, p in module.parameters().items():
                if name.startswith("weight_ph"):
                    p[...] = rng.uniform(-1, 1, p.shape)
        module.eval()
        T, B = (int(v) for v in rng.integers(1, 6, 2))
        L, D, H = module.num_layers, module.num_directions, module.hidden_size
        x_shape = (B, T, module.input_size) if module.batch_first else (T, B, module.input_size)
        x = rng.standard_normal(x_shape).astype(np.float32)
        lengths = rng.integers(1, T + 1, B).astype(np.int32)
        h0 = rng.standard_normal((L * D, B, H)).astype(np.float32)
        c0 = rng.standard_normal((L * D, B, H)).astype(np.float32)
        with_states, with_lengths = bool(i % 2), bool(i % 3)
        path = tmp_path / f"m{i}.onnx"
        model = export(module, path, initial_states=with_states, lengths=with_lengths)
        assert onnx.load(str(path)) == model
        feeds = {"X": x}
        hx = None
        if with_states:
            feeds["h0"] = h0
            hx = h0
            if cls is rnnkit.LSTM:
                feeds["c0"] = c0
                hx = (h0, c0)
        if with_lengths:
            feeds["lengths"] = lengths
        out, state = module(x, hx, lengths if with_lengths else None)
        want = [out, *state] if cls is rnnkit.LSTM else [out, state]
        got = run_onnxruntime(model, feeds)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=repr(module))
        # and back: each layer's node computes what the module's layer does
        nodes = load_recurrent(model)
        assert sorted(nodes) == [f"{cls.__name__.lower()}_l{k}" for k in range(L)]


def test_export_batch_first_override_and_float64():
    rng = np.random.default_rng(3)
    gru = rnnkit.GRU(3, 4, num_layers=2, dtype="float64", seed=0).eval()
    x = rng.standard_normal((5, 2, 3))
    model = export(gru, None, batch_first=True, opset=21)
    assert model.opset_import[0].version == 21
    (node,) = [n for n in model.graph.node if n.name == "gru_l0"]
    assert node.op_type == "GRU"
    # onnxruntime's RNN kernels are float32 only: the ONNX reference evaluator runs float64
    from onnx.reference import ReferenceEvaluator

    out, h_n = ReferenceEvaluator(model).run(None, {"X": x.transpose(1, 0, 2)})
    want_out, want_h = gru(x)
    np.testing.assert_allclose(out, want_out.transpose(1, 0, 2), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-10, atol=1e-12)


def test_export_errors():
    lstm = rnnkit.LSTM(2, 3)
    with pytest.raises(TypeError, match="module must be an rnnkit.RNN, GRU or LSTM"):
        export(rnnkit.nn.Linear(2, 3), None)
    for opset in (13, 99, "17", True):
        with pytest.raises(ValueError, match=r"opset must be an int in 14\.\."):
            export(lstm, None, opset=opset)
