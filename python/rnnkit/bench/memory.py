"""Peak memory of one training step, measured in a fresh subprocess per library and case.

Method (Linux): in a new process that imports only the library measured, build the module
and inputs, run one training step as warm-up (so lazily created buffers such as parameter
gradients, packed weights and torch's primitive caches exist before the measurement),
reset the peak with ``echo 5 > /proc/self/clear_refs`` (VmHWM := VmRSS), read it, run one
more training step (forward + backward) and read VmHWM again. The difference is the
resident memory the step itself added at its peak (state kept for backward, workspaces,
results). The subprocess runs with MALLOC_MMAP_THRESHOLD_ fixed at 64 KiB so that glibc
returns large freed blocks to the OS; otherwise memory freed by the warm-up step could stay
resident, count in the baseline and hide the step's peak. Precision: the kernel updates its
RSS counters lazily (per thread every 64 page faults, or per CPU), so values are good to a
few hundred KiB; tiny steps may read 0 or slightly below. rnnkit's pool of large buffers
(``rnnkit.memory_pool_info``) is emptied before the measured step, so that the blocks the
warm-up left in it do not serve the step from the baseline: the step's buffers are counted
as if newly allocated, as torch's are. Where /proc is absent or
clear_refs is not writable the value is None with the reason in ``error``.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from rnnkit.bench.configs import Config

MALLOC_ENV: dict[str, str] = {"MALLOC_MMAP_THRESHOLD_": "65536"}
LIBRARIES: tuple[str, ...] = ("rnnkit", "torch")


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field} field")


def measure_here(
    library: str, cell: str, config: Config, threads: int, seed: int, rnnkit_backend: str
) -> dict:
    """Run in the fresh subprocess: the measurement described in the module docstring."""
    from rnnkit.bench import impls

    if library == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        import rnnkit

        rnnkit.set_num_threads(threads)
    impl = impls.build([library], cell, config, seed, rnnkit_backend)[library]
    impl.set_mode("training")
    impl.call()  # warm-up
    gc.collect()
    if library == "rnnkit":
        rnnkit.release_cached_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_bytes("VmHWM")  # = VmRSS at the reset: the same counter as the peak
    except OSError as e:
        return {"peak_step_bytes": None, "error": f"cannot measure without /proc: {e}"}
    impl.call()
    peak = _status_bytes("VmHWM")
    return {"peak_step_bytes": peak - before, "rss_before_bytes": before, "error": None}


def measure(
    library: str,
    cell: str,
    config: Config,
    threads: int,
    seed: int = 0,
    rnnkit_backend: str = "native",
    timeout: float = 600,
) -> dict:
    """Launch the subprocess for one library and case; returns its JSON answer."""
    if library not in LIBRARIES:
        raise ValueError(f"memory.measure: library must be one of {LIBRARIES}, got {library!r}")
    from rnnkit.bench.runner import subprocess_env

    env = subprocess_env(threads)
    env.update(MALLOC_ENV)
    args = [library, cell, str(config.T), str(config.B), str(config.I), str(config.H)]
    args += [str(threads), str(seed), rnnkit_backend]
    cmd = [sys.executable, "-m", "rnnkit.bench._child", "memory", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"peak_step_bytes": None, "error": f"exit {proc.returncode}: {tail[0]}"}
    return json.loads(lines[-1])
