"""Native backend: the stack functions every backend provides, over the C++ core.

A thin wrapper over ``rnnkit._core.stack_forward`` / ``stack_backward``: the same signatures
and return structures as ``rnnkit.reference.stack_forward`` / ``stack_backward``. The module
(rnnkit.modules) has already validated and converted every array (C-contiguous, one float
dtype); the core checks again and raises ValueError / TypeError rather than crash. The GIL is
released while the core computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnkit import _core
from rnnkit._cell_options import CellOptions

Weights = Sequence[tuple]  # L*D (w_ih, w_hh, b_ih | None, b_hh | None[, w_hr | None[, w_ph]])


def stack_forward(
    mode: str,
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray | None,
    weights: Weights,
    lengths: np.ndarray | None,
    dropout_masks: Sequence[np.ndarray] | None,
    training: bool,
    *,
    num_directions: int,
    packed: _core.PackedStack | None = None,
    options: CellOptions | None = None,
) -> tuple:
    """Forward of an L-layer, D-direction stack in the C++ core.

    x (T, B, I); h0 (L*D, B, R); c0 (L*D, B, H) for "lstm" else None; weights: L*D tuples
    (w_ih (G*H, I_k), w_hh (G*H, R), b_ih (G*H,) | None, b_hh (G*H,) | None), entry k*D + d,
    for "lstm" optionally with a fifth item w_hr (P, H), a projection: then R = P (1 <= P
    < H), else R = H, and I_k = D*R above layer 0; lengths: int64 (B,) with values in
    1..T, or None; dropout_masks: L-1 arrays (T, B, D*R), already scaled, or None. All
    float arrays share one dtype (float32 or float64).

    Returns (out (T, B, D*R), h_n (L*D, B, R), c_n (L*D, B, H) or None, cache), where cache
    is an opaque ``rnnkit._core.StackCache`` when ``training`` and None otherwise. The cache
    copies the lengths and masks but references x, the weights and, for the RNN and GRU
    modes, the returned out (keeping them alive), with checksums of their bytes.

    packed: the weights' packed copies (:func:`pack_weights`), or None (packed in this
    call). At inference the caller guarantees they match ``weights``; in training the core
    compares the weights' checksums with the ones packed and repacks first when they differ.

    options: the cell variants (rnnkit._cell_options), or None for the mode's defaults;
    with peepholes every weights entry has a sixth item, w_ph (3H,), after w_hr or None.
    """
    return _core.stack_forward(
        mode,
        x,
        h0,
        c0,
        list(weights),
        lengths,
        None if dropout_masks is None else list(dropout_masks),
        bool(training),
        num_directions,
        packed,
        None if options is None else options.to_core(),
    )


def pack_weights(mode: str, weights: Weights, num_directions: int) -> _core.PackedStack:
    """The forward's packed copies of ``weights`` (as stack_forward's), for reuse across
    calls with ``stack_forward(..., packed=...)``."""
    return _core.PackedStack(mode, list(weights), num_directions)


def stack_backward(
    mode: str,
    cache: _core.StackCache,
    dout: np.ndarray,
    dh_n: np.ndarray,
    dc_n: np.ndarray | None,
    grads: Weights | None = None,
    add_into_grads: bool = True,
) -> tuple:
    """Backward of ``stack_forward`` from its training cache.

    dout (T, B, D*R) (ignored past each sequence's length); dh_n (L*D, B, R); dc_n
    (L*D, B, H) for "lstm" else None (R as in stack_forward). Returns fresh arrays (dx
    (T, B, I), dh0 (L*D, B, R), dc0 (L*D, B, H) or None) and dweights, L*D tuples (dw_ih,
    dw_hh, db_ih, db_hh[, dw_hr | None[, dw_ph]]) shaped like the weights, the biases None
    when the weights have none: fresh arrays, or, when ``grads`` (the same
    structure: writeable C-contiguous arrays of the compute dtype, overlapping no other
    argument) is given, ``grads`` itself, with the gradients added into it in place
    (``add_into_grads=False``: written over it, the values fresh arrays would hold).
    Raises RuntimeError, naming the array, when x, a weight (by its PyTorch parameter name)
    or (RNN, GRU modes) out was modified in place since the forward (its checksum differs:
    a check against accidents, not against deliberately constructed collisions).
    """
    if cache is None:
        raise ValueError(
            "stack_backward: cache is None; run stack_forward with training=True first"
        )
    return _core.stack_backward(
        mode,
        cache,
        dout,
        dh_n,
        dc_n,
        None if grads is None else list(grads),
        add_into_grads=add_into_grads,
    )
