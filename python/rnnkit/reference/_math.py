"""Small numerical helpers shared by the reference cells."""

from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function, written through tanh so it never overflows (same dtype as ``a``)."""
    return 0.5 * np.tanh(0.5 * a) + 0.5


def affine(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``x @ w.T + b`` for x (N, K), w (M, K), b (M,) or None; returns (N, M)."""
    y = x @ w.T
    return y if b is None else y + b
