"""Hostile input: every wrong argument to the public modules gets a ValueError / TypeError
that names the argument, what it got and what was expected, the same on both backends;
every odd but valid argument (views, read-only, other precisions) gets the right answer;
no input, however wrong, crashes the interpreter (the native bindings are hammered
directly in a child process); NaN and Inf propagate as IEEE arithmetic does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rnnkit
from conftest import (
    BACKENDS,
    CELLS,
    IN,
    B,
    H,
    T,
    make_module,
    needs_threads,
    rand,
    rss_bytes,
    team_forms,
)
from rnnkit import _core, _native

pytestmark = pytest.mark.native


def hx_of(cell: str, h, c=None):
    """The module's state argument: (h, c) for LSTM, h otherwise."""
    return (h, c) if cell == "lstm" else h


def run_both(fn):
    """fn(backend) on both backends: both raise the same (type, message) or both return."""
    results = []
    for backend in BACKENDS:
        try:
            results.append(("ok", fn(backend)))
        except (ValueError, TypeError, RuntimeError, MemoryError) as exc:
            results.append(("raised", (type(exc), str(exc))))
    assert results[0][0] == results[1][0], results
    return results


# ---------------------------------------------------------------------------------------
# x, h0, c0 and gradient arrays that are wrong

BAD_DTYPES = [
    (np.int64, "int64"),
    (np.int8, "int8"),
    (np.uint16, "uint16"),
    (bool, "bool"),
    (np.complex64, "complex64"),
    (np.complex128, "complex128"),
    (object, "object"),
    ("U3", "<U3"),
    ("S3", "|S3"),
    ("datetime64[s]", r"datetime64\[s\]"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,shown", BAD_DTYPES, ids=[d[1] for d in BAD_DTYPES])
def test_non_float_arrays_raise_type_error(dtype, shown, backend):
    """x, h0, c0, grad_out, grad_h_n, grad_c_n of a non-float dtype: TypeError naming it."""
    bad = np.zeros((T, B, IN)).astype(dtype)
    bad_state = np.zeros((1, B, H)).astype(dtype)
    lstm = make_module("lstm", backend)
    x = rand((T, B, IN))
    with pytest.raises(
        TypeError, match=rf"x must be a real floating-point array .*got dtype {shown}"
    ):
        lstm(bad)
    with pytest.raises(TypeError, match=rf"h0 must be a real floating-point .*got dtype {shown}"):
        lstm(x, (bad_state, None))
    with pytest.raises(TypeError, match=rf"c0 must be a real floating-point .*got dtype {shown}"):
        lstm(x, (None, bad_state))
    out, _ = lstm(x)
    with pytest.raises(TypeError, match=rf"grad_out must be a real floating-point .*{shown}"):
        lstm.backward(np.zeros(out.shape).astype(dtype))
    lstm(x)
    with pytest.raises(TypeError, match=rf"grad_h_n must be a real floating-point .*{shown}"):
        lstm.backward(out, (bad_state, None))
    lstm(x)
    with pytest.raises(TypeError, match=rf"grad_c_n must be a real floating-point .*{shown}"):
        lstm.backward(out, (None, bad_state))


UNCONVERTIBLE = [
    ([[1.0, 2.0], [3.0]], "list"),  # ragged
    ({"a": 1}, "object"),
    ("abc", "<U3"),
    (b"abc", "|S3"),
    (object(), "object"),
    (lambda: 0, "object"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value,shown", UNCONVERTIBLE, ids=[u[1] for u in UNCONVERTIBLE])
def test_unconvertible_values_raise_type_error(value, shown, backend):
    gru = make_module("gru", backend)
    with pytest.raises(TypeError, match=rf"x must be a (real )?floating-point array.*{shown}"):
        gru(value)
    if not isinstance(value, list):  # a list is taken for a (h0, c0) pair: TypeError too
        with pytest.raises(TypeError, match=rf"h0 must be a (real )?floating-point array.*{shown}"):
            gru(rand((T, B, IN)), value)
    with pytest.raises(TypeError, match="x must be a floating-point array, got None"):
        gru(None)


BAD_X_SHAPES = [
    ((), r"x must be 3-D \(T, B, I\) or unbatched 2-D \(T, I\), got shape \(\)"),
    ((IN,), r"x must be 3-D \(T, B, I\) .*got shape \(4,\)"),
    ((1, T, B, IN), r"x must be 3-D .*got shape \(1, 5, 3, 4\)"),
    ((T, B, IN + 1), r"x must have input_size=4 features .*got shape \(5, 3, 5\)"),
    ((T, IN - 1), r"x must have input_size=4 features .*got shape \(5, 3\)"),
    ((T, B, 0), r"x must have input_size=4 features .*got shape \(5, 3, 0\)"),
    ((0, B, IN), r"x must have at least one time step and one sequence, got shape \(0, 3, 4\)"),
    ((T, 0, IN), r"at least one time step and one sequence, got shape \(5, 0, 4\)"),
    ((0, IN), r"at least one time step and one sequence, got shape \(0, 4\)"),
    ((0, 0, IN), r"at least one time step and one sequence, got shape \(0, 0, 4\)"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape,match", BAD_X_SHAPES, ids=[str(s[0]) for s in BAD_X_SHAPES])
def test_x_of_wrong_shape_or_empty_raises(shape, match, cell, backend):
    """Wrong ndim or features, and empty sequences or batches (T=0, B=0): a ValueError
    (documented: an empty sequence or batch is an error), the same on both backends."""
    with pytest.raises(ValueError, match=match):
        make_module(cell, backend)(np.zeros(shape))


def test_batch_first_x_error_names_its_layout():
    with pytest.raises(ValueError, match=r"x must be 3-D \(B, T, I\) or unbatched"):
        make_module("gru", batch_first=True)(np.zeros((1, 2, 3, IN)))
    with pytest.raises(ValueError, match=r"at least one time step .*\(3, 0, 4\)"):
        make_module("gru", batch_first=True)(np.zeros((B, 0, IN)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_states_of_wrong_shape_raise(cell, backend):
    """h0 / c0: wrong ndim, sizes, mismatched batch, unbatched vs batched: ValueError with
    the expected and received shapes."""
    m = make_module(cell, backend, num_layers=2, bidirectional=True)  # states (4, B, H)
    x = rand((T, B, IN))
    good = np.zeros((4, B, H))
    cases = [
        (
            np.zeros((4, B + 1, H)),
            r"\(4, 3, 6\) \(num_layers\*num_directions, batch, hidden_size\), got \(4, 4, 6\)",
        ),
        (np.zeros((2, B, H)), r"\(4, 3, 6\).*got \(2, 3, 6\)"),
        (np.zeros((4, B, H + 1)), r"\(4, 3, 6\).*got \(4, 3, 7\)"),
        (np.zeros((4, H)), r"\(4, 3, 6\).*got \(4, 6\)"),
        (np.zeros((1, 4, B, H)), r"\(4, 3, 6\).*got \(1, 4, 3, 6\)"),
        (np.zeros(()), r"\(4, 3, 6\).*got \(\)"),
        (5.0, r"\(4, 3, 6\).*got \(\)"),
    ]
    for bad, match in cases:
        with pytest.raises(ValueError, match="h0 must have shape " + match):
            m(x, hx_of(cell, bad, good))
        if cell == "lstm":
            with pytest.raises(ValueError, match="c0 must have shape " + match):
                m(x, (good, bad))
    # Unbatched x takes unbatched states (L*D, H), like torch.
    with pytest.raises(ValueError, match=r"h0 must have shape \(4, 6\) .*got \(4, 1, 6\)"):
        m(x[:, 0], hx_of(cell, np.zeros((4, 1, H)), None))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_state_structure(backend):
    """LSTM takes (h0, c0): a bare array, a 1- or 3-tuple, a dict are refused; either part
    may be None; a list [h0, c0] is accepted."""
    lstm = make_module("lstm", backend)
    x = rand((T, B, IN))
    h = rand((1, B, H), 1)
    c = rand((1, B, H), 2)
    with pytest.raises(TypeError, match=r"hx for LSTM must be a tuple \(h0, c0\) .*got ndarray"):
        lstm(x, h)
    with pytest.raises(ValueError, match=r"hx for LSTM must be a tuple \(h0, c0\), got length 1"):
        lstm(x, (h,))  # c0 missing
    with pytest.raises(ValueError, match="got length 3"):
        lstm(x, (h, c, c))
    with pytest.raises(TypeError, match="hx for LSTM must be a tuple .*got dict"):
        lstm(x, {"h0": h, "c0": c})
    with pytest.raises(TypeError, match="hx for LSTM must be a tuple .*got str"):
        lstm(x, "hc")
    out_t, (h_t, c_t) = lstm(x, (h, c))
    out_l, (h_l, c_l) = lstm(x, [h, c])
    np.testing.assert_array_equal(out_t, out_l)
    np.testing.assert_array_equal(c_t, c_l)
    # Missing parts are zeros.
    out_0, _ = lstm(x, (None, None))
    out_z, _ = lstm(x, (np.zeros_like(h), np.zeros_like(c)))
    np.testing.assert_array_equal(out_0, out_z)
    for cell in ("rnn", "gru"):
        name = cell.upper()
        with pytest.raises(
            TypeError, match=f"hx for {name} must be an array h0 or None, not a tuple"
        ):
            make_module(cell, backend)(x, (h, c))


# ---------------------------------------------------------------------------------------
# Odd but valid arrays: views, read-only, other byte orders and precisions


def _odd_views(a: np.ndarray) -> dict[str, np.ndarray]:
    """Differently laid out arrays equal to a (3-D)."""
    rev = np.ascontiguousarray(a[::-1])[::-1]  # negative strides on axis 0
    ro = a.copy()
    ro.setflags(write=False)
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    tr = np.ascontiguousarray(a.transpose(2, 1, 0)).transpose(2, 1, 0)  # a transposed view
    return {
        "fortran": np.asfortranarray(a),
        "transposed": tr,
        "negative_stride": rev,
        "strided": wide[..., ::2],
        "read_only": ro,
        "big_endian": a.astype(a.dtype.newbyteorder(">")),
        "list": a.tolist(),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_views_and_read_only_arrays_give_the_same_answer(cell, backend):
    """x, h0, c0, lengths, grad_out, grad_h_n, grad_c_n as non-contiguous, transposed,
    negative-stride, strided, read-only, big-endian arrays or nested lists: bit-for-bit
    the answer of the contiguous arrays."""
    m = make_module(cell, backend, num_layers=2, bidirectional=True)
    x, h0, c0 = rand((T, B, IN), 1), rand((4, B, H), 2), rand((4, B, H), 3)
    g, gh, gc = rand((T, B, 2 * H), 4), rand((4, B, H), 5), rand((4, B, H), 6)
    lengths = np.array([5, 2, 4])

    def run(x, h0, c0, lengths, g, gh, gc):
        out, state = m(x, hx_of(cell, h0, c0), lengths=lengths)
        dx, dstate = m.backward(g, hx_of(cell, gh, gc))
        grads = {k: v.copy() for k, v in m.grads.items()}
        m.zero_grad()
        return out, state, dx, dstate, grads

    want = run(x, h0, c0, lengths, g, gh, gc)
    variants = {
        name: [_odd_views(a)[name] for a in (x, h0, c0, g, gh, gc)] for name in _odd_views(x)
    }
    # States as lists would read as LSTM-style pairs for RNN/GRU (refused): arrays there.
    variants["list"][1:3] = [h0, c0]
    variants["list"][4:] = [gh, gc]
    lengths_ro = lengths.copy()
    lengths_ro.setflags(write=False)
    lengths_views = {
        "fortran": lengths,
        "transposed": np.array([4, 2, 5])[::-1],
        "negative_stride": np.array([4, 2, 5])[::-1],
        "strided": np.array([5, 0, 2, 0, 4])[::2],
        "read_only": lengths_ro,
        "big_endian": lengths.astype(">i4"),
        "list": [5, 2, 4],
    }
    for name, (xv, h0v, c0v, gv, ghv, gcv) in variants.items():
        got = run(xv, h0v, c0v, lengths_views[name], gv, ghv, gcv)
        for a, b in zip(_flatten(got), _flatten(want)):
            np.testing.assert_array_equal(a, b, err_msg=name)


def _flatten(result):
    out, state, dx, dstate, grads = result
    states = list(state) if isinstance(state, tuple) else [state]
    dstates = list(dstate) if isinstance(dstate, tuple) else [dstate]
    return [out, *states, dx, *dstates, *grads.values()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_other_precisions_are_converted(backend):
    """float16 / float32 / longdouble inputs to a float64 module (and float64 to float32)
    are converted: the result equals that of the converted array."""
    for dtype, other in (
        ("float64", (np.float16, np.float32, np.longdouble)),
        ("float32", (np.float64,)),
    ):
        m = make_module("gru", backend, dtype=dtype)
        x = rand((T, B, IN)).astype(np.float16)  # exactly representable in every dtype
        want, _ = m(x.astype(dtype))
        for o in other:
            got, h_n = m(x.astype(o))
            assert got.dtype == np.dtype(dtype) and h_n.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unbatched_batch_first_and_read_only_outputs_stay_usable(backend):
    """Outputs are fresh, writable arrays: editing them changes no later result."""
    m = make_module("lstm", backend, batch_first=True)
    x = rand((B, T, IN))
    out, (h_n, c_n) = m(x)
    want = out.copy()
    out[:] = 7.0
    h_n[:] = 7.0
    again, _ = m(x)
    np.testing.assert_array_equal(again, want)


# ---------------------------------------------------------------------------------------
# lengths

BAD_LENGTHS = [
    ([5.0, 2.0, 4.0], TypeError, "lengths must be integers, got dtype float64"),
    (np.array([5, 2, 4], np.float32), TypeError, "lengths must be integers, got dtype float32"),
    ([True, False, True], TypeError, "lengths must be integers, got dtype bool"),
    ([5 + 0j, 2, 4], TypeError, "lengths must be integers, got dtype complex128"),
    (["5", "2", "4"], TypeError, "lengths must be integers, got dtype <U1"),
    ([[5], [2, 3], [4]], TypeError, r"lengths must be an integer array of shape \(3,\)"),
    ([2**70, 2, 4], TypeError, "lengths must be integers, got dtype object"),
    ([5, 2], ValueError, r"lengths must have shape \(3,\) \(one per sequence\), got \(2,\)"),
    ([5, 2, 4, 1], ValueError, r"lengths must have shape \(3,\).*got \(4,\)"),
    ([[5, 2, 4]], ValueError, r"lengths must have shape \(3,\).*got \(1, 3\)"),
    (5, ValueError, r"lengths must have shape \(3,\).*got \(\)"),
    ([], TypeError, "lengths must be integers, got dtype float64"),  # NumPy's empty list
    (np.array([], np.int64), ValueError, r"lengths must have shape \(3,\).*got \(0,\)"),
    (
        [5, 0, 4],
        ValueError,
        r"lengths must be in 1\.\.5 \(the sequence length\), got lengths\[1\] = 0",
    ),
    ([5, 2, 6], ValueError, r"lengths must be in 1\.\.5 .*lengths\[2\] = 6"),
    ([-3, 2, 4], ValueError, r"lengths\[0\] = -3"),
    (np.array([5, 2, -(2**63)]), ValueError, r"lengths\[2\] = -9223372036854775808"),
    (np.array([5, 2, 2**64 - 1], np.uint64), ValueError, r"lengths\[2\] = 18446744073709551615"),
    (np.array([5, 2, 255], np.uint8), ValueError, r"lengths\[2\] = 255"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "lengths,exc,match", BAD_LENGTHS, ids=[str(c[0])[:24] for c in BAD_LENGTHS]
)
def test_bad_lengths_raise(lengths, exc, match, backend):
    with pytest.raises(exc, match=match):
        make_module("lstm", backend, bidirectional=True)(rand((T, B, IN)), lengths=lengths)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lengths_of_unbatched_x(backend):
    """Unbatched x (T, I) takes lengths of shape () or (1,), each in 1..T."""
    m = make_module("gru", backend)
    x = rand((T, IN))
    short, _ = m(x[:3])
    for lengths in (3, [3], np.array([3], np.int16)):
        out, _ = m(x, lengths=lengths)
        np.testing.assert_allclose(out[:3], short, rtol=1e-12, atol=1e-12)
        assert not out[3:].any()
    with pytest.raises(ValueError, match=r"lengths must have shape \(1,\).*got \(2,\)"):
        m(x, lengths=[3, 3])
    with pytest.raises(ValueError, match=r"lengths\[0\] = 0"):
        m(x, lengths=0)


# ---------------------------------------------------------------------------------------
# Constructor

BAD_CONSTRUCTOR = [
    (dict(input_size=0), ValueError, r"input_size must be a positive int \(>= 1\), got 0"),
    (dict(input_size=-3), ValueError, r"input_size must be a positive int \(>= 1\), got -3"),
    (dict(hidden_size=0), ValueError, r"hidden_size must be a positive int \(>= 1\), got 0"),
    (dict(num_layers=0), ValueError, r"num_layers must be a positive int \(>= 1\), got 0"),
    (dict(num_layers=-1), ValueError, r"num_layers must be a positive int \(>= 1\), got -1"),
    (dict(hidden_size=2.5), TypeError, r"hidden_size must be a positive int, got 2\.5 \(float\)"),
    (dict(hidden_size=4.0), TypeError, r"hidden_size must be a positive int, got 4\.0 \(float\)"),
    (dict(input_size=True), TypeError, r"input_size must be a positive int, got True \(bool\)"),
    (dict(input_size="4"), TypeError, r"input_size must be a positive int, got '4' \(str\)"),
    (dict(hidden_size=None), TypeError, r"hidden_size must be a positive int, got None"),
    (dict(dropout=1.0), ValueError, r"dropout must be in \[0, 1\), got 1\.0"),
    (dict(dropout=-0.1), ValueError, r"dropout must be in \[0, 1\), got -0\.1"),
    (dict(dropout=float("nan")), ValueError, r"dropout must be in \[0, 1\), got nan"),
    (dict(dropout=float("inf")), ValueError, r"dropout must be in \[0, 1\), got inf"),
    (dict(dropout="0.5"), TypeError, r"dropout must be a float in \[0, 1\), got '0\.5' \(str\)"),
    (dict(dropout=True), TypeError, r"dropout must be a float .*got True \(bool\)"),
    (dict(dtype="float16"), ValueError, r"dtype must be 'float32' or 'float64', got 'float16'"),
    (dict(dtype=np.int32), ValueError, r"dtype must be 'float32' or 'float64', got <class"),
    (dict(dtype="int64"), ValueError, r"dtype must be 'float32' or 'float64', got 'int64'"),
    (dict(dtype=None), ValueError, r"dtype must be 'float32' or 'float64', got None"),
    (dict(backend="torch"), ValueError, r"backend must be one of 'native', 'numpy', got 'torch'"),
    (dict(backend=None), ValueError, r"backend must be one of 'native', 'numpy', got None"),
    (dict(bias="yes"), TypeError, r"bias must be a bool, got 'yes' \(str\)"),
    (dict(bidirectional=1), TypeError, r"bidirectional must be a bool, got 1 \(int\)"),
    (dict(batch_first=None), TypeError, r"batch_first must be a bool, got None"),
    (dict(seed=-1), ValueError, r"seed must be None or a non-negative int, got -1"),
    (dict(seed=1.5), TypeError, r"seed must be None or a non-negative int, got 1\.5 \(float\)"),
]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "kwargs,exc,match", BAD_CONSTRUCTOR, ids=[str(c[0]) for c in BAD_CONSTRUCTOR]
)
def test_constructor_rejects(kwargs, exc, match, cell):
    args = dict(input_size=IN, hidden_size=H)
    args.update(kwargs)
    cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell]
    with pytest.raises(exc, match=match):
        cls(**args)


def test_cell_specific_constructor_arguments():
    for bad in ("sigmoid", "Tanh", None, 1):
        with pytest.raises(
            ValueError, match=rf"nonlinearity must be one of 'tanh', 'relu', got {bad!r}"
        ):
            rnnkit.RNN(IN, H, nonlinearity=bad)
    with pytest.raises(TypeError, match=r"reset_after must be a bool, got 'no' \(str\)"):
        rnnkit.GRU(IN, H, reset_after="no")


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(input_size=2**62, hidden_size=2**62), ValueError, "overflows a 64-bit size"),
        (
            dict(input_size=1, hidden_size=2**31, num_layers=2**31),
            ValueError,
            "overflows a 64-bit size",
        ),
        (dict(input_size=2**40, hidden_size=1), MemoryError, r"GiB, more than this machine's"),
        (dict(input_size=1, hidden_size=2**20), MemoryError, r"GiB, more than this machine's"),
        (
            dict(input_size=8, hidden_size=8, num_layers=2**40),
            MemoryError,
            "more than this machine",
        ),
    ],
)
@pytest.mark.parametrize("cell", CELLS)
def test_absurd_sizes_refused_before_allocating(kwargs, exc, match, cell):
    """Sizes whose parameters overflow 64-bit byte counts or exceed the machine's memory:
    ValueError / MemoryError before anything is allocated (resident memory unchanged)."""
    cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell]
    before = rss_bytes()
    with pytest.raises(exc, match=match):
        cls(**kwargs)
    assert rss_bytes() - before < 64 * 2**20


@pytest.mark.parametrize("backend", BACKENDS)
def test_absurd_input_sizes_refused_before_allocating(backend):
    """A zero-stride x far larger than memory (or than 64 bits of bytes) is refused before
    the module copies it."""
    m = make_module("lstm", backend, num_layers=2)
    base = np.zeros(IN)
    for shape in ((2**40, 2**10, IN), (2**20, 2**20, IN)):
        huge = np.lib.stride_tricks.as_strided(base, shape=shape, strides=(0, 0, 8))
        with pytest.raises(MemoryError, match=r"forward pass's buffers would need .* GiB"):
            m(huge)
    huge = np.lib.stride_tricks.as_strided(base, shape=(2**56, 1, IN), strides=(0, 0, 8))
    with pytest.raises(ValueError, match=r"forward pass's buffers .*overflows a 64-bit size"):
        m(huge)


def test_native_bindings_refuse_unallocatable_sizes():
    """Called directly, the bindings raise (MemoryError / ValueError from the result
    allocation or the workspace sizing) for a sequence too long to allocate: zero-width
    input rows (I = 0) make such an x cost nothing."""
    for T_huge in (2**40, 2**58):
        x = np.zeros((T_huge, 1, 0))
        w = [(np.zeros((4, 0)), np.zeros((4, 1)), None, None)]
        h0 = np.zeros((1, 1, 1))
        for training in (False, True):
            with pytest.raises((MemoryError, ValueError)):
                _core.stack_forward("lstm", x, h0, h0, w, None, None, training, 1)


# ---------------------------------------------------------------------------------------
# load_state_dict


@pytest.mark.parametrize("backend", BACKENDS)
def test_load_state_dict_errors(backend):
    """Missing and unexpected names, wrong shapes, non-numeric values: a clear error, and
    nothing changed."""
    import torch

    m = make_module("lstm", backend, num_layers=2)
    sd = m.state_dict()
    before = m.state_dict()

    def without(name):
        return {k: v for k, v in sd.items() if k != name}

    cases = [
        (without("bias_hh_l1"), ValueError, r"missing keys \['bias_hh_l1'\], unexpected keys \[\]"),
        (
            {**sd, "weight_ih_l2": sd["weight_ih_l1"]},
            ValueError,
            r"unexpected keys \['weight_ih_l2'\]",
        ),
        (
            {**sd, "weight_hh_l0": sd["weight_hh_l0"].T},
            ValueError,
            r"state_dict\['weight_hh_l0'\] has shape \(6, 24\), "
            r"but the parameter has shape \(24, 6\)",
        ),
        (
            {**sd, "bias_ih_l0": sd["bias_ih_l0"][:-1]},
            ValueError,
            r"'bias_ih_l0'\] has shape \(23,\), but .*\(24,\)",
        ),
        ({**sd, "bias_ih_l0": 1.0}, ValueError, r"'bias_ih_l0'\] has shape \(\), but .*\(24,\)"),
        ({**sd, "bias_ih_l0": torch.zeros(25)}, ValueError, r"'bias_ih_l0'\] has shape \(25,\)"),
        (
            {**sd, "bias_ih_l0": sd["bias_ih_l0"].astype(complex)},
            TypeError,
            r"'bias_ih_l0'\] must be a real numeric array, got dtype complex128",
        ),
        (
            {**sd, "bias_ih_l0": sd["bias_ih_l0"] > 0},
            TypeError,
            r"must be a real numeric array, got dtype bool",
        ),
        ({**sd, "bias_ih_l0": sd["bias_ih_l0"].astype(object)}, TypeError, "got dtype object"),
        ({**sd, "bias_ih_l0": ["a"] * 24}, TypeError, "got dtype <U1"),
        ({**sd, "bias_ih_l0": None}, TypeError, "got dtype object"),
        (
            {**sd, "bias_ih_l0": [[1.0], [1.0, 2.0]]},
            TypeError,
            r"state_dict\['bias_ih_l0'\] is not an array",
        ),
        (
            [("weight_ih_l0", sd["weight_ih_l0"])],
            TypeError,
            "state_dict must be a mapping of name -> array, got list",
        ),
        (None, TypeError, "state_dict must be a mapping .*got NoneType"),
    ]
    for state, exc, match in cases:
        with pytest.raises(exc, match=match):
            m.load_state_dict(state)
        for name, p in m.parameters().items():
            np.testing.assert_array_equal(p, before[name], err_msg=name)
    with pytest.raises(TypeError, match=r"strict must be a bool, got 'no'"):
        m.load_state_dict(sd, strict="no")
    # strict=False: unknown names ignored, missing ones keep their value; shapes still checked.
    m.load_state_dict({"bias_ih_l0": np.ones(24), "nonsense": 1}, strict=False)
    np.testing.assert_array_equal(m.parameters()["bias_ih_l0"], np.ones(24))
    with pytest.raises(ValueError, match=r"'bias_ih_l0'\] has shape \(3,\)"):
        m.load_state_dict({"bias_ih_l0": np.ones(3)}, strict=False)
    # Integer arrays are numbers: converted.
    m.load_state_dict({"bias_hh_l0": np.arange(24)}, strict=False)
    np.testing.assert_array_equal(m.parameters()["bias_hh_l0"], np.arange(24.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_parameters_changed_in_place_to_a_wrong_layout_are_refused(backend):
    """parameters() hands out the live arrays; one reshaped or retyped in place is refused
    with its name (the NumPy backend used to broadcast or misread it silently)."""
    x = rand((T, B, IN))
    m = make_module("gru", backend)
    m.parameters()["bias_ih_l0"].shape = (1, 3 * H)
    with pytest.raises(
        ValueError,
        match=r"parameter 'bias_ih_l0' was changed in place to shape \(1, 18\), dtype float64; "
        r"it must stay a C-contiguous \(18,\) float64",
    ):
        m(x)
    m = make_module("gru", backend)
    w = m.parameters()["weight_hh_l0"]
    w.dtype = np.int64  # same itemsize: a reinterpretation of the bytes
    with pytest.raises(ValueError, match=r"parameter 'weight_hh_l0' .*dtype int64; it must stay"):
        m(x)


# ---------------------------------------------------------------------------------------
# backward misuse


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_backward_misuse(cell, backend):
    m = make_module(cell, backend)
    x = rand((T, B, IN))
    g = rand((T, B, H))
    with pytest.raises(
        RuntimeError,
        match="backward needs a preceding forward pass in training mode: "
        "no forward pass has been run yet",
    ):
        m.backward(g)
    m(x)
    m.backward(g)
    with pytest.raises(RuntimeError, match="backward was already called for the last forward pass"):
        m.backward(g)
    m(x)
    m.eval()
    with pytest.raises(RuntimeError, match="switched to eval mode after the forward pass"):
        m.backward(g)
    m(x)
    with pytest.raises(RuntimeError, match="the last forward pass ran in eval mode"):
        m.backward(g)
    m.train()
    m(x)
    with pytest.raises(ValueError):
        m(x[:, :, :2])  # a failed forward drops the earlier one's saved state
    with pytest.raises(RuntimeError, match="the last forward pass did not complete"):
        m.backward(g)
    # Gradients of the wrong shape: a ValueError naming them; the saved state survives.
    m(x)
    bad_grads = [
        (
            rand((T, B, H + 1)),
            r"grad_out must have shape \(5, 3, 6\) \(the shape of the forward pass's out\), "
            r"got \(5, 3, 7\)",
        ),
        (rand((T + 1, B, H)), r"grad_out must have shape \(5, 3, 6\).*got \(6, 3, 6\)"),
        (rand((B, T, H)), r"grad_out must have shape \(5, 3, 6\).*got \(3, 5, 6\)"),
        (rand((T, H)), r"grad_out must have shape \(5, 3, 6\).*got \(5, 6\)"),
    ]
    for bad, match in bad_grads:
        with pytest.raises(ValueError, match=match):
            m.backward(bad)
    with pytest.raises(ValueError, match=r"grad_h_n must have shape \(1, 3, 6\).*got \(1, 6\)"):
        m.backward(g, hx_of(cell, rand((1, H)), None))
    if cell == "lstm":
        with pytest.raises(
            ValueError, match=r"grad_c_n must have shape \(1, 3, 6\).*got \(2, 3, 6\)"
        ):
            m.backward(g, (None, rand((2, B, H))))
        with pytest.raises(
            TypeError, match=r"grad_state for LSTM must be a tuple \(grad_h_n, grad_c_n\)"
        ):
            m.backward(g, rand((1, B, H)))
    else:
        with pytest.raises(
            TypeError, match=f"grad_state for {cell.upper()} must be an array grad_h_n or None"
        ):
            m.backward(g, (None, None))
    dx, _ = m.backward(g)  # still possible after the refused calls
    assert dx.shape == (T, B, IN)


# ---------------------------------------------------------------------------------------
# Threads


@needs_threads
def test_thread_count_bounds(restore_threads):
    """set_num_threads refuses counts OpenMP could not start (100000 threads used to
    crash inside libgomp); the largest allowed count works: a team forms (hidden size 32,
    two panels of float32 units) and gives the bits of one thread."""
    for bad, exc in (
        (0, ValueError),
        (-1, ValueError),
        (100000, ValueError),
        (2**40, ValueError),
        (2.0, TypeError),
        (True, TypeError),
    ):
        with pytest.raises(exc, match="set_num_threads: n must be"):
            rnnkit.set_num_threads(bad)
    with pytest.raises(ValueError, match=rf"n must be in 1\.\.{_core.MAX_THREADS}, got 100000"):
        _core.set_num_threads(100000)
    rnnkit.set_num_threads(_core.MAX_THREADS)
    assert rnnkit.get_num_threads() == _core.MAX_THREADS
    m = make_module("lstm", dtype="float32", hidden_size=32)
    one = make_module("lstm", dtype="float32", hidden_size=32)
    x = rand((20, 64, IN), dtype=np.float32)
    with team_forms():
        out, _ = m(x)
    rnnkit.set_num_threads(1)
    want, _ = one(x)
    np.testing.assert_array_equal(out, want)


# ---------------------------------------------------------------------------------------
# Direct calls into the native bindings with wrong arguments never crash

FUZZ_BINDINGS = textwrap.dedent(
    r"""
    import sys
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")  # NumPy's casts of NaN to int in the variants
    from rnnkit import _core, _native

    rng = np.random.default_rng(int(sys.argv[1]))
    N = int(sys.argv[2])
    T, B, I, H, L, D = 3, 2, 4, 5, 2, 2
    MODES = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_before"]
    JUNK = [None, 0, -1, 2**63 - 1, 2**70, 1.5, float("nan"), "lstm", b"x", [], (), [None],
            [[]], {}, object(), np.float64(1.0), np.zeros(()), np.zeros((0, 0, 0)), True]

    def unaligned(a):
        raw = np.zeros(a.size * 8 + 1, np.uint8)[1:]
        return np.frombuffer(raw.data, np.float64).reshape(a.shape)

    VARIANTS = [
        lambda a: a.astype(np.float32), lambda a: a.astype(np.int64),
        lambda a: a.astype(np.int32), lambda a: a.astype(bool),
        lambda a: a.astype(np.complex128), lambda a: a.astype(object),
        lambda a: a.astype(">f8"), np.asfortranarray, lambda a: a[..., ::-1], unaligned,
        lambda a: a.reshape(-1), lambda a: a[None], lambda a: a[..., :0], lambda a: a[:1],
        lambda a: np.zeros(a.shape + (1,)), lambda a: np.full(a.shape, np.nan),
        lambda a: np.full(a.shape, np.inf), lambda a: a.T,
    ]

    def hostile(value):
        # One hostile replacement for an argument: junk, or a variant of its array.
        if isinstance(value, np.ndarray) and value.ndim and rng.random() < 0.8:
            return VARIANTS[rng.integers(len(VARIANTS))](value)
        return JUNK[rng.integers(len(JUNK))]

    def valid(mode):
        G = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3, "gru_reset_before": 3}[mode]
        w = []
        for k in range(L):
            for d in range(D):
                in_k = I if k == 0 else D * H
                w.append([rng.standard_normal((G * H, in_k)), rng.standard_normal((G * H, H)),
                          rng.standard_normal(G * H), rng.standard_normal(G * H)])
        return {
            "mode": mode, "x": rng.standard_normal((T, B, I)),
            "h0": rng.standard_normal((L * D, B, H)),
            "c0": rng.standard_normal((L * D, B, H)) if mode == "lstm" else None,
            "weights": w, "lengths": np.array([3, 1], np.int64),
            "dropout_masks": [np.ones((T, B, D * H))] * (L - 1),
            "training": True, "num_directions": D,
        }

    def mutate(args):
        key = list(args)[rng.integers(len(args))]
        w = args["weights"]
        cells_ok = isinstance(w, list) and w and all(isinstance(c, list) and len(c) == 4 for c in w)
        masks = args["dropout_masks"]
        r = rng.random()
        if key == "weights" and cells_ok and r < 0.6:  # one item of one cell
            cell = w[rng.integers(len(w))]
            j = rng.integers(4)
            cell[j] = hostile(cell[j])
        elif key == "weights" and cells_ok and r < 0.8:  # too few or too many, a tuple
            args["weights"] = w[: rng.integers(len(w))] + [tuple(c) for c in w[:2]]
        elif key == "dropout_masks" and isinstance(masks, list) and masks and r < 0.6:
            args["dropout_masks"] = [hostile(masks[0])]
        elif key == "mode":
            args["mode"] = MODES[rng.integers(5)] if r < 0.5 else hostile(None)
        else:
            args[key] = hostile(args[key])

    counts = {}

    def count(name):
        counts[name] = counts.get(name, 0) + 1

    def call(fn, *args, **kwargs):
        try:
            result = fn(*args, **kwargs)
            count("ok")
            return result
        except (TypeError, ValueError, MemoryError) as exc:
            assert str(exc), "an error without a message"
            count(type(exc).__name__)
            return None

    for n in range(N):
        args = valid(MODES[n % 5])
        weights = args["weights"]
        for _ in range(rng.integers(1, 3)):
            mutate(args)
        if n % 2:
            result = call(_core.stack_forward, **args)
        else:
            d = args.pop("num_directions")
            result = call(_native.stack_forward, *args.values(), num_directions=d)
        if result is None or result[3] is None:
            continue
        # Backward from a valid cache with hostile gradients or mode.
        out, h_n, c_n, cache = result
        g = [out.copy(), h_n.copy(), None if c_n is None else c_n.copy()]
        k = rng.integers(3)
        g[k] = hostile(g[k])
        mode = cache.mode if rng.random() < 0.8 else MODES[rng.integers(5)]
        call(_core.stack_backward, mode, cache, *g)
        call(_native.stack_backward, mode, cache if rng.random() < 0.8 else hostile(None), *g)
    for junk in JUNK:  # the small entry points
        call(_core.set_num_threads, junk)
        call(_core.stack_backward, "lstm", junk, junk, junk, junk)
    _core.set_num_threads(1)

    # The kernel layer's test hooks (underscore names) with hostile arrays and ranges.
    KINDS = ["nt", "nn", "tn", "packed", ""]
    for n in range(N // 4):
        args = [KINDS[rng.integers(5)], rng.standard_normal((4, 3)),
                rng.standard_normal((5, 3)), np.zeros((4, 5))]
        i = rng.integers(1, 4)
        args[i] = hostile(args[i])
        call(_core._gemm, *args, bool(rng.integers(2)))
        n_begin, n_end = (int(v) for v in rng.integers(-2, 8, 2))
        call(_core._gemm_packed, *args, False, n_begin, n_end)
        call(_core._activation, ["tanh", "sigmoid", "relu"][rng.integers(3)], hostile(args[1]))
    for name in ("plain", "avx2", "avx512", "x", "", "auto"):
        call(_core._set_isa, name)
    for M, N, K in ((2**40, 1, 2**40), (2**62, 2**62, 1), (-1, 1, 1), (1, 0, 1)):
        call(_core._bench_gemm, "nt", M, N, K)  # size products that overflow: refused
    print(counts)
    """
)


def _head_tail(text: str, n: int = 3000) -> str:
    """The start (where a sanitizer report begins) and the end of a long text."""
    return text if len(text) <= 2 * n else text[:n] + "\n[...]\n" + text[-n:]


def test_native_bindings_never_crash_on_hostile_arguments(tmp_path):
    """Thousands of randomly broken calls to rnnkit._core / rnnkit._native (wrong types,
    dtypes, shapes, contiguity, alignment, junk objects, broken caches) in a child process:
    each returns or raises TypeError / ValueError / MemoryError, and the process exits
    cleanly (a segfault or sanitizer report would fail it)."""
    script = tmp_path / "fuzz_bindings.py"
    script.write_text(FUZZ_BINDINGS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(rnnkit.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, str(script), "0", "2000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{_head_tail(proc.stderr)}"
    )
    counts = eval(proc.stdout.strip().splitlines()[-1])  # noqa: S307 (our own child's dict)
    assert counts["ok"] > 0 and counts.get("TypeError", 0) > 0 and counts.get("ValueError", 0) > 0


def test_native_wrapper_rejects_missing_cache():
    with pytest.raises(
        ValueError,
        match="stack_backward: cache is None; run stack_forward with training=True first",
    ):
        _native.stack_backward("gru", None, np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), None)


# ---------------------------------------------------------------------------------------
# NaN and Inf

MODE_CELLS = {
    "rnn_tanh": ("rnn", {}),
    "rnn_relu": ("rnn", {"nonlinearity": "relu"}),
    "lstm": ("lstm", {}),
    "gru": ("gru", {}),
    "gru_reset_before": ("gru", {"reset_after": False}),
}


def _same_ieee(
    a: np.ndarray, b: np.ndarray, rtol: float, what: str, overflow: bool = False
) -> None:
    """Same NaN and +-Inf positions, finite entries close. With ``overflow`` (finite
    values overflowed on the way) only the non-finite positions must agree: whether a sum
    holding both an overflowed +Inf and -Inf product ends as NaN or as one Inf depends on
    its order and on fused multiply-adds (which do not overflow where a*b alone does)."""
    if overflow:
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b), err_msg=what)
        fin = np.isfinite(a)
        np.testing.assert_allclose(a[fin], b[fin], rtol=rtol, atol=rtol, err_msg=what)
        return
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{what}: NaN positions")
    np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b), err_msg=f"{what}: +Inf positions")
    np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b), err_msg=f"{what}: -Inf positions")
    fin = np.isfinite(a)
    np.testing.assert_allclose(a[fin], b[fin], rtol=rtol, atol=rtol, err_msg=what)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's "invalid value" warnings
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("where", ["x", "h0", "weight", "grad_out"])
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf, 1e300])
@pytest.mark.parametrize("mode", list(MODE_CELLS))
def test_nan_and_inf_propagate_like_the_reference(mode, special, where, dtype):
    """One NaN / Inf / huge value in x, h0, a weight or grad_out: both backends give NaN and
    Inf in the same places and agree elsewhere (no crash, no hang, nothing hidden). Hidden
    size 9: the vector kernels' full registers and their padded tails both see it."""
    cell, kw = MODE_CELLS[mode]
    hid = 9
    x, h0 = rand((T, B, IN), 1), rand((2, B, hid), 2)
    g = rand((T, B, 2 * hid), 3)
    if where == "x":
        x[2, 1, 0] = special
    elif where == "h0":
        h0[1, 0, 3] = special
    elif where == "grad_out":
        g[3, 0, 1] = special
    results = []
    for backend in BACKENDS:
        m = make_module(cell, backend, hidden_size=hid, bidirectional=True, dtype=dtype, **kw)
        if where == "weight":
            m.parameters()["weight_hh_l0"][2, 1] = special
        out, state = m(x, hx_of(cell, h0, h0))
        dx, dstate = m.backward(g)
        results.append(_flatten((out, state, dx, dstate, m.grads)))
    rtol = 1e-9 if dtype == "float64" else 2e-4
    names = (
        ["out", "h_n", "c_n", "dx", "dh0", "dc0"] if cell == "lstm" else ["out", "h_n", "dx", "dh0"]
    )
    names += list(make_module(cell, "numpy", bidirectional=True, **kw).grads)
    # ReLU is unbounded: a weight of 1e300 overflows float64 within a few steps.
    overflow = mode == "rnn_relu" and special == 1e300
    for name, a, b in zip(names, *results):
        _same_ieee(a, b, rtol, name, overflow)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("mode", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_nan_and_inf_forward_like_torch(mode, special):
    """Forward outputs and states with a NaN / Inf in x: NaN and Inf where torch has them,
    torch's values elsewhere. (Gradients are compared with the reference above: torch's
    BLAS may skip 0 * Inf products and then shows fewer NaNs than IEEE arithmetic.)"""
    import torch

    cell, kw = MODE_CELLS[mode]
    m = make_module(cell, bidirectional=True, num_layers=2, **kw)
    tcls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    t = tcls(IN, H, num_layers=2, bidirectional=True, dtype=torch.float64, **kw)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    x = rand((T, B, IN), 1)
    x[1, 2, 3] = special
    out, state = m(x)
    with torch.no_grad():
        t_out, t_state = t(torch.from_numpy(x))
    _same_ieee(out, t_out.numpy(), 1e-9, "out")
    states = state if isinstance(state, tuple) else (state,)
    t_states = t_state if isinstance(t_state, tuple) else (t_state,)
    for a, b in zip(states, t_states):
        _same_ieee(a, b.numpy(), 1e-9, "state")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("special", [np.nan, np.inf])
def test_relu_gradient_is_masked_like_torch(special, backend):
    """A NaN / Inf in grad_out at a closed ReLU unit gives 0, not 0 * NaN, as torch's
    threshold_backward (the reference used to multiply by a 0/1 mask and give NaN)."""
    import torch

    m = make_module("rnn", backend, nonlinearity="relu")
    t = torch.nn.RNN(IN, H, nonlinearity="relu", dtype=torch.float64)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    x = rand((T, B, IN), 1)
    out, _ = m(x)
    g = rand(out.shape, 2)
    closed = np.argwhere(out == 0)
    assert len(closed) > 0
    g[tuple(closed[0])] = special
    g[tuple(closed[-1])] = -special
    dx, dh0 = m.backward(g)
    xt = torch.from_numpy(x).requires_grad_()
    h0t = torch.zeros((1, B, H), dtype=torch.float64, requires_grad=True)
    t_out, _ = t(xt, h0t)
    t_out.backward(torch.from_numpy(g))
    assert np.all(np.isfinite(dx))
    _same_ieee(dx, xt.grad.numpy(), 1e-9, "dx")
    _same_ieee(dh0, h0t.grad.numpy(), 1e-9, "dh0")


def test_kernel_hooks_refuse_overflowing_sizes():
    """The GEMM benchmark hook sized its buffers from an overflowed M*K and crashed."""
    with pytest.raises(ValueError, match=r"M\*K, N\*K and M\*N must fit in 64 bits"):
        _core._bench_gemm("nt", 2**40, 1, 2**40)
    with pytest.raises(ValueError, match="must fit in 64 bits"):
        _core._bench_gemm("packed", 2**62, 2**62, 1)
    with pytest.raises(ValueError, match="M, N, K must be >= 1"):
        _core._bench_gemm("nt", 0, 1, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_check_counts_what_cell_options_keep(backend, monkeypatch):
    """A training forward with cell options also keeps each step's pre-activations (and
    the LSTM's c_t beside them): the check before allocating counts them."""
    from rnnkit import _validation

    T, B, n_in, H = 10, 4, 3, 8
    plain = rnnkit.LSTM(n_in, H, backend=backend)
    clipped = rnnkit.LSTM(n_in, H, backend=backend, clip=3.0)
    x = np.zeros((T, B, n_in))
    # In elements: x and out, then gates + h + c per step, then the options' 4 + 1 columns.
    without_options = T * B * (n_in + H) + T * B * (4 + 2) * H
    limit = (without_options + T * B * 2 * H) * 4  # bytes, float32: between the two
    monkeypatch.setattr(_validation, "_physical_memory_bytes", lambda: limit)
    plain(x)
    with pytest.raises(MemoryError, match=r"forward pass's buffers would need"):
        clipped(x)
