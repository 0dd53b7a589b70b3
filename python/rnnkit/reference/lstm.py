"""LSTM cell, one time step batched over B, gate blocks [i, f, g, o] (PyTorch's order):

    [i, f, g, o] = x W_ih^T + b_ih + h W_hh^T + b_hh        (pre-activations)
    i, f, o = sigmoid(.),  g = tanh(.)
    c' = f * c + i * g
    h' = o * tanh(c')

With a projection (torch's ``proj_size`` P < H), h' = (o * tanh(c')) W_hr^T with W_hr
(P, H): h and the output are P wide, c stays H wide, W_hh is (4H, P).

The input projection ``gx = x W_ih^T + b_ih`` is computed by the caller for all steps.
"""

from __future__ import annotations

import numpy as np

from rnnkit.reference._math import affine, sigmoid


def step_forward(
    gx: np.ndarray, h: np.ndarray, c: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """gx (B, 4H), h (B, H), c (B, H), w_hh (4H, H), b_hh (4H,) or None.

    Returns (h_new (B, H), c_new (B, H), cache).
    """
    a_i, a_f, a_g, a_o = np.split(gx + affine(h, w_hh, b_hh), 4, axis=1)  # each (B, H)
    i = sigmoid(a_i)
    f = sigmoid(a_f)
    g = np.tanh(a_g)
    o = sigmoid(a_o)
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    h_new = o * tanh_c
    return h_new, c_new, (h, c, i, f, g, o, tanh_c)


def step_backward(
    dh: np.ndarray, dc: np.ndarray, cache: tuple, w_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """dh, dc (B, H): gradients w.r.t. h_new and c_new.

    Returns (dgx (B, 4H), dh_prev (B, H), dc_prev (B, H), dw_hh (4H, H), db_hh (4H,)).
    """
    h, c, i, f, g, o, tanh_c = cache
    do = dh * tanh_c
    dc = dc + dh * o * (1 - tanh_c * tanh_c)  # total gradient reaching c_new
    di = dc * g
    df = dc * c
    dg = dc * i
    dc_prev = dc * f
    da = np.concatenate(  # (B, 4H): gradient w.r.t. the pre-activations [i, f, g, o]
        [di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1
    )
    dh_prev = da @ w_hh
    return da, dh_prev, dc_prev, da.T @ h, da.sum(axis=0)


def project_forward(m: np.ndarray, w_hr: np.ndarray) -> np.ndarray:
    """The projection: m (B, H) = o * tanh(c'), w_hr (P, H). Returns h' = m W_hr^T (B, P)."""
    return m @ w_hr.T


def project_backward(
    dh: np.ndarray, m: np.ndarray, w_hr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """dh (B, P): gradient w.r.t. the projected h'; m (B, H): the projection's input.

    Returns (dm (B, H), dw_hr (P, H)).
    """
    return dh @ w_hr, dh.T @ m
