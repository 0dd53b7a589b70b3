"""``load_recurrent``: every RNN / GRU / LSTM node of an ONNX model as an OnnxRecurrent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto

from rnnkit.onnx._attributes import RECURRENT_OPS, parse_attributes
from rnnkit.onnx._constants import NotConstant, Scope
from rnnkit.onnx._node import OnnxRecurrent
from rnnkit.onnx._weights import check_weights

# A recurrent node's inputs by position (ONNX's order; "" or absent: not given).
_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
# Inputs that must be constant (the weights) and inputs used as defaults when constant.
_WEIGHT_INPUTS = ("W", "R", "B", "P")
_RUNTIME_INPUTS = ("sequence_lens", "initial_h", "initial_c")


def load_recurrent(model: str | os.PathLike | bytes | ModelProto) -> dict[str, OnnxRecurrent]:
    """Every RNN, GRU and LSTM node of ``model`` (a path, the serialized bytes or an
    ``onnx.ModelProto``), subgraphs of If / Loop / Scan included, as an
    :class:`OnnxRecurrent` keyed by node name (its first output's name when it has none;
    a name seen before gets "#2", "#3", ... appended).

    Weights (W, R, B, P) must be initializers or constant expressions over them (Constant,
    Identity, Unsqueeze, Squeeze, Concat, Reshape, Transpose, Slice, Cast, Split; a
    subgraph sees the graphs around it); anything else raises ValueError naming the node
    and the input. A constant sequence_lens, initial_h or initial_c becomes the node's
    default for that argument. Unreadable bytes, a model without such nodes, attributes or
    shapes that disagree raise ValueError.
    """
    proto = _read_model(model)
    found: dict[str, OnnxRecurrent] = {}
    for node, scope in _recurrent_nodes(proto.graph, Scope(proto.graph)):
        key = node.name or (node.output[0] if node.output else "") or node.op_type
        if key in found:
            n = 2
            while f"{key}#{n}" in found:
                n += 1
            key = f"{key}#{n}"
        found[key] = _load_node(node, key, scope)
    if not found:
        raise ValueError("the model has no RNN, GRU or LSTM node (subgraphs included)")
    return found


def _read_model(model: Any) -> ModelProto:
    if isinstance(model, ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        proto = ModelProto()
        try:
            proto.ParseFromString(bytes(model))
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise ValueError(f"model: the bytes are not a valid ONNX model ({exc})") from exc
        return _check_parsed(proto, "model bytes")
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model: no such file {path!r}")
        try:
            proto = onnx.load(path)
        except (DecodeError, RuntimeError, ValueError, OSError) as exc:
            raise ValueError(f"model: {path!r} is not a valid ONNX model ({exc})") from exc
        return _check_parsed(proto, repr(path))
    raise TypeError(
        f"model must be a path, bytes or an onnx.ModelProto, got {type(model).__name__}"
    )


def _check_parsed(proto: ModelProto, what: str) -> ModelProto:
    # Random bytes sometimes parse as a message with no graph: refuse it here.
    if not proto.HasField("graph"):
        raise ValueError(f"model: {what} holds no ONNX graph (truncated or not a model?)")
    return proto


def _recurrent_nodes(graph: GraphProto, scope: Scope) -> Iterator[tuple[NodeProto, Scope]]:
    """(node, its graph's scope) for each recurrent node of ``graph`` and its subgraphs."""
    for node in graph.node:
        if node.domain in ("", "ai.onnx") and node.op_type in RECURRENT_OPS:
            yield node, scope
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _recurrent_nodes(attr.g, Scope(attr.g, scope))
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _recurrent_nodes(sub, Scope(sub, scope))


def _load_node(node: NodeProto, key: str, scope: Scope) -> OnnxRecurrent:
    label = f"{node.op_type} node {key!r}"
    if len(node.input) > len(_INPUTS):
        raise ValueError(f"{label}: {len(node.input)} inputs, at most {len(_INPUTS)}")
    names = dict(zip(_INPUTS, node.input))
    for required in ("X", "W", "R"):
        if not names.get(required):
            raise ValueError(f"{label}: input {required} is missing")
    if node.op_type != "LSTM" and (names.get("initial_c") or names.get("P")):
        raise ValueError(f"{label}: initial_c and P are LSTM inputs")
    attrs = parse_attributes(node, label)
    values: dict[str, np.ndarray | None] = {}
    for role in _WEIGHT_INPUTS:
        values[role] = None
        if names.get(role):
            try:
                values[role] = scope.value(names[role])
            except NotConstant as exc:
                raise ValueError(
                    f"{label}: input {role} ({names[role]!r}) must be an initializer or a "
                    f"constant expression over initializers: {exc}"
                ) from exc
    weights = check_weights(
        node.op_type,
        label,
        attrs.hidden_size,
        attrs.num_directions,
        values["W"],
        values["R"],
        values["B"],
        values["P"],
    )
    defaults: dict[str, np.ndarray | None] = {}
    for role in _RUNTIME_INPUTS:
        if names.get(role):
            try:
                defaults[role] = scope.value(names[role])
            except NotConstant:
                defaults[role] = None  # computed at run time: the caller passes it
    return OnnxRecurrent(key, attrs, weights, defaults)
