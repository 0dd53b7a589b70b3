"""The fused GRU (both reset kinds) and RNN (tanh, relu) forward cells at every ISA.

With the default cell options the forward step's elementwise work runs in one vector
cell per row under the vector ISAs (avx2, avx512) and in the portable loops under
"plain". For each mode, float32/float64 and unit counts that leave register tails of
several lengths (H = 1, 7, 17, 33), over lengths, two directions, B = 1 (the one-row
path) and 2 threads: inference and training forward and backward give the same bits
under avx2 and avx512, and every ISA matches the NumPy reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import AVAILABLE_ISAS, VECTOR_ISAS, make_weights, needs_threads, on_threads
from rnnkit import _core, _native, reference
from test_native import TOL, assert_results_close, make_problem, run

pytestmark = pytest.mark.native

FUSED_MODES = ("gru", "gru_reset_before", "rnn_tanh", "rnn_relu")
DTYPES = (np.float32, np.float64)


def inference_and_training(p: dict) -> dict:
    """Inference forward ("infer out", "infer h_n"), then training forward and backward
    (run's names) of problem p."""
    args = (p["mode"], p["x"], p["h0"], p["c0"], p["weights"], p["lengths"], p["masks"])
    out, h_n, _, cache = _native.stack_forward(*args, False, num_directions=p["D"])
    assert cache is None
    return {"infer out": out, "infer h_n": h_n, **run(_native, p)}


def per_isa(p: dict, isas: list[str]) -> dict:
    """{ISA: inference_and_training(p)} for each ISA, forced in turn; automatic after."""
    try:
        results = {}
        for name in isas:
            _core._set_isa(name)
            results[name] = inference_and_training(p)
        return results
    finally:
        _core._set_isa("auto")


def check_isas(p: dict) -> None:
    """p's results under every ISA: the vector ISAs' equal bit for bit, each ISA's close
    to the reference, and inference's outputs those of training."""
    results = per_isa(p, AVAILABLE_ISAS)
    want = run(reference, p)
    for name, got in results.items():
        assert np.array_equal(got["infer out"], got["out"], equal_nan=True), name
        assert np.array_equal(got["infer h_n"], got["h_n"], equal_nan=True), name
        assert_results_close({k: got[k] for k in want}, want, TOL[p["x"].dtype.type])
    first = results[VECTOR_ISAS[0]] if VECTOR_ISAS else {}
    for name in VECTOR_ISAS[1:]:
        for key, a in first.items():
            b = results[name][key]
            assert (a is None and b is None) or a.tobytes() == b.tobytes(), (name, key)


@pytest.mark.parametrize("H", [1, 7, 17, 33])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("mode", FUSED_MODES)
def test_lengths_and_two_directions(mode, dtype, H):
    """Two layers, two directions, random lengths (inactive rows), dropout between the
    layers; one batch row's inputs scaled by 50 (activations deep in saturation)."""
    p = make_problem(mode, 5, 3, 6, H, 2, 2, lengths=True, masks=True, dtype=dtype, seed=H)
    p["x"][:, 1] *= 50
    check_isas(p)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("H", [7, 33])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("mode", FUSED_MODES)
def test_one_row(mode, dtype, H, bias):
    """B = 1, one direction, no lengths: the GRU's one-row path (its input projection
    computed along the steps), with and without biases."""
    p = make_problem(mode, 6, 1, 5, H, 2, 1, bias=bias, dtype=dtype, seed=40 + H)
    check_isas(p)


# (mode, T, B, H, dtype, D, lengths): shapes whose time loops split the units between 2
# threads, with slices that end mid-register (B = 1: W_hh large enough for a team).
TEAM_CASES = [
    ("gru", 3, 64, 72, np.float32, 2, True),
    ("gru_reset_before", 3, 64, 40, np.float64, 2, True),
    ("rnn_tanh", 3, 128, 72, np.float32, 2, True),
    ("rnn_relu", 3, 96, 40, np.float64, 2, True),
    ("gru", 4, 1, 136, np.float32, 1, False),
    ("gru_reset_before", 4, 1, 136, np.float64, 1, False),
    ("rnn_relu", 3, 1, 232, np.float32, 1, False),
]


@needs_threads
@pytest.mark.parametrize("case", TEAM_CASES, ids=lambda c: f"{c[0]}-B{c[2]}-H{c[3]}")
def test_two_threads(case, restore_threads):
    """On a team of 2 threads: the vector ISAs agree bit for bit (and with 1 thread)."""
    mode, T, B, H, dtype, D, lengths = case
    p = make_problem(mode, T, B, 8, H, 2, D, lengths=lengths, masks=True, dtype=dtype, seed=7)
    with on_threads(1):
        one = per_isa(p, VECTOR_ISAS)
    with on_threads(2):
        two = per_isa(p, VECTOR_ISAS)
    for name in VECTOR_ISAS:
        for key, a in one[VECTOR_ISAS[0]].items():
            for b in (one[name][key], two[name][key]):
                assert (a is None and b is None) or a.tobytes() == b.tobytes(), (name, key)


# ---------------------------------------------------------------------------------------
# The cells against their arithmetic written out with the kernel test hooks


def gru_rnn_by_kernels(mode, x, h0, w_ih, w_hh, b_ih, b_hh):
    """One layer of `mode` written out with the kernel test hooks, each product and sum
    rounded once (NumPy's float arithmetic, no fused multiply-add), in the order of the
    portable loops (gru.cpp, gru_reset_before.cpp, rnn.cpp): x (T, B, I), h0 (B, H);
    returns out (T, B, H)."""
    T, B, n_in = x.shape
    H = w_hh.shape[1]
    one = x.dtype.type(1)
    act = _core._activation
    pre = np.zeros((T * B, w_ih.shape[0]), dtype=x.dtype)
    _core._gemm("nt", x.reshape(T * B, n_in), w_ih, pre, False)
    pre = pre.reshape(T, B, -1)
    # The step's bias: b_ih + b_hh, but b_ih + 0 on the reset-after n block (b_hn stays
    # inside r * (.)).
    bias = None
    if b_ih is not None:
        bias = b_ih + b_hh
        if mode == "gru":
            bias[2 * H :] = b_ih[2 * H :] + x.dtype.type(0)
    h = h0.copy()
    out = np.empty((T, B, H), dtype=x.dtype)
    for t in range(T):
        a = pre[t].copy()
        if mode.startswith("rnn"):
            _core._gemm("nt", h, w_hh, a, True)
            if bias is not None:
                a = a + bias
            h = act("tanh", a) if mode == "rnn_tanh" else np.where(a < 0, x.dtype.type(0), a)
            out[t] = h
            continue
        hw = np.zeros((B, 3 * H), dtype=x.dtype)
        if mode == "gru":
            _core._gemm("nt", h, w_hh[: 2 * H], a[:, : 2 * H], True)
            _core._gemm("nt", h, w_hh[2 * H :], hw[:, 2 * H :], False)
            if bias is not None:
                a = a + bias
                hw[:, 2 * H :] += b_hh[2 * H :]
        else:
            _core._gemm("nt", h, w_hh[: 2 * H], hw[:, : 2 * H], False)
            if bias is not None:
                a = a + bias
            a[:, : 2 * H] += hw[:, : 2 * H]
        r = act("sigmoid", a[:, :H].copy())
        z = act("sigmoid", a[:, H : 2 * H].copy())
        if mode == "gru":
            n_pre = a[:, 2 * H :] + r * hw[:, 2 * H :]
        else:
            _core._gemm("nt", r * h, w_hh[2 * H :], hw[:, 2 * H :], False)
            n_pre = a[:, 2 * H :] + hw[:, 2 * H :]
        n = act("tanh", np.ascontiguousarray(n_pre))
        h = (one - z) * n + z * h
        out[t] = h
    return out


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_scale", [0.3, 300.0])
@pytest.mark.parametrize("T,B,H", [(3, 1, 13), (4, 3, 1), (3, 2, 17), (2, 4, 33), (3, 1, 64)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("mode", FUSED_MODES)
def test_forward_is_the_kernel_composition(isa, mode, dtype, T, B, H, x_scale, bias, training):
    """Under every ISA (the fused cells under avx2 and avx512, the portable loops under
    plain) the forward gives the bits of the step written out above, over register tails,
    B = 1 (the reset-after GRU's one-row path) and pre-activations deep in saturation."""
    rng = np.random.default_rng(T * 100 + H)
    w_ih, w_hh, b_ih, b_hh = make_weights(mode, 5, H, 1, 1, bias, dtype, rng, scale=1.0)[0]
    x = (x_scale * rng.standard_normal((T, B, 5))).astype(dtype)
    h0 = rng.standard_normal((1, B, H)).astype(dtype)
    out, h_n, _, _ = _native.stack_forward(
        mode, x, h0, None, [(w_ih, w_hh, b_ih, b_hh)], None, None, training, num_directions=1
    )
    want = gru_rnn_by_kernels(mode, x, h0[0], w_ih, w_hh, b_ih, b_hh)
    assert np.array_equal(out, want)
    assert np.array_equal(h_n[0], want[-1])
