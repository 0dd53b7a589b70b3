"""Property test over random configurations, inputs and faults, on both backends.

Every call either returns arrays of the documented shapes on which the native backend
agrees with the NumPy reference (outputs, states, input and state gradients, parameter
gradients), or raises the ValueError / TypeError that the one injected fault calls for,
with the same message on both backends. A valid call must never raise.

`cases()` and `check()` are also driven by benchmarks/fuzz.py for longer runs.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from conftest import MODES, MODULES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.native

# One fault per case at most, each with the error it must raise (regex of its message).
FAULTS = {
    "x_dtype": (TypeError, r"x must be a real floating-point array"),
    "x_ndim": (ValueError, r"x must be 3-D \((T, B|B, T), I\) or unbatched 2-D \(T, I\)"),
    "x_features": (ValueError, r"x must have input_size=\d+ features"),
    "x_empty": (ValueError, r"x must have at least one time step and one sequence"),
    "h0_shape": (ValueError, r"h0 must have shape \("),
    "h0_dtype": (TypeError, r"h0 must be a real floating-point array"),
    "c0_shape": (ValueError, r"c0 must have shape \("),
    "hx_structure": (
        TypeError,
        r"hx for (LSTM must be a tuple|RNN must be an array|GRU must be an array)",
    ),
    "lengths_range": (ValueError, r"lengths must be in 1\.\.\d+ \(the sequence length\)"),
    "lengths_dtype": (TypeError, r"lengths must be integers, got dtype float64"),
    "lengths_shape": (ValueError, r"lengths must have shape \(\d+,\) \(one per sequence\)"),
    "grad_out_shape": (ValueError, r"grad_out must have shape \("),
    "grad_h_shape": (ValueError, r"grad_h_n must have shape \("),
}
BACKWARD_FAULTS = ("grad_out_shape", "grad_h_shape")
LAYOUTS = ("contiguous", "fortran", "negative_stride", "strided", "read_only", "list")
TOL = {"float64": 1e-10, "float32": 1e-4}  # relative to the largest entry of the reference


@dataclasses.dataclass(frozen=True)
class Case:
    mode: str
    I: int  # noqa: E741 (the input size, as everywhere in rnnkit)
    H: int
    L: int
    bidirectional: bool
    bias: bool
    batch_first: bool
    dtype: str
    dropout: float
    training: bool
    T: int
    B: int
    unbatched: bool
    with_lengths: bool
    with_h0: bool
    with_c0: bool
    with_grad_state: bool
    x_dtype: str
    x_layout: str
    fault: str | None
    seed: int


@st.composite
def cases(draw) -> Case:
    mode = draw(st.sampled_from(sorted(MODES)))
    fault = draw(st.sampled_from([None] * 8 + sorted(FAULTS)))
    if fault == "c0_shape" and mode != "lstm":
        fault = None
    return Case(
        mode=mode,
        I=draw(st.integers(1, 5)),
        H=draw(st.sampled_from([1, 2, 3, 5, 8, 9, 13])),  # vector widths and their tails
        L=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        dropout=draw(st.sampled_from([0.0, 0.0, 0.4])),
        training=fault in BACKWARD_FAULTS or draw(st.booleans()),
        T=draw(st.integers(1, 6)),
        B=draw(st.integers(1, 7)),  # the GEMM's 6-row tiles and their edges
        unbatched=draw(st.integers(0, 4)) == 0,
        with_lengths=draw(st.booleans()) or (fault or "").startswith("lengths"),
        with_h0=draw(st.booleans()),
        with_c0=draw(st.booleans()),
        with_grad_state=draw(st.booleans()),
        x_dtype=draw(st.sampled_from(["float32", "float64", "float16"])),
        x_layout=draw(st.sampled_from(LAYOUTS)),
        fault=fault,
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _layout(a: np.ndarray, layout: str):
    """a with the same values in another memory layout (or as nested lists)."""
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "negative_stride":
        return np.ascontiguousarray(a[::-1])[::-1]
    if layout == "strided":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    if layout == "read_only":
        a = a.copy()
        a.setflags(write=False)
        return a
    if layout == "list":
        return a.tolist()
    return a


def _inputs(case: Case):
    """(x, hx, lengths, grad_out, grad_state) for the case, its fault applied."""
    rng = np.random.default_rng(case.seed)
    T, B, n_in, H = case.T, case.B, case.I, case.H
    D = 2 if case.bidirectional else 1
    LD = case.L * D
    fault = case.fault
    lstm = case.mode == "lstm"

    x = rng.standard_normal((T, B, n_in))
    if fault == "x_features":
        x = rng.standard_normal((T, B, n_in + 1))
    if fault == "x_empty":
        x = x[:0] if case.unbatched or rng.random() < 0.5 else x[:, :0]
    if case.batch_first:
        x = x.transpose(1, 0, 2)
    if case.unbatched:
        x = x[:, 0] if not case.batch_first else x[0]
    x = x.astype(case.x_dtype)
    if fault == "x_dtype":
        x = x.astype(rng.choice([np.int64, np.bool_, np.complex128]))
    if fault == "x_ndim":
        x = x[None] if x.ndim == 3 else x.reshape(-1)  # (1, T, I) would be a valid batch
    # An empty array as nested lists loses its shape ([] is 1-D): keep it an array.
    x = _layout(x, "contiguous" if fault == "x_empty" else case.x_layout)

    def state(name: str, with_it: bool):
        shape = (LD, H) if case.unbatched else (LD, B, H)
        if fault == f"{name}_shape":
            shape = (LD + 1,) + shape[1:]
            with_it = True
        s = rng.standard_normal(shape) if with_it else None
        if fault == f"{name}_dtype":
            s = rng.integers(-2, 2, shape)
        return s

    h0 = state("h0", case.with_h0 or fault == "h0_dtype")
    c0 = state("c0", case.with_c0) if lstm else None
    hx = (h0, c0) if lstm else h0
    if fault == "hx_structure":
        h = rng.standard_normal((LD, H) if case.unbatched else (LD, B, H))
        hx = h if lstm else (h, h)

    lengths = None
    if case.with_lengths:
        n = 1 if case.unbatched else B
        lengths = rng.integers(1, T + 1, n)
        if fault == "lengths_range":
            lengths[rng.integers(n)] = rng.choice([0, -1, T + 1])
        if fault == "lengths_dtype":
            lengths = lengths.astype(np.float64)
        if fault == "lengths_shape":
            lengths = np.append(lengths, 1)

    out_shape = (
        (T, D * H) if case.unbatched else ((B, T, D * H) if case.batch_first else (T, B, D * H))
    )
    if fault == "grad_out_shape":
        out_shape = out_shape[:-1] + (D * H + 1,)
    grad_out = rng.standard_normal(out_shape)
    st_shape = (LD, H) if case.unbatched else (LD, B, H)
    gh = rng.standard_normal(st_shape) if case.with_grad_state else None
    if fault == "grad_h_shape":
        gh = rng.standard_normal((LD, H + 1) if case.unbatched else (LD, B + 1, H))
    gc = rng.standard_normal(st_shape) if case.with_grad_state and lstm else None
    grad_state = (gh, gc) if lstm else gh
    return x, hx, lengths, grad_out, grad_state


def _module(case: Case, backend: str):
    cls, kwargs = MODULES[case.mode]
    m = cls(
        case.I,
        case.H,
        num_layers=case.L,
        bias=case.bias,
        batch_first=case.batch_first,
        dropout=case.dropout,
        bidirectional=case.bidirectional,
        dtype=case.dtype,
        backend=backend,
        seed=case.seed % 1000,
        **kwargs,
    )
    return m.train(case.training)


def _flat(result) -> list:
    """Arrays of a forward or backward result, states unpacked."""
    first, state = result
    return [first, *(state if isinstance(state, tuple) else (state,))]


def _close(got: np.ndarray, want: np.ndarray, tol: float, what: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, what
    scale = float(np.max(np.abs(want), initial=0.0))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def _run(case: Case, backend: str):
    """("ok", arrays) or ("raised", (type, message)) of one backend."""
    x, hx, lengths, grad_out, grad_state = _inputs(case)
    m = _module(case, backend)
    arrays = []
    try:
        arrays += _flat(m(x, hx, lengths=lengths))
        if case.training:
            arrays += _flat(m.backward(grad_out, grad_state))
            arrays += list(m.grads.values())
    except (ValueError, TypeError) as exc:
        return "raised", (type(exc), str(exc))
    return "ok", arrays


def check(case: Case) -> str:
    """The property; returns "ok" or the name of the error raised (for counting)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ReLU overflow in float32
        native = _run(case, "native")
        numpy = _run(case, "numpy")
    if case.fault is not None:
        exc, pattern = FAULTS[case.fault]
        assert native[0] == "raised", f"{case.fault} was not refused"
        assert native[1][0] is exc, native[1]
        assert __import__("re").search(pattern, native[1][1]), native[1][1]
        assert numpy == native, (numpy, native)  # same error and message on both
        return exc.__name__
    assert native[0] == "ok", native[1]
    assert numpy[0] == "ok", numpy[1]
    got, want = native[1], numpy[1]
    assert len(got) == len(want)

    # Documented shapes.
    D = 2 if case.bidirectional else 1
    T, B, H, LD = case.T, case.B, case.H, case.L * D
    if case.unbatched:
        out_shape, st_shape, x_shape = (T, D * H), (LD, H), (T, case.I)
    elif case.batch_first:
        out_shape, st_shape, x_shape = (B, T, D * H), (LD, B, H), (B, T, case.I)
    else:
        out_shape, st_shape, x_shape = (T, B, D * H), (LD, B, H), (T, B, case.I)
    n_states = 2 if case.mode == "lstm" else 1
    assert want[0].shape == out_shape
    assert all(s.shape == st_shape for s in want[1 : 1 + n_states])
    if case.training:
        assert want[1 + n_states].shape == x_shape
    for i, (g, w) in enumerate(zip(got, want)):
        assert w.dtype == np.dtype(case.dtype)
        _close(g, w, TOL[case.dtype], f"array {i}")
    return "ok"


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every CI run; benchmarks/fuzz.py explores
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(cases())
def test_every_call_agrees_or_raises_the_expected_error(case):
    check(case)
