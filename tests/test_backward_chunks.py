"""Forward and backward over several chunks of time steps, and what the RNN keeps.

The native backward of every cell keeps dA for one chunk of consecutive time steps (about
512 rows: ceil(512 / B) steps) and runs dX, dW_ih, dW_hh (and, but for the LSTM, which
sums them step by step, the bias sums) chunk by chunk; the forward computes x W_ih^T in
chunks of about 256 rows inside its time loop. The RNN takes h_{t-1} from its saved
activations shifted by one step, plus h0 where a sequence starts (in the reverse
direction with lengths: at step lengths[b]-1, which may fall in any chunk). The other
native tests use T*B below 512 (one backward chunk), so these cases cross chunk
boundaries: short last chunks, boundaries on a sequence's start, every
layout (layers, directions, lengths, dropout), against the NumPy reference with the
tolerances of test_native, the same bits for 1 and 2 threads, and a cache that does not
change when the caller's h0 does. Without dropout, an RNN layer below the last keeps no
activations of its own: the backward reads them in the next layer's input, which the
cache keeps anyway (its size is checked here too).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODES, needs_threads
from rnnkit import _native, reference
from test_native import (
    TOL,
    assert_close,
    assert_results_close,
    assert_same_bits_at_1_and_2_threads,
    make_problem,
    run,
    train_forward,
)

pytestmark = pytest.mark.native


def chunk_steps(T: int, B: int) -> int:
    """Time steps per backward chunk (cell_common.h backward_chunk_steps)."""
    return min(T, max(1, -(-512 // B)))


# (T, B): 2 chunks, the last short (103 + 47 steps); B = 1 with 512-step chunks (512 + 88);
# steps of 2 over 3 steps (2 + 1); chunks ending exactly at T (8 + 8). The forward's
# projection chunks: 52 + 52 + 46, 256 + 256 + 88, 1 + 1 + 1, 4 x 4 steps.
CHUNK_SHAPES = [(150, 5), (600, 1), (3, 300), (16, 64)]


def test_shapes_cross_chunks():
    for T, B in CHUNK_SHAPES:
        assert chunk_steps(T, B) < T


# Without dropout (masks=False) for the RNN only: its lower layer then reads h_t from the
# upper layer's input; the LSTM and GRU keep the same buffers either way.
CASES = [
    (mode, shape, dtype, lengths, masks)
    for mode in MODES
    for shape in CHUNK_SHAPES
    for dtype in (np.float64, np.float32)
    for lengths in (False, True)
    for masks in ((True, False) if mode.startswith("rnn") else (True,))
]


def case_id(case):
    mode, (T, B), dtype, lengths, masks = case
    flags = ("-len" if lengths else "") + ("-drop" if masks else "")
    return f"{mode}-T{T}B{B}-{dtype.__name__}{flags}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_chunked_backward_matches_reference(case):
    """Two layers, two directions: every output and gradient."""
    mode, (T, B), dtype, lengths, masks = case
    p = make_problem(mode, T, B, 3, 4, 2, 2, lengths=lengths, masks=masks, dtype=dtype, seed=T + B)
    got = run(_native, p)
    assert_results_close(got, run(reference, p), TOL[dtype])


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_reverse_starts_in_every_chunk(mode, layers):
    """Reverse direction, lengths spread so that sequences start (at lengths[b]-1) in
    each of several chunks, on their boundaries and at T-1; one sequence of length 1."""
    T, B = 40, 64  # 8 steps per chunk: chunks [32, 40), [24, 32), ..., [0, 8)
    p = make_problem(mode, T, B, 3, 5, layers, 2, lengths=True, dtype=np.float64, seed=11)
    p["lengths"] = np.array([1 + (7 * b) % T for b in range(B)], dtype=np.int64)
    p["lengths"][:4] = [1, 8, 9, T]
    got = run(_native, p)
    assert_results_close(got, run(reference, p), TOL[np.float64])
    for b, n in enumerate(p["lengths"]):
        assert not got["out"][n:, b].any() and not got["dx"][n:, b].any()


@needs_threads
@pytest.mark.parametrize("masks", [True, False], ids=["drop", "nodrop"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_chunked_same_bits_for_1_and_2_threads(mode, dtype, masks, restore_threads):
    """3 chunks of 4 steps (B = 128), large enough for the parallel paths."""
    p = make_problem(mode, 10, 128, 8, 96, 2, 2, lengths=True, masks=masks, dtype=dtype, seed=5)
    assert_same_bits_at_1_and_2_threads(p)


@pytest.mark.parametrize("mode", ["rnn_tanh", "rnn_relu"])
def test_rnn_cache_keeps_h0(mode):
    """The RNN backward reads h0 (dW_hh at each sequence's first step) from the cache:
    changing the caller's h0 after the forward changes nothing."""
    p = make_problem(mode, 30, 20, 3, 4, 2, 2, lengths=True, masks=True, seed=2)
    want = run(reference, p)
    out, h_n, c_n, cache = train_forward(_native, p)
    p["h0"][:] = 5.0
    dx, dh0, _, dweights = _native.stack_backward(mode, cache, p["dout"], p["dh_n"], None)
    assert_close(dx, want["dx"], 1e-10, "dx")
    for i, grads in enumerate(dweights):
        assert_close(grads[1], want[f"dw_hh[{i}]"], 1e-10, f"dw_hh[{i}]")


@pytest.mark.parametrize("mode", ["rnn_tanh", "gru", "gru_reset_before"])
def test_training_cache_size(mode):
    """What a one-layer training forward keeps, in elements (T, B, I, H) (x, the weights
    and out are referenced, not copied): RNN: h0 (B*H) only (its backward reads h_t
    in out, shifted by one step for h_{t-1});
    GRU (reset_after): [r, z, n] (3*T*B*H), h_{t-1} W_hn^T + b_hn (T*B*H) and h0 (B*H),
    not h_{t-1} (out shifted by one step); GRU reset_before: r * h_{t-1} (T*B*H) in
    place of h W_hn^T + b_hn."""
    T, B, n_in, H = 7, 3, 5, 4
    p = make_problem(mode, T, B, n_in, H, 1, 1, dtype=np.float64)
    *_, cache = train_forward(_native, p)
    saved = {
        "rnn_tanh": B * H,
        "gru": 4 * T * B * H + B * H,
        "gru_reset_before": 4 * T * B * H + B * H,
    }
    saved = saved[mode]
    assert cache.nbytes == 8 * saved


@pytest.mark.parametrize("dropout", [False, True], ids=["nodrop", "drop"])
def test_rnn_lower_layers_keep_no_gates_without_dropout(dropout):
    """Two layers, two directions (T, B, I, H): the cache keeps layer 1's input and h0 per
    cell (x, the weights and out, where the upper layer's h_t are, are referenced);
    the lower layer's h_t only with dropout (the next layer's input is then masked), and
    the masks."""
    T, B, n_in, H, D = 7, 3, 5, 4, 2
    p = make_problem("rnn_tanh", T, B, n_in, H, 2, D, masks=dropout, dtype=np.float64)
    *_, cache = train_forward(_native, p)
    inputs = T * B * D * H
    kept_h = (1 if dropout else 0) * D * T * B * H
    masks = T * B * D * H if dropout else 0
    assert cache.nbytes == 8 * (inputs + 2 * D * B * H + kept_h + masks)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("mode", ["gru", "gru_reset_before"])
def test_gru_one_direction_reads_h_prev_in_out(mode, layers):
    """One direction without lengths: the last layer's backward reads h_{t-1} straight
    from out's rows in every chunk but the one holding step 0 (where h0 enters), instead
    of gathering them. Same bits as the gathering path (taken with lengths, here all T)."""
    for T, B in CHUNK_SHAPES:
        p = make_problem(mode, T, B, 3, 4, layers, 1, masks=True, dtype=np.float32, seed=T)
        got = run(_native, p)
        assert_results_close(got, run(reference, p), TOL[np.float32])
        p["lengths"] = np.full(B, T, dtype=np.int64)
        gathered = run(_native, p)
        for name, value in got.items():
            assert (value is None and gathered[name] is None) or (
                value.tobytes() == gathered[name].tobytes()
            ), name
