"""An RNN / GRU / LSTM node's attributes (ONNX opsets 7-22), checked and with ONNX's
defaults filled in, as a :class:`NodeAttributes`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from onnx import NodeProto, helper

RECURRENT_OPS = ("RNN", "GRU", "LSTM")
# Gate blocks in W and R: RNN one, GRU [z, r, h], LSTM [i, o, f, c].
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
# The activations each direction takes (RNN f; GRU f, g; LSTM f, g, h) and their defaults.
DEFAULT_ACTIVATIONS = {
    "RNN": ("Tanh",),
    "GRU": ("Sigmoid", "Tanh"),
    "LSTM": ("Sigmoid", "Tanh", "Tanh"),
}
# ONNX's activation names -> (takes alpha, takes beta, default alpha, default beta). Defaults
# are those of the ONNX operators of the same name (ONNX's rule for missing values).
ACTIVATIONS = {
    "Relu": (False, False, None, None),
    "Tanh": (False, False, None, None),
    "Sigmoid": (False, False, None, None),
    "Affine": (True, True, 1.0, 0.0),
    "LeakyRelu": (True, False, 0.01, None),
    "ThresholdedRelu": (True, False, 1.0, None),
    "ScaledTanh": (True, True, 1.0, 1.0),
    "HardSigmoid": (True, True, 0.2, 0.5),
    "Elu": (True, False, 1.0, None),
    "Softsign": (False, False, None, None),
    "Softplus": (False, False, None, None),
}
_BY_LOWER_NAME = {name.lower(): name for name in ACTIVATIONS}
DIRECTIONS = ("forward", "reverse", "bidirectional")
_KNOWN = {
    "activations",
    "activation_alpha",
    "activation_beta",
    "clip",
    "direction",
    "hidden_size",
    "input_forget",
    "layout",
    "linear_before_reset",
    "output_sequence",  # opset 1 only; Y is always computed
}

# One activation: (ONNX name, alpha or None, beta or None).
Activation = tuple[str, float | None, float | None]


@dataclass(frozen=True)
class NodeAttributes:
    op: str  # "RNN", "GRU" or "LSTM"
    label: str  # how errors name the node: "LSTM node 'name'"
    hidden_size: int | None  # None: not given (taken from R)
    direction: str  # "forward", "reverse" or "bidirectional"
    layout: int  # 0: X (T, B, I); 1: X (B, T, I)
    # Per direction (forward first): the activations, defaults filled in.
    activations: tuple[tuple[Activation, ...], ...]
    clip: float | None
    input_forget: bool  # LSTM only
    linear_before_reset: bool  # GRU only

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1


def parse_attributes(node: NodeProto, label: str) -> NodeAttributes:
    """The attributes of recurrent node ``node``; ValueError naming ``label`` when one is
    unknown or out of its range."""
    op = node.op_type
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    unknown = sorted(set(attrs) - _KNOWN)
    if unknown:
        raise ValueError(f"{label}: unknown attribute(s) {unknown}")
    if op != "LSTM" and "input_forget" in attrs:
        raise ValueError(f"{label}: input_forget is an LSTM attribute")
    if op != "GRU" and "linear_before_reset" in attrs:
        raise ValueError(f"{label}: linear_before_reset is a GRU attribute")

    direction = attrs.get("direction", b"forward")
    direction = direction.decode("utf-8", "replace") if isinstance(direction, bytes) else ""
    if direction not in DIRECTIONS:
        raise ValueError(f"{label}: direction must be one of {DIRECTIONS}, got {direction!r}")
    D = 2 if direction == "bidirectional" else 1
    hidden_size = attrs.get("hidden_size")
    if hidden_size is not None and not 1 <= hidden_size < 2**31:
        raise ValueError(f"{label}: hidden_size must be >= 1, got {hidden_size}")
    layout = attrs.get("layout", 0)
    if layout not in (0, 1):
        raise ValueError(f"{label}: layout must be 0 or 1, got {layout}")
    clip = attrs.get("clip")
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"{label}: clip must be positive and finite, got {clip}")
    flags = {}
    for name in ("input_forget", "linear_before_reset"):
        flags[name] = attrs.get(name, 0)
        if flags[name] not in (0, 1):
            raise ValueError(f"{label}: {name} must be 0 or 1, got {flags[name]}")
    return NodeAttributes(
        op=op,
        label=label,
        hidden_size=hidden_size,
        direction=direction,
        layout=layout,
        activations=_activations(op, attrs, D, label),
        clip=clip,
        input_forget=bool(flags["input_forget"]),
        linear_before_reset=bool(flags["linear_before_reset"]),
    )


def _activations(op: str, attrs: dict, D: int, label: str) -> tuple:
    """The activations of each direction. Alphas and betas are consumed in the order of
    the activations, each by the activations that take one (onnxruntime's reading)."""
    per_direction = len(DEFAULT_ACTIVATIONS[op])
    raw = attrs.get("activations")
    if raw is None:
        names = list(DEFAULT_ACTIVATIONS[op]) * D
    else:
        names = [n.decode("utf-8", "replace") for n in raw]
        if D == 2 and len(names) == per_direction:  # one set given for both directions
            names = names * 2
        if len(names) != per_direction * D:
            raise ValueError(
                f"{label}: activations must list {per_direction * D} functions "
                f"({per_direction} per direction), got {len(names)}: {names}"
            )
    alphas = list(attrs.get("activation_alpha", []))
    betas = list(attrs.get("activation_beta", []))
    out = []
    for name in names:
        canonical = _BY_LOWER_NAME.get(name.lower())
        if canonical is None:
            raise ValueError(
                f"{label}: unknown activation {name!r}; ONNX's are {', '.join(ACTIVATIONS)}"
            )
        takes_alpha, takes_beta, alpha, beta = ACTIVATIONS[canonical]
        if takes_alpha and alphas:
            alpha = float(alphas.pop(0))
        if takes_beta and betas:
            beta = float(betas.pop(0))
        out.append((canonical, alpha, beta))
    return tuple(tuple(out[d * per_direction : (d + 1) * per_direction]) for d in range(D))
