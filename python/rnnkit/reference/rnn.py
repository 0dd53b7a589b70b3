"""Elman RNN cell, one time step batched over B:

    h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh),   act = tanh or relu.

The input projection ``gx = x W_ih^T + b_ih`` is computed by the caller for all steps at
once; a step only adds the recurrent term. ``c`` is unused (None) and kept so that every
cell has the same step signature.
"""

from __future__ import annotations

import numpy as np

from rnnkit.reference._math import affine

NONLINEARITIES = ("tanh", "relu")


def step_forward(
    gx: np.ndarray,
    h: np.ndarray,
    c: None,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, None, tuple]:
    """gx (B, H), h (B, H), w_hh (H, H), b_hh (H,) or None -> (h_new (B, H), None, cache)."""
    a = gx + affine(h, w_hh, b_hh)  # (B, H) pre-activation
    h_new = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    return h_new, None, (h, h_new)


def step_backward(
    dh: np.ndarray, dc: None, cache: tuple, w_hh: np.ndarray, nonlinearity: str = "tanh"
) -> tuple[np.ndarray, np.ndarray, None, np.ndarray, np.ndarray]:
    """dh (B, H): gradient w.r.t. h_new.

    Returns (dgx (B, H), dh_prev (B, H), None, dw_hh (H, H), db_hh (H,)); dgx is also the
    gradient w.r.t. b_ih and, through W_ih, w.r.t. x.
    """
    h, h_new = cache
    if nonlinearity == "tanh":
        da = dh * (1 - h_new * h_new)
    else:
        # Selected, not multiplied by a 0/1 mask (0 * NaN is NaN), as torch's
        # threshold_backward: a NaN/Inf dh at a closed unit gives 0, a NaN h_new passes dh.
        da = np.where(h_new <= 0, 0, dh)
    dh_prev = da @ w_hh
    return da, dh_prev, None, da.T @ h, da.sum(axis=0)
