"""Interleaved timing: warm-up, then repeats that alternate implementations (A B C A B C ...).

Thread pools: after a call, an implementation's worker threads keep spinning for a while
(OpenBLAS for about 2^28 cycles, ~0.1 s; OpenMP runtimes less), and on a machine with few
cores they would steal the next implementation's cores: measured here, an LSTM at 2 threads
ran 1.7x slower right after the NumPy reference than alone. So at more than one thread the
run sleeps ``settle_s`` before each sample that follows another implementation's.

Each sample runs an implementation's call ``number`` times back to back and records the
mean; ``number`` is chosen from the warm-up so that one sample lasts about
``min_sample_s`` (short calls would otherwise be dominated by timer noise). Alternating
implementations within each round spreads any drift of the machine (other processes,
frequency changes) over all of them instead of biasing one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

MAX_NUMBER: int = 1000
MIN_REPEATS: int = 3
LONG_CALL_S: float = 1.0
# Repeats of one implementation whose slowest is more than this many times its fastest
# measured a machine that changed under them (other processes, frequency, thread pools
# waiting for a core): a ratio built from them is reported as unreliable, not as a fact.
UNRELIABLE_SPREAD: float = 2.0


def summarize(samples: list[float], number: int) -> dict:
    """Median, min, quartiles and IQR (seconds per call) of the samples, and their spread."""
    arr = np.asarray(samples, dtype=np.float64)
    q1, med, q3 = (float(v) for v in np.percentile(arr, [25, 50, 75]))
    return {
        "median_s": med,
        "min_s": float(arr.min()),
        "q1_s": q1,
        "q3_s": q3,
        "iqr_s": q3 - q1,
        "repeats": int(arr.size),
        "number": number,
        "spread": spread(samples),
        "samples_s": [float(v) for v in arr],
    }


def spread(samples: list[float]) -> float:
    """Slowest over fastest of an implementation's repeats (1.0 for a single repeat)."""
    if not samples:
        raise ValueError("spread: no samples")
    fastest = min(samples)
    return max(samples) / fastest if fastest > 0 else math.inf


def _settle(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def _time_once(fn: Callable[[], object], number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def time_interleaved(
    calls: dict[str, Callable[[], object]],
    repeats: int,
    repeat_caps: dict[str, int] | None = None,
    warmup: int = 2,
    min_sample_s: float = 0.05,
    budget_s: float | None = None,
    settle_s: float = 0.0,
) -> dict[str, dict]:
    """Time every call in ``calls`` (name -> zero-argument callable); returns name ->
    ``summarize(...)``. ``repeat_caps`` limits the repeats of slow implementations: they
    take part in the first ``cap`` rounds only. ``budget_s`` bounds each implementation's
    timed repeats to about that many seconds (at least MIN_REPEATS of them), so that a slow
    implementation cannot stall the run. ``settle_s``: the pause before each warm-up and
    each sample (see the module docstring)."""
    if repeats < 1:
        raise ValueError(f"time_interleaved: repeats must be >= 1, got {repeats}")
    caps = dict(repeat_caps or {})
    numbers = {}
    for name, fn in calls.items():
        t = 0.0
        _settle(settle_s)
        for _ in range(max(1, warmup)):
            t = _time_once(fn, 1)  # the last warm-up call, after first-call costs
            if t >= LONG_CALL_S:  # first-call costs are noise next to it: warm enough
                break
        numbers[name] = int(min(MAX_NUMBER, max(1, math.ceil(min_sample_s / max(t, 1e-9)))))
        if budget_s is not None:
            affordable = max(MIN_REPEATS, int(budget_s / max(t * numbers[name], 1e-9)))
            caps[name] = min(caps.get(name, repeats), affordable)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(repeats):
        for name, fn in calls.items():
            if r < caps.get(name, repeats):
                if len(calls) > 1:
                    _settle(settle_s)
                samples[name].append(_time_once(fn, numbers[name]))
    return {name: summarize(s, numbers[name]) for name, s in samples.items()}
