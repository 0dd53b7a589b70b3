"""A training forward keeps references to x and the weights, not copies, and the RNN's and
GRU's also one to out, whose h_t their backward reads (as torch's autograd keeps saved
tensors): modifying any of them in place before backward makes backward raise RuntimeError
naming the array (a weight by its parameter name), with the same message on both backends.
Masks and lengths are copied. The LSTM backward does not read out: changing it changes
nothing. Leaving x, out and the weights alone gives exactly the results of a forward on a
private copy.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import rnnkit
from conftest import BACKENDS, CELLS, IN, B, H, T, make_module, rand

pytestmark = pytest.mark.native

# The modules' shape unless told: 2 layers, both directions (float64, input 4, hidden 6).
STACKED = {"num_layers": 2, "bidirectional": True}
MESSAGE = (
    "backward: {} was modified in place after the forward pass (the backward needs its "
    "values); pass a copy or run forward again"
)


def step(m, x, lengths=None, change=None):
    """One training step; change(x, out) runs between forward and backward. Returns
    (dx, every parameter gradient) or ("raised", type, message)."""
    m.zero_grad()
    out, _ = m(x, lengths=lengths)
    if change is not None:
        change(x, out)
    try:
        dx, _ = m.backward(np.ones_like(out))
    except RuntimeError as exc:
        return ("raised", type(exc), str(exc))
    return (dx, {k: g.copy() for k, g in m.grads.items()})


def assert_same(a, b):
    dx_a, grads_a = a
    dx_b, grads_b = b
    np.testing.assert_array_equal(dx_a, dx_b)
    for name in grads_a:
        np.testing.assert_array_equal(grads_a[name], grads_b[name], err_msg=name)


def _set_x(x, out):
    x[1, 2, 0] += 0.5


def _set_out(x, out):
    out[-1] = 0.0


def _scale_out(x, out):
    out *= 2.0


CHANGES = [
    (_set_x, "x", CELLS),
    (_set_out, "out", ("rnn", "gru")),
    (_scale_out, "out", ("rnn", "gru")),
]


@pytest.mark.parametrize(
    "cell, change, name", [(c, f, n) for f, n, cells in CHANGES for c in cells]
)
def test_modifying_x_or_out_makes_backward_raise(cell, change, name):
    """The same RuntimeError, naming the array, on both backends."""
    results = []
    for backend in BACKENDS:
        m = make_module(cell, backend, **STACKED, dropout=0.3)
        results.append(step(m, rand((T, B, IN)), lengths=[5, 2, 4], change=change))
        with pytest.raises(RuntimeError, match="backward needs a preceding forward"):
            m.backward(np.ones((T, B, 2 * H)))  # the failed backward consumed the cache
    assert results[0] == results[1] == ("raised", RuntimeError, MESSAGE.format(name))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_modifying_the_unbatched_out_view_raises(cell, backend):
    """An unbatched out is a view of the array the RNN or GRU forward kept: a change
    through it counts."""
    m = make_module(cell, backend)
    out, _ = m(rand((T, IN)))
    out[2, 1] = 3.0
    with pytest.raises(RuntimeError, match=re.escape(MESSAGE.format("out"))):
        m.backward(np.ones_like(out))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", ["lstm"])
def test_lstm_does_not_read_out(cell, backend):
    """Its backward does not read out: changing it (in place, time-major and through the
    unbatched view) changes no bit of the backward."""
    x = rand((T, B, IN))
    want = step(make_module(cell, backend, **STACKED), x)
    assert_same(
        step(make_module(cell, backend, **STACKED), x, change=lambda x, out: out.fill(5.0)), want
    )
    m = make_module(cell, backend)
    out, _ = m(x[:, 0])
    dx, _ = m.backward(np.ones_like(out))
    out, _ = m(x[:, 0])
    out *= 3.0
    dx_after_change, _ = m.backward(np.ones_like(out))
    np.testing.assert_array_equal(dx_after_change, dx)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_batch_first_arrays_are_private_copies(cell, backend):
    """With batch_first the module hands the backend a transposed copy of x and the user
    a transposed copy of out: changing the user's arrays changes nothing in the backward."""
    x = rand((B, T, IN))
    want = step(make_module(cell, backend, **STACKED, batch_first=True), x.copy())

    def change(x_user, out_user):
        x_user[:] = 9.0
        out_user[:] = -1.0

    assert_same(
        step(make_module(cell, backend, **STACKED, batch_first=True), x, change=change), want
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_untouched_x_and_out_give_the_results_of_a_private_copy(cell, backend):
    """Referencing instead of copying changes no bit."""
    x = rand((T, B, IN))
    lengths = [5, 2, 4]
    want = step(make_module(cell, backend, **STACKED, dropout=0.3), x.copy(), lengths)
    m = make_module(cell, backend, **STACKED, dropout=0.3)
    params = m.state_dict()
    got = step(m, x, lengths)
    assert_same(got, want)
    np.testing.assert_array_equal(x, rand((T, B, IN)))  # x itself was only read
    for name, p in m.parameters().items():  # and so were the weights
        np.testing.assert_array_equal(p, params[name], err_msg=name)


WEIGHT_MESSAGE = (
    "backward: {} was modified in place after the forward pass (the backward needs its "
    "values); update parameters after backward, or run forward again"
)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "name", ["weight_ih_l0", "weight_hh_l1_reverse", "bias_ih_l1", "bias_hh_l0_reverse"]
)
def test_modifying_a_weight_makes_backward_raise(name, cell):
    """Any parameter changed between forward and backward (an optimiser step before the
    backward; even by the smallest step) gives the same RuntimeError naming it on both
    backends, as torch refuses a saved tensor modified in place."""
    results = []
    for backend in BACKENDS:
        m = make_module(cell, backend, **STACKED, dropout=0.3)
        param = m.parameters()[name]

        def change(x, out, p=param):
            p[0] = np.nextafter(p[0], np.inf)

        results.append(step(m, rand((T, B, IN)), lengths=[5, 2, 4], change=change))
    assert results[0] == results[1] == ("raised", RuntimeError, WEIGHT_MESSAGE.format(name))


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_optimiser_step_after_backward_is_fine(backend):
    """The usual order (forward, backward, step) changes weights only after the backward
    has read them; the next forward references the updated arrays."""
    m = make_module("gru", backend, **STACKED)
    opt = rnnkit.optim.SGD(m, lr=0.1)
    x = rand((T, B, IN))
    before = m.state_dict()
    first = step(m, x)
    opt.step()
    for name, p in m.parameters().items():
        np.testing.assert_array_equal(p, before[name] - 0.1 * first[1][name], err_msg=name)
    updated = make_module("gru", backend, **STACKED)
    updated.load_state_dict(m.state_dict())
    assert_same(step(m, x), step(updated, x))  # the second step read the updated weights


@pytest.mark.parametrize("cell", CELLS)
def test_backends_agree_when_nothing_is_modified(cell):
    x = rand((T, B, IN))
    native = step(make_module(cell, "native", **STACKED), x, [5, 2, 4])
    numpy = step(make_module(cell, "numpy", **STACKED), x, [5, 2, 4])
    np.testing.assert_allclose(native[0], numpy[0], rtol=1e-9, atol=1e-12)
    for name in native[1]:
        np.testing.assert_allclose(native[1][name], numpy[1][name], rtol=1e-9, atol=1e-12)
