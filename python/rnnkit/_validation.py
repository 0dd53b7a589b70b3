"""Checks of user arguments, shared by the recurrent modules, the layers of ``rnnkit.nn`` and
the package's functions. Each raises TypeError (wrong kind of value) or ValueError (wrong
value), naming the argument, what it received and what was expected; each returns the
value in the form the caller keeps.

The recurrent modules and the ``nn`` layers word a few checks differently (a positive
size, a floating-point array): both wordings are kept, as users and tests match them.
"""

from __future__ import annotations

import functools
import numbers
import os
from typing import Any

import numpy as np

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
_INT64_MAX = 2**63 - 1


def _is_int(value: Any) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


# -- configuration values ------------------------------------------------------------------


def check_positive_int(name: str, value: Any) -> int:
    """An int >= 1 (Python or NumPy integer; bools and floats are rejected)."""
    if not _is_int(value):
        raise TypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value}")
    return int(value)


def check_int_at_least(name: str, value: Any, minimum: int) -> int:
    """An int >= ``minimum`` (the layers' and the package functions' wording)."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_optional_int(name: str, value: Any) -> int | None:
    """None or any int (an index that may count from the end)."""
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(f"{name} must be an int or None, got {value!r}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_dropout(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"dropout must be a float in [0, 1), got {value!r} ({type(value).__name__})"
        )
    p = float(value)
    if not (0.0 <= p < 1.0):  # also rejects NaN
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")
    return p


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {expected}, got {value!r}")
    return value


def check_dtype(value: Any) -> np.dtype:
    """ "float32" / "float64", or the equivalent NumPy dtype or scalar type."""
    if isinstance(value, str):
        if value in DTYPES:
            return DTYPES[value]
    elif isinstance(value, np.dtype) or (
        isinstance(value, type) and issubclass(value, np.floating)
    ):
        dt = np.dtype(value)
        if dt in DTYPES.values():
            return dt
    raise ValueError(f"dtype must be 'float32' or 'float64', got {value!r}")


def check_seed(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(
            f"seed must be None or a non-negative int, got {value!r} ({type(value).__name__})"
        )
    if value < 0:
        raise ValueError(f"seed must be None or a non-negative int, got {value}")
    return int(value)


# -- memory --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _physical_memory_bytes() -> int | None:
    """Total physical memory, or None where the platform does not say (asked once: it is
    checked on every forward, where the two system calls were a measurable cost)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_nbytes(what: str, n_elements: int, itemsize: int, extra_bytes: int = 0) -> None:
    """Refuse an allocation that overflows int64 or cannot fit in this machine's memory.

    Called with exact Python integers *before* allocating, so that an absurd size gives a
    clear error instead of an overflowed size in the native code or the OOM killer.
    ``extra_bytes`` is memory needed besides the elements (Python object overhead).
    """
    nbytes = n_elements * itemsize + extra_bytes
    if n_elements > _INT64_MAX or nbytes > _INT64_MAX:
        raise ValueError(
            f"{what} would need {n_elements} elements ({nbytes} bytes), "
            f"which overflows a 64-bit size; reduce the sizes"
        )
    total = _physical_memory_bytes()
    if total is not None and nbytes > total:
        raise MemoryError(
            f"{what} would need {nbytes / 2**30:.1f} GiB, more than this machine's "
            f"{total / 2**30:.1f} GiB of memory; reduce the sizes"
        )


# -- arrays --------------------------------------------------------------------------------


def as_float_array(name: str, value: Any) -> np.ndarray:
    """``value`` as an ndarray of a real floating dtype (not yet converted or copied)."""
    if value is None:
        raise TypeError(f"{name} must be a floating-point array, got None")
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(
                f"{name} must be a floating-point array, got {type(value).__name__} "
                f"that NumPy cannot convert: {exc}"
            ) from exc
    if arr.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a real floating-point array (float32 or float64), "
            f"got dtype {arr.dtype}"
        )
    return arr


def check_float_kind(name: str, arr: np.ndarray, hint: str = "") -> None:
    """TypeError unless ``arr`` has a floating dtype (the ``nn`` layers' wording)."""
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}{hint}")


def as_layer_float(name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """A floating array-like converted to ``dtype``, C-contiguous (integer, bool, complex and
    object arrays are refused rather than silently converted)."""
    arr = np.asarray(value)
    hint = f" (convert it explicitly, e.g. x.astype(np.{dtype.name}))"
    check_float_kind(name, arr, hint)
    return np.ascontiguousarray(arr, dtype=dtype)


def as_indices(name: str, value: Any, upper: int) -> np.ndarray:
    """Integers in ``[0, upper)`` of any shape, as an int64 array."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= upper:
            raise ValueError(
                f"{name} must lie in [0, {upper - 1}], got values in [{lo}, {hi}] "
                f"(shape {arr.shape})"
            )
    return arr.astype(np.int64, copy=False)


def check_shape(name: str, arr: np.ndarray, expected: tuple[int, ...], meaning: str) -> None:
    if arr.shape != expected:
        raise ValueError(f"{name} must have shape {expected} {meaning}, got {arr.shape}")


def check_lengths(lengths: Any, T: int, B: int, unbatched: bool) -> np.ndarray | None:
    """``lengths`` as a C-contiguous int64 array (B,), each in 1..T; None stays None."""
    if lengths is None:
        return None
    try:
        arr = np.asarray(lengths)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"lengths must be an integer array of shape ({B},): {exc}") from exc
    if arr.dtype.kind not in "iu":  # bool is kind "b": rejected too
        raise TypeError(f"lengths must be integers, got dtype {arr.dtype}")
    if unbatched and arr.shape == ():
        arr = arr.reshape(1)
    if arr.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},) (one per sequence), got {arr.shape}")
    bad = np.flatnonzero((arr < 1) | (arr > T))
    if bad.size:
        b = int(bad[0])
        raise ValueError(
            f"lengths must be in 1..{T} (the sequence length), got lengths[{b}] = {arr[b]}"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_state_value(name: str, value: Any) -> np.ndarray:
    """A ``load_state_dict`` value (NumPy array, array-like or torch tensor) as a real
    numeric ndarray; ``name`` is how the message shows it."""
    if hasattr(value, "detach"):  # a torch tensor, possibly on a device
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} is not an array: {exc}") from exc
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


# torch.nn.RNN/LSTM/GRU arguments rnnkit does not take, and why.
_TORCH_ONLY_ARGUMENTS = {
    "device": (
        "rnnkit runs on the CPU on NumPy arrays (move tensors with .cpu().numpy(); "
        "the parameters are NumPy arrays)"
    ),
}
# Options only rnnkit.LSTM takes.
_LSTM_ONLY_ARGUMENTS = {
    "proj_size": "only LSTM has projections (proj_size), as in torch",
    "peepholes": "only rnnkit.LSTM has peepholes",
    "input_forget": "only rnnkit.LSTM has input_forget",
}


def refuse_arguments(module: str, unknown: dict[str, Any], taken: list[str]) -> None:
    """TypeError naming rnnkit.``module``, the first of its ``unknown`` keyword arguments
    and, for torch's and the LSTM's own arguments, why rnnkit does not take them there
    (else the arguments it takes: ``taken``)."""
    name = next(iter(unknown))
    why = _TORCH_ONLY_ARGUMENTS.get(name) or _LSTM_ONLY_ARGUMENTS.get(name)
    if why is None:
        why = "it takes " + ", ".join(taken)
    raise TypeError(f"rnnkit.{module} got an unexpected keyword argument {name!r}: {why}")


def refuse_packed_sequence(module: str, x: Any) -> None:
    """TypeError for a torch PackedSequence (recognised by its class name, so that torch
    need not be imported): rnnkit takes the padded array and the lengths instead."""
    if type(x).__name__ == "PackedSequence":
        raise TypeError(
            f"rnnkit.{module} does not take a PackedSequence as x: pass the padded array "
            f"(torch.nn.utils.rnn.pad_packed_sequence gives it, as .numpy()) and its "
            f"lengths= instead"
        )
