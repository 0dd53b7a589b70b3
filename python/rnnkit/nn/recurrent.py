"""``Recurrent``: an ``rnnkit.RNN``/``LSTM``/``GRU`` as one layer of a ``Sequential``.

It gives the layer Keras's recurrent-layer semantics: ``return_sequences``, ``go_backwards``,
a bidirectional ``merge_mode``, and what the output holds at the padding steps of shorter
sequences. The module computes ``out (B, T, D*H)`` on the whole batch; each direction's
layer output is then a gather from it, ``y[b, j] = out[b, src[b, j]]`` where ``valid[b, j]``
and 0 elsewhere, in the order Keras's layer produces its steps (``src``, ``valid``:
``(B, T)``; ``(B, 1)``, the last step only, without ``return_sequences``). Backward
scatters the gradient back through the same maps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit._recurrent import RecurrentBase
from rnnkit._validation import as_float_array, as_layer_float, check_bool, check_choice
from rnnkit.nn._masks import check_sequence_lengths, lengths_or_full
from rnnkit.nn._wrapper import Wrapper, take_saved

__all__ = ["Recurrent", "MERGE_MODES"]

MERGE_MODES = ("concat", "sum", "mul", "ave")


class Recurrent(Wrapper):
    """A recurrent module run as a layer: ``y = layer(x (B, T, I), lengths=None)``.

    ``module``: an ``rnnkit.RNN``, ``LSTM`` or ``GRU`` built with ``batch_first=True``; its
    parameters are this layer's (same names). ``lengths (B,)`` (each 0..T; inside a
    :class:`Sequential` they come from ``Embedding(mask_zero=True)`` or ``Masking``): steps
    past a sequence's length are padding; a length of 0 gives zeros.

    - ``return_sequences``: ``y (B, T, F)``, one output per step; else ``y (B, F)``, the
      output of the last step the layer runs.
    - ``go_backwards``, with a module built with ``reverse=True`` (one direction, reading
      each sequence from its last real step to its first): like Keras, the layer returns
      the outputs in that reversed order, after zeros for the padding steps (which Keras
      runs first, as nothing).
    - bidirectional modules: the reverse direction's outputs are in the input's time order;
      ``merge_mode`` joins the two: ``"concat"`` (F = 2H, forward first), ``"sum"``,
      ``"mul"``, ``"ave"`` (F = H). At padding steps both are 0.
    - ``masked_outputs`` (one direction, forward): at the padding steps ``"last"`` repeats
      the sequence's last real output (Keras's default), ``"zeros"`` gives 0 (Keras's
      ``zero_output_for_mask=True``; then without ``return_sequences`` a sequence shorter
      than T also gives 0, as in Keras).

    ``backward(grad_y)`` returns ``dx (B, T, I)`` and adds the parameter gradients into
    ``grads``. Modes, threads and copies as ``rnnkit.LSTM``.
    """

    def __init__(
        self,
        module: RecurrentBase,
        return_sequences: bool = False,
        go_backwards: bool = False,
        merge_mode: str = "concat",
        masked_outputs: str = "last",
    ) -> None:
        if not isinstance(module, RecurrentBase):
            raise TypeError(
                f"module must be an rnnkit.RNN, LSTM or GRU, got {type(module).__name__}"
            )
        if not module.batch_first:
            raise ValueError("module must be built with batch_first=True (x is (B, T, I))")
        self.return_sequences = check_bool("return_sequences", return_sequences)
        self.go_backwards = check_bool("go_backwards", go_backwards)
        self.merge_mode = check_choice("merge_mode", merge_mode, MERGE_MODES)
        self.masked_outputs = check_choice("masked_outputs", masked_outputs, ("last", "zeros"))
        if self.go_backwards != bool(getattr(module, "reverse", False)):
            raise ValueError(
                f"go_backwards={self.go_backwards} does not fit the module: go_backwards=True "
                f"takes a module built with reverse=True (one direction, run backwards), and "
                f"such a module takes go_backwards=True"
            )
        super().__init__(module)
        self.module = module

    @property
    def out_features(self) -> int:
        """F: features of each output step."""
        H = self.module.hidden_size
        return 2 * H if self.module.bidirectional and self.merge_mode == "concat" else H

    def output_lengths(self, x: Any, lengths: np.ndarray | None) -> np.ndarray | None:
        """The lengths after this layer: unchanged with ``return_sequences``, else None."""
        return lengths if self.return_sequences else None

    def _maps(self, lengths: np.ndarray, T: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per direction, ``(src, valid)`` ``(B, T)`` (or ``(B, 1)``) from ``out`` to y."""
        L = lengths[:, None]  # (B, 1)
        t = np.arange(T)[None, :]  # (1, T)
        # Keras's backward-running layers give their steps in the order they run them:
        # the last real step first, after the padding steps.
        backwards = (np.broadcast_to(T - 1 - t, (len(lengths), T)), t >= T - L)
        if self.go_backwards:
            maps = [backwards]
        else:
            keep_last = self.masked_outputs == "last" and not self.module.bidirectional
            if self.module.bidirectional and not self.return_sequences:
                keep_last = True  # Keras's Bidirectional: its halves' last real outputs
            forward = (np.minimum(t, np.maximum(L - 1, 0)), (t < L) | (keep_last & (L >= 1)))
            maps = [forward]
            if self.module.bidirectional:
                # Keras's Bidirectional flips its backward layer's outputs back to the
                # input's order when it returns sequences.
                src, valid = backwards
                if self.return_sequences:
                    src, valid = src[:, ::-1], valid[:, ::-1]
                maps.append((src, valid))
        if not self.return_sequences:
            maps = [(src[:, -1:], valid[:, -1:]) for src, valid in maps]
        return [(np.ascontiguousarray(s), np.ascontiguousarray(v)) for s, v in maps]

    def forward(self, x: Any, lengths: Any = None) -> np.ndarray:
        """``x (B, T, I)`` -> ``y (B, T, F)`` with ``return_sequences``, else ``(B, F)``."""
        training = self.training
        self._enter(exclusive=training)
        try:
            xa = as_float_array("x", x)
            I = self.module.input_size  # noqa: E741
            if xa.ndim != 3 or xa.shape[-1] != I:
                raise ValueError(f"x must have shape (batch, time, {I}), got {xa.shape}")
            B, T = xa.shape[:2]
            lens = lengths_or_full(check_sequence_lengths(lengths, B, T), B, T)
            run_lengths = None if (lens == T).all() else np.maximum(lens, 1)
            out, _ = self.module(xa, None, run_lengths)  # (B, T, D*H)
            H = self.module.hidden_size
            maps = self._maps(lens, T)
            halves = [
                _gather(out[..., d * H : (d + 1) * H], src, valid, self.return_sequences)
                for d, (src, valid) in enumerate(maps)
            ]  # each (B, T or 1, H)
            y = _merge(halves, self.merge_mode)
            if training:
                kept = halves if self.merge_mode == "mul" else None
                self._saved = (maps, kept, out.shape)
            else:
                self._drop_saved("the last forward pass ran in eval mode")
            return y if self.return_sequences else y[:, 0]
        finally:
            self._leave()

    def backward(self, grad_out: Any) -> np.ndarray:
        """``dx (B, T, I)`` from ``grad_out`` (the shape of the forward's ``y``)."""
        maps, kept, out_shape = take_saved(self)
        B, T = out_shape[:2]
        steps = T if self.return_sequences else 1
        g = as_layer_float("grad_out", grad_out, self.dtype)
        expected = (B, T, self.out_features) if self.return_sequences else (B, self.out_features)
        if g.shape != expected:
            raise ValueError(f"grad_out must have shape {expected}, got {g.shape}")
        g = g.reshape(B, steps, self.out_features)
        grad_halves = _unmerge(g, self.merge_mode, len(maps), kept)
        grad_run = np.zeros(out_shape, dtype=self.dtype)  # (B, T, D*H)
        H = self.module.hidden_size
        for d, ((src, valid), gh) in enumerate(zip(maps, grad_halves)):
            _scatter(grad_run[..., d * H : (d + 1) * H], src, valid, gh)
        dx, _ = self.module.backward(grad_run, None)  # (B, T, I)
        return dx

    def extra_repr(self) -> str:
        parts = [repr(self.module)]
        if self.return_sequences:
            parts.append("return_sequences=True")
        if self.go_backwards:
            parts.append("go_backwards=True")
        if self.module.bidirectional:
            parts.append(f"merge_mode={self.merge_mode!r}")
        elif self.masked_outputs != "last":
            parts.append(f"masked_outputs={self.masked_outputs!r}")
        return ", ".join(parts)


def _gather(out: np.ndarray, src: np.ndarray, valid: np.ndarray, sequences: bool) -> np.ndarray:
    """``y[b, j] = out[b, src[b, j]]`` where ``valid``, else 0: ``(B, S, H)`` from one
    direction's ``out (B, T, H)``. Most maps are the identity (no padding, or a forward
    direction's zeros): then no index is needed."""
    if sequences and (src == np.arange(src.shape[1])).all():
        picked = out
    else:
        picked = out[np.arange(len(src))[:, None], src]
    return np.where(valid[..., None], picked, 0).astype(out.dtype)


def _scatter(target: np.ndarray, src: np.ndarray, valid: np.ndarray, grad: np.ndarray) -> None:
    """Backward of ``_gather``: add ``grad (B, S, H)`` into ``target (B, T, H)`` (zeros) at
    ``src`` where ``valid``. The entries with ``src`` = their own step are copied in one
    pass; the others (padding steps repeating a last output, reversed orders) are added
    one by one, as several may land on one step."""
    steps = np.arange(src.shape[1])
    same = valid & (src == steps) if src.shape[1] == target.shape[1] else np.zeros_like(valid)
    if same.any():
        target[...] = np.where(same[..., None], grad, 0)
    rest = valid & ~same
    if rest.any():
        rows, cols = np.nonzero(rest)
        np.add.at(target, (rows, src[rows, cols]), grad[rows, cols])


def _merge(halves: list[np.ndarray], mode: str) -> np.ndarray:
    """One direction's output, or Keras's Bidirectional merge of two: each ``(B, S, H)``."""
    if len(halves) == 1:
        return halves[0]
    a, b = halves
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    if mode == "sum":
        return a + b
    if mode == "mul":
        return a * b
    return (a + b) / 2  # "ave"


def _unmerge(
    g: np.ndarray, mode: str, directions: int, kept: list[np.ndarray] | None
) -> list[np.ndarray]:
    """The gradient of each direction's output from that of the merged ``g (B, S, F)``."""
    if directions == 1:
        return [g]
    if mode == "concat":
        H = g.shape[-1] // 2
        return [g[..., :H], g[..., H:]]
    if mode == "sum":
        return [g, g]
    if mode == "mul":
        a, b = kept  # type: ignore[misc]
        return [g * b, g * a]
    return [g / 2, g / 2]  # "ave"
