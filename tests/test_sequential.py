"""rnnkit.nn.Sequential and the layers it chains (Dense, Activation, Dropout, Masking,
Recurrent): forward semantics, gradients against central differences (float64), the
container's parameters and state dicts, and a fine-tuning step with rnnkit.optim."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import rnnkit
from rnnkit import nn, optim

pytestmark = pytest.mark.native

F64 = "float64"


def central_diff(f, arr: np.ndarray, eps: float = 1e-6, limit: int = 12, among=None):
    """d f() / d arr at up to ``limit`` spread entries (flat indices, values), perturbing
    ``arr`` in place; ``among``: the flat indices to pick from (default all)."""
    flat = arr.reshape(-1)
    among = np.arange(flat.size) if among is None else among
    spread = np.linspace(0, among.size - 1, min(limit, among.size)).astype(int)
    picks = among[np.unique(spread)]
    grads = []
    for i in picks:
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        grads.append((up - down) / (2 * eps))
    return picks, np.array(grads)


def recurrent(kind, n_in, H, **kwargs):
    """An rnnkit module of ``kind`` as a float64 batch-first Recurrent layer."""
    module_args = {
        k: kwargs.pop(k)
        for k in ("bidirectional", "activations", "backend", "reset_after")
        if k in kwargs
    }
    module_args["reverse"] = kwargs.get("go_backwards", False)  # Keras's go_backwards
    module = getattr(rnnkit, kind)(n_in, H, batch_first=True, dtype=F64, seed=H, **module_args)
    return nn.Recurrent(module, **kwargs)


def float_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Masking(0.0),
        recurrent("LSTM", 3, 4, bidirectional=True, return_sequences=True, merge_mode="mul"),
        recurrent("GRU", 4, 3, return_sequences=True, go_backwards=True, reset_after=False),
        nn.Dropout(0.0),
        recurrent("RNN", 3, 2, bidirectional=True, merge_mode="ave"),
        nn.Dense(2, 3, activation="tanh", dtype=F64, seed=1),
    )


def index_model(masked_outputs: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Embedding(7, 3, dtype=F64, seed=0, mask_zero=True),
        recurrent("GRU", 3, 4, return_sequences=True, masked_outputs=masked_outputs),
        recurrent("LSTM", 4, 3, bidirectional=True, return_sequences=True, merge_mode="sum"),
        nn.Dense(3, 2, activation="softplus", dtype=F64, seed=2),
        nn.Activation("softmax"),
    )


def padded_floats(rng, B=4, T=5, F=3):
    x = rng.standard_normal((B, T, F))
    for b, n in enumerate([5, 2, 0, 4][:B]):
        x[b, n:] = 0.0
    return x


def check_gradients(model, x, rng):
    """Every parameter's gradient (and x's, for float input) against central differences
    of ``sum(model(x) * weights)``."""
    model.train()
    y = model(x)
    weights = rng.standard_normal(y.shape)
    model.zero_grad()
    dx = model.backward(weights)
    grads = {k: g.copy() for k, g in model.grads.items()}

    def loss():
        return float((model(x) * weights).sum())

    for name, p in model.parameters().items():
        picks, expected = central_diff(loss, p)
        np.testing.assert_allclose(
            grads[name].reshape(-1)[picks], expected, rtol=1e-5, atol=1e-7, err_msg=name
        )
    if np.asarray(x).dtype.kind == "f":
        # real steps only: a padding step perturbed would stop being padding
        picks, expected = central_diff(loss, x, among=np.flatnonzero(x))
        np.testing.assert_allclose(dx.reshape(-1)[picks], expected, rtol=1e-5, atol=1e-7)
    else:
        assert dx is None


def test_float_model_gradients_match_central_differences():
    rng = np.random.default_rng(0)
    check_gradients(float_model(), padded_floats(rng), rng)


@pytest.mark.parametrize("masked_outputs", ["last", "zeros"])
def test_index_model_gradients_match_central_differences(masked_outputs):
    rng = np.random.default_rng(1)
    idx = np.array([[1, 2, 3, 4, 5], [6, 1, 0, 0, 0], [0, 0, 0, 0, 0], [3, 3, 3, 0, 0]])
    check_gradients(index_model(masked_outputs), idx, rng)


def test_one_step_outputs_and_cell_activations_gradients():
    # return_sequences=False after go_backwards and a bidirectional concat, on the NumPy
    # reference with non-default cell activations.
    rng = np.random.default_rng(2)
    model = nn.Sequential(
        recurrent(
            "GRU",
            3,
            4,
            return_sequences=True,
            go_backwards=True,
            backend="numpy",
            activations=["hard_sigmoid", "softsign"],
        ),
        recurrent("LSTM", 4, 2, bidirectional=True),
        nn.Dense(4, 2, dtype=F64, seed=0),
    )
    check_gradients(model, padded_floats(rng), rng)


@pytest.mark.parametrize("name", nn.ACTIVATION_NAMES)
def test_activation_gradients(name):
    rng = np.random.default_rng(3)
    layer = nn.Activation(name)
    x = rng.standard_normal((3, 4)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # away from the kinks of relu and friends
    y = layer(x)
    weights = rng.standard_normal(y.shape)
    dx = layer.backward(weights)
    picks, expected = central_diff(lambda: float((layer.eval()(x) * weights).sum()), x, limit=12)
    np.testing.assert_allclose(dx.reshape(-1)[picks], expected, rtol=1e-5, atol=1e-7)


def test_recurrent_padding_semantics():
    # Keras's rules: a forward layer repeats the last real output at padding steps
    # ("last") or gives 0 ("zeros"); go_backwards returns steps in reverse, after zeros.
    rng = np.random.default_rng(4)
    module = rnnkit.GRU(2, 3, batch_first=True, dtype=F64, seed=0).eval()
    x = rng.standard_normal((2, 4, 2))
    lengths = np.array([4, 2])
    out, _ = module(x, None, lengths)
    last = nn.Recurrent(module, return_sequences=True).eval()(x, lengths)
    np.testing.assert_array_equal(last[1, 2:], np.stack([out[1, 1]] * 2))
    np.testing.assert_array_equal(last[:, :2], out[:, :2])
    zeros = nn.Recurrent(module, return_sequences=True, masked_outputs="zeros").eval()(x, lengths)
    np.testing.assert_array_equal(zeros, out)
    reverse = rnnkit.GRU(2, 3, batch_first=True, dtype=F64, reverse=True).eval()
    reverse.load_state_dict(module.state_dict())
    backwards = nn.Recurrent(reverse, return_sequences=True, go_backwards=True).eval()(x, lengths)
    rev_out, _ = module(x[:, ::-1].copy(), None)
    np.testing.assert_array_equal(backwards[0], rev_out[0])  # a full-length sequence
    rev1, _ = module(x[1:, 1::-1].copy(), None)  # sequence 1's real steps, reversed
    np.testing.assert_array_equal(backwards[1], np.concatenate([np.zeros((2, 3)), rev1[0]]))


def test_parameters_state_dict_and_container():
    model = float_model()
    params = model.parameters()
    assert list(params)[:2] == ["1.weight_ih_l0", "1.weight_hh_l0"]
    assert "5.weight" in params and "5.bias" in params
    assert set(model.grads) == set(params)
    assert params["5.weight"] is model[5].parameters()["weight"]  # live arrays
    assert len(model) == 6 and isinstance(model[1], nn.Recurrent)
    assert list(model) == [model[i] for i in range(6)]
    tail = model[4:]
    assert isinstance(tail, nn.Sequential) and tail[0] is model[4]
    text = repr(model)
    assert text.startswith("Sequential(\n  (0): Masking") and "(5): Dense(2, 3" in text

    other = float_model()
    for p in other.parameters().values():
        p += 1.0
    model.load_state_dict(other.state_dict())
    for name, p in model.parameters().items():
        np.testing.assert_array_equal(p, other.parameters()[name])
    with pytest.raises(ValueError, match=r"missing keys \['5.bias'\]"):
        model.load_state_dict({k: v for k, v in other.state_dict().items() if k != "5.bias"})
    bad = other.state_dict()
    bad["5.weight"] = np.zeros((9, 9))
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"state_dict\['5.weight'\] has shape \(9, 9\)"):
        model.load_state_dict(bad)
    for name, p in model.parameters().items():  # nothing changed
        np.testing.assert_array_equal(p, before[name])


def test_modes_copies_and_errors():
    model = float_model()
    model.eval()
    assert all(not layer.training for layer in model) and not model[1].module.training
    model.train()
    assert all(layer.training for layer in model) and model[2].module.training
    x = padded_floats(np.random.default_rng(5))
    y = model(x)
    twin = copy.deepcopy(model)
    np.testing.assert_array_equal(twin.eval()(x), model.eval()(x))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model))(x), y)
    with pytest.raises(RuntimeError, match="needs a forward pass in training mode"):
        model.backward(np.ones_like(y))
    with pytest.raises(TypeError, match=r"wrap it as rnnkit.nn.Recurrent"):
        nn.Sequential(rnnkit.LSTM(2, 2))
    with pytest.raises(TypeError, match="layer 0 must be an rnnkit module"):
        nn.Sequential(np.tanh)
    with pytest.raises(ValueError, match="batch_first=True"):
        nn.Recurrent(rnnkit.GRU(2, 2))
    with pytest.raises(ValueError, match="takes a module built with reverse=True"):
        nn.Recurrent(rnnkit.GRU(2, 2, batch_first=True, bidirectional=True), go_backwards=True)
    with pytest.raises(ValueError, match="go_backwards=False does not fit the module"):
        nn.Recurrent(rnnkit.GRU(2, 2, batch_first=True, reverse=True))
    with pytest.raises(ValueError, match=r"lengths must be in 0..5, got lengths\[1\] = 6"):
        model(x, lengths=[5, 6, 1, 1])
    with pytest.raises(ValueError, match="name must be one of"):
        nn.Activation("gelu")


def test_mask_with_a_gap_raises():
    model = index_model("last")
    with pytest.raises(ValueError, match=r"sequence 1 has a padded step at t=1 before a real one"):
        model(np.array([[1, 2, 3], [4, 0, 5]]))
    with pytest.raises(ValueError, match=r"Masking: the mask of sequence 0"):
        nn.Sequential(nn.Masking())(np.array([[[0.0], [1.0]]]))


def test_fine_tuning_lowers_the_loss():
    rng = np.random.default_rng(6)
    model = nn.Sequential(
        nn.Embedding(9, 4, seed=0, mask_zero=True),
        nn.Recurrent(rnnkit.LSTM(4, 8, batch_first=True, seed=1)),
        nn.Dense(8, 3, seed=2),
    )
    idx = rng.integers(1, 9, size=(16, 6))
    idx[::2, 4:] = 0
    targets = idx[:, 0] % 3  # learnable from the first token
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam([model], lr=0.05)
    losses = []
    for _ in range(15):
        loss = loss_fn(model(idx), targets)
        model.backward(loss_fn.backward())
        opt.step()
        opt.zero_grad()
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]
    assert all(np.all(g == 0) for g in model.grads.values())


def test_summary_lists_layers_shapes_and_both_conventions():
    model = nn.Sequential(
        nn.Embedding(100, 32, mask_zero=True, seed=0),
        nn.Recurrent(rnnkit.RNN(32, 16, batch_first=True, seed=0)),
        nn.Dense(16, 3, activation="softmax", seed=0),
    ).train()
    text = model.summary((20,))
    lines = text.splitlines()
    assert lines[0].split() == ["#", "layer", "output", "shape", "parameters"]
    # Keras's SimpleRNN(16) on 32 features has one bias: 32*16 + 16*16 + 16 = 784.
    assert "(B, 20, 32)" in lines[2] and lines[2].endswith("3,200")
    assert "(B, 16)" in lines[3] and lines[3].endswith(" 784")
    assert "(B, 3)" in lines[4] and lines[4].endswith(" 51")
    assert lines[-1].startswith("Total parameters: 4,035 (counted by Keras's")
    assert model.training  # the shape-only forward left the mode as it was
    torch_counts = model.summary(convention="torch")
    assert "output shape" not in torch_counts
    assert torch_counts.splitlines()[-1].startswith("Total parameters: 4,051 (counted by torch's")


def test_summary_counts_two_biases_for_gru_reset_after_in_both_conventions():
    gru = nn.Sequential(nn.Recurrent(rnnkit.GRU(8, 4, batch_first=True, reset_after=True)))
    before = nn.Sequential(nn.Recurrent(rnnkit.GRU(8, 4, batch_first=True, reset_after=False)))
    total = 3 * 4 * (8 + 4) + 2 * 3 * 4
    assert gru.summary().endswith(
        f"{total:,} (counted by Keras's: one bias per SimpleRNN, "
        "LSTM and GRU(reset_after=False) cell)"
    )
    assert f"Total parameters: {total - 12:,}" in before.summary()
    assert f"Total parameters: {total:,}" in before.summary(convention="torch")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(input_shape=[5, 8]), ValueError, "input_shape must be a tuple of ints >= 1"),
        (dict(input_shape=(0, 8)), ValueError, "input_shape must be a tuple of ints >= 1"),
        (dict(convention="tf"), ValueError, "convention"),
    ],
)
def test_summary_refuses_bad_arguments(kwargs, error, match):
    model = nn.Sequential(nn.Recurrent(rnnkit.LSTM(8, 4, batch_first=True)))
    with pytest.raises(error, match=match):
        model.summary(**kwargs)
