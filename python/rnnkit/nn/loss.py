"""Softmax cross-entropy on logits, with its helpers ``log_softmax`` and ``softmax``.

``CrossEntropyLoss``: logits ``(..., C)``, targets ``(...)`` -> scalar loss; ``backward``
returns ``dlogits (..., C)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit._module import Module
from rnnkit._validation import check_choice, check_float_kind, check_optional_int

__all__ = ["CrossEntropyLoss", "cross_entropy", "log_softmax", "softmax"]


def log_softmax(x: Any, axis: int = -1) -> np.ndarray:
    """Numerically stable ``log(softmax(x))`` along ``axis`` (subtracts the max first)."""
    xa = np.asarray(x)
    check_float_kind("x", xa)
    z = xa - xa.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax(x: Any, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed stably."""
    return np.exp(log_softmax(x, axis=axis))


class CrossEntropyLoss(Module):
    """Softmax cross-entropy on unnormalised logits, like ``torch.nn.functional.cross_entropy``.

    ``loss = forward(logits (..., C), targets (...), mask=None)``: targets are class indices;
    a target equal to ``ignore_index`` or where ``mask`` is False does not count. With
    ``reduction="mean"`` the loss is averaged over the counted targets (NaN when none count,
    as in torch); ``"sum"`` adds them. ``backward(grad_loss=1.0)`` returns ``dlogits``.
    It has no parameters and computes in the logits' dtype (its ``dtype`` is None). Modes,
    threads and copies as ``rnnkit.LSTM``: a training-mode forward keeps what backward
    needs, an eval-mode one keeps nothing.
    """

    _NO_SAVED_MESSAGE = "{cls}.backward needs a forward pass first: {reason}"

    def __init__(self, ignore_index: int | None = -100, reduction: str = "mean") -> None:
        super().__init__(None)
        self.ignore_index = check_optional_int("ignore_index", ignore_index)
        self.reduction = check_choice("reduction", reduction, ("mean", "sum"))

    def __call__(self, logits: Any, targets: Any, mask: Any = None) -> float:
        return self.forward(logits, targets, mask)

    def forward(self, logits: Any, targets: Any, mask: Any = None) -> float:
        """Loss of ``logits (..., C)`` against integer ``targets (...)``; ``mask (...)`` bool."""
        training = self.training
        self._enter(exclusive=training)
        try:
            loss, saved = self._loss(logits, targets, mask)
            if training:
                self._saved = saved
            else:
                self._drop_saved("the last forward pass ran in eval mode")
            return loss
        finally:
            self._leave()

    def _loss(self, logits: Any, targets: Any, mask: Any) -> tuple[float, tuple]:
        """The loss and what backward needs: (logp (..., C), safe targets (...), valid
        (...) bool, scale)."""
        z = np.asarray(logits)
        check_float_kind("logits", z)
        if z.ndim < 1:
            raise ValueError(f"logits must have shape (..., C), got {z.shape}")
        t = np.asarray(targets)
        if t.dtype.kind not in "iu":
            raise TypeError(f"targets must be an integer array, got dtype {t.dtype}")
        if t.shape != z.shape[:-1]:
            raise ValueError(f"targets must have shape {z.shape[:-1]}, got {t.shape}")
        num_classes = z.shape[-1]
        valid = np.ones(t.shape, dtype=bool)
        if self.ignore_index is not None:
            valid &= t != self.ignore_index
        if mask is not None:
            m = np.asarray(mask)
            if m.dtype != np.bool_:
                raise TypeError(f"mask must be a bool array, got dtype {m.dtype}")
            if m.shape != t.shape:
                raise ValueError(f"mask must have shape {t.shape}, got {m.shape}")
            valid &= m
        counted = t[valid]
        if counted.size and (counted.min() < 0 or counted.max() >= num_classes):
            raise ValueError(
                f"targets must lie in [0, {num_classes - 1}] (or equal ignore_index="
                f"{self.ignore_index}), got values in [{counted.min()}, {counted.max()}]"
            )
        safe_t = np.where(valid, t, 0).astype(np.int64)  # (...) ignored entries read class 0
        logp = log_softmax(z)  # (..., C)
        picked = np.take_along_axis(logp, safe_t[..., None], axis=-1)[..., 0]  # (...)
        total = -picked[valid].sum(dtype=np.float64)
        count = int(valid.sum())
        if self.reduction == "mean":
            scale = 1.0 / count if count else float("nan")
        else:
            scale = 1.0
        return float(total * scale), (logp, safe_t, valid, scale)

    def backward(self, grad_loss: float = 1.0) -> np.ndarray:
        """``dlogits (..., C)`` = (softmax - onehot) * scale on counted targets, 0 elsewhere."""
        self._enter(exclusive=True)
        try:
            logp, safe_t, valid, scale = self._saved_or_raise()
            self._drop_saved("backward was already called for the last forward pass")
        finally:
            self._leave()
        if not valid.any():  # nothing counted: torch also returns zeros here
            return np.zeros_like(logp)
        grad = np.exp(logp)  # (..., C) softmax
        onehot_at = safe_t[..., None]  # (..., 1)
        np.put_along_axis(grad, onehot_at, np.take_along_axis(grad, onehot_at, -1) - 1, -1)
        coef = np.where(valid, scale * float(grad_loss), 0.0).astype(grad.dtype)  # (...)
        grad *= coef[..., None]
        return grad

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"


def cross_entropy(
    logits: Any, targets: Any, ignore_index: int | None = -100, mask: Any = None
) -> float:
    """Mean softmax cross-entropy, without keeping anything for backward."""
    return CrossEntropyLoss(ignore_index=ignore_index).forward(logits, targets, mask)
