"""LSTM cell, one time step batched over B, gate blocks [i, f, g, o] (PyTorch's order):

    [a_i, a_f, a_g, a_o] = x W_ih^T + b_ih + h W_hh^T + b_hh        (pre-activations)
    i, f, o = sigmoid(.),  g = tanh(.)
    c' = f * c + i * g
    h' = o * tanh(c')

With a projection (torch's ``proj_size`` P < H), h' = (o * tanh(c')) W_hr^T with W_hr
(P, H): h and the output are P wide, c stays H wide, W_hh is (4H, P).

The input projection ``gx = x W_ih^T + b_ih`` is computed by the caller for all steps.

Cell variants (rnnkit._cell_options.CellOptions; ONNX's LSTM): the activations f (for i,
f, o), g (for g) and h (for tanh(c')); peepholes w_ph = [p_i, p_f, p_o] (3H,) add p_i * c
to a_i, p_f * c to a_f and p_o * c' to a_o; clip clamps each pre-activation (peepholes
included) to [-clip, clip] before its activation; input_forget sets f = 1 - i.
"""

from __future__ import annotations

import numpy as np

from rnnkit._cell_options import CellOptions, default_options
from rnnkit.reference._math import affine
from rnnkit.reference.activations import activate, activate_backprop, backprop

_DEFAULTS = default_options("lstm")


def step_forward(
    gx: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    w_ph: np.ndarray | None = None,
    options: CellOptions = _DEFAULTS,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """gx (B, 4H), h (B, R), c (B, H), w_hh (4H, R), b_hh (4H,) or None, w_ph (3H,) or
    None (no peepholes); R = P with a projection (h is then the projected state), else H.

    Returns (h_new (B, H), c_new (B, H), cache): h_new before any projection.
    """
    act_f, act_g, act_h = options.activations
    bound = options.clip
    a_i, a_f, a_g, a_o = np.split(gx + affine(h, w_hh, b_hh), 4, axis=1)  # each (B, H)
    p_i, p_f, p_o = (None, None, None) if w_ph is None else np.split(w_ph, 3)
    if w_ph is not None:
        a_i = a_i + p_i * c
        a_f = a_f + p_f * c
    i = activate(act_f, a_i, bound)
    f = 1 - i if options.input_forget else activate(act_f, a_f, bound)
    g = activate(act_g, a_g, bound)
    c_new = f * c + i * g
    if w_ph is not None:
        a_o = a_o + p_o * c_new
    o = activate(act_f, a_o, bound)
    tanh_c = activate(act_h, c_new, None)  # h(c'), tanh by default
    h_new = o * tanh_c
    return h_new, c_new, (h, c, i, f, g, o, tanh_c, (a_i, a_f, a_g, a_o, c_new))


def step_backward(
    dh: np.ndarray,
    dc: np.ndarray,
    cache: tuple,
    w_hh: np.ndarray,
    w_ph: np.ndarray | None = None,
    options: CellOptions = _DEFAULTS,
) -> tuple:
    """dh, dc (B, H): gradients w.r.t. h_new (before any projection) and c_new.

    Returns (dgx (B, 4H), dh_prev (B, R), dc_prev (B, H), dw_hh (4H, R), db_hh (4H,),
    dw_ph (3H,) or None).
    """
    h, c, i, f, g, o, tanh_c, (a_i, a_f, a_g, a_o, c_new) = cache
    act_f, act_g, act_h = options.activations
    bound = options.clip
    do = dh * tanh_c
    da_o = activate_backprop(act_f, do, a_o, o, bound)
    dc = dc + backprop(act_h, dh * o, c_new, tanh_c)  # total gradient reaching c_new
    if w_ph is not None:
        dc = dc + da_o * w_ph[2 * len(w_ph) // 3 :]  # o saw c_new through p_o
    di = dc * g
    df = dc * c
    dg = dc * i
    dc_prev = dc * f
    if options.input_forget:  # f = 1 - i: f's gradient flows into i, a_f gets none
        di = di - df
        da_f = np.zeros_like(df)
    else:
        da_f = activate_backprop(act_f, df, a_f, f, bound)
    da_i = activate_backprop(act_f, di, a_i, i, bound)
    dw_ph = None
    if w_ph is not None:
        p_i, p_f, _ = np.split(w_ph, 3)
        dc_prev = dc_prev + da_i * p_i + da_f * p_f
        dw_ph = np.concatenate(
            [(da_i * c).sum(axis=0), (da_f * c).sum(axis=0), (da_o * c_new).sum(axis=0)]
        )
    da = np.concatenate(  # (B, 4H): gradient w.r.t. the pre-activations [i, f, g, o]
        [da_i, da_f, activate_backprop(act_g, dg, a_g, g, bound), da_o], axis=1
    )
    dh_prev = da @ w_hh
    return da, dh_prev, dc_prev, da.T @ h, da.sum(axis=0), dw_ph


def project_forward(m: np.ndarray, w_hr: np.ndarray) -> np.ndarray:
    """The projection: m (B, H) = o * h(c'), w_hr (P, H). Returns h' = m W_hr^T (B, P)."""
    return m @ w_hr.T


def project_backward(
    dh: np.ndarray, m: np.ndarray, w_hr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """dh (B, P): gradient w.r.t. the projected h'; m (B, H): the projection's input.

    Returns (dm (B, H), dw_hr (P, H)).
    """
    return dh @ w_hr, dh.T @ m
