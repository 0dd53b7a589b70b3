"""rnnkit's parallel regions on torch's own OpenMP threads.

torch's CPU build runs its parallel work on GNU OpenMP (libgomp), whose idle workers keep
spinning for a while after each torch call. rnnkit's own worker threads then find their
cores taken, and a team of them stalls at its per-step barriers whenever torch and rnnkit
alternate (a training loop with ``rnnkit.torch.LSTM`` in it). Opened on torch's libgomp
instead, rnnkit's regions run on those very workers, which take the team at once.

Importing ``rnnkit.torch`` calls :func:`use_torch_threads` on the importing thread. Only
that thread's large regions move (libgomp keeps one pool of workers per thread that opens
regions, so regions from more threads would mean more spinning workers); rnnkit's calls
from other threads, and every call of a child of ``fork()``, run on rnnkit's own pool. The
thread count is still rnnkit's (``rnnkit.set_num_threads``, or torch's count through the
modules of ``rnnkit.torch``), and the results are the same bits either way.
"""

from __future__ import annotations

import ctypes
import os

import torch

from rnnkit import _core

__all__ = ["use_torch_threads", "torch_threads_in_use", "torch_openmp_library"]

# The entries the core calls, in the order _core._use_openmp_runtime takes them.
_ENTRIES = ("GOMP_parallel", "omp_get_thread_num", "omp_get_num_threads", "omp_get_level")


def torch_openmp_library() -> str | None:
    """The path of the GNU OpenMP library (libgomp) that torch loaded into this process, or
    None when torch runs its parallel work otherwise (another ATen parallel backend, or
    Intel's OpenMP): then rnnkit keeps its own threads."""
    if "ATen parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    # torch's own copy: in its package (torch/lib) or beside it (torch.libs, where wheels
    # repaired by auditwheel keep their libraries), not another package's libgomp.
    package = os.path.dirname(os.path.realpath(torch.__file__))
    torch_dirs = (package + os.sep, package + ".libs" + os.sep)
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            # Each line: address perms offset dev inode [path]; anonymous maps have no path.
            fields = (line.split(maxsplit=5) for line in maps)
            paths = {f[5].strip() for f in fields if len(f) == 6}
    except OSError:  # not Linux: no way to tell which library torch loaded
        return None
    found = sorted(
        p
        for p in paths
        if os.path.basename(p).startswith("libgomp") and os.path.realpath(p).startswith(torch_dirs)
    )
    return found[0] if found else None


def use_torch_threads(on: bool = True) -> bool:
    """Run rnnkit's large parallel regions opened on the calling thread on torch's OpenMP
    threads (``on=True``), or every thread's on rnnkit's own pool again (``on=False``).

    Large: at least 2^27 multiply-adds, such as a forward's time loop over a long sequence.
    Smaller regions (a backward's chunks of steps, GEMM splits) stay on rnnkit's pool: an
    OpenMP region waits at its end for every thread it woke, a late one too.

    Returns whether the calling thread's regions now run on torch's threads: False with
    ``on=True`` when torch's libgomp is not found (see :func:`torch_openmp_library`), and
    always False in a core built without threads.
    """
    if not isinstance(on, bool):
        raise TypeError(f"use_torch_threads: on must be a bool, got {type(on).__name__}")
    if not on or not _core.have_threads():
        _core._stop_openmp_runtime()
        return False
    path = torch_openmp_library()
    if path is None:
        _core._stop_openmp_runtime()
        return False
    library = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_NOW)
    addresses = [ctypes.cast(getattr(library, name), ctypes.c_void_p).value for name in _ENTRIES]
    _core._use_openmp_runtime(*addresses)
    return True


def torch_threads_in_use() -> bool:
    """True when rnnkit's parallel regions opened on the calling thread run on torch's
    OpenMP threads (see :func:`use_torch_threads`)."""
    return _core._openmp_runtime_in_use()
