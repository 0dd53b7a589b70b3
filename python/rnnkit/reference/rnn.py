"""Elman RNN cell, one time step batched over B:

    h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh),   act = tanh or relu.

The input projection ``gx = x W_ih^T + b_ih`` is computed by the caller for all steps at
once; a step only adds the recurrent term. ``c`` and ``w_ph`` are unused (None) and kept
so that every cell has the same step signature.

Cell variants (rnnkit._cell_options.CellOptions; ONNX's RNN): act is the activation f
(any of rnnkit.activations); clip clamps the pre-activation to [-clip, clip] before it.
"""

from __future__ import annotations

import numpy as np

from rnnkit._cell_options import CellOptions, default_options
from rnnkit.reference._math import affine
from rnnkit.reference.activations import activate, activate_backprop

NONLINEARITIES = ("tanh", "relu")


def _options(nonlinearity: str, options: CellOptions | None) -> CellOptions:
    """The options of a step: the nonlinearity's defaults unless options are given."""
    return default_options(f"rnn_{nonlinearity}") if options is None else options


def step_forward(
    gx: np.ndarray,
    h: np.ndarray,
    c: None,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    w_ph: None = None,
    options: CellOptions | None = None,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, None, tuple]:
    """gx (B, H), h (B, H), w_hh (H, H), b_hh (H,) or None -> (h_new (B, H), None, cache)."""
    a = gx + affine(h, w_hh, b_hh)  # (B, H) pre-activation
    (act,) = _options(nonlinearity, options).activations
    h_new = activate(act, a, _options(nonlinearity, options).clip)
    return h_new, None, (h, h_new, a)


def step_backward(
    dh: np.ndarray,
    dc: None,
    cache: tuple,
    w_hh: np.ndarray,
    w_ph: None = None,
    options: CellOptions | None = None,
    nonlinearity: str = "tanh",
) -> tuple:
    """dh (B, H): gradient w.r.t. h_new.

    Returns (dgx (B, H), dh_prev (B, H), None, dw_hh (H, H), db_hh (H,), None); dgx is also
    the gradient w.r.t. b_ih and, through W_ih, w.r.t. x.
    """
    h, h_new, a = cache
    opts = _options(nonlinearity, options)
    (act,) = opts.activations
    if act.name == "Relu" and opts.clip is None:
        # Selected, not multiplied by a 0/1 mask (0 * NaN is NaN), as torch's
        # threshold_backward: a NaN/Inf dh at a closed unit gives 0, a NaN h_new passes dh.
        da = np.where(h_new <= 0, 0, dh)
    else:
        da = activate_backprop(act, dh, a, h_new, opts.clip)
    dh_prev = da @ w_hh
    return da, dh_prev, None, da.T @ h, da.sum(axis=0), None
