"""One module used from several threads at once: eval-mode forwards share it; a training
forward or a backward while another thread is inside the module's forward or backward
raises RuntimeError saying so, and leaves the module usable.

To hold a thread inside a forward, x is an array-like whose conversion to an array (done
inside forward) waits for an event.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import rnnkit
from rnnkit import nn

T, B, IN, H = 4, 2, 3, 5
BUSY = "is being used by another thread"


class _HeldArray:
    """An array-like whose conversion signals ``entered`` and then waits for ``release``."""

    def __init__(self, arr: np.ndarray) -> None:
        self.arr = arr
        self.entered = threading.Event()
        self.release = threading.Event()

    def __array__(self, dtype=None, copy=None):
        self.entered.set()
        assert self.release.wait(timeout=60), "the test never released the held forward"
        return self.arr if dtype is None else self.arr.astype(dtype)


def _hold_forward(module, arr: np.ndarray) -> tuple[threading.Thread, _HeldArray, list]:
    """Start module(held arr) in a thread and wait until it is inside forward."""
    held = _HeldArray(arr)
    results: list = []
    thread = threading.Thread(target=lambda: results.append(module(held)))
    thread.start()
    assert held.entered.wait(timeout=60)
    return thread, held, results


def _finish(thread: threading.Thread, held: _HeldArray, results: list) -> None:
    held.release.set()
    thread.join(timeout=60)
    assert not thread.is_alive() and len(results) == 1


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((T, B, IN)).astype(np.float32)


@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("cell", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_training_forward_while_another_thread_is_inside(cell, backend):
    m = cell(IN, H, backend=backend, seed=0)
    thread, held, results = _hold_forward(m, _x())  # a training forward, held inside
    with pytest.raises(RuntimeError, match=f"{cell.__name__} {BUSY}"):
        m(_x(1))  # training forward
    with pytest.raises(RuntimeError, match=BUSY):
        m.backward(np.zeros((T, B, H)))
    m.eval()
    with pytest.raises(RuntimeError, match=BUSY):
        m(_x(1))  # even eval: it would drop what the held training forward saves
    m.train()
    _finish(thread, held, results)
    # The held forward completed and saved its state; the module is usable again.
    dx, _ = m.backward(np.ones((T, B, H), np.float32))
    assert dx.shape == (T, B, IN)
    m(_x(1))


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_eval_forwards_share_a_module_but_training_waits_for_none(backend):
    m = rnnkit.LSTM(IN, H, backend=backend, seed=0).eval()
    want, _ = m(_x())
    thread, held, results = _hold_forward(m, _x())  # an eval forward, held inside
    got, _ = m(_x())  # another eval forward at the same time: fine
    np.testing.assert_array_equal(got, want)
    m.train()
    with pytest.raises(RuntimeError, match=BUSY):
        m(_x())  # a training forward while the eval one runs
    _finish(thread, held, results)
    np.testing.assert_array_equal(results[0][0], want)
    out, _ = m(_x())  # nobody inside any more
    m.backward(np.ones_like(out))


def test_nn_layers_follow_the_same_rule():
    lin = nn.Linear(IN, 2, seed=0)
    thread, held, results = _hold_forward(lin, _x())
    with pytest.raises(RuntimeError, match=f"Linear {BUSY}"):
        lin(_x())
    with pytest.raises(RuntimeError, match=BUSY):
        lin.backward(np.zeros((T, B, 2)))
    _finish(thread, held, results)
    assert lin.backward(np.ones((T, B, 2))).shape == (T, B, IN)

    lin.eval()
    thread, held, results = _hold_forward(lin, _x())
    got = lin(_x())  # eval forwards share the layer
    _finish(thread, held, results)
    np.testing.assert_array_equal(got, results[0])


def test_many_threads_training_one_module_get_results_or_the_error():
    """Threads hammering one module in training mode: each call either works or raises
    the busy RuntimeError; nothing else happens and the module still works afterwards."""
    m = rnnkit.GRU(IN, H, num_layers=2, seed=0)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    unexpected: list[BaseException] = []

    def work():
        barrier.wait()
        for _ in range(50):
            try:
                out, _ = m(_x())
                m.backward(np.ones_like(out))
                outcomes.append("ok")
            except RuntimeError as exc:
                # Busy, or another thread's forward replaced or consumed this one's.
                if BUSY in str(exc) or "backward needs a preceding forward" in str(exc):
                    outcomes.append("refused")
                else:
                    unexpected.append(exc)
            except BaseException as exc:  # collected and re-raised in the main thread
                unexpected.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive()
    assert not unexpected, unexpected[0]
    assert len(outcomes) == 200 and "ok" in outcomes
    m.zero_grad()
    out, _ = m(_x())
    m.backward(np.ones_like(out))
    assert all(np.isfinite(g).all() for g in m.grads.values())
