"""The native LSTM backward is exactly the composition of the kernels it documents.

lstm.cpp runs the cell's derivative (and the bias gradient's sum) in one pass over vector
registers when the ISA is avx2 or avx512 (vector_cells.h) and in the portable loop
(lstm_cell_plain.h) at ISA plain. Both must give the bits of the backward written out
here with the kernel test hooks: per step, from the last, dy = dh + dout_t,
dc_t = dc + dy*o*(1 - tanh(c)^2),
da = [dc_t*g*i*(1-i), dc_t*c_{t-1}*f*(1-f), dc_t*i*(1-g^2), dy*tanh(c)*o*(1-o)], each
product rounded once in that order (NumPy's float arithmetic, no fused multiply-add),
dc = dc_t*f, dh = da W_hh, the bias gradient summed row after row; then dX = dA W_ih,
dW_ih = dA^T x and dW_hh = dA^T h_{t-1} over all rows (one chunk: T*B <= 512). Sizes
cover full registers and every tail length.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import lstm_by_kernels, make_weights
from rnnkit import _core, _native

pytestmark = pytest.mark.native


def lstm_backward_by_kernels(x, kept, dout, dh_n, dc_n, w_ih, w_hh):
    """dx, dh0, dc0, dw_ih, dw_hh, db (the same for b_ih and b_hh)."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dh, dc = dh_n.copy(), dc_n.copy()
    da_all = np.zeros((T, B, 4 * H), dtype=x.dtype)
    db = np.zeros(4 * H, dtype=x.dtype)
    for t in reversed(range(T)):
        gates, cp, tc, _ = kept[t]
        i, f, g, o = (gates[:, q * H : (q + 1) * H] for q in range(4))
        dy = dh + dout[t]
        dct = dc + dy * o * (1 - tc * tc)
        da = np.concatenate(
            [
                dct * g * i * (1 - i),
                dct * cp * f * (1 - f),
                dct * i * (1 - g * g),
                dy * tc * o * (1 - o),
            ],
            axis=1,
        )
        for b in range(B):
            db = db + da[b]
        dc = dct * f
        dh = np.zeros_like(dh)
        _core._gemm("nn", da, w_hh, dh, False)
        da_all[t] = da
    da_rows = da_all.reshape(T * B, 4 * H)
    h_prev = np.stack([k[3] for k in kept]).reshape(T * B, H)
    dx = np.zeros((T * B, w_ih.shape[1]), dtype=x.dtype)
    dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    _core._gemm("nn", da_rows, w_ih, dx, False)
    _core._gemm("tn", da_rows, x.reshape(T * B, -1), dw_ih, False)
    _core._gemm("tn", da_rows, h_prev, dw_hh, False)
    return dx.reshape(x.shape), dh, dc, dw_ih, dw_hh, db


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("H", [1, 3, 7, 8, 9, 15, 16, 17, 33, 64])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_backward_is_the_kernel_composition(isa, dtype, H, bias):
    T, B, n_in = 4, 3, 5
    rng = np.random.default_rng(H)
    w_ih, w_hh, b_ih, b_hh = make_weights("lstm", n_in, H, 1, 1, bias, dtype, rng, scale=1.0)[0]
    x = (2.0 * rng.standard_normal((T, B, n_in))).astype(dtype)
    h0, c0, dh_n, dc_n = (rng.standard_normal((1, B, H)).astype(dtype) for _ in range(4))
    dout = rng.standard_normal((T, B, H)).astype(dtype)
    _, _, _, cache = _native.stack_forward(
        "lstm", x, h0, c0, [(w_ih, w_hh, b_ih, b_hh)], None, None, True, num_directions=1
    )
    dx, dh0, dc0, dweights = _native.stack_backward("lstm", cache, dout, dh_n, dc_n)
    kept = lstm_by_kernels(x, h0[0], c0[0], w_ih, w_hh, b_ih, b_hh)[3]
    want = lstm_backward_by_kernels(x, kept, dout, dh_n[0], dc_n[0], w_ih, w_hh)
    assert np.array_equal(dx, want[0])
    assert np.array_equal(dh0[0], want[1])
    assert np.array_equal(dc0[0], want[2])
    assert np.array_equal(dweights[0][0], want[3])
    assert np.array_equal(dweights[0][1], want[4])
    if bias:
        assert np.array_equal(dweights[0][2], want[5])
        assert np.array_equal(dweights[0][3], want[5])
    else:
        assert dweights[0][2] is None and dweights[0][3] is None
