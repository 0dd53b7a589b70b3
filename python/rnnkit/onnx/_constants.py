"""Values of tensors that are constant in a graph: initializers, and chains of a few shape
operators over them (the way exporters often store an RNN node's weights).

A :class:`Scope` covers one graph; a subgraph's scope (If, Loop, Scan bodies) sees the
names of the graphs around it unless it defines them itself. ``Scope.value(name)`` returns
the array or raises :class:`NotConstant` saying why the name has no constant value.
"""

from __future__ import annotations

import numpy as np
from onnx import GraphProto, NodeProto, helper

from rnnkit.onnx._tensors import numpy_dtype, tensor_to_array

# Operators evaluated over constants. Anything else makes its outputs non-constant.
CONSTANT_OPS = (
    "Constant",
    "Identity",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Reshape",
    "Transpose",
    "Slice",
    "Cast",
    "Split",
)
# A chain deeper than this is refused (each level is one Python call).
_MAX_DEPTH = 200


class NotConstant(Exception):
    """A tensor has no constant value; the message says which tensor and why."""


def _attributes(node: NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class Scope:
    """The constant values of one graph (and, through ``parent``, the graphs around it)."""

    def __init__(self, graph: GraphProto, parent: Scope | None = None) -> None:
        self.parent = parent
        self._initializers = {t.name: t for t in graph.initializer}
        self._inputs = {i.name for i in graph.input}
        # output name -> (producing node, index of the output)
        self._producers: dict[str, tuple[NodeProto, int]] = {}
        for node in graph.node:
            for index, out in enumerate(node.output):
                if out:
                    self._producers[out] = (node, index)
        self._cache: dict[str, np.ndarray] = {}
        self._in_progress: set[str] = set()

    def defines(self, name: str) -> bool:
        return name in self._initializers or name in self._producers or name in self._inputs

    def value(self, name: str, depth: int = 0) -> np.ndarray:
        """The constant value of tensor ``name``; NotConstant if it has none."""
        if name in self._cache:
            return self._cache[name]
        if not self.defines(name):
            if self.parent is None:
                raise NotConstant(f"tensor {name!r} is not defined in the graph")
            return self.parent.value(name, depth)
        if depth > _MAX_DEPTH:
            raise NotConstant(f"tensor {name!r}: constant expression deeper than {_MAX_DEPTH}")
        if name in self._initializers:
            # An initializer is the value even when a graph input of the same name exists
            # (it is that input's default, which is what the node sees at inference).
            value = tensor_to_array(self._initializers[name], f"initializer {name!r}")
        elif name in self._producers:
            if name in self._in_progress:
                raise NotConstant(f"tensor {name!r} depends on itself")
            self._in_progress.add(name)
            try:
                node, index = self._producers[name]
                value = self._evaluate(node, index, depth)
            finally:
                self._in_progress.discard(name)
        else:
            raise NotConstant(f"tensor {name!r} is a graph input, not an initializer or a constant")
        self._cache[name] = value
        return value

    def _evaluate(self, node: NodeProto, index: int, depth: int) -> np.ndarray:
        label = f"node {node.name or node.output[0]!r} ({node.op_type})"
        if node.domain not in ("", "ai.onnx") or node.op_type not in CONSTANT_OPS:
            raise NotConstant(
                f"tensor {node.output[index]!r} is computed by {label}; rnnkit.onnx evaluates "
                f"only initializers and {', '.join(CONSTANT_OPS)} over them"
            )
        inputs = [None if not n else self.value(n, depth + 1) for n in node.input]
        try:
            outputs = _EVALUATORS[node.op_type](inputs, _attributes(node), len(node.output))
        except (ValueError, IndexError, TypeError, KeyError) as exc:
            raise NotConstant(f"{label} cannot be evaluated: {exc}") from exc
        return np.asarray(outputs[index])


def _constant(inputs: list, attrs: dict, n_out: int) -> list:
    if "value" in attrs:
        return [tensor_to_array(attrs["value"], "Constant's value")]
    if "value_float" in attrs:
        return [np.array(attrs["value_float"], dtype=np.float32)]
    if "value_floats" in attrs:
        return [np.array(attrs["value_floats"], dtype=np.float32)]
    if "value_int" in attrs:
        return [np.array(attrs["value_int"], dtype=np.int64)]
    if "value_ints" in attrs:
        return [np.array(attrs["value_ints"], dtype=np.int64)]
    raise ValueError(f"a Constant with attributes {sorted(attrs)} holds no numeric tensor")


def _ints(value: np.ndarray | None, what: str) -> list[int]:
    if value is None:
        raise ValueError(f"its {what} input is missing")
    if value.dtype.kind not in "iu":
        raise ValueError(f"its {what} must be integers, got {value.dtype}")
    return [int(v) for v in np.ravel(value)]


def _axes(inputs: list, attrs: dict, index: int) -> list[int] | None:
    """Axes from the attribute (older opsets) or from input ``index`` (newer); None if
    neither is given."""
    if "axes" in attrs:
        return list(attrs["axes"])
    if len(inputs) > index and inputs[index] is not None:
        return _ints(inputs[index], "axes")
    return None


def _unsqueeze(inputs: list, attrs: dict, n_out: int) -> list:
    x, axes = inputs[0], _axes(inputs, attrs, 1)
    if axes is None:
        raise ValueError("Unsqueeze without axes")
    rank = x.ndim + len(axes)
    for axis in sorted(a + rank if a < 0 else a for a in axes):
        x = np.expand_dims(x, axis)
    return [x]


def _squeeze(inputs: list, attrs: dict, n_out: int) -> list:
    x, axes = inputs[0], _axes(inputs, attrs, 1)
    return [np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))]


def _reshape(inputs: list, attrs: dict, n_out: int) -> list:
    x = inputs[0]
    shape = list(attrs["shape"]) if "shape" in attrs else _ints(inputs[1], "shape")
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [np.reshape(x, shape)]


def _transpose(inputs: list, attrs: dict, n_out: int) -> list:
    perm = attrs.get("perm")
    return [np.transpose(inputs[0], None if perm is None else list(perm))]


def _slice(inputs: list, attrs: dict, n_out: int) -> list:
    x = inputs[0]
    if "starts" in attrs:  # opset < 10: attributes
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = _ints(inputs[1], "starts"), _ints(inputs[2], "ends")
        present = [len(inputs) > i and inputs[i] is not None for i in (3, 4)]
        axes = _ints(inputs[3], "axes") if present[0] else list(range(len(starts)))
        steps = _ints(inputs[4], "steps") if present[1] else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step == 0:
            raise ValueError("Slice with step 0")
        index[axis] = slice(start, end, step)
    return [x[tuple(index)]]


def _split(inputs: list, attrs: dict, n_out: int) -> list:
    x, axis = inputs[0], attrs.get("axis", 0)
    if "split" in attrs:
        sizes = list(attrs["split"])
    elif len(inputs) > 1 and inputs[1] is not None:
        sizes = _ints(inputs[1], "split")
    else:
        # Equal parts (the last one smaller when the axis does not divide: opset 18).
        n = x.shape[axis]
        part = -(-n // n_out)
        sizes = [min(part, n - i * part) for i in range(n_out)]
    if sum(sizes) != x.shape[axis] or any(s < 0 for s in sizes):
        raise ValueError(f"split sizes {sizes} do not add up to axis {axis}'s {x.shape[axis]}")
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def _cast(inputs: list, attrs: dict, n_out: int) -> list:
    return [inputs[0].astype(numpy_dtype(attrs["to"], "Cast's 'to'"))]


_EVALUATORS = {
    "Constant": _constant,
    "Identity": lambda inputs, attrs, n_out: [inputs[0]],
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda inputs, attrs, n_out: [np.concatenate(inputs, axis=attrs["axis"])],
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Slice": _slice,
    "Cast": _cast,
    "Split": _split,
}
