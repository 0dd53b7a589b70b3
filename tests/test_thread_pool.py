"""The core's own thread pool: its workers sleep when idle (no CPU taken between calls),
calls from several Python threads at once and from a forked child work, and results are
bit for bit the same at 1, 2 and 4 threads with teams really formed at 2 and 4.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import numpy as np
import pytest
import rnnkit
from rnnkit import _core

pytestmark = pytest.mark.skipif(not _core.have_threads(), reason="built without threads")

# Big enough that the time loop forms a team at 2 threads (team.h: kMinTeamWork).
T, B, IN, H = 20, 16, 32, 128


@pytest.fixture
def threads():
    """Restores the thread count after the test."""
    before = rnnkit.get_num_threads()
    yield
    rnnkit.set_num_threads(before)


def _train_step(cls, dtype: str) -> list[np.ndarray]:
    """Forward + backward of a fresh module; every array produced."""
    m = cls(IN, H, num_layers=2, bidirectional=True, dtype=dtype, seed=3)
    x = np.random.default_rng(5).standard_normal((T, B, IN))
    out, state = m(x)
    dx, _ = m.backward(np.cos(out))
    states = list(state) if isinstance(state, tuple) else [state]
    return [out, *states, dx, *(g.copy() for g in m.grads.values())]


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bits_identical_at_1_2_4_threads_and_teams_formed(threads, cls, dtype):
    rnnkit.set_num_threads(1)
    formed = _core._teams_formed()
    expected = _train_step(cls, dtype)
    assert _core._teams_formed() == formed  # one thread: no team
    for n in (2, 4):
        rnnkit.set_num_threads(n)
        formed = _core._teams_formed()
        # A worker that another process keeps off its core past the pool's join window is
        # left out of that team (fewer threads, same bits): repeat until teams formed.
        for _ in range(50):
            got = _train_step(cls, dtype)
            for e, g in zip(expected, got, strict=True):
                np.testing.assert_array_equal(g, e)
            if _core._teams_formed() > formed:
                break
        assert _core._teams_formed() > formed, f"no team formed at {n} threads"


def test_idle_workers_take_no_cpu(threads):
    """After a call the workers spin for microseconds, then sleep: the process's CPU time
    hardly grows while it waits (an OpenMP runtime spinning its workers would use up to a
    whole core per worker)."""
    rnnkit.set_num_threads(2)
    formed = _core._teams_formed()
    for _ in range(50):
        _train_step(rnnkit.LSTM, "float32")
        if _core._teams_formed() > formed:
            break
    assert _core._teams_formed() > formed
    time.sleep(0.05)  # the workers' brief spin ends
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(0.5)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    assert cpu < 0.05 * wall, f"{cpu:.3f} s of CPU in {wall:.3f} s idle"


def test_concurrent_callers_get_the_same_bits(threads):
    """Several Python threads with 2-thread calls at once: one of them holds the pool, the
    others run on their own thread; every result equals the one-thread result."""
    rnnkit.set_num_threads(1)
    expected = _train_step(rnnkit.LSTM, "float32")
    rnnkit.set_num_threads(2)
    results: list = [None] * 4
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def body(i):
        try:
            barrier.wait()
            for _ in range(3):
                results[i] = _train_step(rnnkit.LSTM, "float32")
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    workers = [threading.Thread(target=body, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    for got in results:
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_array_equal(g, e)


def _child_step(queue) -> None:
    queue.put(_train_step(rnnkit.LSTM, "float32")[0])


def test_forked_child_runs_teams(threads):
    """A child forked after the pool started has none of its workers: it starts its own
    pool instead of waiting forever for workers that do not exist there."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    rnnkit.set_num_threads(2)
    expected = _train_step(rnnkit.LSTM, "float32")[0]  # the pool is running
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_step, args=(queue,))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, expected)


def test_teams_start_without_workers_that_do_not_join_in_time(threads):
    """With a join window of zero (as when another process holds the workers' cores and
    they cannot join in time) teams start short of their threads; the bits stay those of
    one thread."""
    rnnkit.set_num_threads(1)
    expected = _train_step(rnnkit.LSTM, "float32")
    rnnkit.set_num_threads(2)
    short = _core._teams_short()
    window = _core._set_join_window(0)
    try:
        for _ in range(5):
            got = _train_step(rnnkit.LSTM, "float32")
            for e, g in zip(expected, got, strict=True):
                np.testing.assert_array_equal(g, e)
    finally:
        _core._set_join_window(window)
    assert _core._teams_short() > short


def test_short_teams_shorten_the_next_join_windows(threads):
    """After two teams in a row that came up short the next calls wait only for a worker
    that is still spinning (5 µs), every 8th call of the streak its whole window again,
    and a full team restores the whole window: a worker that cannot run (its core held)
    then costs a backward's ~100 parallel calls a few µs each instead of their whole
    windows. One short team alone keeps the whole window (a worker that woke late spins
    for the next call)."""
    big = 1 << 40  # enough work for the whole window
    full = _core._set_join_window(100)
    try:
        _core._record_team(2, 2)
        assert _core._join_window(big) == 100
        assert _core._join_window(1 << 20) == 2  # small jobs: 1 µs per 2^19 multiply-adds
        windows = []
        for _ in range(24):
            _core._record_team(1, 2)
            windows.append(_core._join_window(big))
        assert windows == [100] + [5] * 6 + [100] + ([5] * 7 + [100]) * 2
        _core._record_team(2, 2)
        assert _core._join_window(big) == 100
    finally:
        _core._set_join_window(full)
        _core._record_team(2, 2)
