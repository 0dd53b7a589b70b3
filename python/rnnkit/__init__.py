"""rnnkit: Elman RNN, LSTM and GRU with a C++ core and a NumPy reference."""

from rnnkit import _core, nn, optim
from rnnkit._validation import check_int_at_least
from rnnkit.activations import Activation
from rnnkit.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.clip import clip_grad_norm, clip_grad_value
from rnnkit.modules import GRU, LSTM, RNN

__version__: str = _core.__version__


def get_num_threads() -> int:
    """Number of threads the native core uses: by default OMP_NUM_THREADS when set, else
    the cores this process may run on (the core's own pool; OpenMP is not used)."""
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads the native core uses; ``n`` must be an integer >= 1."""
    _core.set_num_threads(check_int_at_least("set_num_threads: n", n, 1))


def cpu_info() -> dict:
    """What the native core found and uses on this CPU: ``isa`` (the kernels running:
    "avx512", "avx2" or "plain"), ``best_isa``, ``compiled_isas``, ``available_isas``
    (those this CPU runs), the CPU flags ``avx2``, ``fma``, ``avx512f``, ``openmp`` and
    ``threads`` (the current thread count)."""
    return dict(_core.cpu_info())


def memory_pool_info() -> dict[str, int]:
    """What the native core's pool of large buffers holds: ``cached_bytes`` (freed blocks
    kept for reuse) and ``limit_bytes`` (the most it keeps; default 1 GiB)."""
    return {"cached_bytes": _core.pool_cached_bytes(), "limit_bytes": _core.pool_limit_bytes()}


def set_memory_pool_limit(nbytes: int) -> None:
    """Set the most bytes of freed large buffers the native core keeps for reuse; blocks
    beyond it are freed now. 0 turns the pool off (every buffer is returned at once)."""
    nbytes = check_int_at_least("set_memory_pool_limit: nbytes", nbytes, 0)
    _core.set_pool_limit_bytes(min(nbytes, 2**62))


def release_cached_memory() -> int:
    """Free the large buffers the native core keeps for reuse; returns the bytes freed."""
    return _core.pool_release_cached()


def have_openmp() -> bool:
    """False: the native core runs its parallel work on its own thread pool, not OpenMP
    (see ``have_threads``)."""
    return _core.have_openmp()


def have_threads() -> bool:
    """True when the native core was built with its thread pool (more than one thread
    possible; CMake option ``RNNKIT_THREADS``). Its workers sleep within microseconds of
    a call, leaving the cores to NumPy's BLAS or torch."""
    return _core.have_threads()


__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "Activation",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "__version__",
    "get_num_threads",
    "set_num_threads",
    "have_openmp",
    "have_threads",
    "cpu_info",
    "memory_pool_info",
    "set_memory_pool_limit",
    "release_cached_memory",
    "nn",
    "optim",
    "clip_grad_norm",
    "clip_grad_value",
    "save_checkpoint",
    "load_checkpoint",
]
