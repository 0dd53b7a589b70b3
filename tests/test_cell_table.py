"""The core's table of cell kinds (rnnkit._core.cell_kinds) against torch and the modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import _core, _native
from rnnkit.reference import MODES, gate_count

KINDS = _core.cell_kinds()

# kind -> (a torch module of that kind, or None where torch has none; an rnnkit module)
TORCH_AND_RNNKIT = {
    "rnn_tanh": (
        lambda I, H, **kw: torch.nn.RNN(I, H, nonlinearity="tanh", **kw),
        lambda I, H, **kw: rnnkit.RNN(I, H, nonlinearity="tanh", **kw),
    ),
    "rnn_relu": (
        lambda I, H, **kw: torch.nn.RNN(I, H, nonlinearity="relu", **kw),
        lambda I, H, **kw: rnnkit.RNN(I, H, nonlinearity="relu", **kw),
    ),
    "lstm": (torch.nn.LSTM, rnnkit.LSTM),
    "gru": (torch.nn.GRU, lambda I, H, **kw: rnnkit.GRU(I, H, reset_after=True, **kw)),
    "gru_reset_before": (None, lambda I, H, **kw: rnnkit.GRU(I, H, reset_after=False, **kw)),
}


def test_kinds_are_the_modes_in_order():
    assert list(KINDS) == list(MODES) == list(TORCH_AND_RNNKIT)
    for mode, facts in KINDS.items():
        assert facts["gates"] == gate_count(mode)
        assert len(facts["gate_names"]) == facts["gates"]
        assert isinstance(facts["has_cell_state"], bool)
    assert KINDS["lstm"]["gate_names"] == ["i", "f", "g", "o"]
    assert KINDS["gru"]["gate_names"] == KINDS["gru_reset_before"]["gate_names"] == ["r", "z", "n"]
    assert [m for m, f in KINDS.items() if f["has_cell_state"]] == ["lstm"]


@pytest.mark.parametrize("mode", list(TORCH_AND_RNNKIT))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_parameter_names_and_shapes_match_torch(mode, bidirectional):
    I, H, L = 3, 5, 2
    G = KINDS[mode]["gates"]
    kinds = _core.parameter_kinds()
    assert kinds == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    suffixes = [""] + (["_reverse"] if bidirectional else [])
    D = len(suffixes)
    expected = {}
    for k in range(L):
        for suffix in suffixes:
            in_k = I if k == 0 else D * H
            shapes = [(G * H, in_k), (G * H, H), (G * H,), (G * H,)]
            for kind, shape in zip(kinds, shapes):
                expected[f"{kind}_l{k}{suffix}"] = shape
    make_torch, make_rnnkit = TORCH_AND_RNNKIT[mode]
    ours = make_rnnkit(I, H, num_layers=L, bidirectional=bidirectional, seed=0)
    assert {n: p.shape for n, p in ours.parameters().items()} == expected
    assert list(ours.parameters()) == list(expected)
    if make_torch is not None:
        theirs = make_torch(I, H, num_layers=L, bidirectional=bidirectional)
        assert {n: tuple(p.shape) for n, p in theirs.named_parameters()} == expected
        assert [n for n, _ in theirs.named_parameters()] == list(expected)


@pytest.mark.parametrize("mode", list(TORCH_AND_RNNKIT))
def test_cell_state_matches_torch(mode):
    make_torch, make_rnnkit = TORCH_AND_RNNKIT[mode]
    x = np.zeros((2, 1, 3), np.float32)
    _, state = make_rnnkit(3, 4, seed=0)(x)
    assert isinstance(state, tuple) == KINDS[mode]["has_cell_state"]
    if make_torch is not None:
        _, torch_state = make_torch(3, 4)(torch.from_numpy(x))
        assert isinstance(torch_state, tuple) == KINDS[mode]["has_cell_state"]


@pytest.mark.parametrize("mode", list(TORCH_AND_RNNKIT))
def test_cache_holds_what_the_table_says(mode):
    """A one-layer training cache holds exactly the buffers the kind's facts name: the
    gates (unless they are h_t, then kept in out), the saved states, and h0 instead of
    h_prev where the backward reads h_{t-1} from out."""
    facts = KINDS[mode]
    T, B, I, H = 4, 3, 2, 5
    G = facts["gates"]
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((G * H, I)), rng.standard_normal((G * H, H)), None, None)
    h0 = np.zeros((1, B, H))
    c0 = h0 if facts["has_cell_state"] else None
    x = rng.standard_normal((T, B, I))
    out, _, _, cache = _native.stack_forward(
        mode, x, h0, c0, [w], None, None, True, num_directions=1
    )
    elements = 0 if facts["gates_are_h"] else T * B * G * H
    for name in facts["saved_state"]:
        if name == "h_prev" and facts["backward_reads_out"]:
            elements += B * H  # h0, the last layer reading h_{t-1} from out
        else:
            elements += T * B * H
    if "h_prev" not in facts["saved_state"]:
        elements += B * H  # h0
    assert cache.nbytes == elements * 8
    # The cache references out exactly when the backward reads it: changing out then
    # makes the backward refuse.
    out[0, 0, 0] += 1.0
    dout, dh = np.ones_like(out), np.zeros_like(h0)
    if facts["backward_reads_out"]:
        with pytest.raises(RuntimeError, match="out was modified in place"):
            _native.stack_backward(mode, cache, dout, dh, c0)
    else:
        _native.stack_backward(mode, cache, dout, dh, c0)
