"""What the numbers were measured on: versions, CPU model, cores."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys

import numpy as np

from rnnkit.bench.configs import available_cores


def _cpuinfo() -> list[str]:
    """Lines of /proc/cpuinfo; empty where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.readlines()
    except OSError:
        return []


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    for line in _cpuinfo():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list[str]:
    """The SIMD flags that matter to the kernels (empty without /proc/cpuinfo)."""
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile")
    for line in _cpuinfo():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [w for w in wanted if w in present]
    return []


def numpy_blas() -> str:
    """NumPy's BLAS name and version, as numpy's build configuration states it."""
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except (TypeError, KeyError, ValueError):
        return "unknown"


def load_average() -> float | None:
    """The 1-minute load average: runnable processes, ours included (None where unknown)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # no getloadavg on this platform
        return None


def describe() -> dict:
    """Versions and machine, for the report header and the JSON ``meta``."""
    import rnnkit

    info = {
        "python": platform.python_version(),
        "rnnkit": rnnkit.__version__,
        "rnnkit_openmp": bool(rnnkit.have_openmp()),
        "numpy": np.__version__,
        "numpy_blas": numpy_blas(),
        "torch": None,
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": available_cores(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }
    if importlib.util.find_spec("torch") is not None:
        import torch

        info["torch"] = torch.__version__
    return info
