"""``Sequential.summary``: a table of the layers, their output shapes and parameter counts.

Parameter counts follow one of two conventions, which differ for recurrent layers only:
``"keras"`` counts one bias per cell where Keras keeps one (SimpleRNN, LSTM, and GRU with
``reset_after=False``: rnnkit holds torch's two bias vectors there, ``bias_ih`` and
``bias_hh``, whose sum is the one bias Keras learns), so a SimpleRNN(16) on 32 features
counts 784 as in Keras; ``"torch"`` counts every array rnnkit holds (800 there), as torch
does. GRU with ``reset_after=True`` keeps two biases in both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.modules import GRU
from rnnkit.nn._layers import Embedding
from rnnkit.nn.recurrent import Recurrent

CONVENTIONS = ("keras", "torch")


def parameter_count(layer: Any, convention: str) -> int:
    """The number of parameters of ``layer`` under ``convention`` (see the module)."""
    count = sum(p.size for p in layer.parameters().values())
    if convention == "keras" and isinstance(layer, Recurrent):
        module = layer.module
        two_biases = isinstance(module, GRU) and module.reset_after
        if module.bias and not two_biases:
            count -= sum(p.size for name, p in module.parameters().items() if "bias_hh" in name)
    return count


def sample_input(first_layer: Any, input_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """One sequence of ``input_shape`` for a shape-only forward: index 1 (or 0 for a
    one-row table) under an Embedding, which mask_zero would otherwise read as padding;
    zeros of ``dtype`` otherwise."""
    if isinstance(first_layer, Embedding):
        index = min(1, first_layer.num_embeddings - 1)
        return np.full((1, *input_shape), index, dtype=np.int64)
    return np.zeros((1, *input_shape), dtype=dtype)


def shape_text(shape: tuple[int, ...]) -> str:
    """``(1, 20, 64)`` -> ``"(B, 20, 64)"``: the batch axis of a shape-only forward."""
    return "(" + ", ".join(["B", *map(str, shape[1:])]) + ")"


def table(rows: list[tuple[str, str, str, str]]) -> str:
    """Left-aligned columns, a header row and a rule under it."""
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(max(lines, key=len)))
    return "\n".join(lines)
