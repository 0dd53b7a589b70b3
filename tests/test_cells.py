"""RNNCell, LSTMCell, GRUCell: torch.nn's cells (names, shapes, call forms, state dicts),
outputs and gradients equal to torch's, native equal to the NumPy reference, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit
import torch

IN, HID, B = 5, 7, 3
PAIRS = [
    (rnnkit.LSTMCell, torch.nn.LSTMCell, {}),
    (rnnkit.GRUCell, torch.nn.GRUCell, {}),
    (rnnkit.RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    (rnnkit.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
]
TOL = {"float64": 1e-9, "float32": 2e-4}


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def pair(ours, theirs, kw, dtype, backend="native", bias=True):
    torch.manual_seed(0)
    t = theirs(IN, HID, bias=bias, **kw).to(getattr(torch, dtype))
    m = ours(IN, HID, bias=bias, dtype=dtype, backend=backend, **kw)
    m.load_state_dict(t.state_dict())  # torch's state dict loads unchanged
    return m, t


def run_both(m, t, batched, dtype):
    """One training step of each with the same inputs and output gradients."""
    lead = (B,) if batched else ()
    x, h, c = rand(lead + (IN,), 1), rand(lead + (HID,), 2), rand(lead + (HID,), 3)
    gh, gc = rand(lead + (HID,), 4), rand(lead + (HID,), 5)
    tt = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in (x, h, c)]
    lstm = isinstance(m, rnnkit.LSTMCell)
    if lstm:
        ho, co = t(tt[0], (tt[1], tt[2]))
        torch.autograd.backward([ho, co], [torch.tensor(gh), torch.tensor(gc)])
        h2, c2 = m(x, (h, c))
        dx, (dh, dc) = m.backward(gh, gc)
        ours = [h2, c2, dx, dh, dc]
        theirs = [ho, co, tt[0].grad, tt[1].grad, tt[2].grad]
    else:
        ho = t(tt[0], tt[1])
        ho.backward(torch.tensor(gh, dtype=ho.dtype))
        h2 = m(x, h)
        dx, dh = m.backward(gh)
        ours, theirs = [h2, dx, dh], [ho, tt[0].grad, tt[1].grad]
    ours += [m.grads[name] for name, _ in t.named_parameters()]
    theirs += [p.grad for _, p in t.named_parameters()]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=TOL[dtype], atol=TOL[dtype])
    return ours


@pytest.mark.parametrize("ours, theirs, kw", PAIRS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_equal_to_torch(ours, theirs, kw, dtype, batched, bias):
    m, t = pair(ours, theirs, kw, dtype, bias=bias)
    assert list(m.parameters()) == [name for name, _ in t.named_parameters()]
    for name, p in t.named_parameters():
        assert m.parameters()[name].shape == tuple(p.shape)
    run_both(m, t, batched, dtype)


@pytest.mark.parametrize("ours, theirs, kw", PAIRS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_equals_numpy(ours, theirs, kw, dtype):
    native = run_both(*pair(ours, theirs, kw, dtype, "native"), True, dtype)
    numpy = run_both(*pair(ours, theirs, kw, dtype, "numpy"), True, dtype)
    for a, b in zip(native, numpy):
        np.testing.assert_allclose(a, b, rtol=TOL[dtype] / 10, atol=TOL[dtype] / 10)


def test_grads_accumulate_and_state_defaults_to_zeros():
    m = rnnkit.GRUCell(IN, HID, dtype="float64", seed=1)
    x = rand((B, IN), 1)
    np.testing.assert_array_equal(m(x), m(x, np.zeros((B, HID))))
    m.backward(np.ones((B, HID)))
    once = {k: g.copy() for k, g in m.grads.items()}
    m(x)
    m.backward(np.ones((B, HID)))
    for k, g in m.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-12)


def test_cell_equals_a_one_layer_module_step():
    cell = rnnkit.LSTMCell(IN, HID, seed=2).eval()
    module = rnnkit.LSTM(IN, HID).eval()
    module.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x, h, c = (rand(s, i).astype(np.float32) for i, s in enumerate([(B, IN), (B, HID), (B, HID)]))
    h2, c2 = cell(x, (h, c))
    out, (hn, cn) = module.step(x, (h[None], c[None]))
    np.testing.assert_array_equal(h2, out)
    np.testing.assert_array_equal(c2, cn[0])


def test_repr_and_reset_before():
    assert repr(rnnkit.RNNCell(2, 3, nonlinearity="relu")) == (
        "RNNCell(2, 3, nonlinearity='relu', dtype='float32', backend='native')"
    )
    g = rnnkit.GRUCell(2, 3, reset_after=False, dtype="float64", seed=0)
    ref = rnnkit.GRUCell(2, 3, reset_after=False, dtype="float64", seed=0, backend="numpy")
    x = rand((4, 2), 0)
    np.testing.assert_allclose(g(x), ref(x), rtol=1e-12)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda m: m(np.zeros((B, IN + 1))),
            ValueError,
            r"x must have shape \(batch >= 1, input_size=5\)",
        ),
        (lambda m: m(np.zeros((1, B, IN))), ValueError, r"got shape \(1, 3, 5\)"),
        (lambda m: m(np.zeros((0, IN))), ValueError, r"x must have shape .*got shape \(0, 5\)"),
        (
            lambda m: m(np.zeros((B, IN)), (np.zeros((B, HID + 1)), None)),
            ValueError,
            r"h must have shape \(batch, hidden_size\) = \(3, 7\) like x, got shape \(3, 8\)",
        ),
        (
            lambda m: m(np.zeros((B, IN)), (None, np.zeros((B + 1, HID)))),
            ValueError,
            r"c must have shape .* got shape \(4, 7\)",
        ),
        (
            lambda m: m(np.zeros(IN), (np.zeros((B, HID)), None)),
            ValueError,
            r"h must have shape \(hidden_size,\) = \(7,\)",
        ),
        (lambda m: m(np.zeros((B, IN)), np.zeros((B, HID))), TypeError, r"hx must be a tuple"),
        (lambda m: m(np.zeros((B, IN)), (np.zeros((B, HID)),) * 3), TypeError, "hx must be"),
        (lambda m: m(np.full((B, IN), "a")), (TypeError, ValueError), "x"),
        (lambda m: m.backward(np.zeros((B, HID))), RuntimeError, "training mode"),
    ],
)
def test_bad_input_raises_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call(rnnkit.LSTMCell(IN, HID))


def test_backward_checks_its_gradients():
    m = rnnkit.LSTMCell(IN, HID)
    m(np.zeros((B, IN)))
    with pytest.raises(ValueError, match=r"grad_h must have shape \(batch, hidden_size\)"):
        m.backward(np.zeros((B, HID + 1)))
    g = rnnkit.GRUCell(IN, HID)
    g(np.zeros((B, IN)))
    with pytest.raises(TypeError, match="takes no grad_c"):
        g.backward(np.zeros((B, HID)), np.zeros((B, HID)))


def test_unknown_arguments_raise_type_error():
    with pytest.raises(TypeError):
        rnnkit.LSTMCell(IN, HID, num_layers=2)
    with pytest.raises(ValueError, match="nonlinearity"):
        rnnkit.RNNCell(IN, HID, nonlinearity="sigmoid")
