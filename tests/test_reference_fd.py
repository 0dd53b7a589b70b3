"""The NumPy reference's gradients against central finite differences, in float64.

For a random linear functional  loss = sum(out*A) + sum(h_n*Bh) + sum(c_n*C)  the analytic
gradients from stack_backward are compared with central differences w.r.t. x, h0, c0 and
every weight and bias, over every mode and feature: bias on/off, 1-3 layers,
bidirectional, variable lengths, fixed dropout masks, random initial states, T=1, B=1, H=1.
Each array is checked along one random unit direction (which catches an error in any of
its entries) and at a few random single entries.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_weights
from rnnkit.reference import MODES, stack_backward, stack_forward

EPS = 1e-5  # central differences: truncation ~EPS**2, rounding ~1e-16/EPS
RTOL = 1e-7
ATOL = 1e-9
ENTRIES_PER_ARRAY = 3

# (T, B, I, H, L, D, bias, lengths, dropout)
CONFIGS = [
    (1, 1, 1, 1, 1, 1, True, None, False),
    (3, 2, 2, 1, 1, 1, False, None, False),
    (5, 1, 2, 3, 1, 2, True, [3], False),
    (4, 3, 2, 3, 2, 2, True, [4, 1, 3], True),
    (3, 2, 3, 2, 3, 1, True, None, True),
    (4, 3, 2, 2, 3, 2, False, [2, 4, 1], True),
]


def make_problem(mode, config, seed):
    steps, batch, inp, hidden, layers, dirs, bias, lengths, dropout = config
    rng = np.random.default_rng(seed)
    states = (layers * dirs, batch, hidden)
    weights = [list(w) for w in make_weights(mode, inp, hidden, layers, dirs, bias, "f8", rng)]
    x = rng.standard_normal((steps, batch, inp))
    h0 = rng.standard_normal(states)
    c0 = rng.standard_normal(states) if mode == "lstm" else None
    lengths = None if lengths is None else np.array(lengths, dtype=np.int64)
    masks = None
    if dropout:  # fixed inverted-dropout masks with p = 0.3: values 0 or 1/0.7
        shape = (steps, batch, dirs * hidden)
        masks = [(rng.random(shape) > 0.3) / 0.7 for _ in range(layers - 1)]
    coef = (
        rng.standard_normal((steps, batch, dirs * hidden)),
        rng.standard_normal(states),
        rng.standard_normal(states) if mode == "lstm" else None,
    )
    return x, h0, c0, weights, lengths, masks, coef


def loss_of(mode, x, h0, c0, weights, lengths, masks, coef, dirs):
    out, h_n, c_n, _ = stack_forward(
        mode, x, h0, c0, [tuple(w) for w in weights], lengths, masks, False, num_directions=dirs
    )
    loss = np.sum(out * coef[0]) + np.sum(h_n * coef[1])
    return loss if c_n is None else loss + np.sum(c_n * coef[2])


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: "T{}B{}I{}H{}L{}D{}b{}len{}drop{}".format(*c)
)
@pytest.mark.parametrize("mode", MODES)
def test_gradients_match_finite_differences(mode, config):
    dirs = config[5]
    x, h0, c0, weights, lengths, masks, coef = make_problem(mode, config, seed=7)
    *_, cache = stack_forward(
        mode, x, h0, c0, [tuple(w) for w in weights], lengths, masks, True, num_directions=dirs
    )
    dx, dh0, dc0, dweights = stack_backward(mode, cache, coef[0], coef[1], coef[2])

    checked = [("x", x, dx), ("h0", h0, dh0)] + ([("c0", c0, dc0)] if c0 is not None else [])
    for i, (entry, dentry) in enumerate(zip(weights, dweights)):
        for name, w, dw in zip(("w_ih", "w_hh", "b_ih", "b_hh"), entry, dentry):
            if w is None:
                assert dw is None, f"{name}[{i}]: gradient for an absent bias"
            else:
                checked.append((f"{name}[{i}]", w, dw))

    def loss():
        return loss_of(mode, x, h0, c0, weights, lengths, masks, coef, dirs)

    rng = np.random.default_rng(11)
    for name, array, grad in checked:
        assert grad.shape == array.shape and grad.dtype == np.float64, name
        # One random unit direction over the whole array.
        direction = rng.standard_normal(array.shape)
        direction /= np.linalg.norm(direction)
        saved = array.copy()
        array += EPS * direction
        plus = loss()
        array[...] = saved - EPS * direction
        minus = loss()
        array[...] = saved
        np.testing.assert_allclose(
            (plus - minus) / (2 * EPS),
            np.sum(grad * direction),
            rtol=RTOL,
            atol=ATOL,
            err_msg=f"{name}: directional derivative",
        )
        # A few single entries.
        for flat in rng.choice(array.size, size=min(ENTRIES_PER_ARRAY, array.size), replace=False):
            idx = np.unravel_index(flat, array.shape)
            array[idx] = saved[idx] + EPS
            plus = loss()
            array[idx] = saved[idx] - EPS
            minus = loss()
            array[idx] = saved[idx]
            np.testing.assert_allclose(
                (plus - minus) / (2 * EPS),
                grad[idx],
                rtol=RTOL,
                atol=ATOL,
                err_msg=f"{name}{idx}",
            )


@pytest.mark.parametrize("mode", ["lstm", "gru_reset_before"])
def test_dropout_mask_feeds_the_next_layer(mode):
    # A 2-layer bidirectional stack with a mask equals layer 0 alone, then layer 1 alone on
    # layer 0's output times the mask; the last layer's output is never masked.
    config = (4, 3, 2, 3, 2, 2, True, [4, 2, 3], True)
    x, h0, c0, weights, lengths, masks, _ = make_problem(mode, config, seed=8)
    weights = [tuple(w) for w in weights]
    full = stack_forward(mode, x, h0, c0, weights, lengths, masks, False, num_directions=2)
    c0_0, c0_1 = (None, None) if c0 is None else (c0[:2], c0[2:])
    first = stack_forward(
        mode, x, h0[:2], c0_0, weights[:2], lengths, None, False, num_directions=2
    )
    second = stack_forward(
        mode,
        first[0] * masks[0],
        h0[2:],
        c0_1,
        weights[2:],
        lengths,
        None,
        False,
        num_directions=2,
    )
    np.testing.assert_array_equal(full[0], second[0])
    np.testing.assert_array_equal(full[1], np.concatenate([first[1], second[1]]))
    assert np.any(masks[0] == 0), "the mask should drop something"
