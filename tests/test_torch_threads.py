"""rnnkit's parallel regions on torch's own OpenMP threads (rnnkit.torch.use_torch_threads):
the same bits as on rnnkit's own pool and on one thread, regions really opened through
torch's libgomp, switching back, several Python threads at once, fork, and the fallback
when torch's libgomp is not found.

Tests that need a fresh process (which thread imported rnnkit.torch, fork) run a child."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import rnnkit
from rnnkit import _core

torch = pytest.importorskip("torch")
import rnnkit.torch as rt  # noqa: E402  (after the skip: needs torch)
from rnnkit.torch import _threads  # noqa: E402

pytestmark = pytest.mark.native

# The tests that run regions on torch's threads need them; the fallback and the argument
# checks run everywhere.
_needs_torch_libgomp = pytest.mark.skipif(
    not _core.have_threads() or _threads.torch_openmp_library() is None,
    reason="core built without threads, or this torch runs its parallel work without GNU "
    "OpenMP (libgomp)",
)

# The rnnkit under test: the installed package, or a development build's python/.
PYTHON_DIR = Path(rnnkit.__file__).resolve().parents[1]

# Big enough that the time loop forms a team at 2 threads (team.h: kMinTeamWork).
T, B, IN, H = 6, 32, 64, 128


@pytest.fixture
def torch_threads():
    """Regions of this thread on torch's threads, however small, every team full; restored."""
    was_on, threads = rt.torch_threads_in_use(), rnnkit.get_num_threads()
    assert rt.use_torch_threads(True)
    _core._set_wait_for_full_teams(True)
    min_work = _core._set_openmp_min_work(0)
    yield
    _core._set_openmp_min_work(min_work)
    _core._set_wait_for_full_teams(False)
    rt.use_torch_threads(was_on)
    rnnkit.set_num_threads(threads)


def _forward_backward(cell, threads: int) -> list[np.ndarray]:
    rnnkit.set_num_threads(threads)
    m = cell(IN, H, seed=0)
    x = np.random.default_rng(1).standard_normal((T, B, IN)).astype(np.float32)
    out, _ = m(x)
    dx, _ = m.backward(np.random.default_rng(2).standard_normal(out.shape).astype(np.float32))
    return [out, dx, *(g.copy() for g in m.grads.values())]


@_needs_torch_libgomp
@pytest.mark.parametrize("cell", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_same_bits_on_torch_threads(cell, torch_threads):
    regions, teams = _core._openmp_regions(), _core._teams_formed()
    on_torch = _forward_backward(cell, 2)
    assert _core._openmp_regions() > regions  # opened through torch's GOMP_parallel
    assert _core._teams_formed() > teams  # and ran as a team of 2
    one = _forward_backward(cell, 1)
    rt.use_torch_threads(False)
    regions = _core._openmp_regions()
    own_pool = _forward_backward(cell, 2)
    assert _core._openmp_regions() == regions  # switched back: none through torch's
    for a, b, c in zip(on_torch, one, own_pool, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@_needs_torch_libgomp
def test_gemm_split_same_bits_on_torch_threads(torch_threads):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((256, 512)).astype(np.float32)
    Bm = rng.standard_normal((384, 512)).astype(np.float32)
    results = []
    for threads in (2, 1):
        rnnkit.set_num_threads(threads)
        C = np.zeros((256, 384), np.float32)
        regions = _core._openmp_regions()
        _core._gemm("nt", A, Bm, C, False)
        results.append(C)
        if threads == 2:
            assert _core._openmp_regions() > regions
    np.testing.assert_array_equal(results[0], results[1])


@_needs_torch_libgomp
def test_small_regions_stay_on_rnnkit_pool(torch_threads):
    # Below the least work (kMinOpenMpWork) a region runs on rnnkit's own pool.
    _core._set_openmp_min_work(1 << 40)
    regions, teams = _core._openmp_regions(), _core._teams_formed()
    _forward_backward(rnnkit.LSTM, 2)
    assert _core._openmp_regions() == regions and _core._teams_formed() > teams


@_needs_torch_libgomp
def test_only_the_thread_that_switched_uses_torch_threads(torch_threads):
    seen: list[bool] = []
    worker = threading.Thread(target=lambda: seen.append(rt.torch_threads_in_use()))
    worker.start()
    worker.join(timeout=60)
    assert seen == [False] and rt.torch_threads_in_use()


@_needs_torch_libgomp
def test_concurrent_python_threads_finish_with_the_same_bits(torch_threads):
    want = _forward_backward(rnnkit.LSTM, 2)
    results: dict[int, list[np.ndarray]] = {}

    def run(i: int) -> None:
        results[i] = _forward_backward(rnnkit.LSTM, 2)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    run(-1)  # this thread's regions on torch's threads meanwhile
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a Python thread never finished"
    assert sorted(results) == [-1, 0, 1, 2]
    for got in results.values():
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_fallback_when_torch_libgomp_is_not_found(monkeypatch, restore_threads):
    was_on = rt.torch_threads_in_use()
    monkeypatch.setattr(_threads, "torch_openmp_library", lambda: None)
    try:
        assert rt.use_torch_threads(True) is False
        assert not rt.torch_threads_in_use()
        regions = _core._openmp_regions()
        _forward_backward(rnnkit.GRU, 2)
        assert _core._openmp_regions() == regions
    finally:
        monkeypatch.undo()
        rt.use_torch_threads(was_on)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="use_torch_threads: on must be a bool, got int"):
        rt.use_torch_threads(1)
    with pytest.raises(ValueError, match="every address must be non-zero"):
        _core._use_openmp_runtime(0, 0, 0, 0)


def _run_child(script: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR), "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@_needs_torch_libgomp
def test_import_switches_and_rnnkit_pool_starts_no_worker():
    # After the import the regions run on torch's libgomp workers: an rnnkit call at 2
    # threads starts no thread of its own once torch has run a parallel region.
    out = _run_child(
        """
        import os, numpy as np, torch, rnnkit
        import rnnkit.torch as rt
        from rnnkit import _core
        def threads(): return len(os.listdir("/proc/self/task"))
        torch.set_num_threads(2); rnnkit.set_num_threads(2)
        _core._set_wait_for_full_teams(True); _core._set_openmp_min_work(0)
        torch.ones(1 << 20).exp_()  # torch's OpenMP team of 2 exists from here on
        before = threads()
        rnnkit.LSTM(64, 128, seed=0)(np.ones((6, 32, 64), np.float32))
        print(rt.torch_threads_in_use(), _core._openmp_regions() > 0, before == threads())
        """
    )
    assert out.split() == ["True", "True", "True"]


@_needs_torch_libgomp
def test_child_of_fork_uses_rnnkit_pool():
    out = _run_child(
        """
        import os, numpy as np, torch, rnnkit
        import rnnkit.torch as rt
        from rnnkit import _core
        rnnkit.set_num_threads(2); _core._set_openmp_min_work(0)
        x = np.ones((6, 32, 64), np.float32)
        want, _ = rnnkit.LSTM(64, 128, seed=0)(x)  # on torch's threads
        pid = os.fork()
        if pid == 0:
            regions = _core._openmp_regions()
            got, _ = rnnkit.LSTM(64, 128, seed=0)(x)
            ok = (not rt.torch_threads_in_use() and _core._openmp_regions() == regions
                  and np.array_equal(got, want))
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), rt.torch_threads_in_use())
        """
    )
    assert out.split() == ["0", "True"]
