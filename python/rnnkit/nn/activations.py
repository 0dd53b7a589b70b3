"""``Activation``: an element-wise (or, for softmax, last-axis) function as a layer.

The functions and their names are Keras's (``keras.activations``), so a Keras model's
``Dense(activation=...)`` and ``Activation`` layers map onto it one to one. Each entry of
``_FUNCTIONS`` is ``(forward(x) -> y, backward(x, y, grad_y) -> grad_x)``; both compute in
``x``'s dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnkit._module import Module
from rnnkit._validation import as_float_array
from rnnkit.nn._wrapper import take_saved

__all__ = ["Activation", "ACTIVATION_NAMES"]

# SELU's constants (Klambauer et al. 2017), as in Keras and torch.
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only, so neither side overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_backward(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


def _log_softmax_backward(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    return g - np.exp(y) * g.sum(axis=-1, keepdims=True)


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype)


def _silu_backward(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    s = _sigmoid(x)
    return g * (s + x * s * (1 - s))


def _hard_sigmoid(alpha: float, beta: float) -> tuple[Callable, Callable]:
    """``clip(alpha*x + beta, 0, 1)``: Keras 3's hard_sigmoid is relu6(x + 3) / 6, i.e.
    alpha 1/6, beta 0.5; Keras 2's was alpha 0.2, beta 0.5."""

    def forward(x: np.ndarray) -> np.ndarray:
        return np.clip(alpha * x + beta, 0, 1).astype(x.dtype)

    def backward(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
        inside = (alpha * x + beta > 0) & (alpha * x + beta < 1)
        return np.where(inside, alpha * g, 0).astype(g.dtype)

    return forward, backward


_FUNCTIONS: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda x: x.copy(), lambda x, y, g: g),
    "relu": (lambda x: np.maximum(x, 0), lambda x, y, g: np.where(x > 0, g, 0).astype(g.dtype)),
    "relu6": (
        lambda x: np.clip(x, 0, 6),
        lambda x, y, g: np.where((x > 0) & (x < 6), g, 0).astype(g.dtype),
    ),
    "sigmoid": (_sigmoid, lambda x, y, g: g * y * (1 - y)),
    "tanh": (np.tanh, lambda x, y, g: g * (1 - y * y)),
    "softmax": (_softmax, _softmax_backward),
    "log_softmax": (lambda x: np.log(_softmax(x)), _log_softmax_backward),
    "softplus": (
        lambda x: np.logaddexp(x, 0).astype(x.dtype),
        lambda x, y, g: g * _sigmoid(x),
    ),
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda x, y, g: g / (1 + np.abs(x)) ** 2),
    "elu": (
        lambda x: _elu(x, 1.0),
        lambda x, y, g: np.where(x > 0, g, g * (y + 1)).astype(g.dtype),
    ),
    "selu": (
        lambda x: (_SELU_SCALE * _elu(x, _SELU_ALPHA)).astype(x.dtype),
        lambda x, y, g: np.where(
            x > 0, _SELU_SCALE * g, g * (y + _SELU_SCALE * _SELU_ALPHA)
        ).astype(g.dtype),
    ),
    "exponential": (np.exp, lambda x, y, g: g * y),
    "silu": (lambda x: x * _sigmoid(x), _silu_backward),
}
_ALIASES = {"swish": "silu"}
ACTIVATION_NAMES = tuple(sorted([*_FUNCTIONS, *_ALIASES, "hard_sigmoid"]))


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
        if key != "hard_sigmoid" and key not in _FUNCTIONS:
            raise ValueError(f"name must be one of {list(ACTIVATION_NAMES)}, got {name!r}")
        if key != "hard_sigmoid" and (alpha is not None or beta is not None):
            raise ValueError(f"alpha and beta apply to 'hard_sigmoid' only, not {name!r}")
        self.name = key
        self.alpha = 1 / 6 if alpha is None else float(alpha)
        self.beta = 0.5 if beta is None else float(beta)
        if key == "hard_sigmoid":
            self._forward_fn, self._backward_fn = _hard_sigmoid(self.alpha, self.beta)
        else:
            self._forward_fn, self._backward_fn = _FUNCTIONS[key]

    def __getstate__(self) -> dict[str, Any]:
        # The functions are closures or lambdas, which pickle cannot store: a copy rebuilds them.
        state = super().__getstate__()
        del state["_forward_fn"], state["_backward_fn"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if self.name == "hard_sigmoid":
            self._forward_fn, self._backward_fn = _hard_sigmoid(self.alpha, self.beta)
        else:
            self._forward_fn, self._backward_fn = _FUNCTIONS[self.name]

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
