"""step(x_t, state): streaming one time step at a time through all layers gives the bits of
the call over the whole sequence; bidirectional modules and bad input raise clearly."""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit

CLASSES = [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN]
T, B, IN, HID = 6, 3, 5, 7


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def stream(m, x, state=None):
    outs = []
    for t in range(x.shape[0]):
        out_t, state = m.step(x[t], state)
        outs.append(out_t)
    return np.stack(outs), state


def assert_states_equal(a, b, rtol=0.0):
    for u, v in zip(a, b) if isinstance(a, tuple) else [(a, b)]:
        np.testing.assert_allclose(u, v, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch", [1, 3, 40])
def test_step_gives_the_bits_of_the_sequence_call(cls, backend, dtype, batch):
    """The native core computes each element of x W_ih^T the same way whatever the rows
    of the product (gemm.h), so the same bits; NumPy's matmul may take another BLAS path
    for one row than for T*B rows, so the reference agrees to rounding."""
    m = cls(IN, HID, num_layers=3, dtype=dtype, backend=backend, seed=1).eval()
    x = rand((T, batch, IN)).astype(dtype)
    want_out, want_state = m(x)
    got_out, got_state = stream(m, x)
    rtol = 0.0 if backend == "native" else (1e-5 if dtype == "float32" else 1e-12)
    np.testing.assert_allclose(got_out, want_out, rtol=rtol, atol=rtol)
    assert_states_equal(got_state, want_state, rtol)


@pytest.mark.parametrize("cls", CLASSES)
def test_step_from_a_given_state_and_unbatched(cls):
    m = cls(IN, HID, num_layers=2, dtype="float64", seed=2).eval()
    h = rand((2, HID), 4)
    hx = (h, h * 0.5) if cls is rnnkit.LSTM else h
    x = rand((T, IN))
    want_out, want_state = m(x, hx)
    got_out, got_state = stream(m, x, hx)
    assert got_out.shape == (T, HID)
    np.testing.assert_array_equal(got_out, want_out)
    assert_states_equal(got_state, want_state)


def test_batch_first_module_steps_on_b_i():
    m = rnnkit.GRU(IN, HID, batch_first=True, seed=3).eval()
    x = rand((B, T, IN)).astype(np.float32)
    want_out, _ = m(x)
    got_out, _ = stream(m, x.transpose(1, 0, 2))
    np.testing.assert_array_equal(got_out.transpose(1, 0, 2), want_out)


def test_training_mode_step_applies_dropout_and_keeps_nothing():
    m = rnnkit.LSTM(IN, HID, num_layers=2, dropout=0.5, seed=4)  # training mode
    x = rand((B, IN))
    a, _ = m.step(x)
    b, _ = m.step(x)
    assert not np.array_equal(a, b)  # a fresh dropout mask per step
    with pytest.raises(RuntimeError, match=r"step\(\), which keeps nothing for backward"):
        m.backward(np.ones((1, B, HID)))
    m.eval()
    np.testing.assert_array_equal(m.step(x)[0], m.step(x)[0])


@pytest.mark.parametrize("cls", CLASSES)
def test_bidirectional_refuses_step(cls):
    m = cls(IN, HID, bidirectional=True)
    with pytest.raises(ValueError, match=r"bidirectional module cannot run step by step"):
        m.step(rand((B, IN)))


@pytest.mark.parametrize(
    "x_t, match",
    [
        (
            np.zeros((B, IN + 1)),
            r"x_t must have shape \(batch, input_size=5\) .*got shape \(3, 6\)",
        ),
        (np.zeros((1, B, IN)), r"x_t must have shape .*got shape \(1, 3, 5\)"),
        (np.zeros(()), r"x_t must have shape .*got shape \(\)"),
        (np.zeros((0, IN)), r"x_t must have at least one sequence, got shape \(0, 5\)"),
    ],
)
def test_step_rejects_a_bad_x_t(x_t, match):
    with pytest.raises(ValueError, match=match):
        rnnkit.LSTM(IN, HID).step(x_t)


def test_step_rejects_a_state_of_another_module():
    m = rnnkit.LSTM(IN, HID, num_layers=2)
    other = rnnkit.LSTM(IN, HID + 1, num_layers=3)
    _, state = other.step(rand((B, IN)))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 3, 7\) .*got \(3, 3, 8\)"):
        m.step(rand((B, IN)), state)
    with pytest.raises(ValueError, match=r"h0 must have shape"):
        rnnkit.GRU(IN, HID).step(rand((B, IN)), rand((1, B + 1, HID)))
    with pytest.raises((TypeError, ValueError), match="hx"):
        m.step(rand((B, IN)), rand((2, B, HID)))  # an LSTM state is a tuple
