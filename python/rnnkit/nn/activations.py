"""``Activation``: an element-wise (or, for softmax, last-axis) function as a layer.

The functions and their names are Keras's (``keras.activations``), so a Keras model's
``Dense(activation=...)`` and ``Activation`` layers map onto it one to one. Those the
recurrent cells also take (sigmoid, tanh, relu, linear, elu, softplus, softsign,
hard_sigmoid) are the reference's (rnnkit.reference.activations); the rest are here. Both
directions compute in ``x``'s dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnkit._module import Module
from rnnkit._validation import as_float_array
from rnnkit.activations import resolve_activation
from rnnkit.nn._wrapper import take_saved
from rnnkit.reference import activations as cell_activations
from rnnkit.reference._math import sigmoid

__all__ = ["Activation", "ACTIVATION_NAMES"]

# SELU's constants (Klambauer et al. 2017), as in Keras and torch.
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_backward(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


def _log_softmax_backward(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    return g - np.exp(y) * g.sum(axis=-1, keepdims=True)


def _selu(x: np.ndarray) -> np.ndarray:
    negative = _SELU_ALPHA * np.expm1(np.minimum(x, 0))
    return (_SELU_SCALE * np.where(x > 0, x, negative)).astype(x.dtype)


def _silu_backward(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return g * (s + x * s * (1 - s))


# Keras's names that the cells take too (rnnkit.Activation): one definition of each, the
# reference's, forward and derivative (hard_sigmoid's alpha and beta are the layer's).
_CELL_FUNCTIONS = ("linear", "relu", "sigmoid", "tanh", "softplus", "softsign", "elu")

# The others: name -> (forward(x) -> y, backward(x, y, grad_y) -> grad_x).
_FUNCTIONS: dict[str, tuple[Callable, Callable]] = {
    "relu6": (
        lambda x: np.clip(x, 0, 6),
        lambda x, y, g: np.where((x > 0) & (x < 6), g, 0).astype(g.dtype),
    ),
    "softmax": (_softmax, _softmax_backward),
    "log_softmax": (lambda x: np.log(_softmax(x)), _log_softmax_backward),
    "selu": (
        _selu,
        lambda x, y, g: np.where(
            x > 0, _SELU_SCALE * g, g * (y + _SELU_SCALE * _SELU_ALPHA)
        ).astype(g.dtype),
    ),
    "exponential": (np.exp, lambda x, y, g: g * y),
    "silu": (lambda x: x * sigmoid(x), _silu_backward),
}
_ALIASES = {"swish": "silu"}
ACTIVATION_NAMES = tuple(sorted([*_FUNCTIONS, *_CELL_FUNCTIONS, *_ALIASES, "hard_sigmoid"]))


def _functions(name: str, alpha: float, beta: float) -> tuple[Callable, Callable]:
    """(forward, backward) of the Keras activation ``name`` (a key of ACTIVATION_NAMES)."""
    if name not in _CELL_FUNCTIONS and name != "hard_sigmoid":
        return _FUNCTIONS[name]
    spec = (name, alpha, beta) if name == "hard_sigmoid" else name
    act = resolve_activation(spec, "name")
    return (
        lambda x: cell_activations.apply(act, x),
        lambda x, y, g: cell_activations.backprop(act, g, x, y),
    )


class Activation(Module):
    """``y = f(x)`` for a Keras activation name: ``x (...)`` -> ``y (...)`` (softmax and
    log_softmax over the last axis).

    Names: ``ACTIVATION_NAMES`` (linear, relu, relu6, sigmoid, hard_sigmoid, tanh, softmax,
    log_softmax, softplus, softsign, elu, selu, exponential, silu/swish).
    ``hard_sigmoid`` is ``clip(alpha*x + beta, 0, 1)`` with Keras 3's ``alpha=1/6``,
    ``beta=0.5`` unless given (Keras 2's was ``alpha=0.2``). No parameters; it computes in
    its input's floating dtype. Modes, threads and copies as ``rnnkit.LSTM``.
    """

    def __init__(self, name: str, alpha: float | None = None, beta: float | None = None) -> None:
        super().__init__(None)
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        key = _ALIASES.get(name.lower(), name.lower())
        if key not in ACTIVATION_NAMES:
            raise ValueError(f"name must be one of {list(ACTIVATION_NAMES)}, got {name!r}")
        if key != "hard_sigmoid" and (alpha is not None or beta is not None):
            raise ValueError(f"alpha and beta apply to 'hard_sigmoid' only, not {name!r}")
        self.name = key
        self.alpha = 1 / 6 if alpha is None else float(alpha)
        self.beta = 0.5 if beta is None else float(beta)
        self._forward_fn, self._backward_fn = _functions(key, self.alpha, self.beta)

    def __getstate__(self) -> dict[str, Any]:
        # The functions are closures or lambdas, which pickle cannot store: a copy rebuilds them.
        state = super().__getstate__()
        del state["_forward_fn"], state["_backward_fn"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._forward_fn, self._backward_fn = _functions(self.name, self.alpha, self.beta)

    def forward(self, x: Any) -> np.ndarray:
        """``f(x)``, same shape and dtype as ``x`` (floating)."""
        training = self.training
        self._enter(exclusive=training)
        try:
            xa = as_float_array("x", x)
            y = self._forward_fn(xa)
            if training:
                self._saved = (xa, y)
            else:
                self._drop_saved("the last forward pass ran in eval mode")
            return y
        finally:
            self._leave()

    def backward(self, grad_out: Any) -> np.ndarray:
        """``dx`` from ``grad_out`` (the shape of the forward's ``x``)."""
        x, y = take_saved(self)
        g = np.asarray(grad_out, dtype=x.dtype)
        if g.shape != x.shape:
            raise ValueError(f"grad_out must have shape {x.shape}, got {g.shape}")
        return self._backward_fn(x, y, g)

    def extra_repr(self) -> str:
        if self.name == "hard_sigmoid":
            return f"'hard_sigmoid', alpha={self.alpha:g}, beta={self.beta:g}"
        return repr(self.name)
