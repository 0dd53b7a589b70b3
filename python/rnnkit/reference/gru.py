"""GRU cell, one time step batched over B, gate blocks [r, z, n] (PyTorch's order).

reset_after=True (PyTorch's GRU), ``step_forward`` / ``step_backward``:

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

reset_after=False (the original GRU, ONNX's default), ``step_forward_reset_before`` /
``step_backward_reset_before``: the same, except

    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)

The input projection ``gx = x W_ih^T + b_ih`` (B, 3H) is computed by the caller for all
steps. ``c`` and ``w_ph`` are unused (None) and kept so that every cell has the same step
signature.

Cell variants (rnnkit._cell_options.CellOptions; ONNX's GRU): the activations f (for r and
z) and g (for n); clip clamps each pre-activation, n's included (after r * (.)), to
[-clip, clip] before its activation.
"""

from __future__ import annotations

import numpy as np

from rnnkit._cell_options import CellOptions, default_options
from rnnkit.reference._math import affine
from rnnkit.reference.activations import activate, activate_backprop

_DEFAULTS = default_options("gru")


def step_forward(
    gx: np.ndarray,
    h: np.ndarray,
    c: None,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    w_ph: None = None,
    options: CellOptions = _DEFAULTS,
) -> tuple[np.ndarray, None, tuple]:
    """reset_after=True. gx (B, 3H), h (B, H), w_hh (3H, H), b_hh (3H,) or None.

    Returns (h_new (B, H), None, cache).
    """
    gx_r, gx_z, gx_n = np.split(gx, 3, axis=1)
    gh_r, gh_z, gh_n = np.split(affine(h, w_hh, b_hh), 3, axis=1)  # each (B, H)
    act_f, act_g = options.activations
    pre = (gx_r + gh_r, gx_z + gh_z, None)  # pre-activations of r, z, n
    r = activate(act_f, pre[0], options.clip)
    z = activate(act_f, pre[1], options.clip)
    pre = (pre[0], pre[1], gx_n + r * gh_n)
    n = activate(act_g, pre[2], options.clip)
    h_new = (1 - z) * n + z * h
    return h_new, None, (h, r, z, n, gh_n, pre)


def step_backward(
    dh: np.ndarray,
    dc: None,
    cache: tuple,
    w_hh: np.ndarray,
    w_ph: None = None,
    options: CellOptions = _DEFAULTS,
) -> tuple:
    """reset_after=True. dh (B, H): gradient w.r.t. h_new.

    Returns (dgx (B, 3H), dh_prev (B, H), None, dw_hh (3H, H), db_hh (3H,), None).
    """
    h, r, z, n, gh_n, (a_r, a_z, a_n) = cache
    act_f, act_g = options.activations
    dn = dh * (1 - z)
    dz = dh * (h - n)
    da_n = activate_backprop(act_g, dn, a_n, n, options.clip)  # w.r.t. n's pre-activation
    da_r = activate_backprop(act_f, da_n * gh_n, a_r, r, options.clip)
    da_z = activate_backprop(act_f, dz, a_z, z, options.clip)
    dgx = np.concatenate([da_r, da_z, da_n], axis=1)  # (B, 3H)
    dgh = np.concatenate([da_r, da_z, da_n * r], axis=1)  # (B, 3H): w.r.t. h W_hh^T + b_hh
    dh_prev = dh * z + dgh @ w_hh
    return dgx, dh_prev, None, dgh.T @ h, dgh.sum(axis=0), None


def _split_rz_n(p: np.ndarray | None, hidden: int) -> tuple:
    """Split a (3H, ...) parameter (or None) into its [r, z] rows (2H, ...) and n rows (H, ...)."""
    return (None, None) if p is None else (p[: 2 * hidden], p[2 * hidden :])


def step_forward_reset_before(
    gx: np.ndarray,
    h: np.ndarray,
    c: None,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    w_ph: None = None,
    options: CellOptions = _DEFAULTS,
) -> tuple[np.ndarray, None, tuple]:
    """reset_after=False. gx (B, 3H), h (B, H), w_hh (3H, H), b_hh (3H,) or None.

    Returns (h_new (B, H), None, cache).
    """
    w_hrz, w_hn = _split_rz_n(w_hh, h.shape[1])
    b_hrz, b_hn = _split_rz_n(b_hh, h.shape[1])
    gx_r, gx_z, gx_n = np.split(gx, 3, axis=1)
    gh_r, gh_z = np.split(affine(h, w_hrz, b_hrz), 2, axis=1)  # each (B, H)
    act_f, act_g = options.activations
    a_r, a_z = gx_r + gh_r, gx_z + gh_z
    r = activate(act_f, a_r, options.clip)
    z = activate(act_f, a_z, options.clip)
    rh = r * h
    a_n = gx_n + affine(rh, w_hn, b_hn)
    n = activate(act_g, a_n, options.clip)
    h_new = (1 - z) * n + z * h
    return h_new, None, (h, r, z, n, rh, (a_r, a_z, a_n))


def step_backward_reset_before(
    dh: np.ndarray,
    dc: None,
    cache: tuple,
    w_hh: np.ndarray,
    w_ph: None = None,
    options: CellOptions = _DEFAULTS,
) -> tuple:
    """reset_after=False. dh (B, H): gradient w.r.t. h_new.

    Returns (dgx (B, 3H), dh_prev (B, H), None, dw_hh (3H, H), db_hh (3H,), None).
    """
    h, r, z, n, rh, (a_r, a_z, a_n) = cache
    act_f, act_g = options.activations
    w_hrz, w_hn = _split_rz_n(w_hh, h.shape[1])
    dn = dh * (1 - z)
    dz = dh * (h - n)
    da_n = activate_backprop(act_g, dn, a_n, n, options.clip)  # w.r.t. n's pre-activation
    drh = da_n @ w_hn  # gradient w.r.t. r * h
    da_r = activate_backprop(act_f, drh * h, a_r, r, options.clip)
    da_z = activate_backprop(act_f, dz, a_z, z, options.clip)
    da_rz = np.concatenate([da_r, da_z], axis=1)  # (B, 2H)
    dgx = np.concatenate([da_rz, da_n], axis=1)  # (B, 3H); also the hidden-bias gradient
    dh_prev = dh * z + drh * r + da_rz @ w_hrz
    dw_hh = np.concatenate([da_rz.T @ h, da_n.T @ rh], axis=0)  # (3H, H)
    return dgx, dh_prev, None, dw_hh, dgx.sum(axis=0), None
