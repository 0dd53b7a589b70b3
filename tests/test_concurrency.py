"""Several Python threads at once: forward/backward on separate modules, and forward on
one shared module in eval mode, give exactly the answers each call gives alone (the GIL
is released during native compute, so these really overlap, with teams of the core's own
thread pool inside them), also while another thread changes the core's thread count.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rnnkit
from conftest import BACKENDS, make_module, needs_threads

pytestmark = pytest.mark.native

N_THREADS = 4
REPEATS = 3
# Big enough that the core's loops go parallel (more than 2**14 elements of work), and
# that the LSTM's time loops run on a team of 2 threads (2**17 multiply-adds per step).
T, B, IN, H = 8, 32, 16, 32


@pytest.fixture
def two_core_threads(restore_threads):
    rnnkit.set_num_threads(2)


def _module(i: int, backend: str, **kwargs):
    """Module i of a varied set: every cell, layers, directions, both dtypes."""
    return make_module(
        ("lstm", "gru", "rnn", "gru_reset_before")[i % 4],
        backend,
        input_size=IN,
        hidden_size=H,
        num_layers=1 + i % 2,
        bidirectional=i % 3 == 0,
        dtype=("float32", "float64")[i % 2],
        seed=i,
        **kwargs,
    )


def _inputs(i: int):
    rng = np.random.default_rng(100 + i)
    x = rng.standard_normal((T, B, IN))
    lengths = rng.integers(1, T + 1, B)
    return x, lengths


def _train_step(m, x, lengths) -> list[np.ndarray]:
    """One forward + backward; every array it produces (fresh gradients each time)."""
    m.zero_grad()
    out, state = m(x, lengths=lengths)
    dx, dstate = m.backward(np.cos(out))
    states = list(state) if isinstance(state, tuple) else [state]
    dstates = list(dstate) if isinstance(dstate, tuple) else [dstate]
    return [out, *states, dx, *dstates, *(g.copy() for g in m.grads.values())]


def _run_threads(target, n: int) -> None:
    """Run target(i) in n threads started together; re-raise the first failure."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


def _assert_same(got: list, want: list, exact: bool) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if exact:
            np.testing.assert_array_equal(g, w)
        else:  # NumPy's BLAS may split a product differently under load
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_separate_modules_train_in_parallel(backend, two_core_threads):
    """Each thread trains its own module: every repeat equals the module's lone result
    (bit for bit on the native backend)."""
    alone = [_train_step(_module(i, backend), *_inputs(i)) for i in range(N_THREADS)]
    modules = [_module(i, backend) for i in range(N_THREADS)]
    results: dict[int, list] = {}

    def work(i):
        x, lengths = _inputs(i)
        results[i] = [_train_step(modules[i], x, lengths) for _ in range(REPEATS)]

    _run_threads(work, N_THREADS)
    for i in range(N_THREADS):
        for got in results[i]:
            _assert_same(got, alone[i], exact=backend == "native")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_one_shared_module_in_eval_mode(cell, backend, two_core_threads):
    """Threads share one module in eval mode, each with its own input (and lengths):
    each gets exactly what it gets alone."""
    m = cell(IN, H, num_layers=2, bidirectional=True, backend=backend, seed=0).eval()
    inputs = [_inputs(i) for i in range(N_THREADS)]
    alone = []
    for x, lengths in inputs:
        out, state = m(x, lengths=lengths)
        alone.append([out, *(state if isinstance(state, tuple) else (state,))])
    results: dict[int, list] = {}

    def work(i):
        x, lengths = inputs[i]
        results[i] = []
        for _ in range(REPEATS):
            out, state = m(x, lengths=lengths)
            results[i].append([out, *(state if isinstance(state, tuple) else (state,))])

    _run_threads(work, N_THREADS)
    for i in range(N_THREADS):
        for got in results[i]:
            _assert_same(got, alone[i], exact=backend == "native")


@needs_threads
def test_thread_count_changes_while_others_compute(two_core_threads):
    """One thread flips the core's thread count between 1 and 2 while the others train:
    results do not depend on the count, so they still equal the lone results bit for bit."""
    alone = [_train_step(_module(i, "native"), *_inputs(i)) for i in range(N_THREADS)]
    modules = [_module(i, "native") for i in range(N_THREADS)]
    results: dict[int, list] = {}
    finished: list[int] = []  # list.append is atomic

    def work(i):
        if i == N_THREADS:  # the extra thread: flip the count until the others finish
            n = 0
            while len(finished) < N_THREADS:
                rnnkit.set_num_threads(1 + n % 2)
                n += 1
                time.sleep(0.0005)
            return
        try:
            x, lengths = _inputs(i)
            results[i] = [_train_step(modules[i], x, lengths) for _ in range(REPEATS)]
        finally:
            finished.append(i)

    # No team_forms() here: the pool runs one team at a time, so whether any of these
    # concurrent calls gets a team depends on timing (a caller that finds the pool busy runs
    # alone, with the same bits); the single-caller thread tests check that teams form.
    _run_threads(work, N_THREADS + 1)
    for i in range(N_THREADS):
        for got in results[i]:
            _assert_same(got, alone[i], exact=True)
