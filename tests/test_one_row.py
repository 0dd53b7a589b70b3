"""The one-row forward path of the LSTM and GRU (B = 1, hidden size a whole number of
panels: a GEMV per panel of units, the cell right after it, the input projection
computed along the steps). It must give the bits of the general path, which a batch of
two takes: every element of a product is one fixed-order sum whatever the batch, so row
0 of a batch of two equals the batch of one, on every ISA and thread count.
"""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit

pytestmark = pytest.mark.native

CLASSES = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU}

# (T, I, H): T below, at and past the ends of the projection's first group (G steps
# computed before the loop: 4 for the LSTM, 3 for the GRU), of the steps projected during
# it (3G: 12, 9) and of the groups of 2G steps after; I equal to H, smaller and larger; H
# of 1 to 3 panels (float32: 16 units, float64: 8); H = 20 is not whole panels (the
# general path, as a control); H = 128 splits the time loop between threads.
SIZES = [
    (1, 5, 16),
    (3, 8, 16),
    (4, 8, 32),
    (7, 16, 16),
    (8, 3, 32),
    (9, 40, 32),
    (13, 16, 16),
    (30, 48, 48),
    (17, 1, 20),
    (12, 64, 128),
]


def rand(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("cell", sorted(CLASSES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("size", SIZES)
def test_one_row_same_bits_as_a_batch(cell, dtype, size, isa):
    T, n_in, H = size
    m = CLASSES[cell](n_in, H, dtype=dtype, seed=1).eval()
    x1 = rand((T, 1, n_in), dtype, 2)
    x2 = np.concatenate([x1, rand((T, 1, n_in), dtype, 3)], axis=1)
    h1 = rand((1, 1, H), dtype, 4)
    h2 = np.concatenate([h1, rand((1, 1, H), dtype, 5)], axis=1)
    if cell == "lstm":
        c1 = rand((1, 1, H), dtype, 6)
        s1, s2 = (h1, c1), (h2, np.concatenate([c1, rand((1, 1, H), dtype, 7)], axis=1))
    else:
        s1, s2 = h1, h2
    saved = rnnkit.get_num_threads()
    for threads in (1, 2, 3):
        rnnkit.set_num_threads(threads)
        try:
            out1, st1 = m(x1, s1)
            out2, st2 = m(x2, s2)
        finally:
            rnnkit.set_num_threads(saved)
        assert out1.tobytes() == out2[:, :1].tobytes()
        for a, b in zip(st1 if cell == "lstm" else (st1,), st2 if cell == "lstm" else (st2,)):
            assert a.tobytes() == b[:, :1].tobytes()


@pytest.mark.parametrize("cell", sorted(CLASSES))
def test_one_row_training_same_bits_as_a_batch(cell):
    """Training keeps the gates for the backward: the same forward bits, and dx's row."""
    T, n_in, H = 20, 24, 32
    m = CLASSES[cell](n_in, H, seed=1)
    x1 = rand((T, 1, n_in), "float32", 2)
    x2 = np.concatenate([x1, rand((T, 1, n_in), "float32", 3)], axis=1)
    g1 = rand((T, 1, H), "float32", 4)
    g2 = np.concatenate([g1, rand((T, 1, H), "float32", 5)], axis=1)
    out1, _ = m(x1)
    dx1, _ = m.backward(g1, None)
    out2, _ = m(x2)
    dx2, _ = m.backward(g2, None)
    assert out1.tobytes() == out2[:, :1].tobytes()
    assert dx1.tobytes() == dx2[:, :1].tobytes()
