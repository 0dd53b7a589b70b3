"""The sum of two prepacked products in one pass gives the bits of the two calls.

gemm_packed_pair_cols computes C = A1 B1 + A2 B2 (the LSTM step's x_t W_ih^T + h W_hh^T):
with AVX-512 both products run in one tile (tile_pair) where both K fit one k block,
otherwise term after term (gemm_blocked.cpp). Each must give the bits of gemm_packed_cols
of the first product followed by the second accumulated. The shapes cover the tile_pair
path (K1, K2 <= 512, few rows), a K past one k block, rows past the in-place A limit (A
packed), edge panels (N not a multiple of 16) and column ranges that split panels.
"""

from __future__ import annotations

import numpy as np
import pytest
from rnnkit import _core

pytestmark = pytest.mark.native

SHAPES = [  # M, N, K1, K2
    (16, 512, 128, 128),
    (5, 37, 9, 20),
    (13, 100, 600, 64),
    (300, 70, 2300, 40),
    (1, 48, 7, 3),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_pair_same_bits_as_two_products(isa, dtype, restore_threads):
    rng = np.random.default_rng(21)
    for threads in (1, 2):
        _core.set_num_threads(threads)
        for M, N, K1, K2 in SHAPES:
            A1 = rng.uniform(-1, 1, size=(M, K1)).astype(dtype)
            B1 = rng.uniform(-1, 1, size=(K1, N)).astype(dtype)
            A2 = rng.uniform(-1, 1, size=(M, K2)).astype(dtype)
            B2 = rng.uniform(-1, 1, size=(K2, N)).astype(dtype)
            for n_begin, n_end in ((0, N), (3, N - 5), (N // 2, N)):
                want = np.full((M, N), 7.0, dtype=dtype)  # outside the columns: untouched
                _core._gemm_packed("nn", A1, B1, want, False, n_begin, n_end)
                _core._gemm_packed("nn", A2, B2, want, True, n_begin, n_end)
                got = np.full((M, N), 7.0, dtype=dtype)
                _core._gemm_packed_pair(A1, B1, A2, B2, got, n_begin, n_end)
                assert got.tobytes() == want.tobytes(), (threads, M, N, K1, K2, n_begin, n_end)


def test_pair_rejects_mismatched_shapes():
    A = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="B2"):
        _core._gemm_packed_pair(
            A,
            np.zeros((3, 8), np.float32),
            A,
            np.zeros((3, 9), np.float32),
            np.zeros((4, 8), np.float32),
        )
