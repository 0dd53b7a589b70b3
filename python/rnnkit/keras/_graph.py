"""A saved model's layers in the order they run: a Sequential's list, or the chain of a
functional model whose layers each take the previous one's output (anything else raises).

Each layer is returned as ``(class_name, name, config)``, the InputLayer included.
"""

from __future__ import annotations

from typing import Any

Layer = tuple[str, str, dict[str, Any]]


def _layer_entry(entry: Any, position: int) -> Layer:
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise ValueError(f"layer {position} of the model config is not a layer: {entry!r:.200}")
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"layer {position} ({entry['class_name']}) has no config object")
    name = config.get("name", entry.get("name", f"layer_{position}"))
    return entry["class_name"], str(name), config


def model_layers(model_config: dict[str, Any]) -> list[Layer]:
    """The layers of a Sequential or linear functional model config, in run order."""
    try:
        return _model_layers(model_config)
    except (TypeError, AttributeError, KeyError, IndexError) as exc:
        # A field of an unexpected JSON type somewhere in the layer graph.
        raise ValueError(f"the model config is malformed: {type(exc).__name__}: {exc}") from exc


def _model_layers(model_config: dict[str, Any]) -> list[Layer]:
    kind = model_config.get("class_name")
    body = model_config.get("config")
    if kind == "Sequential":
        entries = body if isinstance(body, list) else None
        if isinstance(body, dict):
            entries = body.get("layers")
        if not isinstance(entries, list):
            raise ValueError("the Sequential model config has no list of layers")
        return [_layer_entry(e, i) for i, e in enumerate(entries)]
    if kind in ("Functional", "Model"):
        return _functional_chain(body if isinstance(body, dict) else {})
    raise NotImplementedError(
        f"rnnkit.keras loads Sequential and linear functional models, not a {kind!r} model"
    )


def _sources(node: Any) -> list[str]:
    """The names of the layers whose outputs a call node reads (Keras 3 or Keras 2 form)."""
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        for key, value in (node.get("kwargs") or {}).items():
            if value not in (None, False) and key != "training":
                raise NotImplementedError(f"a layer call with argument {key}={value!r:.80}")
        found: list[str] = []

        def walk(obj: Any) -> None:
            if isinstance(obj, dict):
                if obj.get("class_name") == "__keras_tensor__":
                    history = (obj.get("config") or {}).get("keras_history")
                    if not isinstance(history, list) or not history:
                        raise ValueError(f"a layer input without its source layer: {obj!r:.200}")
                    found.append(str(history[0]))
                else:
                    for v in obj.values():
                        walk(v)
            elif isinstance(obj, list):
                for v in obj:
                    walk(v)

        walk(node.get("args", []))
        return found
    if isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        return [str(t[0]) for t in node if isinstance(t, list) and t]
    raise ValueError(f"an inbound node of an unknown form: {node!r:.200}")


def _names(io_layers: Any) -> list[str]:
    """``input_layers``/``output_layers``: [name, 0, 0] or a list of those."""
    if isinstance(io_layers, list) and io_layers and isinstance(io_layers[0], str):
        return [io_layers[0]]
    return [str(t[0]) for t in io_layers or [] if isinstance(t, list) and t]


def _functional_chain(body: dict[str, Any]) -> list[Layer]:
    entries = body.get("layers")
    if not isinstance(entries, list):
        raise ValueError("the functional model config has no list of layers")
    layers = {}
    feeds: dict[str, str] = {}  # layer name -> the name of the layer it reads
    for i, entry in enumerate(entries):
        layer = _layer_entry(entry, i)
        layers[layer[1]] = layer
        nodes = entry.get("inbound_nodes") or []
        if layer[0] == "InputLayer":
            continue
        sources = [s for node in nodes for s in _sources(node)]
        if len(nodes) != 1 or len(sources) != 1:
            raise NotImplementedError(
                f"layer {layer[1]!r} ({layer[0]}) is called {len(nodes)} time(s) on "
                f"{len(sources)} input(s): rnnkit.keras loads models whose layers form one "
                f"chain (each layer called once on the previous layer's output)"
            )
        feeds[layer[1]] = sources[0]
    inputs, outputs = _names(body.get("input_layers")), _names(body.get("output_layers"))
    if len(inputs) != 1 or len(outputs) != 1:
        raise NotImplementedError(
            f"the model has inputs {inputs} and outputs {outputs}: rnnkit.keras loads "
            f"models with one input and one output"
        )
    fed_by = {}
    for name, source in feeds.items():
        if source in fed_by:
            raise NotImplementedError(
                f"the output of layer {source!r} feeds both {fed_by[source]!r} and "
                f"{name!r}: rnnkit.keras loads chains of layers only"
            )
        fed_by[source] = name
    order = [inputs[0]]
    while order[-1] in fed_by:
        order.append(fed_by[order[-1]])
    if order[-1] != outputs[0] or len(order) != len(layers):
        raise NotImplementedError(
            "the model's layers do not form one chain from its input to its output"
        )
    return [layers[name] for name in order]
