"""Between the user's layouts and the backends' time-major one.

Users pass x as (T, B, I), (B, T, I) with batch_first, or unbatched (T, I), and states as
(L*D, B, H) or unbatched (L*D, H), the LSTM's as a tuple (h, c). The backends only see
time-major (T, B, F) arrays and (L*D, B, H) states, C-contiguous, of the module's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit._validation import as_float_array, check_shape


def input_to_time_major(arr: np.ndarray, batch_first: bool) -> tuple[np.ndarray, bool]:
    """x as a time-major view (T, B, I) (not yet copied) and whether it was unbatched."""
    if arr.ndim == 3:
        return (arr.transpose(1, 0, 2) if batch_first else arr), False  # (B, T, I) -> (T, B, I)
    if arr.ndim == 2:
        return arr[:, None, :], True  # (T, I) -> (T, 1, I)
    layout = "(B, T, I)" if batch_first else "(T, B, I)"
    raise ValueError(f"x must be 3-D {layout} or unbatched 2-D (T, I), got shape {arr.shape}")


def output_to_time_major(
    name: str, value: Any, T: int, B: int, features: int, unbatched: bool, batch_first: bool
) -> np.ndarray:
    """A gradient of out, in out's layout, as a time-major view (T, B, features)."""
    g = as_float_array(name, value)
    if unbatched:
        expected: tuple[int, ...] = (T, features)
    else:
        expected = (B, T, features) if batch_first else (T, B, features)
    check_shape(name, g, expected, "(the shape of the forward pass's out)")
    if unbatched:
        return g[:, None, :]
    return g.transpose(1, 0, 2) if batch_first else g


def to_user_layout(a: np.ndarray, unbatched: bool, batch_first: bool) -> np.ndarray:
    """A time-major (T, B, F) array in the layout of the user's x."""
    if unbatched:
        return a[:, 0, :]
    if batch_first:
        return np.ascontiguousarray(a.transpose(1, 0, 2))
    return a


def split_state(
    arg: str, value: Any, parts: tuple[str, str], module: str, has_cell: bool
) -> tuple[Any, Any]:
    """The two parts (h, c) of a user's state argument ``arg``; c is None without a cell
    state. The LSTM takes a tuple ``parts`` (either may be None), the others a bare h."""
    if has_cell:
        if value is None:
            return None, None
        if not isinstance(value, (tuple, list)):
            raise TypeError(
                f"{arg} for {module} must be a tuple ({parts[0]}, {parts[1]}) "
                f"(either may be None), got {type(value).__name__}"
            )
        if len(value) != 2:
            raise ValueError(
                f"{arg} for {module} must be a tuple ({parts[0]}, {parts[1]}), "
                f"got length {len(value)}"
            )
        return value[0], value[1]
    if isinstance(value, (tuple, list)):
        raise TypeError(
            f"{arg} for {module} must be an array {parts[0]} or None, not a "
            f"{type(value).__name__} (only LSTM takes a tuple ({parts[0]}, {parts[1]}))"
        )
    return value, None


def state_to_stack(
    name: str,
    value: Any,
    stack: tuple[int, int, int],
    unbatched: bool,
    dtype: np.dtype,
    width: str = "hidden_size",
) -> np.ndarray:
    """A user state -> C-contiguous ``stack`` = (L*D, B, H) of ``dtype`` (zeros if None).
    ``width`` names the argument that sets the last dimension in messages ("proj_size"
    for an LSTM's h with a projection)."""
    if value is None:
        return np.zeros(stack, dtype=dtype)
    LD, B, H = stack
    arr = as_float_array(name, value)
    if unbatched:
        check_shape(name, arr, (LD, H), f"(num_layers*num_directions, {width})")
    else:
        check_shape(name, arr, stack, f"(num_layers*num_directions, batch, {width})")
    return np.ascontiguousarray(arr.reshape(stack), dtype=dtype)


def state_to_user(a: np.ndarray, unbatched: bool) -> np.ndarray:
    """A (L*D, B, H) state in the layout of the user's x: (L*D, H) when unbatched."""
    return a[:, 0, :] if unbatched else a
