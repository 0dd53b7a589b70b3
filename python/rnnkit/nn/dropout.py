"""``Dropout`` and ``Masking``: layers without parameters that keep their input's shape."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit._module import Module
from rnnkit._validation import as_float_array, check_dropout, check_seed
from rnnkit.nn._masks import lengths_from_mask
from rnnkit.nn._wrapper import take_saved

__all__ = ["Dropout", "Masking"]


class Dropout(Module):
    """Inverted dropout: in training mode each element is zeroed with probability ``p`` and
    the rest scaled by ``1/(1-p)``; in eval mode the identity. ``x (...)`` -> ``(...)``.

    ``shared_axes``: axes along which one draw is shared, e.g. ``(1,)`` on ``(B, T, F)``
    drops whole features for every step (Keras's SpatialDropout1D). Masks come from a
    generator seeded by ``seed``. Modes, threads and copies as ``rnnkit.LSTM``.
    """

    def __init__(self, p: float = 0.5, shared_axes: tuple[int, ...] = (), seed: int | None = None):
        super().__init__(None)
        self.p = check_dropout(p)
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in shared_axes):
            raise TypeError(f"shared_axes must be a tuple of ints, got {shared_axes!r}")
        self.shared_axes = tuple(shared_axes)
        self._rng = np.random.default_rng(check_seed(seed))

    def forward(self, x: Any) -> np.ndarray:
        """``x`` with dropout applied (training mode) or unchanged (eval mode)."""
        training = self.training
        self._enter(exclusive=training)
        try:
            xa = as_float_array("x", x)
            if not training:
                self._drop_saved("the last forward pass ran in eval mode")
                return xa.copy()
            if self.p == 0.0:
                self._saved = np.ones((), dtype=xa.dtype)
                return xa.copy()
            shape = list(xa.shape)
            for axis in self.shared_axes:
                if not -xa.ndim <= axis < xa.ndim:
                    raise ValueError(
                        f"Dropout: shared axis {axis} is out of range for x of shape {xa.shape}"
                    )
                shape[axis] = 1
            keep = self._rng.random(shape) >= self.p  # shape of x, 1 on the shared axes
            scale = (keep / (1.0 - self.p)).astype(xa.dtype)
            self._saved = scale
            return xa * scale
        finally:
            self._leave()

    def backward(self, grad_out: Any) -> np.ndarray:
        """``grad_out`` times the forward's mask and scale."""
        scale = take_saved(self)
        g = as_float_array("grad_out", grad_out)
        return g * scale

    def extra_repr(self) -> str:
        shared = f", shared_axes={self.shared_axes}" if self.shared_axes else ""
        return f"p={self.p}{shared}"


class Masking(Module):
    """Keras's Masking: a step of ``x (B, T, F)`` whose features all equal ``mask_value``
    is padding. Those steps become 0 in the output; inside a :class:`Sequential` the other
    steps give each sequence's length to the recurrent layers after it (the padding must
    come after a sequence's last real step, else ValueError). Modes, threads and copies as
    ``rnnkit.LSTM``.
    """

    def __init__(self, mask_value: float = 0.0) -> None:
        super().__init__(None)
        self.mask_value = float(mask_value)

    def _mask(self, x: np.ndarray) -> np.ndarray:
        """``(B, T)`` bool: True where a step has a feature other than ``mask_value``."""
        if x.ndim != 3:
            raise ValueError(f"Masking needs x of shape (batch, time, features), got {x.shape}")
        return (x != self.mask_value).any(axis=-1)

    def forward(self, x: Any) -> np.ndarray:
        """``x (B, T, F)`` with the padding steps set to 0."""
        training = self.training
        self._enter(exclusive=training)
        try:
            xa = as_float_array("x", x)
            mask = self._mask(xa)[..., None]  # (B, T, 1)
            if training:
                self._saved = mask
            else:
                self._drop_saved("the last forward pass ran in eval mode")
            return np.where(mask, xa, 0).astype(xa.dtype)
        finally:
            self._leave()

    def output_lengths(self, x: Any, lengths: np.ndarray | None) -> np.ndarray:
        """Each sequence's length: its steps up to the first padding step, ``(B,)``."""
        return lengths_from_mask(self._mask(as_float_array("x", x)), "Masking")

    def backward(self, grad_out: Any) -> np.ndarray:
        """``grad_out`` with the padding steps set to 0."""
        mask = take_saved(self)
        g = as_float_array("grad_out", grad_out)
        return np.where(mask, g, 0).astype(g.dtype)

    def extra_repr(self) -> str:
        return f"mask_value={self.mask_value}"
