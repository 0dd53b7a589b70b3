"""The backward elementwise passes give the same bits at every kernel ISA.

Each cell's backward runs its elementwise pass (dA from dh, the kept gates and the state)
over vector registers when the ISA is avx2 or avx512 (vector_cells.h) and in a portable
loop at ISA plain. The GEMMs and activations of plain round differently from the vector
ones (no fused multiply-add), so whole passes differ between plain and the vector ISAs;
what must not differ is the elementwise arithmetic. Hence two kinds of tests:
- at every ISA, the native backward of the GRU (both reset kinds) and the Elman RNN is
  the composition written out here with that ISA's kernel test hooks and NumPy's float
  arithmetic (each product rounded once, in the order the cells document); the LSTM's is
  checked the same way by test_lstm_backward_arithmetic.py;
- whole training passes of every cell (2 layers, both directions, lengths, dropout
  masks) give the same bits at avx2 and avx512, and at each ISA on 1 and 2 threads, with
  hidden sizes that leave register tails of every kind (H = 1, 7, 17, 33).
One backward chunk (T*B <= 512 rows): the bias sums add the rows in time order.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODES, VECTOR_ISAS, make_weights, needs_threads
from rnnkit import _core, _native
from test_native import make_problem, run

pytestmark = pytest.mark.native

SIZES = [1, 3, 7, 8, 9, 15, 16, 17, 33]


def gemm(kind: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, accumulate: bool) -> None:
    """c (written or added to) = op(a) op(b) by the core's GEMM at the current ISA."""
    _core._gemm(kind, np.ascontiguousarray(a), np.ascontiguousarray(b), c, accumulate)


def product(kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """op(a) op(b), kind "nt" (a b^T), "nn" (a b) or "tn" (a^T b), as a new array."""
    rows = a.shape[1] if kind == "tn" else a.shape[0]
    cols = b.shape[0] if kind == "nt" else b.shape[1]
    c = np.zeros((rows, cols), dtype=a.dtype)
    gemm(kind, a, b, c, False)
    return c


def act(name: str, x: np.ndarray) -> np.ndarray:
    return _core._activation(name, np.ascontiguousarray(x))


def column_sums(rows: np.ndarray) -> np.ndarray:
    """The bias gradient: the rows added one after another, in order."""
    s = np.zeros(rows.shape[1], dtype=rows.dtype)
    for r in rows:
        s = s + r
    return s


def gradients(x, w_ih, rows, dh, dw_hh, db) -> tuple:
    """dx (T*B, I), dh0, dw_ih, dw_hh, db: the input side's from dA (rows, one chunk)."""
    x_rows = x.reshape(-1, x.shape[2])
    return product("nn", rows, w_ih), dh, product("tn", rows, x_rows), dw_hh, db


def rnn_by_kernels(mode, x, h0, dout, dh_n, w_ih, w_hh, b_ih, b_hh):
    """Forward then backward of one Elman RNN layer: dx, dh0, dw_ih, dw_hh, db."""
    T, B, n_in = x.shape
    relu = mode == "rnn_relu"
    pre = product("nt", x.reshape(T * B, n_in), w_ih).reshape(T, B, -1)
    h, hs = h0, []
    for t in range(T):
        a = pre[t].copy()
        gemm("nt", h, w_hh, a, True)
        if b_ih is not None:
            a = a + (b_ih + b_hh)
        h = np.where(a < 0, np.zeros_like(a), a) if relu else act("tanh", a)
        hs.append(h)
    dh, da = dh_n, np.zeros((T, B, h0.shape[1]), dtype=x.dtype)
    for t in reversed(range(T)):
        y, dy = hs[t], dh + dout[t]
        da[t] = np.where(y <= 0, np.zeros_like(dy), dy) if relu else dy * (1 - y * y)
        dh = product("nn", da[t], w_hh)
    rows = da.reshape(T * B, -1)
    dw_hh = product("tn", rows[B:], np.concatenate(hs[:-1])) if T > 1 else None
    if dw_hh is None:
        dw_hh = product("tn", da[0], h0)
    else:
        gemm("tn", da[0], h0, dw_hh, True)
    return gradients(x, w_ih, rows, dh, dw_hh, [column_sums(rows)] * 2)


def gru_by_kernels(x, h0, dout, dh_n, w_ih, w_hh, b_ih, b_hh):
    """Forward then backward of one reset-after GRU layer: dx, dh0, dw_ih, dw_hh,
    [db_ih, db_hh]."""
    T, B, n_in = x.shape
    H = h0.shape[1]
    pre = product("nt", x.reshape(T * B, n_in), w_ih).reshape(T, B, 3 * H)
    h, kept = h0, []
    for t in range(T):
        rz = pre[t][:, : 2 * H].copy()
        gemm("nt", h, w_hh[: 2 * H], rz, True)
        n_pre, ghn = pre[t][:, 2 * H :], product("nt", h, w_hh[2 * H :])
        if b_ih is not None:
            rz, n_pre, ghn = rz + (b_ih + b_hh)[: 2 * H], n_pre + b_ih[2 * H :], ghn + b_hh[2 * H :]
        r, z = act("sigmoid", rz[:, :H]), act("sigmoid", rz[:, H:])
        n = act("tanh", n_pre + r * ghn)
        kept.append((r, z, n, h, ghn))
        h = (1 - z) * n + z * h
    dh, da, dahn = dh_n, np.zeros((T, B, 3 * H), dtype=x.dtype), np.zeros((T, B, H), x.dtype)
    for t in reversed(range(T)):
        r, z, n, hp, ghn = kept[t]
        dy = dh + dout[t]
        dan = dy * (1 - z) * (1 - n * n)
        dar = dan * ghn * r * (1 - r)
        daz = dy * (hp - n) * z * (1 - z)
        da[t], dahn[t] = np.concatenate([dar, daz, dan], axis=1), dan * r
        dh = dy * z
        gemm("nn", np.concatenate([dar, daz, dahn[t]], axis=1), w_hh, dh, True)
    rows, n_rows = da.reshape(T * B, -1), dahn.reshape(T * B, H)
    hp_rows = np.concatenate([k[3] for k in kept])
    dw_hh = np.concatenate(
        [product("tn", rows[:, : 2 * H], hp_rows), product("tn", n_rows, hp_rows)]
    )
    db = column_sums(rows)
    db_hh = np.concatenate([column_sums(rows[:, : 2 * H]), column_sums(n_rows)])
    return gradients(x, w_ih, rows, dh, dw_hh, [db, db_hh])


def gru_reset_before_by_kernels(x, h0, dout, dh_n, w_ih, w_hh, b_ih, b_hh):
    """Forward then backward of one reset-before GRU layer: dx, dh0, dw_ih, dw_hh, db."""
    T, B, n_in = x.shape
    H = h0.shape[1]
    pre = product("nt", x.reshape(T * B, n_in), w_ih).reshape(T, B, 3 * H)
    h, kept = h0, []
    for t in range(T):
        a = pre[t] if b_ih is None else pre[t] + (b_ih + b_hh)
        rz = a[:, : 2 * H] + product("nt", h, w_hh[: 2 * H])
        r, z = act("sigmoid", rz[:, :H]), act("sigmoid", rz[:, H:])
        rh = r * h
        n = act("tanh", a[:, 2 * H :] + product("nt", rh, w_hh[2 * H :]))
        kept.append((r, z, n, h, rh))
        h = (1 - z) * n + z * h
    dh, da = dh_n, np.zeros((T, B, 3 * H), dtype=x.dtype)
    for t in reversed(range(T)):
        r, z, n, hp, _ = kept[t]
        dy = dh + dout[t]
        daz = dy * (hp - n) * z * (1 - z)
        dan = dy * (1 - z) * (1 - n * n)
        g = product("nn", dan, w_hh[2 * H :])  # dL/d(r * h)
        dar = g * hp * r * (1 - r)
        dh = dy * z + g * r
        gemm("nn", np.concatenate([dar, daz], axis=1), w_hh[: 2 * H], dh, True)
        da[t] = np.concatenate([dar, daz, dan], axis=1)
    rows = da.reshape(T * B, -1)
    hp_rows = np.concatenate([k[3] for k in kept])
    rh_rows = np.concatenate([k[4] for k in kept])
    dw_hh = np.concatenate(
        [product("tn", rows[:, : 2 * H], hp_rows), product("tn", rows[:, 2 * H :], rh_rows)]
    )
    return gradients(x, w_ih, rows, dh, dw_hh, [column_sums(rows)] * 2)


BY_KERNELS = {
    "rnn_tanh": lambda *args: rnn_by_kernels("rnn_tanh", *args),
    "rnn_relu": lambda *args: rnn_by_kernels("rnn_relu", *args),
    "gru": gru_by_kernels,
    "gru_reset_before": gru_reset_before_by_kernels,
}


@pytest.mark.parametrize("mode", list(BY_KERNELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("H", SIZES)
@pytest.mark.parametrize("bias", [True, False])
def test_backward_is_the_kernel_composition(isa, mode, dtype, H, bias):
    T, B, n_in = 4, 3, 5
    rng = np.random.default_rng(H)
    w_ih, w_hh, b_ih, b_hh = make_weights(mode, n_in, H, 1, 1, bias, dtype, rng, scale=1.0)[0]
    x = (2.0 * rng.standard_normal((T, B, n_in))).astype(dtype)
    h0, dh_n = (rng.standard_normal((1, B, H)).astype(dtype) for _ in range(2))
    dout = rng.standard_normal((T, B, H)).astype(dtype)
    _, _, _, cache = _native.stack_forward(
        mode, x, h0, None, [(w_ih, w_hh, b_ih, b_hh)], None, None, True, num_directions=1
    )
    dx, dh0, _, dweights = _native.stack_backward(mode, cache, dout, dh_n, None)
    want = BY_KERNELS[mode](x, h0[0], dout, dh_n[0], w_ih, w_hh, b_ih, b_hh)
    assert np.array_equal(dx, want[0].reshape(x.shape))
    assert np.array_equal(dh0[0], want[1])
    assert np.array_equal(dweights[0][0], want[2])
    assert np.array_equal(dweights[0][1], want[3])
    if bias:
        assert np.array_equal(dweights[0][2], want[4][0])
        assert np.array_equal(dweights[0][3], want[4][1])
    else:
        assert dweights[0][2] is None and dweights[0][3] is None


def tail_problem(mode: str, H: int, B: int, dtype) -> dict:
    """2 layers, both directions, lengths in random order, dropout masks."""
    return make_problem(mode, 3, B, 8, H, 2, 2, lengths=True, masks=True, dtype=dtype, seed=H)


def as_bytes(result: dict) -> dict:
    return {k: None if a is None else a.tobytes() for k, a in result.items()}


# (H, B, threads): register tails of every kind on 1 thread; at B = 128 and H = 41 two
# threads split the units (slices of 32 and 9 floats, 24 and 17 doubles).
ISA_CASES = [(1, 6, 1), (7, 6, 1), (17, 6, 1), (33, 6, 1), (41, 128, 1)]
ISA_CASES += [pytest.param(41, 128, 2, marks=needs_threads)]


@pytest.mark.skipif(len(VECTOR_ISAS) < 2, reason="this CPU runs one vector ISA at most")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("H, B, threads", ISA_CASES)
def test_training_same_bits_for_avx2_and_avx512(mode, dtype, H, B, threads, restore_threads):
    p = tail_problem(mode, H, B, dtype)
    _core.set_num_threads(threads)
    results = {}
    try:
        for name in VECTOR_ISAS:
            _core._set_isa(name)
            results[name] = as_bytes(run(_native, p))
    finally:
        _core._set_isa("auto")
    assert results["avx2"] == results["avx512"]


@needs_threads
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_training_same_bits_for_1_and_2_threads_at_every_isa(isa, mode, dtype, restore_threads):
    """2 threads split the units, so each thread's slice has its own register tail."""
    p = tail_problem(mode, 41, 128, dtype)
    results = []
    for threads in (1, 2):
        _core.set_num_threads(threads)
        results.append(as_bytes(run(_native, p)))
    assert results[0] == results[1], isa
