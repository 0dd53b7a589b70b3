"""Layers that sit around the recurrent modules: Embedding, Linear and softmax cross-entropy.

They follow the same conventions as ``rnnkit.RNN``/``LSTM``/``GRU``: ``parameters()`` returns
an ordered dict of the live NumPy arrays under PyTorch's names (``weight``, ``bias``),
``grads`` holds the gradients under the same names and accumulates across ``backward``
calls until ``zero_grad()``, ``forward`` (also ``__call__``) keeps what ``backward`` needs
when the layer is in training mode, and ``backward`` consumes it.

Shapes (``...`` is any number of leading dimensions, including none):

- ``Embedding(V, E)``: indices ``(...)`` of any integer dtype -> ``(..., E)``.
- ``Linear(I, O)``: ``x (..., I)`` -> ``(..., O)``, computed as ``x @ W.T + b``.
- ``CrossEntropyLoss``: logits ``(..., C)``, targets ``(...)`` -> scalar loss; ``backward``
  returns ``dlogits (..., C)``.
"""

from __future__ import annotations

import abc
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "Embedding",
    "Linear",
    "CrossEntropyLoss",
    "cross_entropy",
    "log_softmax",
    "softmax",
]

_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def _parse_dtype(dtype: Any) -> np.dtype:
    """Map ``"float32"``/``"float64"`` (or the NumPy equivalents) to a NumPy dtype."""
    try:
        key = np.dtype(dtype).name
    except TypeError as err:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from err
    if key not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return _DTYPES[key]


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _as_float(x: Any, name: str, dtype: np.dtype) -> np.ndarray:
    """Convert a floating array-like to ``dtype``; reject integer, bool, complex, object."""
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a floating-point array, got dtype {arr.dtype} "
            f"(convert it explicitly, e.g. x.astype(np.{dtype.name}))"
        )
    return np.ascontiguousarray(arr, dtype=dtype)


def _as_indices(x: Any, name: str, upper: int) -> np.ndarray:
    """Check that ``x`` holds integers in ``[0, upper)`` and return it as an int64 array."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= upper:
            raise ValueError(
                f"{name} must lie in [0, {upper - 1}], got values in [{lo}, {hi}] "
                f"(shape {arr.shape})"
            )
    return arr.astype(np.int64, copy=False)


def _to_numpy(value: Any) -> np.ndarray:
    """NumPy view of an array-like or of a torch tensor (anything with ``.detach()``)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class _Layer(abc.ABC):
    """Shared bookkeeping: live parameters, accumulated grads, state dicts, train/eval."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = _parse_dtype(dtype)
        self.training = True
        self._params: OrderedDict[str, np.ndarray] = OrderedDict()
        self.grads: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache: Any = None

    def _add_param(self, name: str, value: np.ndarray) -> None:
        self._params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self._params[name])

    def parameters(self) -> OrderedDict[str, np.ndarray]:
        """Ordered dict of the live parameter arrays (updating them in place updates the layer)."""
        return OrderedDict(self._params)

    def zero_grad(self) -> None:
        """Set every accumulated gradient to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of the parameters, by name."""
        return OrderedDict((k, v.copy()) for k, v in self._params.items())

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy ``state`` into the live parameters (NumPy arrays or torch tensors).

        With ``strict`` every name must be present and no other name may appear. Shapes must
        match exactly. Values are converted to the layer's dtype; the arrays stay the same
        objects, so optimisers holding them keep working.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping of name -> array, got {type(state).__name__}")
        missing = [k for k in self._params if k not in state]
        unexpected = [k for k in state if k not in self._params]
        if strict and (missing or unexpected):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                f"unexpected keys {unexpected}; expected exactly {list(self._params)}"
            )
        for name, param in self._params.items():
            if name not in state:
                continue
            value = _to_numpy(state[name])
            if value.shape != param.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: '{name}' has shape {value.shape}, "
                    f"expected {param.shape}"
                )
            if value.dtype.kind not in "fiu":
                raise TypeError(
                    f"{type(self).__name__}.load_state_dict: '{name}' must be a real numeric "
                    f"array, got dtype {value.dtype}"
                )
            np.copyto(param, value, casting="unsafe")  # converts to the layer's dtype

    def train(self, mode: bool = True) -> _Layer:
        """Training mode: ``forward`` keeps what ``backward`` needs. Returns self.

        Switching to eval mode drops what a training forward kept (like the RNN modules).
        """
        self.training = bool(mode)
        if not self.training:
            self._cache = None
        return self

    def eval(self) -> _Layer:
        """Evaluation mode: ``forward`` keeps nothing. Returns self."""
        return self.train(False)

    def _take_cache(self) -> Any:
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs a forward pass in training mode first "
                "(call .train() before forward; each forward supports one backward)"
            )
        cache, self._cache = self._cache, None
        return cache

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    @abc.abstractmethod
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Each layer's forward pass."""


class Embedding(_Layer):
    """Lookup table ``weight (num_embeddings, embedding_dim)``, like ``torch.nn.Embedding``.

    ``weight`` is drawn from N(0, 1) (torch's initialisation); the row ``padding_idx`` (if
    given; negative values count from the end) starts at zero and never receives gradient.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__(dtype)
        self.num_embeddings = _check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _check_positive_int(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
                raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(
                    f"padding_idx must lie in [{-self.num_embeddings}, "
                    f"{self.num_embeddings - 1}], got {padding_idx}"
                )
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        rng = np.random.default_rng(seed)
        weight = rng.standard_normal((self.num_embeddings, self.embedding_dim))
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self._add_param("weight", weight)

    def forward(self, indices: Any) -> np.ndarray:
        """Rows of ``weight`` for integer ``indices (...)``: returns ``(..., embedding_dim)``."""
        idx = _as_indices(indices, "indices", self.num_embeddings)
        self._cache = idx if self.training else None
        return self._params["weight"][idx]

    def backward(self, grad_out: Any) -> None:
        """Scatter-add ``grad_out (..., embedding_dim)`` into ``grads['weight']``.

        Returns None: integer indices have no gradient.
        """
        idx = self._take_cache()
        g = _as_float(grad_out, "grad_out", self.dtype)
        expected = idx.shape + (self.embedding_dim,)
        if g.shape != expected:
            raise ValueError(f"grad_out must have shape {expected}, got {g.shape}")
        rows = idx.reshape(-1)  # (N,)
        g2 = g.reshape(-1, self.embedding_dim)  # (N, E)
        if self.padding_idx is not None:
            keep = rows != self.padding_idx
            rows, g2 = rows[keep], g2[keep]
        np.add.at(self.grads["weight"], rows, g2)
        return None

    def __repr__(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{pad}, dtype={self.dtype})"


class Linear(_Layer):
    """Affine map ``y = x @ weight.T + bias`` over the last axis, like ``torch.nn.Linear``.

    ``weight (out_features, in_features)`` and ``bias (out_features,)`` are drawn uniformly
    from (-1/sqrt(in_features), 1/sqrt(in_features)), torch's default.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__(dtype)
        self.in_features = _check_positive_int(in_features, "in_features")
        self.out_features = _check_positive_int(out_features, "out_features")
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.in_features)
        self._add_param("weight", rng.uniform(-bound, bound, (self.out_features, self.in_features)))
        if bias:
            self._add_param("bias", rng.uniform(-bound, bound, (self.out_features,)))

    def forward(self, x: Any) -> np.ndarray:
        """``x (..., in_features)`` -> ``(..., out_features)``."""
        xa = _as_float(x, "x", self.dtype)
        if xa.ndim < 1 or xa.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., {self.in_features}), got {xa.shape}")
        self._cache = xa if self.training else None
        y = xa @ self._params["weight"].T  # (..., O)
        if "bias" in self._params:
            y += self._params["bias"]
        return y

    def backward(self, grad_out: Any) -> np.ndarray:
        """Accumulate weight/bias gradients; return ``dx (..., in_features)``."""
        x = self._take_cache()
        g = _as_float(grad_out, "grad_out", self.dtype)
        expected = x.shape[:-1] + (self.out_features,)
        if g.shape != expected:
            raise ValueError(f"grad_out must have shape {expected}, got {g.shape}")
        x2 = x.reshape(-1, self.in_features)  # (N, I)
        g2 = g.reshape(-1, self.out_features)  # (N, O)
        self.grads["weight"] += g2.T @ x2
        if "bias" in self._params:
            self.grads["bias"] += g2.sum(axis=0)
        return g @ self._params["weight"]

    def __repr__(self) -> str:
        return (
            f"Linear({self.in_features}, {self.out_features}, "
            f"bias={'bias' in self._params}, dtype={self.dtype})"
        )


def log_softmax(x: Any, axis: int = -1) -> np.ndarray:
    """Numerically stable ``log(softmax(x))`` along ``axis`` (subtracts the max first)."""
    xa = np.asarray(x)
    if xa.dtype.kind != "f":
        raise TypeError(f"x must be a floating-point array, got dtype {xa.dtype}")
    z = xa - xa.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax(x: Any, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed stably."""
    return np.exp(log_softmax(x, axis=axis))


class CrossEntropyLoss:
    """Softmax cross-entropy on unnormalised logits, like ``torch.nn.functional.cross_entropy``.

    ``loss = forward(logits (..., C), targets (...), mask=None)``: targets are class indices;
    a target equal to ``ignore_index`` or where ``mask`` is False does not count. With
    ``reduction="mean"`` the loss is averaged over the counted targets (NaN when none count,
    as in torch); ``"sum"`` adds them. ``backward(grad_loss=1.0)`` returns ``dlogits``.
    """

    def __init__(self, ignore_index: int | None = -100, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if ignore_index is not None and (
            isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
        ):
            raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
        self.ignore_index = ignore_index
        self.reduction = reduction
        self._cache: Any = None

    def __call__(self, logits: Any, targets: Any, mask: Any = None) -> float:
        return self.forward(logits, targets, mask)

    def forward(self, logits: Any, targets: Any, mask: Any = None) -> float:
        """Loss of ``logits (..., C)`` against integer ``targets (...)``; ``mask (...)`` bool."""
        z = np.asarray(logits)
        if z.dtype.kind != "f":
            raise TypeError(f"logits must be a floating-point array, got dtype {z.dtype}")
        if z.ndim < 1:
            raise ValueError(f"logits must have shape (..., C), got {z.shape}")
        t = np.asarray(targets)
        if t.dtype.kind not in "iu":
            raise TypeError(f"targets must be an integer array, got dtype {t.dtype}")
        if t.shape != z.shape[:-1]:
            raise ValueError(f"targets must have shape {z.shape[:-1]}, got {t.shape}")
        num_classes = z.shape[-1]
        valid = np.ones(t.shape, dtype=bool)
        if self.ignore_index is not None:
            valid &= t != self.ignore_index
        if mask is not None:
            m = np.asarray(mask)
            if m.dtype != np.bool_:
                raise TypeError(f"mask must be a bool array, got dtype {m.dtype}")
            if m.shape != t.shape:
                raise ValueError(f"mask must have shape {t.shape}, got {m.shape}")
            valid &= m
        counted = t[valid]
        if counted.size and (counted.min() < 0 or counted.max() >= num_classes):
            raise ValueError(
                f"targets must lie in [0, {num_classes - 1}] (or equal ignore_index="
                f"{self.ignore_index}), got values in [{counted.min()}, {counted.max()}]"
            )
        safe_t = np.where(valid, t, 0).astype(np.int64)  # (...) ignored entries read class 0
        logp = log_softmax(z)  # (..., C)
        picked = np.take_along_axis(logp, safe_t[..., None], axis=-1)[..., 0]  # (...)
        total = -picked[valid].sum(dtype=np.float64)
        count = int(valid.sum())
        if self.reduction == "mean":
            scale = 1.0 / count if count else float("nan")
        else:
            scale = 1.0
        self._cache = (logp, safe_t, valid, scale)
        return float(total * scale)

    def backward(self, grad_loss: float = 1.0) -> np.ndarray:
        """``dlogits (..., C)`` = (softmax - onehot) * scale on counted targets, 0 elsewhere."""
        if self._cache is None:
            raise RuntimeError("CrossEntropyLoss.backward needs a forward pass first")
        logp, safe_t, valid, scale = self._cache
        self._cache = None
        if not valid.any():  # nothing counted: torch also returns zeros here
            return np.zeros_like(logp)
        grad = np.exp(logp)  # (..., C) softmax
        onehot_at = safe_t[..., None]  # (..., 1)
        np.put_along_axis(grad, onehot_at, np.take_along_axis(grad, onehot_at, -1) - 1, -1)
        coef = np.where(valid, scale * float(grad_loss), 0.0).astype(grad.dtype)  # (...)
        grad *= coef[..., None]
        return grad


def cross_entropy(
    logits: Any, targets: Any, ignore_index: int | None = -100, mask: Any = None
) -> float:
    """Mean softmax cross-entropy, without keeping anything for backward."""
    return CrossEntropyLoss(ignore_index=ignore_index).forward(logits, targets, mask)
