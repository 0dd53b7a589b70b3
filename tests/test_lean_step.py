"""The lean one-step path (``_core.PackedStack.step``, rnnkit._packed ``_lean_step``): the
eval-mode cells, ``step`` and the sequence call at T = 1 take it on the native backend
when their arguments are exactly C-contiguous arrays of the module's dtype. It must give
the bits of the general path, follow the packed weights' rules of rnnkit._packed, and
hand everything else to the general path (which converts, or raises naming the argument).
"""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit
from rnnkit import _core, _native

pytestmark = pytest.mark.native

IN, H = 5, 7
# mode: (its module class, its cell class, the arguments that select the mode)
KINDS = {
    "lstm": (rnnkit.LSTM, rnnkit.LSTMCell, {}),
    "gru": (rnnkit.GRU, rnnkit.GRUCell, {}),
    "gru_reset_before": (rnnkit.GRU, rnnkit.GRUCell, {"reset_after": False}),
    "rnn_tanh": (rnnkit.RNN, rnnkit.RNNCell, {}),
    "rnn_relu": (rnnkit.RNN, rnnkit.RNNCell, {"nonlinearity": "relu"}),
}


def make_module(mode, **kwargs):
    cls, _, extra = KINDS[mode]
    return cls(IN, H, **extra, **kwargs)


def make_cell(mode, **kwargs):
    _, cls, extra = KINDS[mode]
    return cls(IN, H, **extra, **kwargs)


def rand(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def general_step(m, x, h0, c0):
    """The core's general path (stack_forward, packing per call) for one step: x (B, IN),
    h0 and c0 (L, B, H). Returns out (B, H), h_n, c_n."""
    out, h_n, c_n, _ = _native.stack_forward(
        m.mode, x[None], h0, c0, m._weights(), None, None, False, num_directions=1
    )
    return out[0], h_n, c_n


def as_state(m, h, c):
    return (h, c) if m._has_cell else h


def lean_result(m, x, hx, layer_axis=True, with_out=True):
    """What the lean entry itself returns (after a first call made the packed weights)."""
    m.step(x, hx) if layer_axis else m(x, hx)
    return m._packed[0].step(m, x, hx, layer_axis, 2, with_out)


@pytest.mark.parametrize("mode", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_module_step_and_t1_call_give_the_general_paths_bits(mode, dtype, layers, batch, bias):
    m = make_module(mode, num_layers=layers, bias=bias, dtype=dtype, seed=3).eval()
    x = rand((batch, IN), dtype, 1)
    h0 = rand((layers, batch, H), dtype, 2)
    c0 = rand((layers, batch, H), dtype, 3) if m._has_cell else None
    want_out, want_h, want_c = general_step(m, x, h0, c0)
    assert lean_result(m, x, as_state(m, h0, c0)) is not None  # the lean entry takes it
    out, state = m.step(x, as_state(m, h0, c0))
    seq_out, seq_state = m(x[None], as_state(m, h0, c0))
    for got, got_state in ((out, state), (seq_out[0], seq_state)):
        np.testing.assert_array_equal(got, want_out)
        h, c = got_state if m._has_cell else (got_state, None)
        np.testing.assert_array_equal(h, want_h)
        if m._has_cell:
            np.testing.assert_array_equal(c, want_c)
    assert out.dtype == np.dtype(dtype) and out.shape == (batch, H)


@pytest.mark.parametrize("mode", KINDS)
def test_default_states_unbatched_and_batch_first(mode):
    m = make_module(mode, num_layers=2, seed=4).eval()
    x = rand((3, IN))
    zeros = np.zeros((2, 3, H), np.float32)
    want_out, want_h, want_c = general_step(m, x, zeros, zeros if m._has_cell else None)
    out, state = m.step(x)  # no state: zeros
    np.testing.assert_array_equal(out, want_out)
    # Unbatched (IN,) with states (L, H).
    out1, state1 = m.step(x[0], None)
    np.testing.assert_array_equal(out1, want_out[0])
    assert out1.shape == (H,)
    h1 = state1[0] if m._has_cell else state1
    assert h1.shape == (2, H)
    np.testing.assert_array_equal(h1, want_h[:, 0])
    # A batch_first module's T = 1 call: x (B, 1, IN), out (B, 1, H).
    bf = make_module(mode, num_layers=2, batch_first=True, seed=4).eval()
    bf_out, _ = bf(x[:, None])
    bf_out, _ = bf(x[:, None])  # the second call runs on the packed weights
    assert bf_out.shape == (3, 1, H)
    np.testing.assert_array_equal(bf_out[:, 0], want_out)
    # Unbatched sequence call (1, IN).
    u_out, _ = m(x[:1], None)
    assert u_out.shape == (1, H)
    np.testing.assert_array_equal(u_out[0], want_out[0])


@pytest.mark.parametrize("mode", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_gives_the_general_paths_bits(mode, dtype, batched):
    cell = make_cell(mode, dtype=dtype, seed=5).eval()
    x = rand((2, IN), dtype, 6)
    h = rand((2, H), dtype, 7)
    c = rand((2, H), dtype, 8) if cell._has_cell else None
    want_out, want_h, want_c = general_step(cell, x, h[None], None if c is None else c[None])
    xs, hs, cs = (x, h, c) if batched else (x[0], h[0], None if c is None else c[0])
    hx = (hs, cs) if cell._has_cell else hs
    cell(xs, hx)
    lean = cell._packed[0].step(cell, xs, hx, False, 2, False)
    assert lean is not None and lean[0] is None  # taken, without an out array
    got = cell(xs, hx)
    got_h, got_c = got if cell._has_cell else (got, None)
    np.testing.assert_array_equal(got_h, want_h[0] if batched else want_h[0, 0])
    np.testing.assert_array_equal(got_h, want_out if batched else want_out[0])
    if cell._has_cell:
        np.testing.assert_array_equal(got_c, want_c[0] if batched else want_c[0, 0])


@pytest.mark.parametrize("threads", [1, 2])
def test_same_bits_for_any_thread_count_and_a_team_sized_step(threads):
    """H = 256: the step's weights are large enough for a thread team."""
    previous = rnnkit.get_num_threads()
    rnnkit.set_num_threads(threads)
    try:
        m = rnnkit.LSTM(32, 256, seed=9).eval()
        x = rand((1, 32), seed=10)
        zeros = np.zeros((1, 1, 256), np.float32)
        want_out, want_h, want_c = general_step(m, x, zeros, zeros)
        m.step(x)
        out, (h, c) = m.step(x)
        np.testing.assert_array_equal(out, want_out)
        np.testing.assert_array_equal(c, want_c)
    finally:
        rnnkit.set_num_threads(previous)


def test_everything_but_the_common_case_goes_to_the_general_path():
    """The lean entry answers None; the public call then converts or raises as before."""
    m = rnnkit.LSTM(IN, H, num_layers=2, seed=11).eval()
    x = rand((3, IN))
    h = np.zeros((2, 3, H), np.float32)
    m.step(x)
    p = m._packed[0]
    others = [
        (x.astype(np.float64), (h, h)),  # another dtype: converted by the general path
        (np.asfortranarray(rand((3, IN)))[:, :], (h, h)),  # not C-contiguous
        (rand((6, IN))[::2], (h, h)),  # strided view
        (x.tolist(), (h, h)),  # not an array
        (x, [h, h]),  # a list for the LSTM's tuple
        (x, (h.astype(np.float64), h)),  # a state of another dtype
        (x.astype(">f4"), (h, h)),  # float32 in the other byte order
        (x, (h, h.astype(">f4"))),
    ]
    for x_arg, hx in others:
        assert p.step(m, x_arg, hx, True, 2, True) is None
        out, _ = m.step(x_arg, hx)  # the general path takes them
        want, _ = m.step(np.asarray(x_arg, np.float32), (h, h))
        np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    assert p.step(m, x, (h[:1], h), True, 2, True) is None  # a state of another shape
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 3, 7\)"):
        m.step(x, (h[:1], h))
    with pytest.raises(ValueError, match="batched_ndim must be 2 or 3, got 5"):
        p.step(m, x, None, True, 5, True)


def test_bad_input_raises_naming_the_argument():
    m = rnnkit.GRU(IN, H, num_layers=2, seed=12).eval()
    cell = rnnkit.LSTMCell(IN, H, seed=12).eval()
    x = rand((3, IN))
    m.step(x)
    cell(x)
    with pytest.raises(ValueError, match=r"x_t must have shape .* got shape \(3, 4\)"):
        m.step(rand((3, 4)))
    with pytest.raises(TypeError, match="x_t must be a real floating-point array"):
        m.step(np.ones((3, IN), np.int64))
    other = rnnkit.GRU(IN, H, num_layers=3, seed=12).eval()
    _, state_of_other = other.step(x)
    with pytest.raises(ValueError, match="h0"):
        m.step(x, state_of_other)  # (3, 3, H) into a two-layer module
    with pytest.raises(ValueError, match="x must have input_size"):
        m(rand((1, 3, 4)))
    with pytest.raises(ValueError, match=r"^x must have shape .* got shape \(3, 6\)"):
        cell(rand((3, 6)))
    with pytest.raises(ValueError, match=r"^h must have shape"):
        cell(x, (np.zeros((2, H), np.float32), None))
    with pytest.raises(ValueError, match=r"^c must have shape"):
        cell(x, (None, np.zeros((3, H + 1), np.float32)))
    with pytest.raises(TypeError, match="hx must be a tuple"):
        cell(x, np.zeros((3, H), np.float32))


def test_writes_to_the_weights_are_seen_as_the_packed_weights_rules_say():
    m = rnnkit.RNN(IN, H, seed=13).eval()
    fresh = rnnkit.RNN(IN, H, seed=13).eval()
    x = rand((2, IN))
    m.step(x)
    m.step(x)  # on the packed weights
    w = m.parameters()["weight_hh_l0"]
    w *= 0.5  # a NumPy write: seen by the next call
    fresh.load_state_dict(m.state_dict())
    h = rand((1, 2, H), seed=14)
    np.testing.assert_array_equal(m.step(x, h)[0], fresh.step(x, h)[0])
    b = m.parameters()["bias_ih_l0"]
    np.asarray(b)[...] += 1.0  # bypasses NumPy's write hooks: seen after the mark
    fresh.load_state_dict(m.state_dict())
    m.mark_parameters_changed()
    np.testing.assert_array_equal(m.step(x, h)[0], fresh.step(x, h)[0])
    np.testing.assert_array_equal(m(x[None], h)[0], fresh(x[None], h)[0])


def test_a_parameter_reshaped_in_place_raises_naming_it():
    m = rnnkit.LSTM(IN, H, seed=15).eval()
    x = rand((1, IN))
    m.step(x)
    w = m.parameters()["weight_ih_l0"]
    w.shape = (IN, 4 * H)
    with pytest.raises(ValueError, match="parameter 'weight_ih_l0' was changed in place"):
        m.step(x)
    cell = rnnkit.GRUCell(IN, H, seed=15).eval()
    cell(x)
    cell.parameters()["bias_hh"].shape = (3, H)
    with pytest.raises(ValueError, match="parameter 'bias_hh' was changed in place"):
        cell(x)
    other = rnnkit.RNNCell(IN, H, seed=15).eval()
    other(x)
    w = other.parameters()["weight_hh"]
    w.dtype = w.dtype.newbyteorder()  # the same bytes read in the other byte order
    with pytest.raises(ValueError, match="parameter 'weight_hh' was changed in place"):
        other(x)


def test_training_calls_and_a_module_held_by_training_take_the_general_path():
    m = rnnkit.LSTM(IN, H, seed=16)
    x = rand((2, IN))
    m.eval()
    m.step(x)
    m.train()
    out, _ = m.step(x)  # training mode: the general path (dropout rules, no lean entry)
    m.eval()
    np.testing.assert_array_equal(m.step(x)[0], out)
    m._exclusive = True  # as while another thread runs a training call
    try:
        assert m._packed[0].step(m, x, None, True, 2, True) is None
        with pytest.raises(RuntimeError, match="is being used by another thread"):
            m.step(x)
    finally:
        m._exclusive = False


def test_a_step_too_large_to_hold_the_gil_takes_the_general_path():
    m = rnnkit.RNN(64, 64, seed=17).eval()
    x = rand((600, 64))  # 600 * 64 * 128 multiply-adds > 2**22
    m.step(x)
    assert m._packed[0].step(m, x, None, True, 2, True) is None
    small = x[:4]
    np.testing.assert_array_equal(m.step(x)[0][:4], m.step(small)[0])


def test_an_eval_step_drops_what_a_training_call_kept():
    m = rnnkit.GRU(IN, H, seed=18)
    x = rand((1, 2, IN))
    m.eval()
    m(x)
    m.train()
    m(x)
    m.eval()  # drops the saved state too; the lean call says why backward has nothing
    m(x)
    with pytest.raises(RuntimeError, match="the last forward pass ran in eval mode"):
        m.backward(np.ones((1, 2, H), np.float32))


def test_packed_stack_keeps_its_weights_alive():
    """The lean entry reads the arrays it was packed from: it holds them."""
    m = rnnkit.RNN(IN, H, seed=19).eval()
    weights = [tuple(np.array(a) for a in entry) for entry in m._weights()]
    packed = _core.PackedStack("rnn_tanh", weights, 1)
    want = packed.step(m, rand((2, IN)), None, True, 2, True)
    del weights
    got = packed.step(m, rand((2, IN)), None, True, 2, True)
    np.testing.assert_array_equal(got[0], want[0])


def test_a_step_with_more_scratch_than_a_thread_keeps():
    """B = 3000 LSTM rows: the gates alone are 328 KiB, over what a thread keeps between
    steps (single_step.cpp), so the step takes its scratch from the memory pool."""
    m = make_module("lstm", num_layers=2, seed=20).eval()
    x = rand((3000, IN), seed=21)
    zeros = np.zeros((2, 3000, H), np.float32)
    want_out, want_h, want_c = general_step(m, x, zeros, zeros)
    m.step(x)
    assert m._packed[0].step(m, x, None, True, 2, True) is not None
    out, (h, c) = m.step(x)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(h, want_h)
    np.testing.assert_array_equal(c, want_c)
