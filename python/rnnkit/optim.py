"""Optimisers that update the live parameter arrays of rnnkit modules in place.

An optimiser takes the things to train as a list whose entries are either modules (anything
with ``parameters()`` returning an ordered dict of live arrays and a ``grads`` dict under the
same names: ``rnnkit.RNN/LSTM/GRU``, ``rnnkit.nn.Embedding``/``Linear``) or ``(params,
grads)`` pairs of dicts of arrays::

    opt = rnnkit.optim.Adam([emb, lstm, head], lr=1e-3)
    ...forward, backward...
    opt.step()       # p -= update(p.grad), in place
    opt.zero_grad()  # module.zero_grad() for each module, grads.fill(0) for pairs

Parameters and gradients are looked up by name at every step, so a module that swaps an
array (e.g. in ``load_state_dict``) is still followed. A module with a
``trainable_parameters()`` method (``nn.Embedding``) is trained on those only: a frozen
embedding's weight gets no step, and no weight decay or momentum either. The update rules
are PyTorch's (``torch.optim.SGD`` and ``torch.optim.Adam``), computed in the parameters'
dtype.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam"]


class _Source:
    """One entry of an optimiser's list: a module, or a (params, grads) pair of dicts."""

    def __init__(self, obj: Any, position: int) -> None:
        if hasattr(obj, "parameters") and hasattr(obj, "grads"):
            self.module: Any = obj
            self.pair: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]] | None = None
        elif (
            isinstance(obj, tuple)
            and len(obj) == 2
            and isinstance(obj[0], Mapping)
            and isinstance(obj[1], Mapping)
        ):
            self.module = None
            self.pair = (obj[0], obj[1])
        else:
            raise TypeError(
                f"params[{position}] must be a module (with parameters() and grads) or a "
                f"(params, grads) pair of dicts, got {type(obj).__name__}"
            )
        self.position = position

    def items(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(name, param, grad)`` with matching shapes, checking each pair."""
        if self.module is not None:
            # a frozen parameter (Embedding.freeze) is not trained: the module leaves it out
            trainable = getattr(self.module, "trainable_parameters", self.module.parameters)
            params, grads = trainable(), self.module.grads
        else:
            params, grads = self.pair  # type: ignore[misc]
        for name, p in params.items():
            if name not in grads:
                raise ValueError(f"params[{self.position}]: no gradient named '{name}'")
            g = grads[name]
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(
                    f"params[{self.position}]['{name}'] must be a floating NumPy array, "
                    f"got {type(p).__name__}"
                )
            if not isinstance(g, np.ndarray) or g.shape != p.shape:
                shape = getattr(g, "shape", None)
                raise ValueError(
                    f"params[{self.position}]: gradient '{name}' has shape {shape}, "
                    f"expected {p.shape}"
                )
            yield name, p, g

    def zero_grad(self) -> None:
        if self.module is not None:
            self.module.zero_grad()
        else:
            for g in self.pair[1].values():  # type: ignore[index]
                g.fill(0)


def _as_sources(params: Any) -> list[_Source]:
    """Normalise one module, one (params, grads) pair, or a list of either."""
    if hasattr(params, "parameters") and hasattr(params, "grads"):
        return [_Source(params, 0)]
    if isinstance(params, tuple) and len(params) == 2 and isinstance(params[0], Mapping):
        return [_Source(params, 0)]
    if isinstance(params, (str, bytes, Mapping)) or not hasattr(params, "__iter__"):
        raise TypeError(
            "params must be a module, a (params, grads) pair, or a list of those, "
            f"got {type(params).__name__}"
        )
    sources = [_Source(obj, i) for i, obj in enumerate(params)]
    if not sources:
        raise ValueError("params is an empty list: nothing to optimise")
    return sources


def iter_param_grads(params: Any) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(name, param, grad)`` for every parameter of a module / pair / list of them."""
    for src in _as_sources(params):
        yield from src.items()


def _check_nonneg(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


class Optimizer(abc.ABC):
    """Base class: holds the sources, per-parameter state, ``step``/``zero_grad``/state dicts.

    State is kept per (list position, parameter name); ``state_dict()`` flattens it to
    ``{"state.<position>.<name>.<field>": array, "hyper.<name>": 0-d array}`` so a checkpoint
    can store it in an ``.npz`` file.
    """

    _hyper_names: tuple[str, ...] = ()

    def __init__(self, params: Any) -> None:
        self._sources = _as_sources(params)
        self.state: dict[tuple[int, str], dict[str, np.ndarray]] = {}

    def zero_grad(self) -> None:
        """Clear every gradient this optimiser updates from."""
        for src in self._sources:
            src.zero_grad()

    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        for src in self._sources:
            for name, p, g in src.items():
                self._update(self.state.setdefault((src.position, name), {}), p, g)

    @abc.abstractmethod
    def _update(self, state: dict[str, np.ndarray], p: np.ndarray, g: np.ndarray) -> None:
        """Update one parameter ``p`` in place from its gradient ``g`` (the subclass's rule)."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays: hyperparameters and per-parameter state (copies)."""
        out: dict[str, np.ndarray] = {"hyper.kind": np.array(type(self).__name__)}
        for h in self._hyper_names:
            out[f"hyper.{h}"] = np.array(getattr(self, h))
        for (pos, name), st in self.state.items():
            for field, value in st.items():
                out[f"state.{pos}.{name}.{field}"] = np.array(value, copy=True)
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned (hyperparameters included)."""
        kind = str(np.asarray(state.get("hyper.kind", "")))
        if kind != type(self).__name__:
            raise ValueError(
                f"optimizer state is for '{kind or 'unknown'}', cannot load into "
                f"{type(self).__name__}"
            )
        params = {(s.position, n): p for s in self._sources for n, p, _ in s.items()}
        new_state: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        for key, value in state.items():
            if key.startswith("hyper."):
                continue
            if not key.startswith("state."):
                raise ValueError(f"unexpected optimizer state key '{key}'")
            pos_str, rest = key[len("state.") :].split(".", 1)
            name, field = rest.rsplit(".", 1)
            slot = (int(pos_str), name)
            if slot not in params:
                raise ValueError(f"optimizer state '{key}' matches no parameter of this optimizer")
            arr = np.asarray(value)
            if field != "step" and arr.shape != params[slot].shape:
                raise ValueError(
                    f"optimizer state '{key}' has shape {arr.shape}, expected {params[slot].shape}"
                )
            dtype = np.int64 if field == "step" else params[slot].dtype
            new_state.setdefault(slot, {})[field] = np.array(arr, dtype=dtype, copy=True)
        for h in self._hyper_names:
            if f"hyper.{h}" in state:
                value = np.asarray(state[f"hyper.{h}"])
                setattr(self, h, value.item() if value.ndim == 0 else tuple(value.tolist()))
        self.state = new_state


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, like ``torch.optim.SGD``.

    Per parameter ``p`` with gradient ``g``::

        d = g + weight_decay * p
        buf = d (first step) or momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf         (when momentum != 0)
        p -= lr * d
    """

    _hyper_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(
        self,
        params: Any,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        dampening: float = 0.0,
    ) -> None:
        super().__init__(params)
        self.lr = _check_nonneg(lr, "lr")
        self.momentum = _check_nonneg(momentum, "momentum")
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")
        self.dampening = _check_nonneg(dampening, "dampening")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening == 0, got momentum="
                f"{self.momentum}, dampening={self.dampening}"
            )

    def _update(self, state: dict[str, np.ndarray], p: np.ndarray, g: np.ndarray) -> None:
        d = g + p.dtype.type(self.weight_decay) * p if self.weight_decay else g
        if self.momentum:
            mom = p.dtype.type(self.momentum)
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(d, dtype=p.dtype, copy=True)
            else:
                buf = state["momentum_buffer"]
                buf *= mom
                buf += p.dtype.type(1.0 - self.dampening) * d
            buf = state["momentum_buffer"]
            d = d + mom * buf if self.nesterov else buf
        p -= p.dtype.type(self.lr) * d


class Adam(Optimizer):
    """Adam (Kingma & Ba), like ``torch.optim.Adam`` (L2 weight decay added to the gradient).

    Per parameter, at step t = 1, 2, ...::

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    _hyper_names = ("lr", "betas", "eps", "weight_decay")

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params)
        self.lr = _check_nonneg(lr, "lr")
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            if not 0.0 <= _check_nonneg(b, f"betas[{i}]") < 1.0:
                raise ValueError(f"betas[{i}] must lie in [0, 1), got {b}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = _check_nonneg(eps, "eps")
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")

    def _update(self, state: dict[str, np.ndarray], p: np.ndarray, g: np.ndarray) -> None:
        beta1, beta2 = self.betas
        if "step" not in state:
            state["step"] = np.array(0, dtype=np.int64)
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = int(state["step"])
        f = p.dtype.type
        if self.weight_decay:
            g = g + f(self.weight_decay) * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += f(1.0 - beta1) * (g - m)  # torch: exp_avg.lerp_(grad, 1 - beta1)
        v *= f(beta2)
        v += f(1.0 - beta2) * g * g
        step_size = self.lr / (1.0 - beta1**t)
        denom = np.sqrt(v) / f(np.sqrt(1.0 - beta2**t))
        denom += f(self.eps)
        p -= f(step_size) * m / denom
