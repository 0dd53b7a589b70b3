"""Gradient clipping over modules' accumulated gradients, in place (like torch.nn.utils).

``modules`` is what an optimiser takes: one module, a ``(params, grads)`` pair, or a list of
either (see ``rnnkit.optim``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.optim import iter_param_grads

__all__ = ["clip_grad_norm", "clip_grad_value"]


def clip_grad_norm(
    modules: Any, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The joint norm is the ``norm_type``-norm of the per-array norms (``float('inf')`` for
    the max-abs norm), accumulated in float64. As in ``torch.nn.utils.clip_grad_norm_``, the
    gradients are multiplied by ``min(1, max_norm / (total_norm + 1e-6))``.

    Returns the total norm before clipping, as a Python float. With ``error_if_nonfinite``
    a NaN or infinite norm raises ``FloatingPointError`` instead of spreading into the
    gradients.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.number)):
        raise TypeError(f"max_norm must be a number, got {type(max_norm).__name__}")
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
    grads = [g for _, _, g in iter_param_grads(modules)]
    if not grads:
        return 0.0
    if norm_type == float("inf"):
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    else:
        per_array = [
            np.linalg.norm(g.reshape(-1).astype(np.float64, copy=False), ord=norm_type)
            for g in grads
        ]
        total = float(np.linalg.norm(np.array(per_array), ord=norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise FloatingPointError(
            f"clip_grad_norm: the total gradient norm is {total}; the gradients are not finite"
        )
    coef = min(1.0, float(max_norm) / (total + 1e-6))
    if coef < 1.0:  # a NaN total leaves coef at 1: the NaNs are already in the gradients
        for g in grads:
            g *= g.dtype.type(coef)
    return total


def clip_grad_value(modules: Any, clip_value: float) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` in place."""
    if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float, np.number)):
        raise TypeError(f"clip_value must be a number, got {type(clip_value).__name__}")
    if not clip_value >= 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for _, _, g in iter_param_grads(modules):
        np.clip(g, -clip_value, clip_value, out=g)
