"""A time loop's thread team that shrinks to one thread part way (team.h, TeamMember: it
does when its threads do not run in parallel; here a test setting forces it at a chosen
step barrier) gives the same bits as one thread: forward and backward, every cell kind
(GRU reset-before and LSTM projections with their barriers inside a step included),
bidirectional, lengths, one row (the input projection computed along the steps), both
dtypes, and on torch's OpenMP threads."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import rnnkit
from conftest import on_threads
from rnnkit import _core

pytestmark = pytest.mark.skipif(not _core.have_threads(), reason="built without threads")

T, IN = 9, 24

# (name, constructor, batch, lengths): each forms a team at 2 threads (team.h: team_size).
CASES = [
    ("lstm", lambda dt: rnnkit.LSTM(IN, 96, dtype=dt, seed=1), 16, None),
    ("lstm_proj", lambda dt: rnnkit.LSTM(IN, 128, proj_size=48, dtype=dt, seed=1), 16, None),
    (
        "lstm_bidir_lengths",
        lambda dt: rnnkit.LSTM(IN, 96, bidirectional=True, dtype=dt, seed=1),
        16,
        "lengths",
    ),
    ("lstm_one_row", lambda dt: rnnkit.LSTM(IN, 128, dtype=dt, seed=1), 1, None),
    ("gru", lambda dt: rnnkit.GRU(IN, 96, dtype=dt, seed=1), 16, None),
    (
        "gru_reset_before",
        lambda dt: rnnkit.GRU(IN, 96, reset_after=False, dtype=dt, seed=1),
        16,
        "lengths",
    ),
    ("gru_one_row", lambda dt: rnnkit.GRU(IN, 160, dtype=dt, seed=1), 1, None),
    (
        "rnn_relu_bidir",
        lambda dt: rnnkit.RNN(IN, 128, nonlinearity="relu", bidirectional=True, dtype=dt, seed=1),
        24,
        None,
    ),
]


def _run(make, dtype: str, batch: int, lengths, steps: int = T) -> list[np.ndarray]:
    """Forward + backward of a fresh module over `steps` steps; every array produced."""
    m = make(dtype)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((steps, batch, IN)).astype(dtype)
    lens = None
    if lengths is not None:
        lens = np.array([steps - (b % 4) * 2 for b in range(batch)])
    out, state = m(x, lengths=lens)
    dx, dstate = m.backward(np.sin(out), None)
    arrays = [out, dx]
    for s in (state, dstate):
        arrays.extend(s if isinstance(s, tuple) else [s])
    return arrays + [g.copy() for g in m.grads.values()]


@contextlib.contextmanager
def forced_shrink(step: int):
    previous = _core._set_forced_shrink_step(step)
    try:
        yield
    finally:
        _core._set_forced_shrink_step(previous)


@pytest.fixture
def restore_threads():
    before = rnnkit.get_num_threads()
    yield
    rnnkit.set_num_threads(before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "make", "batch", "lengths"), CASES, ids=[c[0] for c in CASES])
def test_shrinking_team_gives_one_thread_bits(restore_threads, name, make, batch, lengths, dtype):
    rnnkit.set_num_threads(1)
    expected = _run(make, dtype, batch, lengths)
    for step in (0, 1, 4, T - 1):
        shrunk = _core._teams_shrunk()
        with forced_shrink(step), on_threads(2):
            got = _run(make, dtype, batch, lengths)
        assert _core._teams_shrunk() > shrunk, f"no team shrank (forced at step {step})"
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_array_equal(g, e, err_msg=f"{name}, shrunk at step {step}")


ONE_ROW = [c for c in CASES if c[2] == 1]


@pytest.mark.parametrize(("name", "make", "batch", "lengths"), ONE_ROW, ids=[c[0] for c in ONE_ROW])
def test_one_row_shrinks_only_between_groups(restore_threads, name, make, batch, lengths):
    # One row computes its input projection in groups of steps, each thread its own units'
    # tiles along a group: a shrink asked for at any step must wait for the group's end.
    steps = 40  # several groups for the LSTM (4 gate blocks) and the GRU (3)
    rnnkit.set_num_threads(1)
    expected = _run(make, "float32", batch, lengths, steps)
    for step in range(steps):
        with forced_shrink(step), on_threads(2):
            got = _run(make, "float32", batch, lengths, steps)
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_array_equal(g, e, err_msg=f"{name}, shrink asked at step {step}")


def test_no_forced_shrink_by_default():
    assert _core._set_forced_shrink_step(-1) == -1


def test_shrinking_team_on_torch_threads(restore_threads):
    torch = pytest.importorskip("torch")
    del torch
    import rnnkit.torch as rt
    from rnnkit.torch import _threads

    if _threads.torch_openmp_library() is None:
        pytest.skip("this torch runs its parallel work without GNU OpenMP (libgomp)")
    was_on = rt.torch_threads_in_use()
    assert rt.use_torch_threads(True)
    min_work = _core._set_openmp_min_work(0)
    try:
        _, make, batch, lengths = CASES[0]
        rnnkit.set_num_threads(1)
        expected = _run(make, "float32", batch, lengths)
        regions, shrunk = _core._openmp_regions(), _core._teams_shrunk()
        with forced_shrink(2), on_threads(2):
            got = _run(make, "float32", batch, lengths)
        assert _core._openmp_regions() > regions
        assert _core._teams_shrunk() > shrunk
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_array_equal(g, e)
    finally:
        _core._set_openmp_min_work(min_work)
        rt.use_torch_threads(was_on)
