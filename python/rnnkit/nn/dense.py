"""``Dense``: ``Linear`` then an ``Activation``, Keras's fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.nn._layers import Linear
from rnnkit.nn._wrapper import Wrapper
from rnnkit.nn.activations import Activation

__all__ = ["Dense"]


class Dense(Wrapper):
    """``y = activation(x @ weight.T + bias)`` over the last axis: ``x (..., in_features)``
    -> ``(..., out_features)``.

    ``weight (out_features, in_features)`` and ``bias (out_features,)`` are a
    :class:`Linear`'s (same names, initialisation and ``seed``); ``activation`` is a name
    of :class:`Activation` (``"linear"`` for none). ``backward(grad_out)`` returns ``dx``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "linear",
        bias: bool = True,
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        linear = Linear(in_features, out_features, bias=bias, dtype=dtype, seed=seed)
        act = activation if isinstance(activation, Activation) else Activation(activation)
        super().__init__(linear, act)
        self.linear = linear
        self.activation = act

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        return self.linear.out_features

    def forward(self, x: Any) -> np.ndarray:
        """``x (..., in_features)`` -> ``(..., out_features)``."""
        return self.activation.forward(self.linear.forward(x))

    def backward(self, grad_out: Any) -> np.ndarray:
        """Accumulate ``weight``/``bias`` gradients; return ``dx (..., in_features)``."""
        return self.linear.backward(self.activation.backward(grad_out))

    def extra_repr(self) -> str:
        return f"{self.linear.extra_repr()}, activation={self.activation.extra_repr()}"
