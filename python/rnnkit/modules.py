"""The public recurrent modules: :class:`RNN`, :class:`LSTM` and :class:`GRU`.

One base class, :class:`_RecurrentBase`, owns everything the three share: argument checks,
parameters under PyTorch's names, ``state_dict`` / ``load_state_dict``, input validation and
layout conversion, dropout masks, and the training cache between ``forward`` and
``backward``. The numerical work is done by a backend that implements the internal contract
(``stack_forward`` / ``stack_backward``): ``rnnkit.reference`` (NumPy) or ``rnnkit._native``
(the C++ core). Backends only ever see time-major, C-contiguous arrays of one dtype.

Parameters are read on every call: the module passes its live parameter arrays to the
backend each time, so in-place edits of the arrays returned by :meth:`parameters` (by an
optimiser, say) are always seen. ``_version`` is a counter bumped whenever the module itself
rewrites its parameters (``load_state_dict``); a backend may use it as a hint, never as a
guarantee that the arrays did not change.
"""

from __future__ import annotations

import abc
import functools
import math
import numbers
import os
from collections.abc import Mapping
from typing import Any, Union

import numpy as np

__all__ = ["RNN", "LSTM", "GRU"]

_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
_BACKENDS = ("native", "numpy")
_NONLINEARITIES = ("tanh", "relu")
_INT64_MAX = 2**63 - 1
# Bytes Python spends per parameter array besides its data (the ndarray object, its name,
# the dict slots); measured about 540 for a parameter and its gradient together.
_ARRAY_OVERHEAD = 256

ArrayLike = Any  # anything np.asarray accepts (NumPy arrays, nested lists, CPU tensors)
# A recurrent state as the user sees it: h for RNN/GRU, (h, c) for LSTM.
State = Union[np.ndarray, tuple[np.ndarray, np.ndarray]]


# ----------------------------------------------------------------------------------------
# Argument checks shared by the constructors.
# ----------------------------------------------------------------------------------------


def _check_positive_int(name: str, value: Any) -> int:
    """An int >= 1 (Python or NumPy integer; bools and floats are rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def _check_dropout(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"dropout must be a float in [0, 1), got {value!r} ({type(value).__name__})"
        )
    p = float(value)
    if not (0.0 <= p < 1.0):  # also rejects NaN
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")
    return p


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {expected}, got {value!r}")
    return value


def _check_dtype(value: Any) -> np.dtype:
    """ "float32" / "float64", or the equivalent NumPy dtype or scalar type."""
    if isinstance(value, str):
        if value in _DTYPES:
            return _DTYPES[value]
    elif isinstance(value, np.dtype) or (
        isinstance(value, type) and issubclass(value, np.floating)
    ):
        dt = np.dtype(value)
        if dt in _DTYPES.values():
            return dt
    raise ValueError(f"dtype must be 'float32' or 'float64', got {value!r}")


def _check_seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"seed must be None or a non-negative int, got {value!r} ({type(value).__name__})"
        )
    if value < 0:
        raise ValueError(f"seed must be None or a non-negative int, got {value}")
    return int(value)


@functools.lru_cache(maxsize=1)
def _physical_memory_bytes() -> int | None:
    """Total physical memory, or None where the platform does not say (asked once: it is
    checked on every forward, where the two system calls were a measurable cost)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _check_nbytes(what: str, n_elements: int, itemsize: int, extra_bytes: int = 0) -> None:
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


# ----------------------------------------------------------------------------------------
# Checks and conversions of call arguments.
# ----------------------------------------------------------------------------------------


def _as_float_array(name: str, value: Any) -> np.ndarray:
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


def _check_shape(name: str, arr: np.ndarray, expected: tuple[int, ...], meaning: str) -> None:
    if arr.shape != expected:
        raise ValueError(f"{name} must have shape {expected} {meaning}, got {arr.shape}")


def _check_lengths(lengths: Any, T: int, B: int, unbatched: bool) -> np.ndarray | None:
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


def _load_backend(name: str) -> Any:
    """The module implementing ``stack_forward`` / ``stack_backward`` for ``name``."""
    if name == "numpy":
        from rnnkit import reference

        return reference
    try:
        from rnnkit import _native
    except ImportError as exc:
        raise RuntimeError(
            f"backend='native' is not built yet ({exc}); use backend='numpy'"
        ) from exc
    return _native


# ----------------------------------------------------------------------------------------
# The shared base class.
# ----------------------------------------------------------------------------------------


class _RecurrentBase(abc.ABC):
    """Multi-layer, optionally bidirectional recurrent network over a whole sequence.

    Subclasses set ``_gates`` (G: 1, 3 or 4 blocks of H rows per weight), ``_has_cell``
    (LSTM's second state) and implement ``mode`` (the backend contract's cell name).
    """

    _gates: int = 1
    _has_cell: bool = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: str | np.dtype = "float32",
        backend: str = "native",
        seed: int | None = None,
    ) -> None:
        self._input_size = _check_positive_int("input_size", input_size)
        self._hidden_size = _check_positive_int("hidden_size", hidden_size)
        self._num_layers = _check_positive_int("num_layers", num_layers)
        self._bias = _check_bool("bias", bias)
        self._batch_first = _check_bool("batch_first", batch_first)
        self._dropout = _check_dropout(dropout)
        self._bidirectional = _check_bool("bidirectional", bidirectional)
        self._dtype = _check_dtype(dtype)
        self._backend = _check_choice("backend", backend, _BACKENDS)
        self._seed = _check_seed(seed)
        self.training = True
        # Bumped whenever the module rewrites its parameters (load_state_dict).
        self._version = 0
        # What the last training-mode forward saved for backward (None when there is none),
        # and why there is none, for backward's error message.
        self._saved: dict[str, Any] | None = None
        self._no_saved_reason = "no forward pass has been run yet"

        # Checked in closed form before anything is built: with num_layers = 2**40 even the
        # dict of parameter shapes would exhaust memory. Parameters and their gradients live
        # side by side (twice the parameter bytes), and each of those arrays costs Python
        # about _ARRAY_OVERHEAD bytes besides its data (what counts for tiny huge stacks).
        G, H, D, L = self._gates, self._hidden_size, self.num_directions, self._num_layers
        per_cell = 2 if self._bias else 0  # (G*H, in_k) + (G*H, H) [+ 2 x (G*H,)] elements
        n_params = D * G * H * (self._input_size + H + per_cell) + (L - 1) * D * G * H * (
            D * H + H + per_cell
        )
        n_arrays = L * D * (4 if self._bias else 2)
        _check_nbytes(
            "the parameters and their gradients",
            2 * n_params,
            self._dtype.itemsize,
            extra_bytes=2 * n_arrays * _ARRAY_OVERHEAD,
        )
        shapes = self._parameter_shapes()
        # Fixed by the configuration, which never changes: kept for the per-call checks.
        self._shapes = shapes
        self._names = self._weight_names()

        # One generator for the module's life: parameters first (in PyTorch's order), then
        # the dropout masks of each training forward, so both are reproducible from `seed`.
        self._rng = np.random.default_rng(self._seed)
        bound = 1.0 / math.sqrt(self._hidden_size)
        self._params: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():
            draw = self._rng.uniform(-bound, bound, size=shape)
            self._params[name] = np.ascontiguousarray(draw, dtype=self._dtype)
        self.grads: dict[str, np.ndarray] = {
            name: np.zeros_like(p) for name, p in self._params.items()
        }
        # The grads arrays last found not to overlap (see _grad_arrays), or None.
        self._grads_checked: tuple[np.ndarray, ...] | None = None

    # -- configuration ------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def mode(self) -> str:
        """The backend contract's cell name ("lstm", "gru", "rnn_tanh", ...)."""

    @property
    def input_size(self) -> int:
        return self._input_size

    @property
    def hidden_size(self) -> int:
        return self._hidden_size

    @property
    def num_layers(self) -> int:
        return self._num_layers

    @property
    def bias(self) -> bool:
        return self._bias

    @property
    def batch_first(self) -> bool:
        return self._batch_first

    @property
    def dropout(self) -> float:
        return self._dropout

    @property
    def bidirectional(self) -> bool:
        return self._bidirectional

    @property
    def num_directions(self) -> int:
        return 2 if self._bidirectional else 1

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def seed(self) -> int | None:
        return self._seed

    @property
    def backend(self) -> str:
        """ "native" (the C++ core) or "numpy" (the reference); may be reassigned."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = _check_choice("backend", value, _BACKENDS)

    def extra_repr(self) -> str:
        """The constructor arguments that differ from their defaults, torch-style."""
        parts = [str(self._input_size), str(self._hidden_size)]
        if self._num_layers != 1:
            parts.append(f"num_layers={self._num_layers}")
        if not self._bias:
            parts.append("bias=False")
        if self._batch_first:
            parts.append("batch_first=True")
        if self._dropout:
            parts.append(f"dropout={self._dropout}")
        if self._bidirectional:
            parts.append("bidirectional=True")
        parts.extend(self._extra_repr_parts())
        parts.append(f"dtype='{self._dtype.name}'")
        parts.append(f"backend='{self._backend}'")
        return ", ".join(parts)

    def _extra_repr_parts(self) -> list[str]:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    # -- parameters -----------------------------------------------------------------------

    def _parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """PyTorch's names and shapes, in PyTorch's order (layer, direction, ih/hh, w/b)."""
        G, H, D = self._gates, self._hidden_size, self.num_directions
        shapes: dict[str, tuple[int, ...]] = {}
        for k in range(self._num_layers):
            in_k = self._input_size if k == 0 else D * H
            for d in range(D):
                sfx = f"_l{k}" + ("_reverse" if d == 1 else "")
                shapes[f"weight_ih{sfx}"] = (G * H, in_k)
                shapes[f"weight_hh{sfx}"] = (G * H, H)
                if self._bias:
                    shapes[f"bias_ih{sfx}"] = (G * H,)
                    shapes[f"bias_hh{sfx}"] = (G * H,)
        return shapes

    def _weight_names(self) -> list[tuple[str, str, str | None, str | None]]:
        """Names of (w_ih, w_hh, b_ih, b_hh) per entry k*D + d of the contract's list."""
        names = []
        for k in range(self._num_layers):
            for d in range(self.num_directions):
                sfx = f"_l{k}" + ("_reverse" if d == 1 else "")
                b_ih = f"bias_ih{sfx}" if self._bias else None
                b_hh = f"bias_hh{sfx}" if self._bias else None
                names.append((f"weight_ih{sfx}", f"weight_hh{sfx}", b_ih, b_hh))
        return names

    def parameters(self) -> dict[str, np.ndarray]:
        """Ordered dict name -> the live parameter array (edits in place are used)."""
        return dict(self._params)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Ordered dict name -> a copy of each parameter."""
        return {name: p.copy() for name, p in self._params.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Copy parameters in place from NumPy arrays or torch tensors.

        Values are converted to the module's dtype. With ``strict`` every name must be
        present and no other name may be; with ``strict=False`` unknown names are ignored
        and missing ones keep their value. Shapes are always checked. Nothing is changed
        unless every given value is valid.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}"
            )
        strict = _check_bool("strict", strict)
        unexpected = [k for k in state_dict if k not in self._params]
        missing = [k for k in self._params if k not in state_dict]
        if strict and (unexpected or missing):
            raise ValueError(
                f"load_state_dict(strict=True): missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        staged: list[tuple[np.ndarray, np.ndarray]] = []
        for name, target in self._params.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            if hasattr(value, "detach"):  # a torch tensor, possibly on a device
                value = value.detach().cpu().numpy()
            try:
                arr = np.asarray(value)
            except (ValueError, TypeError) as exc:
                raise TypeError(f"state_dict[{name!r}] is not an array: {exc}") from exc
            if arr.dtype.kind not in "fiu":
                raise TypeError(
                    f"state_dict[{name!r}] must be a real numeric array, got dtype {arr.dtype}"
                )
            if arr.shape != target.shape:
                raise ValueError(
                    f"state_dict[{name!r}] has shape {arr.shape}, "
                    f"but the parameter has shape {target.shape}"
                )
            staged.append((target, arr))
        for target, arr in staged:
            np.copyto(target, arr, casting="unsafe")  # converts dtype; all values checked
        self._version += 1

    def zero_grad(self) -> None:
        """Set every accumulated parameter gradient to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    # -- mode -------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> _RecurrentBase:
        """Training mode (dropout on, forward keeps what backward needs); returns self."""
        self.training = _check_bool("mode", mode)
        if not self.training:
            self._drop_saved("the module was switched to eval mode after the forward pass")
        return self

    def eval(self) -> _RecurrentBase:
        """Evaluation mode (no dropout, nothing kept for backward); returns self."""
        return self.train(False)

    def _drop_saved(self, reason: str) -> None:
        self._saved = None
        self._no_saved_reason = reason

    # -- forward ----------------------------------------------------------------------------

    def __call__(
        self, x: ArrayLike, hx: Any = None, lengths: ArrayLike | None = None
    ) -> tuple[np.ndarray, State]:
        return self.forward(x, hx, lengths)

    def forward(
        self, x: ArrayLike, hx: Any = None, lengths: ArrayLike | None = None
    ) -> tuple[np.ndarray, State]:
        """Run the network over a whole sequence.

        x: (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I). T and B must be
            >= 1 (an empty sequence or batch raises ValueError). Floating inputs of another
            precision are converted to the module's dtype.
        hx: LSTM: a tuple (h0, c0), either may be None; RNN/GRU: h0 or None. Each state is
            (L*D, B, H), or (L*D, H) for unbatched x; None means zeros.
        lengths: optional integers (B,), each in 1..T: sequence b uses steps
            0..lengths[b]-1 (out is zero past it; h_n is its state at its last step).

        Returns out (T, B, D*H) (or (B, T, D*H) with batch_first, (T, D*H) unbatched) and
        (h_n, c_n) for LSTM / h_n otherwise, each (L*D, B, H) (or (L*D, H) unbatched).
        """
        # Whatever an earlier forward saved is stale from here on, even if this one fails.
        self._drop_saved("the last forward pass did not complete")
        arr = _as_float_array("x", x)
        if arr.ndim == 2:
            unbatched = True
            arr = arr[:, None, :]  # (T, 1, I)
        elif arr.ndim == 3:
            unbatched = False
            if self._batch_first:
                arr = arr.transpose(1, 0, 2)  # (B, T, I) -> (T, B, I)
        else:
            layout = "(B, T, I)" if self._batch_first else "(T, B, I)"
            raise ValueError(
                f"x must be 3-D {layout} or unbatched 2-D (T, I), got shape {arr.shape}"
            )
        T, B, n_in = arr.shape
        if n_in != self._input_size:
            raise ValueError(
                f"x must have input_size={self._input_size} features in its last dimension, "
                f"got shape {np.shape(x)}"
            )
        if T == 0 or B == 0:
            raise ValueError(
                f"x must have at least one time step and one sequence, got shape {np.shape(x)}"
            )
        L, D, H = self._num_layers, self.num_directions, self._hidden_size
        # Checked before any copy: the converted x, the output and, when training, roughly
        # what a backend keeps per layer and direction (gate values and states per step)
        # plus the dropout masks. x may be a zero-stride view far larger than its memory.
        n_buffer = T * B * (n_in + D * H)
        if self.training:
            n_buffer += L * D * T * B * (self._gates + 2) * H + (L - 1) * T * B * D * H
        _check_nbytes("the forward pass's buffers", n_buffer, self._dtype.itemsize)

        x_tm = np.ascontiguousarray(arr, dtype=self._dtype)  # (T, B, I)
        h0_in, c0_in = self._split_hx(hx)
        h0 = self._state_in("h0", h0_in, B, unbatched)  # (L*D, B, H)
        c0 = self._state_in("c0", c0_in, B, unbatched) if self._has_cell else None
        lens = _check_lengths(lengths, T, B, unbatched)  # (B,) int64 or None

        masks = self._dropout_masks(T, B)  # L-1 arrays (T, B, D*H), or None
        backend = _load_backend(self._backend)
        out, h_n, c_n, cache = backend.stack_forward(
            self.mode,
            x_tm,
            h0,
            c0,
            self._weights(),
            lens,
            masks,
            self.training,
            num_directions=D,
        )
        if self.training:
            self._saved = {
                "cache": cache,
                "T": T,
                "B": B,
                "unbatched": unbatched,
                "batch_first": self._batch_first,
            }
        else:
            self._drop_saved("the last forward pass ran in eval mode")

        out = self._to_user_layout(out, unbatched, self._batch_first)
        h_n = h_n[:, 0, :] if unbatched else h_n
        if self._has_cell:
            c_n = c_n[:, 0, :] if unbatched else c_n
            return out, (h_n, c_n)
        return out, h_n

    def _split_hx(self, hx: Any) -> tuple[Any, Any]:
        """(h0, c0) from the user's hx (c0 is always None for RNN/GRU)."""
        name = type(self).__name__
        if self._has_cell:
            if hx is None:
                return None, None
            if not isinstance(hx, (tuple, list)):
                raise TypeError(
                    f"hx for {name} must be a tuple (h0, c0) (either may be None), "
                    f"got {type(hx).__name__}"
                )
            if len(hx) != 2:
                raise ValueError(f"hx for {name} must be a tuple (h0, c0), got length {len(hx)}")
            return hx[0], hx[1]
        if isinstance(hx, (tuple, list)):
            raise TypeError(
                f"hx for {name} must be an array h0 or None, not a {type(hx).__name__} "
                f"(only LSTM takes a tuple (h0, c0))"
            )
        return hx, None

    def _expected_state_shape(self, B: int, unbatched: bool) -> tuple[int, ...]:
        LD, H = self._num_layers * self.num_directions, self._hidden_size
        return (LD, H) if unbatched else (LD, B, H)

    def _state_in(self, name: str, value: Any, B: int, unbatched: bool) -> np.ndarray:
        """A user state -> contiguous (L*D, B, H) in the module's dtype (zeros if None)."""
        LD, H = self._num_layers * self.num_directions, self._hidden_size
        if value is None:
            return np.zeros((LD, B, H), dtype=self._dtype)
        arr = _as_float_array(name, value)
        expected = self._expected_state_shape(B, unbatched)
        meaning = (
            "(num_layers*num_directions, hidden_size)"
            if unbatched
            else ("(num_layers*num_directions, batch, hidden_size)")
        )
        _check_shape(name, arr, expected, meaning)
        return np.ascontiguousarray(arr.reshape(LD, B, H), dtype=self._dtype)

    def _weights(self) -> list[tuple[np.ndarray, ...]]:
        """The live parameter arrays in the contract's layout (list of L*D tuples).

        ``parameters()`` hands these arrays out, so each is checked first: one reshaped or
        retyped in place (``p.shape = ...``, ``p.dtype = ...``) would otherwise be broadcast
        or read as garbage by the NumPy backend, without an error.
        """
        p = self._params
        for name, shape in self._shapes.items():
            arr = p[name]
            if arr.shape != shape or arr.dtype != self._dtype or not arr.flags.c_contiguous:
                raise ValueError(
                    f"parameter {name!r} was changed in place to shape {arr.shape}, dtype "
                    f"{arr.dtype}; it must stay a C-contiguous {shape} {self._dtype} array "
                    f"(assign values with p[...] = ..., or use load_state_dict)"
                )
        return [
            (p[w_ih], p[w_hh], p[b_ih] if b_ih else None, p[b_hh] if b_hh else None)
            for w_ih, w_hh, b_ih, b_hh in self._names
        ]

    def _grad_arrays(self) -> list[tuple[np.ndarray | None, ...]]:
        """The arrays of ``self.grads`` in the contract's layout (list of L*D tuples), for
        the backend to add into.

        Each must still be a writeable C-contiguous array of its parameter's shape and the
        module's dtype, not shared with another gradient (the backward writes them while
        it reads its inputs; the backend also refuses overlaps with those).
        """
        g = self.grads
        for name, shape in self._shapes.items():
            arr = g.get(name)
            ok = (
                isinstance(arr, np.ndarray)
                and arr.shape == shape
                and arr.dtype == self._dtype
                and arr.flags.c_contiguous
                and arr.flags.writeable
            )
            if not ok:
                what = (
                    f"shape {arr.shape}, dtype {arr.dtype}"
                    if isinstance(arr, np.ndarray)
                    else type(arr).__name__
                )
                raise ValueError(
                    f"grads[{name!r}] must be a writeable C-contiguous {shape} {self._dtype} "
                    f"array (backward adds into it in place), got {what}; "
                    f"set values with g[...] = ... or call zero_grad()"
                )
        # Overlaps are looked for only when the arrays are not the ones checked last time
        # (an array's memory never moves): the check costs microseconds, which a step at
        # B = 1 would notice.
        arrays = tuple(g[name] for name in self._shapes)
        checked = self._grads_checked
        if checked is None or any(a is not b for a, b in zip(arrays, checked)):
            self._check_grads_do_not_overlap()
            self._grads_checked = arrays
        return [
            (g[w_ih], g[w_hh], g[b_ih] if b_ih else None, g[b_hh] if b_hh else None)
            for w_ih, w_hh, b_ih, b_hh in self._names
        ]

    def _check_grads_do_not_overlap(self) -> None:
        """ValueError naming two ``grads`` entries that share memory."""
        g = self.grads
        # Byte ranges sorted by start: contiguous arrays overlap iff neighbours do.
        spans = sorted(
            (g[name].__array_interface__["data"][0], g[name].nbytes, name) for name in self._shapes
        )
        for (start, size, name), (next_start, _, next_name) in zip(spans, spans[1:]):
            if size > 0 and next_start < start + size:
                raise ValueError(
                    f"grads[{name!r}] and grads[{next_name!r}] share memory; each must be its "
                    f"own array (backward adds into each in place)"
                )

    def _dropout_masks(self, T: int, B: int) -> list[np.ndarray] | None:
        """L-1 inverted-dropout masks (T, B, D*H): 0 or 1/(1-p); None when not applied."""
        if not self.training or self._dropout == 0.0 or self._num_layers == 1:
            return None
        p = self._dropout
        scale = self._dtype.type(1.0 / (1.0 - p))
        shape = (T, B, self.num_directions * self._hidden_size)
        return [
            np.where(self._rng.random(shape) >= p, scale, self._dtype.type(0))
            for _ in range(self._num_layers - 1)
        ]

    @staticmethod
    def _to_user_layout(a: np.ndarray, unbatched: bool, batch_first: bool) -> np.ndarray:
        """A time-major (T, B, F) array in the layout of the user's x."""
        if unbatched:
            return a[:, 0, :]
        if batch_first:
            return np.ascontiguousarray(a.transpose(1, 0, 2))
        return a

    # -- backward ---------------------------------------------------------------------------

    def backward(self, grad_out: ArrayLike, grad_state: Any = None) -> tuple[np.ndarray, State]:
        """Backpropagate through the last training-mode forward pass.

        grad_out: gradient of the loss w.r.t. ``out``, in out's layout.
        grad_state: LSTM: a tuple (grad_h_n, grad_c_n), either may be None; RNN/GRU:
            grad_h_n or None. Each in h_n's layout; None means zeros.

        Returns dx (x's layout) and (dh0, dc0) for LSTM / dh0 otherwise (h0's layout).
        Adds the parameter gradients into ``self.grads``. The saved forward state is
        released, so each forward supports exactly one backward. Raises RuntimeError when
        x, a parameter, or for RNN and GRU out, was modified in place since the forward
        (they are referenced, not copied, as torch does: step an optimiser after backward).
        """
        saved = self._saved
        if saved is None:
            raise RuntimeError(
                f"backward needs a preceding forward pass in training mode: {self._no_saved_reason}"
            )
        T, B = saved["T"], saved["B"]
        unbatched, batch_first = saved["unbatched"], saved["batch_first"]
        DH = self.num_directions * self._hidden_size

        g = _as_float_array("grad_out", grad_out)
        if unbatched:
            expected = (T, DH)
        else:
            expected = (B, T, DH) if batch_first else (T, B, DH)
        _check_shape("grad_out", g, expected, "(the shape of the forward pass's out)")
        if unbatched:
            g = g[:, None, :]
        elif batch_first:
            g = g.transpose(1, 0, 2)
        dout = np.ascontiguousarray(g, dtype=self._dtype)  # (T, B, D*H)

        gh_in, gc_in = self._split_grad_state(grad_state)
        dh_n = self._state_in("grad_h_n", gh_in, B, unbatched)
        dc_n = self._state_in("grad_c_n", gc_in, B, unbatched) if self._has_cell else None

        grads = self._grad_arrays()
        self._drop_saved("backward was already called for the last forward pass")
        backend = _load_backend(self._backend)
        # The backend adds the parameter gradients into self.grads in place (no fresh
        # arrays the size of the weights).
        dx, dh0, dc0, _ = backend.stack_backward(self.mode, saved["cache"], dout, dh_n, dc_n, grads)

        dx = self._to_user_layout(dx, unbatched, batch_first)
        dh0 = dh0[:, 0, :] if unbatched else dh0
        if self._has_cell:
            dc0 = dc0[:, 0, :] if unbatched else dc0
            return dx, (dh0, dc0)
        return dx, dh0

    def _split_grad_state(self, grad_state: Any) -> tuple[Any, Any]:
        name = type(self).__name__
        if self._has_cell:
            if grad_state is None:
                return None, None
            if not isinstance(grad_state, (tuple, list)):
                raise TypeError(
                    f"grad_state for {name} must be a tuple (grad_h_n, grad_c_n) "
                    f"(either may be None), got {type(grad_state).__name__}"
                )
            if len(grad_state) != 2:
                raise ValueError(
                    f"grad_state for {name} must be a tuple (grad_h_n, grad_c_n), "
                    f"got length {len(grad_state)}"
                )
            return grad_state[0], grad_state[1]
        if isinstance(grad_state, (tuple, list)):
            raise TypeError(
                f"grad_state for {name} must be an array grad_h_n or None, not a "
                f"{type(grad_state).__name__} (only LSTM takes a tuple)"
            )
        return grad_state, None


# ----------------------------------------------------------------------------------------
# The public modules.
# ----------------------------------------------------------------------------------------


class RNN(_RecurrentBase):
    """Elman RNN: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, act = tanh or relu.

    Arguments as :class:`LSTM`, plus ``nonlinearity`` ("tanh" or "relu").
    ``out, h_n = rnn(x, h0, lengths=None)``; ``dx, dh0 = rnn.backward(grad_out, grad_h_n)``.
    """

    _gates = 1
    _has_cell = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: str | np.dtype = "float32",
        backend: str = "native",
        seed: int | None = None,
    ) -> None:
        self._nonlinearity = _check_choice("nonlinearity", nonlinearity, _NONLINEARITIES)
        super().__init__(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            dtype=dtype,
            backend=backend,
            seed=seed,
        )

    @property
    def nonlinearity(self) -> str:
        return self._nonlinearity

    @property
    def mode(self) -> str:
        return f"rnn_{self._nonlinearity}"

    def _extra_repr_parts(self) -> list[str]:
        return [] if self._nonlinearity == "tanh" else [f"nonlinearity='{self._nonlinearity}'"]


class LSTM(_RecurrentBase):
    """Long short-term memory, PyTorch's equations and gate order [i, f, g, o].

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, dtype="float32", backend="native", seed=None)``.
    ``out, (h_n, c_n) = lstm(x, (h0, c0), lengths=None)``;
    ``dx, (dh0, dc0) = lstm.backward(grad_out, (grad_h_n, grad_c_n))``.
    """

    _gates = 4
    _has_cell = True

    @property
    def mode(self) -> str:
        return "lstm"


class GRU(_RecurrentBase):
    """Gated recurrent unit, PyTorch's equations and gate order [r, z, n].

    Arguments as :class:`LSTM`, plus ``reset_after``: True (PyTorch's GRU) applies the
    reset gate after the recurrent matmul, False (the original GRU, ONNX's default)
    before it. ``out, h_n = gru(x, h0, lengths=None)``;
    ``dx, dh0 = gru.backward(grad_out, grad_h_n)``.
    """

    _gates = 3
    _has_cell = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: str | np.dtype = "float32",
        backend: str = "native",
        seed: int | None = None,
        reset_after: bool = True,
    ) -> None:
        self._reset_after = _check_bool("reset_after", reset_after)
        super().__init__(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            dtype=dtype,
            backend=backend,
            seed=seed,
        )

    @property
    def reset_after(self) -> bool:
        return self._reset_after

    @property
    def mode(self) -> str:
        return "gru" if self._reset_after else "gru_reset_before"

    def _extra_repr_parts(self) -> list[str]:
        return [] if self._reset_after else ["reset_after=False"]
