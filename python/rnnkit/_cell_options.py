"""The cell-variant options of a recurrent stack, as both backends take them.

``CellOptions`` holds what the modules' ``activations``, ``clip``, ``peepholes``,
``input_forget`` and ``reverse`` arguments select, complete and checked. At the defaults
(``default_options(mode)``) a backend runs its usual cells: the same bits as without
options.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from rnnkit._validation import check_bool
from rnnkit.activations import Activation, resolve_activations

# Each mode's activations, in ONNX's order (f, g, h): what runs without options.
DEFAULT_ACTIVATIONS: dict[str, tuple[Activation, ...]] = {
    "rnn_tanh": (Activation("Tanh"),),
    "rnn_relu": (Activation("Relu"),),
    "lstm": (Activation("Sigmoid"), Activation("Tanh"), Activation("Tanh")),
    "gru": (Activation("Sigmoid"), Activation("Tanh")),
    "gru_reset_before": (Activation("Sigmoid"), Activation("Tanh")),
}

# What each of a cell's activations is for, in the modules' error messages.
ACTIVATION_ROLES: dict[str, str] = {
    "rnn": "f for h",
    "lstm": "f for the i, f, o gates, g for the candidate, h for the cell state's output",
    "gru": "f for the z and r gates, g for the candidate n",
}


@dataclass(frozen=True)
class CellOptions:
    """activations: one per role of the mode, complete (rnnkit.activations); clip: the
    bound of every gate's pre-activation, or None; peepholes, input_forget: LSTM only;
    reverse: the one direction (D = 1) runs from each sequence's last valid step."""

    activations: tuple[Activation, ...]
    clip: float | None = None
    peepholes: bool = False
    input_forget: bool = False
    reverse: bool = False

    def is_default(self, mode: str) -> bool:
        """Whether these options change nothing for ``mode`` (the backends' usual cells)."""
        return self == default_options(mode)

    def repr_parts(self, mode: str) -> list[str]:
        """The options that differ from ``mode``'s defaults, as a module's repr shows them."""
        parts = []
        if self.activations != DEFAULT_ACTIVATIONS[mode]:
            parts.append(f"activations={self.activations!r}")
        if self.clip is not None:
            parts.append(f"clip={self.clip!r}")
        for name in ("peepholes", "input_forget", "reverse"):
            if getattr(self, name):
                parts.append(f"{name}=True")
        return parts

    def to_core(self) -> tuple:
        """The form rnnkit._core's stack_forward takes: ([(name, alpha, beta), ...],
        clip (0: none), peepholes, input_forget, reverse), absent parameters as 0."""
        acts = [(a.name, a.alpha or 0.0, a.beta or 0.0) for a in self.activations]
        return (acts, self.clip or 0.0, self.peepholes, self.input_forget, self.reverse)


def default_options(mode: str) -> CellOptions:
    return CellOptions(DEFAULT_ACTIVATIONS[mode])


def check_clip(value: Any) -> float | None:
    """None, or a positive finite real (as a float)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"clip must be a positive finite float or None, got {value!r} ({type(value).__name__})"
        )
    clip = float(value)
    if not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be a positive finite float or None, got {value!r}")
    return clip


def check_options(
    mode: str,
    module: str,
    bidirectional: bool,
    activations: Any,
    clip: Any,
    reverse: Any,
    peepholes: bool = False,
    input_forget: bool = False,
) -> CellOptions:
    """The cell-variant options of rnnkit.``module`` running ``mode``, checked and complete
    (peepholes and input_forget already checked by the LSTM)."""
    reverse = check_bool("reverse", reverse)
    if reverse and bidirectional:
        raise ValueError(
            f"rnnkit.{module}: reverse=True runs the one direction backwards; it cannot be "
            f"combined with bidirectional=True (whose second direction already does)"
        )
    acts = DEFAULT_ACTIVATIONS[mode]
    if activations is not None:
        roles = ACTIVATION_ROLES[mode.split("_")[0]]
        acts = resolve_activations(activations, len(acts), module, roles)
    return CellOptions(acts, check_clip(clip), peepholes, input_forget, reverse)
