"""Reading A in place or packing it gives the same bits.

The micro-tile path reads A where it is for gemm_tn (op(A) = A^T, strided) and, with B
prepacked, when a block of up to 72 rows with all of K is at most 640 KiB; otherwise it
packs A first (gemm_blocked.cpp). Each element is one FMA chain over k either way: the
same product through each path must give the same bits. The shapes put the prepacked
path's A block on both sides of 640 KiB (float32: 72 x 2000 is 562 KiB, 72 x 2300 is
647 KiB; float64 is past it at both).
"""

from __future__ import annotations

import numpy as np
import pytest
from rnnkit import _core

pytestmark = pytest.mark.native

SHAPES = [(80, 40, 2000), (80, 40, 2300), (7, 19, 2300), (150, 70, 600)]  # M, N, K


def prepacked_b(A, B, C, accumulate):
    _core._gemm_packed("nn", A, B, C, accumulate)


def transposed_a(A, B, C, accumulate):
    """gemm_tn on a (K, M) copy of A: A^T read in place."""
    _core._gemm("tn", np.ascontiguousarray(A.T), B, C, accumulate)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("path", [prepacked_b, transposed_a], ids=lambda f: f.__name__)
def test_a_in_place_same_bits_as_packed(isa, dtype, path):
    """gemm_nn packs A; each path reads it in place (the prepacked one where the block is
    at most 640 KiB) and must give gemm_nn's bits."""
    rng = np.random.default_rng(11)
    for M, N, K in SHAPES:
        A = rng.uniform(-1, 1, size=(M, K)).astype(dtype)
        B = rng.uniform(-1, 1, size=(K, N)).astype(dtype)
        C0 = rng.uniform(-1, 1, size=(M, N)).astype(dtype)
        for accumulate in (False, True):
            want = C0.copy()
            _core._gemm("nn", A, B, want, accumulate)
            got = C0.copy()
            path(A, B, got, accumulate)
            assert np.array_equal(got, want), (M, N, K, accumulate)
