"""The activation functions a recurrent cell may use in place of its sigmoid and tanh.

ONNX's RNN, LSTM and GRU operators name them (``activations``, with ``activation_alpha``
and ``activation_beta``); rnnkit takes the same names, case-insensitively, with ONNX's
definitions and default parameters:

=================  =================================  =====================
name               definition                         defaults
=================  =================================  =====================
Sigmoid            1 / (1 + exp(-x))
Tanh               tanh(x)
Relu               max(x, 0)
HardSigmoid        clamp(alpha*x + beta, 0, 1)        alpha 0.2, beta 0.5
LeakyRelu          x if x >= 0 else alpha*x           alpha 0.01
ThresholdedRelu    x if x > alpha else 0              alpha 1.0
ScaledTanh         alpha * tanh(beta*x)               alpha 1.0, beta 1.0
Affine             alpha*x + beta                     alpha 1.0, beta 0.0
Elu                x if x >= 0 else alpha*(e^x - 1)   alpha 1.0
Softsign           x / (1 + |x|)
Softplus           log(1 + e^x)
=================  =================================  =====================

Keras's names map onto these: "sigmoid", "tanh", "relu", "linear" (Affine(1, 0)), "elu",
"softsign", "softplus" and "hard_sigmoid", Keras 3's relu6(x + 3) / 6, which is
HardSigmoid(alpha=1/6, beta=0.5) (Keras 2's 0.2*x + 0.5 is HardSigmoid(0.2, 0.5): pass it
explicitly).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Activation", "ActivationLike", "ACTIVATION_NAMES"]

# Canonical name -> (default alpha, default beta); None where the function takes none.
_PARAMETERS: dict[str, tuple[float | None, float | None]] = {
    "Sigmoid": (None, None),
    "Tanh": (None, None),
    "Relu": (None, None),
    "HardSigmoid": (0.2, 0.5),
    "LeakyRelu": (0.01, None),
    "ThresholdedRelu": (1.0, None),
    "ScaledTanh": (1.0, 1.0),
    "Affine": (1.0, 0.0),
    "Elu": (1.0, None),
    "Softsign": (None, None),
    "Softplus": (None, None),
}
ACTIVATION_NAMES: tuple[str, ...] = tuple(_PARAMETERS)

_BY_LOWER_NAME = {name.lower(): name for name in ACTIVATION_NAMES}
# Keras's names that are not ONNX's in lower case: (ONNX name, alpha, beta).
_KERAS_NAMES: dict[str, tuple[str, float | None, float | None]] = {
    "linear": ("Affine", 1.0, 0.0),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),
}


@dataclass(frozen=True)
class Activation:
    """One activation function: an ONNX name and its parameters (None: the default).

    ``Activation("HardSigmoid", alpha=0.2, beta=0.5)``. The modules store them complete:
    the canonical name, and the default of every parameter the function takes filled in.
    """

    name: str
    alpha: float | None = None
    beta: float | None = None


ActivationLike = str | tuple | Activation


def resolve_activation(value: Any, argument: str) -> Activation:
    """``value`` (a name, a tuple (name, alpha[, beta]) or an Activation) as a complete
    Activation; TypeError / ValueError naming ``argument`` otherwise."""
    if isinstance(value, Activation):
        name, alpha, beta = value.name, value.alpha, value.beta
    elif isinstance(value, str):
        name, alpha, beta = value, None, None
    elif isinstance(value, tuple) and len(value) in (2, 3):
        name, alpha = value[0], value[1]
        beta = value[2] if len(value) == 3 else None
    else:
        raise TypeError(
            f"{argument} must be an activation name, a tuple (name, alpha) or "
            f"(name, alpha, beta), or an rnnkit.Activation, got {value!r}"
        )
    if not isinstance(name, str):
        raise TypeError(f"{argument}: the activation name must be a str, got {name!r}")
    canonical = _BY_LOWER_NAME.get(name.lower())
    if canonical is None and name.lower() in _KERAS_NAMES:
        canonical, keras_alpha, keras_beta = _KERAS_NAMES[name.lower()]
        alpha = keras_alpha if alpha is None else alpha
        beta = keras_beta if beta is None else beta
    if canonical is None:
        names = ", ".join(ACTIVATION_NAMES + tuple(_KERAS_NAMES))
        raise ValueError(f"{argument}: unknown activation {name!r}; expected one of {names}")
    default_alpha, default_beta = _PARAMETERS[canonical]
    return Activation(
        canonical,
        _parameter(argument, canonical, "alpha", alpha, default_alpha),
        _parameter(argument, canonical, "beta", beta, default_beta),
    )


def _parameter(
    argument: str, name: str, which: str, value: Any, default: float | None
) -> float | None:
    """A parameter's value: the default for None; ValueError when the function takes no
    such parameter, TypeError / ValueError for a value that is not a finite real."""
    if value is None:
        return default
    if default is None:
        raise ValueError(f"{argument}: {name} takes no {which}, got {which}={value!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument}: {name}'s {which} must be a real number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{argument}: {name}'s {which} must be finite, got {value!r}")
    return float(value)


def resolve_activations(
    values: Sequence[Any], count: int, module: str, roles: str
) -> tuple[Activation, ...]:
    """``values`` as ``count`` complete Activations (``roles`` says what each is for, in
    the error message); TypeError / ValueError naming ``activations`` otherwise."""
    if isinstance(values, (str, Activation)) or not isinstance(values, Sequence):
        raise TypeError(
            f"activations must be a sequence of {count} activations ({roles}) for "
            f"rnnkit.{module}, got {values!r}"
        )
    if len(values) != count:
        raise ValueError(
            f"activations must hold {count} entries ({roles}) for rnnkit.{module}, "
            f"got {len(values)}: {tuple(values)!r}"
        )
    return tuple(resolve_activation(v, f"activations[{i}]") for i, v in enumerate(values))
