"""Building an ``rnnkit.nn.Sequential`` from a saved Keras model, layer by layer.

Keras's recurrent weights are ``kernel (I, G*H)``, ``recurrent_kernel (H, G*H)`` and
``bias (G*H,)`` (GRU with ``reset_after``: ``(2, 3*H)``, input and recurrent biases), the
transposes of rnnkit's ``weight_ih (G*H, I)`` and ``weight_hh (G*H, H)``. LSTM's gate
blocks are in rnnkit's order ([i, f, c, o] = [i, f, g, o]); GRU's [z, r, h] become
rnnkit's [r, z, n]. Keras has one bias where rnnkit has two: it goes to ``bias_ih``, and
``bias_hh`` is 0 (GRU with ``reset_after`` has both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit import nn
from rnnkit.keras._files import SavedModel
from rnnkit.keras._graph import model_layers
from rnnkit.keras._options import READS, activation_name, check_options, dtype_name
from rnnkit.modules import GRU, LSTM, RNN

# Keras activations a recurrent cell may use (rnnkit's cell activations); tanh/sigmoid
# are the defaults, and SimpleRNN's relu is rnnkit.RNN's nonlinearity.
_CELL_ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear", "elu", "softsign", "softplus")
_GRU_TO_RNNKIT = (1, 0, 2)  # rnnkit's block k is Keras's block _GRU_TO_RNNKIT[k]


@dataclass
class _Flow:
    """What is known of the tensor between layers: features of its last axis (None when
    unknown) and whether it holds integer indices."""

    features: int | None = None
    indices: bool = False


def _snake_case(name: str) -> str:
    """Keras's group name for a layer class in a .keras weights file."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def build(saved: SavedModel) -> nn.Sequential:
    """The model in ``saved`` as a Sequential in eval mode."""
    flow = _Flow()
    used: dict[str, int] = {}
    layers: list[Any] = []
    for cls, name, config in model_layers(saved.config):
        snake = _snake_case(cls)
        used[snake] = used.get(snake, -1) + 1
        key = snake if used[snake] == 0 else f"{snake}_{used[snake]}"
        if cls not in READS:
            raise NotImplementedError(
                f"layer {name!r} ({cls}) is not supported; rnnkit.keras loads "
                f"{', '.join(sorted(READS))}"
            )
        check_options(cls, name, config)
        _note_input_shape(config, flow)
        layer = _BUILDERS[cls](_Context(saved, key, name, cls, config, flow))
        if layer is not None:
            layers.append(layer)
    return nn.Sequential(*layers).eval()


@dataclass
class _Context:
    saved: SavedModel
    key: str
    name: str
    cls: str
    config: dict[str, Any]
    flow: _Flow

    @property
    def where(self) -> str:
        return f"layer {self.name!r} ({self.cls})"

    def arrays(self, sub: str, count: tuple[int, ...]) -> list[np.ndarray]:
        arrays = self.saved.arrays(self.key, self.name, sub, self.where)
        if len(arrays) not in count:
            raise ValueError(
                f"{self.where}: expected {' or '.join(map(str, count))} weight arrays, "
                f"found {len(arrays)}"
            )
        return [a.astype(np.float32) for a in arrays]

    def check_shape(self, what: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
        if array.shape != expected:
            raise ValueError(
                f"{self.where}: weight {what} has shape {array.shape}, expected {expected}"
            )

    def input_features(self, from_weight: int) -> int:
        """The features this layer reads: the previous layer's, which its kernel must match."""
        known = self.flow.features
        if known is not None and known != from_weight:
            raise ValueError(
                f"{self.where}: its kernel reads {from_weight} features, but the layer "
                f"before it gives {known}"
            )
        return from_weight


def _note_input_shape(config: dict[str, Any], flow: _Flow) -> None:
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if isinstance(shape, list) and shape and flow.features is None:
        last = shape[-1]
        flow.indices = dtype_name(config.get("dtype")) in ("int32", "int64", "uint8", "int16")
        if isinstance(last, int) and len(shape) >= 3 and not flow.indices:
            flow.features = last


def _int_option(ctx: _Context, key: str, config: dict[str, Any] | None = None) -> int:
    value = (ctx.config if config is None else config).get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{ctx.where}: option {key} must be a positive int, got {value!r}")
    return value


def _bool_option(
    ctx: _Context, key: str, default: bool, config: dict[str, Any] | None = None
) -> bool:
    value = (ctx.config if config is None else config).get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{ctx.where}: option {key} must be true or false, got {value!r:.80}")
    return value


def _number_option(ctx: _Context, key: str, default: float) -> float:
    value = ctx.config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"{ctx.where}: option {key} must be a finite number, got {value!r:.80}")
    return float(value)


def _input_layer(ctx: _Context) -> None:
    return None


def _embedding(ctx: _Context) -> nn.Embedding:
    (table,) = ctx.arrays("", (1,))
    V, E = _int_option(ctx, "input_dim"), _int_option(ctx, "output_dim")
    ctx.check_shape("embeddings", table, (V, E))
    layer = nn.Embedding(V, E, mask_zero=_bool_option(ctx, "mask_zero", False))
    layer.load_state_dict({"weight": table})
    ctx.flow.features, ctx.flow.indices = E, False
    return layer


def _masking(ctx: _Context) -> nn.Masking:
    return nn.Masking(_number_option(ctx, "mask_value", 0.0))


def _dropout(ctx: _Context) -> nn.Dropout:
    shared = (1,) if ctx.cls == "SpatialDropout1D" else ()
    rate = _number_option(ctx, "rate", 0.0)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{ctx.where}: option rate must be in [0, 1), got {rate!r}")
    return nn.Dropout(rate, shared_axes=shared)


def _activation(ctx: _Context) -> nn.Activation:
    return _activation_layer(ctx, activation_name(ctx.config.get("activation"), ctx.where))


def _activation_layer(ctx: _Context, name: str) -> nn.Activation:
    if name not in nn.ACTIVATION_NAMES:
        raise NotImplementedError(f"{ctx.where}: activation {name!r} is not supported")
    if name == "hard_sigmoid" and ctx.saved.keras_major < 3:
        return nn.Activation(name, alpha=0.2, beta=0.5)  # Keras 2's definition
    return nn.Activation(name)


def _dense(ctx: _Context) -> nn.Dense:
    use_bias = _bool_option(ctx, "use_bias", True)
    arrays = ctx.arrays("", (2,) if use_bias else (1,))
    units = _int_option(ctx, "units")
    kernel = arrays[0]
    if kernel.ndim != 2:
        raise ValueError(f"{ctx.where}: weight kernel has shape {kernel.shape}, expected 2-D")
    n_in = ctx.input_features(kernel.shape[0])
    ctx.check_shape("kernel", kernel, (n_in, units))
    act = _activation_layer(ctx, activation_name(ctx.config.get("activation"), ctx.where))
    layer = nn.Dense(n_in, units, activation=act, bias=use_bias)
    state = {"weight": kernel.T}
    if use_bias:
        ctx.check_shape("bias", arrays[1], (units,))
        state["bias"] = arrays[1]
    layer.load_state_dict(state)
    ctx.flow.features = units
    return layer


def _recurrent(ctx: _Context) -> nn.Recurrent:
    cfg = ctx.config
    module = _recurrent_module(ctx, ctx.cls, cfg, ["cell"], merge_mode=None)
    return nn.Recurrent(
        module,
        return_sequences=_bool_option(ctx, "return_sequences", False, cfg),
        go_backwards=_bool_option(ctx, "go_backwards", False, cfg),
        masked_outputs="zeros" if _bool_option(ctx, "zero_output_for_mask", False) else "last",
    )


def _bidirectional(ctx: _Context) -> nn.Recurrent:
    merge_mode = ctx.config.get("merge_mode", "concat")
    if merge_mode not in nn.MERGE_MODES:
        raise NotImplementedError(
            f"{ctx.where}: merge_mode {merge_mode!r} is not supported (only "
            f"{', '.join(nn.MERGE_MODES)})"
        )
    inner = ctx.config.get("layer")
    if not isinstance(inner, dict) or inner.get("class_name") not in ("SimpleRNN", "LSTM", "GRU"):
        kind = inner.get("class_name") if isinstance(inner, dict) else inner
        raise NotImplementedError(f"{ctx.where}: a Bidirectional of {kind!r} is not supported")
    cfg = inner.get("config", {})
    if not isinstance(cfg, dict):
        raise ValueError(f"{ctx.where}: its layer has no config object")
    check_options(inner["class_name"], f"{ctx.name}/forward", cfg)
    if cfg.get("go_backwards", False):
        raise NotImplementedError(f"{ctx.where}: option layer.go_backwards=True is not supported")
    _check_backward_layer(ctx, inner, ctx.config.get("backward_layer"))
    halves = ["forward_layer/cell", "backward_layer/cell"]
    module = _recurrent_module(ctx, inner["class_name"], cfg, halves, merge_mode)
    return nn.Recurrent(
        module,
        return_sequences=_bool_option(ctx, "return_sequences", False, cfg),
        merge_mode=merge_mode,
    )


def _check_backward_layer(ctx: _Context, forward: dict[str, Any], backward: Any) -> None:
    """A Bidirectional's backward layer must be the forward one running backwards."""
    if backward is None:
        return
    if not isinstance(backward, dict) or backward.get("class_name") != forward["class_name"]:
        raise NotImplementedError(
            f"{ctx.where}: a backward_layer of another class than its layer is not supported"
        )
    same = ("name", "go_backwards", "build_config")
    f_cfg = {k: v for k, v in forward.get("config", {}).items() if k not in same}
    b_cfg = {k: v for k, v in backward.get("config", {}).items() if k not in same}
    differ = sorted(
        k for k in set(f_cfg) | set(b_cfg) if _plain(f_cfg.get(k)) != _plain(b_cfg.get(k))
    )
    if differ or not backward.get("config", {}).get("go_backwards", False):
        raise NotImplementedError(
            f"{ctx.where}: a backward_layer that is not its layer running backwards is not "
            f"supported (options that differ: {differ or ['go_backwards']})"
        )


def _plain(value: Any) -> Any:
    """A config value without Keras's per-object ids, for comparing two layers' options."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "shared_object_id"}
    return value


def _cell_activation(ctx: _Context, config: dict[str, Any], option: str, default: str) -> Any:
    name = activation_name(config.get(option, default), ctx.where)
    if name == "hard_sigmoid":
        # Keras 3: relu6(x + 3) / 6; Keras 2: 0.2 x + 0.5.
        return ("HardSigmoid", 0.2 if ctx.saved.keras_major < 3 else 1 / 6, 0.5)
    if name not in _CELL_ACTIVATIONS:
        raise NotImplementedError(f"{ctx.where}: option {option}={name!r} is not supported")
    return name


def _recurrent_module(
    ctx: _Context, cls: str, cfg: dict[str, Any], subs: list[str], merge_mode: str | None
) -> Any:
    """The rnnkit module of a SimpleRNN/LSTM/GRU (``cls``) config with its weights from
    ``subs`` (one group per direction)."""
    H = _int_option(ctx, "units", cfg)
    use_bias = _bool_option(ctx, "use_bias", True, cfg)
    reset_after = _bool_option(ctx, "reset_after", True, cfg) if cls == "GRU" else False
    G = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}[cls]
    directions = []
    for sub in subs:
        arrays = ctx.arrays(sub, (3,) if use_bias else (2,))
        kernel = arrays[0]
        if kernel.ndim != 2:
            raise ValueError(f"{ctx.where}: weight kernel has shape {kernel.shape}, expected 2-D")
        I = ctx.input_features(kernel.shape[0])  # noqa: E741
        ctx.check_shape("kernel", kernel, (I, G * H))
        ctx.check_shape("recurrent_kernel", arrays[1], (H, G * H))
        if use_bias:
            ctx.check_shape("bias", arrays[2], (2, G * H) if reset_after else (G * H,))
        directions.append(_to_rnnkit(cls, arrays, H))
    kwargs: dict[str, Any] = {
        "bias": use_bias,
        "batch_first": True,
        "bidirectional": len(subs) == 2,
    }
    if len(subs) == 1 and _bool_option(ctx, "go_backwards", False, cfg):
        kwargs["reverse"] = True  # Keras's go_backwards
    act = _cell_activation(ctx, cfg, "activation", "tanh")
    if cls == "SimpleRNN":
        activations = None if act in ("tanh", "relu") else [act]
        module_cls, args = RNN, {"nonlinearity": act if act in ("tanh", "relu") else "tanh"}
    else:
        rec = _cell_activation(ctx, cfg, "recurrent_activation", "sigmoid")
        default = rec == "sigmoid" and act == "tanh"
        activations = None if default else ([rec, act, act] if cls == "LSTM" else [rec, act])
        module_cls, args = (LSTM, {}) if cls == "LSTM" else (GRU, {"reset_after": reset_after})
    if activations is not None:
        args["activations"] = activations
    module = module_cls(I, H, **kwargs, **args)
    state = {}
    for suffix, params in zip(("", "_reverse"), directions):
        for name, value in params.items():
            if use_bias or not name.startswith("bias"):
                state[f"{name}_l0{suffix}"] = value
    module.load_state_dict(state)
    ctx.flow.features = H * (2 if len(subs) == 2 and merge_mode == "concat" else 1)
    return module


def _to_rnnkit(cls: str, arrays: list[np.ndarray], H: int) -> dict[str, np.ndarray]:
    """One direction's Keras weights as rnnkit's ``weight_ih``, ``weight_hh``, biases."""
    kernel, recurrent = arrays[0], arrays[1]
    bias = arrays[2] if len(arrays) == 3 else None
    w_ih, w_hh = kernel.T, recurrent.T  # (G*H, I), (G*H, H)
    if bias is None or bias.ndim == 1:
        b_ih = np.zeros(w_ih.shape[0], np.float32) if bias is None else bias
        b_hh = np.zeros_like(b_ih)
    else:
        b_ih, b_hh = bias[0], bias[1]
    if cls == "GRU":
        order = np.concatenate([np.arange(k * H, (k + 1) * H) for k in _GRU_TO_RNNKIT])
        w_ih, w_hh, b_ih, b_hh = w_ih[order], w_hh[order], b_ih[order], b_hh[order]
    return {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh}


_BUILDERS = {
    "InputLayer": _input_layer,
    "Embedding": _embedding,
    "Masking": _masking,
    "Dropout": _dropout,
    "SpatialDropout1D": _dropout,
    "Activation": _activation,
    "Dense": _dense,
    "SimpleRNN": _recurrent,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "Bidirectional": _bidirectional,
}
