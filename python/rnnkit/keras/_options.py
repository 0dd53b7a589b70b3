"""The Keras layer options rnnkit understands, and the checks on their values.

Each layer kind lists the options it reads; the options that only matter when training in
Keras (initialisers, regularisers, constraints, seeds) are accepted and ignored. Any other
option raises NotImplementedError naming it, so a model never loads with a setting rnnkit
would silently drop.
"""

from __future__ import annotations

from typing import Any

# Options every layer may carry that do not change what it computes at inference.
_IGNORED = {
    "name",
    "trainable",
    "dtype",
    "batch_input_shape",
    "batch_shape",
    "input_shape",
    "batch_size",
    "build_config",
    "activity_regularizer",
    "seed",
    "input_dim",
    "input_length",
}
_RECURRENT = {
    "units",
    "activation",
    "use_bias",
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "time_major",
    "zero_output_for_mask",
    "dropout",
    "recurrent_dropout",
    "implementation",
}
READS: dict[str, set[str]] = {
    "InputLayer": {"sparse", "ragged", "optional"},
    "Embedding": {"output_dim", "mask_zero", "sparse", "lora_rank", "lora_alpha"},
    "Masking": {"mask_value"},
    "Dropout": {"rate", "noise_shape"},
    "SpatialDropout1D": {"rate"},
    "Activation": {"activation"},
    "Dense": {"units", "activation", "use_bias", "lora_rank", "lora_alpha"},
    "SimpleRNN": _RECURRENT,
    "LSTM": _RECURRENT | {"recurrent_activation", "unit_forget_bias"},
    "GRU": _RECURRENT | {"recurrent_activation", "reset_after"},
    "Bidirectional": {"layer", "backward_layer", "merge_mode"},
}
# Options whose value must be the one given here (the alternatives are not supported).
REQUIRED = {
    "stateful": False,
    "return_state": False,
    "time_major": False,
    "sparse": False,
    "ragged": False,
    "lora_rank": None,
    "noise_shape": None,
    "quantization_config": None,
}


def _ignored(key: str) -> bool:
    return key in _IGNORED or key.endswith(("_initializer", "_regularizer", "_constraint"))


def check_options(cls: str, name: str, config: dict[str, Any]) -> None:
    """NotImplementedError for an option this layer kind does not read or a value of
    ``REQUIRED`` it does not support; a dtype other than float32 too."""
    where = f"layer {name!r} ({cls})"
    reads = READS[cls]
    for key, value in config.items():
        if key in REQUIRED and value != REQUIRED[key]:
            raise NotImplementedError(
                f"{where}: option {key}={value!r} is not supported (only {REQUIRED[key]!r})"
            )
        if key not in reads and key not in REQUIRED and not _ignored(key):
            raise NotImplementedError(f"{where}: option {key!r} is not supported")
    dtype = dtype_name(config.get("dtype"))
    if cls != "InputLayer" and dtype not in (None, "float32"):
        raise NotImplementedError(f"{where}: dtype {dtype!r} is not supported (only float32)")


def dtype_name(dtype: Any) -> str | None:
    """A config's dtype: a name, a DTypePolicy object, or None."""
    if isinstance(dtype, dict):
        inner = dtype.get("config", {})
        return inner.get("name") if isinstance(inner, dict) else None
    return dtype if isinstance(dtype, str) or dtype is None else str(dtype)


def activation_name(value: Any, where: str) -> str:
    """An activation option: a name, or Keras's serialised function object."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, dict) and isinstance(value.get("config"), str):
        return value["config"].lower()
    raise NotImplementedError(f"{where}: activation {value!r:.120} is not supported")
