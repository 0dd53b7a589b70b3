"""rnnkit: Elman RNN, LSTM and GRU with a C++ core and a NumPy reference."""

from rnnkit import _core, nn, optim
from rnnkit.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.clip import clip_grad_norm, clip_grad_value
from rnnkit.modules import GRU, LSTM, RNN

__version__: str = _core.__version__


def get_num_threads() -> int:
    """Number of threads the native core uses (OMP_NUM_THREADS or the core count by default)."""
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads the native core uses; ``n`` must be an integer >= 1."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int >= 1, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _core.set_num_threads(n)


def have_openmp() -> bool:
    """True when the native core was compiled with OpenMP."""
    return _core.have_openmp()


__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "__version__",
    "get_num_threads",
    "set_num_threads",
    "have_openmp",
    "nn",
    "optim",
    "clip_grad_norm",
    "clip_grad_value",
    "save_checkpoint",
    "load_checkpoint",
]
