"""The mixed loop: rnnkit training next to NumPy's BLAS, as in a real training script.

One iteration is a training step of ``rnnkit.LSTM(64, 64)`` on x (12, 32, 64) (forward +
backward) followed by one NumPy float32 (384, 64) @ (64, 256) product. Both libraries
keep a thread pool (rnnkit's OpenMP team, OpenBLAS's threads); on a machine with few
cores the two pools can wait on each other. The loop runs in fresh child processes
(``python -m rnnkit.bench._child mixed ITERATIONS``) under two settings, alternated:

    default: no thread environment variable (every pool at its own default)
    pinned:  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 (every pool one thread)

and reports the median and 90th percentile of the iteration times of each setting, all
its children's iterations together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from rnnkit.bench import blas

SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "pinned": {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
}
T, B, I, H = 12, 32, 64, 64  # noqa: E741 (the LSTM's sizes: x is (T, B, I))
MATMUL_SHAPES: tuple[tuple[int, int], tuple[int, int]] = ((384, 64), (64, 256))
WARMUP: int = 5


def loop_here(iterations: int, seed: int = 0) -> list[float]:
    """Seconds of each of ``iterations`` timed iterations in this process, after
    min(WARMUP, iterations) untimed ones."""
    import rnnkit

    if iterations < 1:
        raise ValueError(f"loop_here: iterations must be >= 1, got {iterations}")
    rng = np.random.default_rng(seed)
    module = rnnkit.LSTM(I, H, dtype="float32", seed=seed)
    module.train()
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    grad_out = rng.standard_normal((T, B, H)).astype(np.float32)
    a = rng.standard_normal(MATMUL_SHAPES[0]).astype(np.float32)
    b = rng.standard_normal(MATMUL_SHAPES[1]).astype(np.float32)
    warmup = min(WARMUP, iterations)
    times = []
    for i in range(warmup + iterations):
        t0 = time.perf_counter()
        module(x)
        module.backward(grad_out)
        a @ b
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def _child_env(setting: str) -> dict:
    """The parent's environment without any thread variable, plus the setting's."""
    from rnnkit.bench.runner import subprocess_env

    env = subprocess_env(1)  # this rnnkit importable; its thread variables are replaced
    for var in blas.THREAD_ENV_VARS:
        env.pop(var, None)
    env.update(SETTINGS[setting])
    return env


def _run_child(setting: str, iterations: int, seed: int) -> list[float]:
    cmd = [sys.executable, "-m", "rnnkit.bench._child", "mixed", str(iterations), str(seed)]
    proc = subprocess.run(cmd, env=_child_env(setting), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"mixed loop child ({setting}) failed (exit {proc.returncode}): "
            f"{proc.stderr.strip().splitlines()[-1:] or ''}"
        )
    return json.loads(proc.stdout)["times_s"]


def measure(iterations: int, rounds: int, seed: int = 0) -> dict:
    """Both settings, ``rounds`` children each, alternated (default, pinned, default, ...);
    returns setting -> median_ms, p90_ms, iterations, children, and the environment."""
    if rounds < 1:
        raise ValueError(f"mixed.measure: rounds must be >= 1, got {rounds}")
    samples: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for _ in range(rounds):
        for setting in SETTINGS:
            samples[setting] += _run_child(setting, iterations, seed)
    out = {}
    for setting, times in samples.items():
        ms = np.asarray(times) * 1e3
        out[setting] = {
            "env": SETTINGS[setting],
            "median_ms": float(np.median(ms)),
            "p90_ms": float(np.percentile(ms, 90)),
            "iterations": len(times),
            "children": rounds,
        }
    return {
        "description": (
            f"rnnkit.LSTM({I}, {H}) forward + backward on x ({T}, {B}, {I}) plus one NumPy "
            f"{MATMUL_SHAPES[0]} @ {MATMUL_SHAPES[1]} float32 per iteration"
        ),
        "cores": os.cpu_count(),
        "settings": out,
    }
