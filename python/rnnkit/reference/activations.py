"""The activation functions of rnnkit.activations in NumPy, and their derivatives.

``apply(act, x)`` is the function; ``backprop(act, dy, x, y)`` is ``dy * act'(x)`` given
its output ``y = apply(act, x)``. Sigmoid and Tanh use ``y`` (``dy * y * (1 - y)``,
``dy * (1 - y * y)``, the cells' usual formulas, the same bits); the others use x.

Kinks (a one-sided derivative is taken, as torch's backward functions do): Relu at 0
gives 0; LeakyRelu at 0 gives alpha; ThresholdedRelu at alpha (a jump) gives 0;
HardSigmoid where alpha*x + beta is 0 or 1 gives 0; Elu at 0 gives alpha.
"""

from __future__ import annotations

import numpy as np

from rnnkit.activations import Activation
from rnnkit.reference._math import sigmoid


def apply(act: Activation, x: np.ndarray) -> np.ndarray:
    """act(x), elementwise, in x's dtype."""
    name, t = act.name, x.dtype.type
    if name == "Sigmoid":
        return sigmoid(x)
    if name == "Tanh":
        return np.tanh(x)
    if name == "Relu":
        return np.maximum(x, 0)
    if name == "HardSigmoid":
        return np.clip(t(act.alpha) * x + t(act.beta), 0, 1)
    if name == "LeakyRelu":
        return np.where(x >= 0, x, t(act.alpha) * x)
    if name == "ThresholdedRelu":
        return np.where(x > t(act.alpha), x, 0).astype(x.dtype)
    if name == "ScaledTanh":
        return t(act.alpha) * np.tanh(t(act.beta) * x)
    if name == "Affine":
        return t(act.alpha) * x + t(act.beta)
    if name == "Elu":
        return np.where(x >= 0, x, t(act.alpha) * np.expm1(np.minimum(x, 0)))
    if name == "Softsign":
        return x / (1 + np.abs(x))
    if name == "Softplus":
        return np.logaddexp(x, t(0))
    raise ValueError(f"unknown activation {name!r}")


def backprop(act: Activation, dy: np.ndarray, x: np.ndarray | None, y: np.ndarray) -> np.ndarray:
    """dy * act'(x), y = act(x); x may be None for Sigmoid and Tanh."""
    name, t = act.name, y.dtype.type
    if name == "Sigmoid":
        return dy * y * (1 - y)
    if name == "Tanh":
        return dy * (1 - y * y)
    if name == "Relu":
        return np.where(x > 0, dy, 0)
    if name == "HardSigmoid":
        a = t(act.alpha) * x + t(act.beta)
        return np.where((a > 0) & (a < 1), dy * t(act.alpha), 0)
    if name == "LeakyRelu":
        return np.where(x > 0, dy, dy * t(act.alpha))
    if name == "ThresholdedRelu":
        return np.where(x > t(act.alpha), dy, 0)
    if name == "ScaledTanh":
        th = np.tanh(t(act.beta) * x)
        return dy * (t(act.alpha) * t(act.beta) * (1 - th * th))
    if name == "Affine":
        return dy * t(act.alpha)
    if name == "Elu":
        return np.where(x > 0, dy, dy * (t(act.alpha) * np.exp(np.minimum(x, 0))))
    if name == "Softsign":
        s = 1 + np.abs(x)
        return dy / (s * s)
    if name == "Softplus":
        return dy * sigmoid(x)
    raise ValueError(f"unknown activation {name!r}")


def clip(a: np.ndarray, bound: float | None) -> np.ndarray:
    """a clamped to [-bound, bound]; a itself when bound is None."""
    return a if bound is None else np.clip(a, -bound, bound)


def clip_backprop(da: np.ndarray, a: np.ndarray, bound: float | None) -> np.ndarray:
    """The gradient through clip: da where -bound <= a <= bound (the bounds included, as
    torch's clamp), else 0; da itself when bound is None."""
    return da if bound is None else np.where(np.abs(a) <= bound, da, 0)


def activate(act: Activation, a: np.ndarray, bound: float | None) -> np.ndarray:
    """act(clip(a))."""
    return apply(act, clip(a, bound))


def activate_backprop(
    act: Activation, dy: np.ndarray, a: np.ndarray, y: np.ndarray, bound: float | None
) -> np.ndarray:
    """The gradient w.r.t. a of y = act(clip(a)), given dy."""
    return clip_backprop(backprop(act, dy, clip(a, bound), y), a, bound)
