"""``Sequential``: layers run one after another, with backward as the chain in reverse."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from rnnkit._module import Module
from rnnkit._recurrent import RecurrentBase
from rnnkit._validation import as_state_value, check_bool, check_choice
from rnnkit.nn import _summary
from rnnkit.nn._masks import check_sequence_lengths
from rnnkit.nn.recurrent import Recurrent

__all__ = ["Sequential"]


class Sequential(Module):
    """``Sequential(*layers)``: ``y = model(x, lengths=None)`` runs each layer on the
    previous one's output; ``model.backward(grad_y)`` runs their ``backward`` in reverse
    and returns the gradient of ``x`` (None when the first layer takes integer indices).

    Layers: the ``rnnkit.nn`` layers, and recurrent modules wrapped in
    :class:`Recurrent`. Sequence lengths travel with the data: ``lengths (B,)`` given here,
    or found by ``Embedding(mask_zero=True)`` or ``Masking``, reach every recurrent layer
    after them until one returns a single step (a layer's ``output_lengths`` says what it
    passes on).

    Parameters are the layers' under ``"<index>.<name>"`` (``"0.weight"``, like torch's
    ``nn.Sequential``): ``parameters()`` and ``grads`` give the layers' live arrays, so
    ``rnnkit.optim`` trains the model as a whole. ``train()``/``eval()`` switch every layer;
    ``state_dict``/``load_state_dict`` cover them all. ``len(model)``, ``model[i]`` (a
    slice gives a ``Sequential`` of the same layer objects) and iteration give the layers.
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__(None)
        for i, layer in enumerate(layers):
            if isinstance(layer, RecurrentBase):
                raise TypeError(
                    f"layer {i} is an rnnkit.{type(layer).__name__}, whose call returns "
                    f"(out, state): wrap it as rnnkit.nn.Recurrent(module) to use it here"
                )
            if not isinstance(layer, Module):
                raise TypeError(
                    f"layer {i} must be an rnnkit module (an rnnkit.nn layer), got "
                    f"{type(layer).__name__}"
                )
        self._layers: tuple[Module, ...] = tuple(layers)
        dtypes = {layer.dtype for layer in layers if layer.dtype is not None}
        self._dtype = dtypes.pop() if len(dtypes) == 1 else None

    # -- the layers -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(*self._layers[index])
        return self._layers[index]

    # -- parameters -----------------------------------------------------------------------

    def parameters(self) -> dict[str, np.ndarray]:
        """Ordered dict ``"<index>.<name>"`` -> each layer's live parameter array."""
        return {
            f"{i}.{name}": p
            for i, layer in enumerate(self._layers)
            for name, p in layer.parameters().items()
        }

    def trainable_parameters(self) -> dict[str, np.ndarray]:
        """``parameters()`` less those a layer keeps out of training (a frozen Embedding):
        what rnnkit.optim and clip_grad_norm update."""
        return {
            f"{i}.{name}": p
            for i, layer in enumerate(self._layers)
            for name, p in getattr(layer, "trainable_parameters", layer.parameters)().items()
        }

    @property
    def grads(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        """Ordered dict ``"<index>.<name>"`` -> each layer's gradient array (live)."""
        return {
            f"{i}.{name}": g
            for i, layer in enumerate(self._layers)
            for name, g in layer.grads.items()
        }

    @grads.setter
    def grads(self, value: dict[str, np.ndarray]) -> None:
        # Module's constructor starts every module with an empty dict; the layers own theirs.
        if value:
            raise AttributeError("Sequential.grads is its layers' grads: set those instead")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Ordered dict ``"<index>.<name>"`` -> a copy of each parameter."""
        return {name: p.copy() for name, p in self.parameters().items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Copy parameters in place into the layers, by ``"<index>.<name>"``.

        With ``strict`` every name must be present and no other; shapes are always checked,
        and nothing changes unless every given value fits.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}"
            )
        strict = check_bool("strict", strict)
        own = self.parameters()
        unexpected = [k for k in state_dict if k not in own]
        missing = [k for k in own if k not in state_dict]
        if strict and (unexpected or missing):
            raise ValueError(
                f"Sequential.load_state_dict(strict=True): missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        per_layer: list[dict[str, Any]] = [{} for _ in self._layers]
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = as_state_value(f"state_dict[{key!r}]", state_dict[key])
            if value.shape != target.shape:
                raise ValueError(
                    f"Sequential.load_state_dict: state_dict[{key!r}] has shape "
                    f"{value.shape}, but the parameter has shape {target.shape}"
                )
            index, name = key.split(".", 1)
            per_layer[int(index)][name] = value
        for layer, values in zip(self._layers, per_layer):
            if values:
                layer.load_state_dict(values, strict=False)

    def train(self, mode: bool = True) -> Sequential:
        """Training or eval mode for every layer; returns self."""
        super().train(mode)
        for layer in self._layers:
            layer.train(self.training)
        return self

    # -- forward and backward -------------------------------------------------------------

    def forward(self, x: Any, lengths: Any = None) -> Any:
        """Run the layers in order; ``lengths (B,)``, each 0..T, marks padding in a batch
        of sequences ``(B, T, ...)``. Returns the last layer's output."""
        if lengths is not None:
            shape = np.shape(x)
            if len(shape) < 2:
                raise ValueError(f"lengths needs x of shape (batch, time, ...), got {shape}")
            lengths = check_sequence_lengths(lengths, shape[0], shape[1])
        for layer in self._layers:
            next_lengths = lengths
            if hasattr(layer, "output_lengths"):
                next_lengths = layer.output_lengths(x, lengths)
            x = layer(x, lengths) if isinstance(layer, Recurrent) else layer(x)
            lengths = next_lengths
        return x

    def backward(self, grad_out: Any) -> Any:
        """Each layer's ``backward``, last to first; returns the gradient of the input."""
        grad = grad_out
        for layer in reversed(self._layers):
            if grad is None:
                raise ValueError(
                    f"{type(layer).__name__} sits after a layer whose input has no gradient"
                )
            grad = layer.backward(grad)
        return grad

    def summary(
        self,
        input_shape: tuple[int, ...] | None = None,
        convention: str = "keras",
        dtype: Any = None,
    ) -> str:
        """A table of the layers: index, layer, output shape and parameter count, and the
        total. ``input_shape``: one input without the batch axis, e.g. ``(T, F)``, or
        ``(T,)`` of indices for an Embedding first; with it the output shapes are found by
        an eval-mode forward of one such input of ``dtype`` (default: the model's), the
        batch axis printed as ``B``; without it the column is left out. ``convention``:
        ``"keras"`` (default) counts one bias per SimpleRNN, LSTM and GRU(reset_after=False)
        cell, as Keras does; ``"torch"`` counts every array (both of torch's biases). The
        last line says which convention the counts follow."""
        convention = check_choice("convention", convention, _summary.CONVENTIONS)
        shapes = [""] * len(self._layers)
        if input_shape is not None:
            if not isinstance(input_shape, tuple) or not all(
                isinstance(n, int) and n >= 1 for n in input_shape
            ):
                raise ValueError(f"input_shape must be a tuple of ints >= 1, got {input_shape!r}")
            dtype = (self._dtype or np.float32) if dtype is None else dtype
            x = _summary.sample_input(self._layers[0], input_shape, dtype)
            was_training = self.training
            self.eval()
            try:
                shapes = [_summary.shape_text(np.shape(self[: i + 1](x))) for i in range(len(self))]
            finally:
                self.train(was_training)
        counts = [_summary.parameter_count(layer, convention) for layer in self._layers]
        rows = [("#", "layer", "output shape" if input_shape else "", "parameters")]
        rows += [
            (str(i), repr(layer).replace("\n", " "), shape, f"{count:,}")
            for i, (layer, shape, count) in enumerate(zip(self._layers, shapes, counts))
        ]
        rule = (
            "Keras's: one bias per SimpleRNN, LSTM and GRU(reset_after=False) cell"
            if convention == "keras"
            else "torch's: every array, two biases per recurrent cell"
        )
        return f"{_summary.table(rows)}\nTotal parameters: {sum(counts):,} (counted by {rule})"

    def extra_repr(self) -> str:
        return "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self._layers)) + "\n"
