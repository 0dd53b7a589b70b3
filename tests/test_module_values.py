"""Modules behave like values: ``copy.deepcopy`` and ``pickle`` work at any point, also right
after a training-mode forward. A copy keeps the parameters, gradients, mode, settings and
the dropout generator's state; it drops what the training forward saved, so backward on
the copy raises the usual RuntimeError while the original's backward still works.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import rnnkit
from rnnkit import nn

T, B, IN, H = 5, 3, 4, 6
BACKENDS = ["native", "numpy"]
CELLS = {
    "rnn": lambda **kw: rnnkit.RNN(IN, H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: rnnkit.LSTM(IN, H, **kw),
    "gru": lambda **kw: rnnkit.GRU(IN, H, reset_after=False, **kw),
}
COPIERS = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda m: pickle.loads(pickle.dumps(m)),
}


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((T, B, IN)).astype(np.float32)


def _as_list(state) -> list:
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("copier", COPIERS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_copy_after_a_training_forward(cell, backend, copier):
    m = CELLS[cell](num_layers=2, bidirectional=True, backend=backend, seed=1)
    x = _x()
    out, _ = m(x)
    m.backward(np.ones_like(out))  # grads now non-zero
    out, state = m(x)  # a training forward whose saved state the copy must drop
    c = COPIERS[copier](m)

    assert type(c) is type(m) and repr(c) == repr(m)
    assert c.training and c.backend == backend and c.dtype == m.dtype and c.seed == 1
    assert c.mode == m.mode and c.num_directions == 2
    for name, p in m.parameters().items():
        assert c.parameters()[name] is not p
        np.testing.assert_array_equal(c.parameters()[name], p)
        np.testing.assert_array_equal(c.grads[name], m.grads[name])
        assert c.grads[name] is not m.grads[name]
    with pytest.raises(RuntimeError, match="backward needs a preceding forward pass in training"):
        c.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="a copy keeps no forward state"):
        c.backward(np.ones_like(out))

    # The original's saved forward is untouched by copying.
    dx, _ = m.backward(np.ones_like(out))
    assert dx.shape == x.shape
    # The copy runs on its own arrays: forward, backward, and its grads are its own.
    c_out, c_state = c(x)
    np.testing.assert_array_equal(c_out, out)
    for got, want in zip(_as_list(c_state), _as_list(state)):
        np.testing.assert_array_equal(got, want)
    before = {k: g.copy() for k, g in m.grads.items()}
    c.backward(np.ones_like(c_out))
    for name, g in m.grads.items():
        np.testing.assert_array_equal(g, before[name])  # the original's grads did not move
    # The copy computes with its own parameters: zeroed, they give zeros (every cell's h
    # stays 0 with zero weights and biases), and the original is left alone.
    for p in c.parameters().values():
        p[...] = 0.0
    assert np.all(c(x)[0] == 0.0)
    np.testing.assert_array_equal(m(x)[0], out)


@pytest.mark.parametrize("copier", COPIERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_copy_continues_the_dropout_stream(backend, copier):
    """The copy draws the same dropout masks next as the original does."""
    m = rnnkit.LSTM(IN, H, num_layers=3, dropout=0.5, backend=backend, seed=7)
    x = _x(1)
    m(x)  # advance the generator once
    c = COPIERS[copier](m)
    out_m, _ = m(x)
    out_c, _ = c(x)
    np.testing.assert_array_equal(out_c, out_m)
    out_m2, _ = m(x)
    assert not np.array_equal(out_m2, out_m)  # masks differ from call to call ...
    np.testing.assert_array_equal(c(x)[0], out_m2)  # ... and the copy keeps up


@pytest.mark.parametrize("copier", COPIERS)
def test_copy_keeps_eval_mode_and_works_from_any_state(copier):
    m = rnnkit.GRU(IN, H, seed=0)
    fresh = COPIERS[copier](m)  # before any forward
    with pytest.raises(RuntimeError, match="backward needs a preceding forward pass"):
        fresh.backward(np.zeros((T, B, H)))
    m.eval()
    out, _ = m(_x())
    c = COPIERS[copier](m)
    assert not c.training
    np.testing.assert_array_equal(c(_x())[0], out)
    c.train()
    c(_x())
    c.backward(np.ones((T, B, H), np.float32))  # a training forward on the copy: fine


@pytest.mark.parametrize("copier", COPIERS)
def test_copies_of_the_nn_layers(copier):
    emb = nn.Embedding(7, 3, padding_idx=0, seed=0)
    lin = nn.Linear(3, 2, seed=1)
    ce = nn.CrossEntropyLoss()
    idx = np.array([[1, 2], [0, 6]])
    logits = lin(emb(idx))
    targets = np.array([[1, 0], [0, 1]])
    loss = ce(logits, targets)
    # Each layer's backward arguments, shaped as its forward's output.
    backward_args = {emb: (np.zeros((2, 2, 3)),), lin: (np.zeros((2, 2, 2)),), ce: ()}
    for layer, args in backward_args.items():
        c = COPIERS[copier](layer)
        assert type(c) is type(layer) and repr(c) == repr(layer)
        for name, p in layer.parameters().items():
            np.testing.assert_array_equal(c.parameters()[name], p)
            assert c.parameters()[name] is not p
        with pytest.raises(RuntimeError, match="a copy keeps no forward state"):
            c.backward(*args)
    # The originals still backpropagate through their own forward.
    d_logits = ce.backward()
    emb.backward(lin.backward(d_logits))
    assert np.isfinite(loss) and emb.grads["weight"][0].sum() == 0.0  # padding row
    copied = COPIERS[copier](lin)
    np.testing.assert_array_equal(copied.grads["weight"], lin.grads["weight"])
