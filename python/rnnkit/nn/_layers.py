"""The layers with parameters that sit around the recurrent modules: Embedding and Linear
(their conventions and shapes: see the package's docstring, ``rnnkit.nn``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit import _pretrained
from rnnkit._module import Module
from rnnkit._validation import (
    as_indices,
    as_layer_float,
    check_bool,
    check_dtype,
    check_int_at_least,
    check_optional_int,
)
from rnnkit.nn._masks import lengths_from_mask

__all__ = ["Embedding", "Linear"]


class _Layer(Module):
    """A layer of this file: parameters under torch's names, dtype checked once."""

    # The layers' wording of a load_state_dict value of the wrong shape.
    _SHAPE_MISMATCH_MESSAGE = "{cls}.load_state_dict: {name!r} has shape {got}, expected {expected}"

    def __init__(self, dtype: Any, **sizes: Any) -> None:
        """``sizes``: the layer's sizes by name, each an int >= 1, kept as attributes."""
        super().__init__(check_dtype(dtype))
        for name, value in sizes.items():
            setattr(self, name, check_int_at_least(name, value, 1))


class Embedding(_Layer):
    """Lookup table ``weight (num_embeddings, embedding_dim)``, like ``torch.nn.Embedding``.

    ``weight`` is drawn from N(0, 1) (torch's initialisation); the row ``padding_idx`` (if
    given; negative values count from the end) starts at zero and never receives gradient.
    ``from_pretrained`` and ``from_keyed_vectors`` build one from pretrained vectors.

    ``freeze`` (False here, True by default from the two constructors above) is torch's
    ``weight.requires_grad = False``: while it is True, ``backward`` adds nothing into
    ``grads['weight']`` and ``trainable_parameters()`` leaves ``weight`` out, so
    ``rnnkit.optim`` and ``rnnkit.clip_grad_norm`` skip it. ``parameters()``,
    ``state_dict()`` and ``load_state_dict`` still include it. Set ``emb.freeze = False``
    to fine-tune from then on. Threads and copies as ``rnnkit.LSTM``.

    With ``mask_zero=True`` index 0 marks padding inside a :class:`Sequential`: the
    indices ``(B, T)`` give each sequence's length (its steps before the first 0; a 0
    followed by a non-zero index raises ValueError) to the recurrent layers after it.
    """

    num_embeddings: int
    embedding_dim: int

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = "float32",
        seed: int | None = None,
        mask_zero: bool = False,
    ) -> None:
        super().__init__(dtype, num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.mask_zero = check_bool("mask_zero", mask_zero)
        self.padding_idx = self._padding_row(padding_idx, self.num_embeddings)
        self.freeze = False
        rng = np.random.default_rng(seed)
        weight = rng.standard_normal((self.num_embeddings, self.embedding_dim))
        if self.padding_idx is not None:
            weight[self.padding_idx] = 0.0
        self._add_parameter("weight", weight)

    @staticmethod
    def _padding_row(padding_idx: Any, num_embeddings: int) -> int | None:
        """None, or ``padding_idx`` checked against the rows and made non-negative."""
        padding_idx = check_optional_int("padding_idx", padding_idx)
        if padding_idx is None:
            return None
        if not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(
                f"padding_idx must lie in [{-num_embeddings}, {num_embeddings - 1}], "
                f"got {padding_idx}"
            )
        return padding_idx % num_embeddings

    @classmethod
    def _from_table(cls, table: np.ndarray, padding_idx: Any, freeze: Any, dtype: Any) -> Embedding:
        """An Embedding whose weight is ``table (V, E)``, in ``dtype`` (copied only when it
        is not a C-contiguous array of that dtype: the caller owns a copy to hand over)."""
        freeze = check_bool("freeze", freeze)
        emb = cls.__new__(cls)
        _Layer.__init__(emb, dtype, num_embeddings=table.shape[0], embedding_dim=table.shape[1])
        emb.padding_idx = cls._padding_row(padding_idx, emb.num_embeddings)
        emb.freeze = freeze
        emb.mask_zero = False
        emb._add_parameter("weight", table)
        return emb

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        padding_idx: int | None = None,
        dtype: Any = None,
    ) -> Embedding:
        """An Embedding whose weight is a copy of ``embeddings (num_embeddings, embedding_dim)``.

        Like ``torch.nn.Embedding.from_pretrained``: ``embeddings`` is a floating array (or
        torch tensor), kept as given, the row ``padding_idx`` included (it only stops
        receiving gradient); ``freeze=True`` keeps the weight out of training (see the
        class). ``dtype`` defaults to that of ``embeddings`` (float32 for float16).
        """
        table = _pretrained.as_pretrained_matrix("embeddings", embeddings)
        dtype = _pretrained.table_dtype("embeddings", table, dtype)
        weight = np.array(table, dtype=dtype, copy=True)  # never a view of the caller's array
        return cls._from_table(weight, padding_idx, freeze, dtype)

    @classmethod
    def from_keyed_vectors(
        cls,
        kv: Any,
        vocabulary: Sequence[str],
        freeze: bool = True,
        padding_idx: int | None = None,
        missing: str = "random",
        seed: int | None = 0,
        dtype: Any = None,
    ) -> tuple[Embedding, list[str]]:
        """An Embedding for ``vocabulary`` from word vectors, and the words they lack.

        Row i is ``kv[vocabulary[i]]`` (exact, case-sensitive match; ``kv`` is a
        ``rnnkit.embeddings.KeyedVectors`` or gensim's). Rows of words not in ``kv`` are
        drawn from N(0, s^2), s the standard deviation of ``kv.vectors``
        (``missing="random"``, from ``seed``), or zeros (``missing="zeros"``). The row
        ``padding_idx`` is zeros and is never counted as missing. ``freeze`` as in
        ``from_pretrained``; ``dtype`` defaults to that of ``kv.vectors``.

        Returns ``(embedding, missing_words)``: ``missing_words`` lists the vocabulary's
        words not found in ``kv``, in vocabulary order.
        """
        vectors, key_to_index = _pretrained.keyed_vectors_parts(kv)
        words = _pretrained.check_vocabulary(vocabulary)
        dtype = _pretrained.table_dtype("kv.vectors", vectors, dtype)
        pad = cls._padding_row(padding_idx, len(words))
        table, missing_words = _pretrained.rows_for_vocabulary(
            vectors, key_to_index, words, pad, missing, seed, dtype
        )
        return cls._from_table(table, pad, freeze, dtype), missing_words

    @property
    def freeze(self) -> bool:
        """True while the weight is kept out of training (no gradient, no optimiser step)."""
        return self._freeze

    @freeze.setter
    def freeze(self, value: bool) -> None:
        self._freeze = check_bool("freeze", value)

    def trainable_parameters(self) -> dict[str, np.ndarray]:
        """The parameters an optimiser updates: ``parameters()``, or none while frozen."""
        return {} if self._freeze else self.parameters()

    def forward(self, indices: Any) -> np.ndarray:
        """Rows of ``weight`` for integer ``indices (...)``: returns ``(..., embedding_dim)``."""
        training = self.training
        self._enter(exclusive=training)
        try:
            idx = as_indices("indices", indices, self.num_embeddings)
            if training:
                self._saved = idx
            else:
                self._drop_saved("the last forward pass ran in eval mode")
            return self._params["weight"][idx]
        finally:
            self._leave()

    def output_lengths(self, indices: Any, lengths: np.ndarray | None) -> np.ndarray | None:
        """The sequence lengths after this layer, for :class:`Sequential`: with
        ``mask_zero`` each row of ``indices (B, T)`` up to its first 0, else ``lengths``."""
        if not self.mask_zero:
            return lengths
        idx = np.asarray(indices)
        if idx.ndim != 2:
            raise ValueError(
                f"Embedding(mask_zero=True) needs indices of shape (batch, time) to find "
                f"the sequence lengths, got shape {idx.shape}"
            )
        return lengths_from_mask(idx != 0, "Embedding(mask_zero=True)")

    def backward(self, grad_out: Any) -> None:
        """Scatter-add ``grad_out (..., embedding_dim)`` into ``grads['weight']``.

        Returns None: integer indices have no gradient.
        """
        self._enter(exclusive=True)
        try:
            idx = self._saved_or_raise()
            self._drop_saved("backward was already called for the last forward pass")
            g = as_layer_float("grad_out", grad_out, self._dtype)
            expected = idx.shape + (self.embedding_dim,)
            if g.shape != expected:
                raise ValueError(f"grad_out must have shape {expected}, got {g.shape}")
            rows = idx.reshape(-1)  # (N,)
            g2 = g.reshape(-1, self.embedding_dim)  # (N, E)
            if self._freeze:  # checked above all the same: a wrong grad_out is a bug
                return
            if self.padding_idx is not None:
                keep = rows != self.padding_idx
                rows, g2 = rows[keep], g2[keep]
            np.add.at(self.grads["weight"], rows, g2)
        finally:
            self._leave()

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        frozen = ", freeze=True" if self._freeze else ""
        mask = ", mask_zero=True" if self.mask_zero else ""
        return (
            f"{self.num_embeddings}, {self.embedding_dim}{pad}{mask}{frozen}, dtype={self._dtype}"
        )


class Linear(_Layer):
    """Affine map ``y = x @ weight.T + bias`` over the last axis, like ``torch.nn.Linear``.

    ``weight (out_features, in_features)`` and ``bias (out_features,)`` are drawn uniformly
    from (-1/sqrt(in_features), 1/sqrt(in_features)), torch's default. Threads and copies
    as ``rnnkit.LSTM``.
    """

    in_features: int
    out_features: int

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__(dtype, in_features=in_features, out_features=out_features)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.in_features)
        shape = (self.out_features, self.in_features)
        self._add_parameter("weight", rng.uniform(-bound, bound, shape))
        if bias:
            self._add_parameter("bias", rng.uniform(-bound, bound, (self.out_features,)))

    def forward(self, x: Any) -> np.ndarray:
        """``x (..., in_features)`` -> ``(..., out_features)``."""
        training = self.training
        self._enter(exclusive=training)
        try:
            xa = as_layer_float("x", x, self._dtype)
            if xa.ndim < 1 or xa.shape[-1] != self.in_features:
                raise ValueError(f"x must have shape (..., {self.in_features}), got {xa.shape}")
            if training:
                self._saved = xa
            else:
                self._drop_saved("the last forward pass ran in eval mode")
            y = xa @ self._params["weight"].T  # (..., O)
            if "bias" in self._params:
                y += self._params["bias"]
            return y
        finally:
            self._leave()

    def backward(self, grad_out: Any) -> np.ndarray:
        """Accumulate weight/bias gradients; return ``dx (..., in_features)``."""
        self._enter(exclusive=True)
        try:
            x = self._saved_or_raise()
            self._drop_saved("backward was already called for the last forward pass")
            g = as_layer_float("grad_out", grad_out, self._dtype)
            expected = x.shape[:-1] + (self.out_features,)
            if g.shape != expected:
                raise ValueError(f"grad_out must have shape {expected}, got {g.shape}")
            x2 = x.reshape(-1, self.in_features)  # (N, I)
            g2 = g.reshape(-1, self.out_features)  # (N, O)
            self.grads["weight"] += g2.T @ x2
            if "bias" in self._params:
                self.grads["bias"] += g2.sum(axis=0)
            return g @ self._params["weight"]
        finally:
            self._leave()

    def extra_repr(self) -> str:
        has_bias = "bias" in self._params
        return f"{self.in_features}, {self.out_features}, bias={has_bias}, dtype={self._dtype}"
