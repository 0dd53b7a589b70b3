"""The native core's pool of large buffers (rnnkit.memory_pool_info & co.).

Freed buffers of 1 MiB and more are kept for the next call instead of going back to the
OS. What matters: results do not depend on it (a reused block holds the previous call's
values, where a fresh one is zeros: a read of an unwritten element would show here), the
limit is obeyed, and release_cached_memory empties it.
"""

from __future__ import annotations

import ast
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import rnnkit

pytestmark = pytest.mark.native

MIB = 1 << 20
# Big enough that the saved state and the backward's gate gradients are pooled (> 1 MiB; the
# smallest, a one-direction RNN's cache, holds one layer output of T*B*H floats = 1 MiB).
T, B, H = 64, 32, 128


@pytest.fixture
def pool_limit():
    """Restores the pool limit the test found, and empties the pool."""
    before = rnnkit.memory_pool_info()["limit_bytes"]
    yield
    rnnkit.set_memory_pool_limit(before)
    rnnkit.release_cached_memory()


def _train_step(model, x: np.ndarray, dout: np.ndarray) -> list[np.ndarray]:
    """Forward and backward; every output and gradient, copied."""
    model.zero_grad()
    out, state = model(x)
    dx, _ = model.backward(dout)
    states = list(state) if isinstance(state, tuple) else [state]
    grads = [g.copy() for g in model.grads.values()]
    return [out.copy(), dx.copy(), *[s.copy() for s in states], *grads]


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_reused_blocks_give_the_same_bits(cls, bidirectional, pool_limit):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    model = cls(H, H, num_layers=2, bidirectional=bidirectional, dtype=np.float32)
    dout = rng.standard_normal((T, B, (2 if bidirectional else 1) * H)).astype(np.float32)

    rnnkit.set_memory_pool_limit(0)
    fresh = _train_step(model, x, dout)
    assert rnnkit.memory_pool_info()["cached_bytes"] == 0

    rnnkit.set_memory_pool_limit(1 << 30)
    # Fill the pool with blocks holding other values, then reuse them twice.
    _train_step(model, -3 * x, 7 * dout)
    assert rnnkit.memory_pool_info()["cached_bytes"] >= MIB
    for _ in range(2):
        pooled = _train_step(model, x, dout)
        for a, b in zip(fresh, pooled, strict=True):
            np.testing.assert_array_equal(a, b)


def test_limit_and_release(pool_limit):
    model = rnnkit.LSTM(H, H, dtype=np.float32)
    x = np.ones((T, B, H), np.float32)
    rnnkit.set_memory_pool_limit(1 << 30)
    _train_step(model, x, np.ones((T, B, H), np.float32))
    cached = rnnkit.memory_pool_info()["cached_bytes"]
    assert MIB <= cached <= 1 << 30
    # A lower limit frees the excess at once.
    rnnkit.set_memory_pool_limit(MIB)
    info = rnnkit.memory_pool_info()
    assert info["limit_bytes"] == MIB and info["cached_bytes"] <= MIB
    rnnkit.set_memory_pool_limit(1 << 30)
    _train_step(model, x, np.ones((T, B, H), np.float32))
    cached = rnnkit.memory_pool_info()["cached_bytes"]
    assert rnnkit.release_cached_memory() == cached
    assert rnnkit.memory_pool_info()["cached_bytes"] == 0
    assert rnnkit.release_cached_memory() == 0


@pytest.mark.parametrize(
    "value, error, match",
    [
        (-1, ValueError, "nbytes must be >= 0, got -1"),
        (1.5, TypeError, "nbytes must be an int >= 0, got float"),
        (True, TypeError, "nbytes must be an int >= 0, got bool"),
        ("1", TypeError, "nbytes must be an int >= 0, got str"),
    ],
)
def test_bad_limit(value, error, match, pool_limit):
    with pytest.raises(error, match=match):
        rnnkit.set_memory_pool_limit(value)


def test_huge_limit_is_accepted(pool_limit):
    rnnkit.set_memory_pool_limit(10**30)
    assert rnnkit.memory_pool_info()["limit_bytes"] == 2**62


def _run_in_fresh_process(script: str) -> list:
    """The list that ``script`` prints last, run by a new interpreter (glibc's heap in
    its first state)."""
    done = subprocess.run(
        [sys.executable, "-c", script], env=os.environ.copy(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


# Run in a fresh process: a training step whose saved state (T=128, B=32, H=256: 16 MiB of
# gates) comes from the pool, then four 6 MiB NumPy arrays made and freed eight times.
_NEIGHBOUR_SCRIPT = """
import resource, numpy as np, rnnkit
rnnkit.set_num_threads(1)
model = rnnkit.LSTM(64, 256)
model(np.ones((128, 32, 64), np.float32))
model.backward(np.ones((128, 32, 256), np.float32), (None, None))
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(6 << 20, np.uint8) for _ in range(4)]
    del arrays
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's heap policy")
def test_pooled_blocks_leave_the_neighbours_heap_resident():
    """glibc keeps a program's freed heap space (instead of returning it to the kernel,
    to be faulted in again) up to twice the largest mapped block it has seen freed. The
    pool frees each new block once so that glibc sees its size; without that, the other
    large temporaries of the process (here NumPy's; in a torch model the logits and their
    gradients) were returned and faulted in again on every iteration (~2000 page faults
    each)."""
    if rnnkit.memory_pool_info()["limit_bytes"] == 0:
        pytest.skip("this build frees every block at once (AddressSanitizer builds)")
    faults = _run_in_fresh_process(_NEIGHBOUR_SCRIPT)
    assert max(faults[2:]) < 100, faults


_RELEASE_SCRIPT = """
import numpy as np, rnnkit
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
rnnkit.set_num_threads(1)
model = rnnkit.LSTM(256, 256)
model(np.ones((100, 32, 256), np.float32))
model.backward(np.ones((100, 32, 256), np.float32), (None, None))
before = resident()
freed = rnnkit.release_cached_memory()
print([freed, before - resident()])
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc/self/statm")
def test_released_blocks_leave_the_process():
    """release_cached_memory hands the pages of the freed blocks back to the kernel (the
    blocks live on glibc's heap, which would otherwise keep them for later allocations)."""
    if rnnkit.memory_pool_info()["limit_bytes"] == 0:
        pytest.skip("this build frees every block at once (AddressSanitizer builds)")
    freed, resident_drop = _run_in_fresh_process(_RELEASE_SCRIPT)
    assert freed >= 16 * MIB
    assert resident_drop >= 0.9 * freed, (freed, resident_drop)
