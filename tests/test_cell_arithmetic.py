"""The native LSTM forward cell is exactly the composition of the kernels it documents.

lstm.cpp runs the cell in one pass over vector registers when the ISA is avx2 or avx512
(vector_cells.h: 8 or 16 floats a register) and in several passes of the portable loops
otherwise. Both must give the
bits of the step written out here with the kernel test hooks: the input projection
x W_ih^T, then per step a = (gates_t + h W_hh^T) + (b_ih + b_hh), i, f, o = sigmoid, g =
tanh, c = f*c + i*g, h = o * tanh(c), each product and sum rounded once (NumPy's float
arithmetic, no fused multiply-add). Sizes cover full registers and every tail length,
inputs both small and deep in saturation.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import lstm_by_kernels, make_weights
from rnnkit import _native

pytestmark = pytest.mark.native


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("T,B,n_in,H", [(3, 1, 5, 13), (4, 3, 7, 37), (2, 2, 16, 64)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("training", [False, True])
def test_lstm_forward_is_the_kernel_composition(isa, dtype, T, B, n_in, H, bias, training):
    check_lstm_composition(dtype, T, B, n_in, H, bias, training, x_scale=3.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("H", [1, 3, 7, 8, 9, 15, 16, 17, 31, 33])
@pytest.mark.parametrize("x_scale", [0.01, 300.0])
def test_lstm_composition_every_tail_and_saturation(isa, dtype, H, x_scale):
    """Every tail length of a register (float: 8 lanes, double: 4), and pre-activations
    deep in saturation (|a| up to ~1e3: the activations' clamped paths)."""
    check_lstm_composition(dtype, 3, 2, 4, H, True, True, x_scale=x_scale)


def check_lstm_composition(dtype, T, B, n_in, H, bias, training, x_scale):
    rng = np.random.default_rng(T * 100 + H)
    w_ih, w_hh, b_ih, b_hh = make_weights("lstm", n_in, H, 1, 1, bias, dtype, rng, scale=1.0)[0]
    x = (x_scale * rng.standard_normal((T, B, n_in))).astype(dtype)
    h0 = rng.standard_normal((1, B, H)).astype(dtype)
    c0 = rng.standard_normal((1, B, H)).astype(dtype)
    out, h_n, c_n, _ = _native.stack_forward(
        "lstm", x, h0, c0, [(w_ih, w_hh, b_ih, b_hh)], None, None, training, num_directions=1
    )
    want_out, want_h, want_c, _ = lstm_by_kernels(x, h0[0], c0[0], w_ih, w_hh, b_ih, b_hh)
    assert np.array_equal(out, want_out)
    assert np.array_equal(h_n[0], want_h)
    assert np.array_equal(c_n[0], want_c)
