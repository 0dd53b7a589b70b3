"""The backward's dgates rows at a padded stride give the same results.

The backward keeps dL/d(pre-activations) of a chunk of time steps in a scratch buffer
dgates whose rows (G*H values) are padded by one cache line when they would be a
multiple of 2 KiB below 8 KiB (cell_common.h dgates_row_stride); every reader and writer
uses that stride. The composition tests (test_lstm_backward_arithmetic.py,
test_backward_isas.py) use hidden sizes whose rows are never padded; here the same
compositions run at sizes whose rows are: the LSTM at H = 128 and 256 (float32: 2 and
4 KiB rows) and 128 (float64), the Elman RNN at H = 1024 (float32) and 512 (float64), the
GRUs at H = 512 (float32) and 256 (float64: 6 KiB rows). A second test runs several
chunks with sorted lengths (the products step by step on the active rows) against the
NumPy reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import lstm_by_kernels, make_weights
from rnnkit import _native, reference
from test_backward_isas import BY_KERNELS
from test_lstm_backward_arithmetic import lstm_backward_by_kernels
from test_native import assert_results_close, make_problem, run

pytestmark = pytest.mark.native

# (mode, dtype, H): a row of G*H values is 2, 4 or 6 KiB.
PADDED = [
    ("lstm", np.float32, 128),
    ("lstm", np.float32, 256),
    ("lstm", np.float64, 128),
    ("rnn_tanh", np.float32, 1024),
    ("rnn_relu", np.float64, 512),
    ("gru", np.float32, 512),
    ("gru_reset_before", np.float64, 256),
]


@pytest.mark.parametrize("mode, dtype, H", PADDED, ids=lambda v: getattr(v, "__name__", str(v)))
def test_padded_rows_give_the_kernel_composition(isa, mode, dtype, H):
    T, B, n_in = 3, 2, 5
    rng = np.random.default_rng(H)
    w_ih, w_hh, b_ih, b_hh = make_weights(mode, n_in, H, 1, 1, True, dtype, rng, scale=1.0)[0]
    x = (2.0 * rng.standard_normal((T, B, n_in))).astype(dtype)
    h0, c0, dh_n, dc_n = (rng.standard_normal((1, B, H)).astype(dtype) for _ in range(4))
    dout = rng.standard_normal((T, B, H)).astype(dtype)
    lstm = mode == "lstm"
    _, _, _, cache = _native.stack_forward(
        mode,
        x,
        h0,
        c0 if lstm else None,
        [(w_ih, w_hh, b_ih, b_hh)],
        None,
        None,
        True,
        num_directions=1,
    )
    dx, dh0, dc0, dweights = _native.stack_backward(mode, cache, dout, dh_n, dc_n if lstm else None)
    if lstm:
        kept = lstm_by_kernels(x, h0[0], c0[0], w_ih, w_hh, b_ih, b_hh)[3]
        dx_w, dh_w, dc_w, dw_ih, dw_hh, db = lstm_backward_by_kernels(
            x, kept, dout, dh_n[0], dc_n[0], w_ih, w_hh
        )
        assert np.array_equal(dc0[0], dc_w)
        db_ih = db_hh = db
    else:
        dx_w, dh_w, dw_ih, dw_hh, (db_ih, db_hh) = BY_KERNELS[mode](
            x, h0[0], dout, dh_n[0], w_ih, w_hh, b_ih, b_hh
        )
    assert np.array_equal(dx, dx_w.reshape(x.shape))
    assert np.array_equal(dh0[0], dh_w)
    assert np.array_equal(dweights[0][0], dw_ih)
    assert np.array_equal(dweights[0][1], dw_hh)
    assert np.array_equal(dweights[0][2], db_ih)
    assert np.array_equal(dweights[0][3], db_hh)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_padded_rows_over_chunks_with_sorted_lengths(mode):
    # float64 rows of 4 KiB (LSTM H = 128) and 6 KiB (GRU H = 256); T*B = 640 rows: two
    # chunks, each step's products on its active rows.
    H = 128 if mode == "lstm" else 256
    p = make_problem(mode, 40, 16, 7, H, 1, 2, lengths="sorted", dtype=np.float64, seed=3)
    # Recurrent weights small enough that 40 steps stay far from chaos (uniform in +-0.5
    # at these sizes amplifies rounding differences beyond the tolerance).
    p["weights"] = [(w_ih, 0.1 * w_hh, *rest) for w_ih, w_hh, *rest in p["weights"]]
    assert_results_close(run(_native, p), run(reference, p), 1e-10)
