"""Sequence lengths inside a :class:`~rnnkit.nn.Sequential`: from a padding mask, or given.

A :class:`~rnnkit.nn.Sequential` carries one length per sequence from the layer that knows
where the padding is (``Embedding(mask_zero=True)``, ``Masking``, or the caller's
``lengths=``) to the recurrent layers after it. A length may be 0: a sequence that is all
padding gives zeros from every recurrent layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def lengths_from_mask(mask: np.ndarray, layer: str) -> np.ndarray:
    """Lengths ``(B,)`` int64 of a right-padded bool ``mask (B, T)`` (True = a real step).

    A mask with a padded step before a real one cannot be expressed as lengths: ValueError
    naming ``layer``, the sequence and the step.
    """
    B, T = mask.shape
    lengths = mask.sum(axis=1).astype(np.int64)  # (B,)
    right_padded = np.arange(T)[None, :] < lengths[:, None]  # (B, T)
    wrong = np.argwhere(right_padded != mask)
    if wrong.size:
        b = int(wrong[0, 0])
        t = int(np.flatnonzero(~mask[b])[0])
        raise ValueError(
            f"{layer}: the mask of sequence {b} has a padded step at t={t} before a real "
            f"one; rnnkit runs right-padded sequences only (padding after the last real "
            f"step), so a mask with a gap inside a sequence is refused rather than guessed"
        )
    return lengths


def check_sequence_lengths(lengths: Any, B: int, T: int) -> np.ndarray | None:
    """The caller's ``lengths`` as int64 ``(B,)``, each in 0..T; None stays None."""
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must be an integer array of shape ({B},), got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},) (one per sequence), got {arr.shape}")
    bad = np.flatnonzero((arr < 0) | (arr > T))
    if bad.size:
        b = int(bad[0])
        raise ValueError(f"lengths must be in 0..{T}, got lengths[{b}] = {arr[b]}")
    return arr.astype(np.int64)


def lengths_or_full(lengths: np.ndarray | None, B: int, T: int) -> np.ndarray:
    """``lengths`` or, when None, every sequence at full length ``T``: int64 ``(B,)``."""
    return np.full(B, T, dtype=np.int64) if lengths is None else lengths


__all__ = ["lengths_from_mask", "check_sequence_lengths", "lengths_or_full"]
