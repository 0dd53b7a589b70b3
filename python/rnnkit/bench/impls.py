"""The implementations a benchmark case times, all holding the same weights.

Each implementation owns one module, one input ``x`` (T, B, I) and one fixed ``grad_out``
(T, B, H) shared by all of them, and offers:

- ``set_mode(mode)``: "inference" (eval mode) or "training" (training mode), set once
  before a mode is timed so that the timed calls do not switch modes;
- ``call()``: one timed call: a forward pass (inference) or forward + backward (training);
- ``results()``: the values the correctness check compares, from a clean training step
  (out, h_n, c_n, dx and every parameter gradient) and an eval-mode forward ("eval_out").
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from rnnkit.bench.configs import Config

Results = dict  # name -> np.ndarray


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def make_inputs(config: Config, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x (T, B, I) and grad_out (T, B, H), float32, from ``seed``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((config.T, config.B, config.I)).astype(np.float32)
    grad_out = rng.standard_normal((config.T, config.B, config.H)).astype(np.float32)
    return x, grad_out


def _split_state(cell: str, state) -> tuple:
    """(h_n, c_n) from a module's returned state; c_n is None except for LSTM."""
    return state if cell == "lstm" else (state, None)


class _ModuleImpl:
    """What the rnnkit and torch implementations share: a module switched between
    training and inference (``self.module``, ``self.training``)."""

    module: Any
    training: bool

    def set_mode(self, mode: str) -> None:
        self.training = mode == "training"
        if self.training:
            self.module.train()
        else:
            self.module.eval()


class RnnkitImpl(_ModuleImpl):
    """rnnkit.RNN/LSTM/GRU with ``backend`` "native" or "numpy"."""

    def __init__(self, cell: str, config: Config, backend: str, state_dict, x, grad_out):
        import rnnkit

        cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell]
        self.cell = cell
        self.module = cls(config.I, config.H, dtype="float32", backend=backend, seed=0)
        self.module.load_state_dict(state_dict)
        self.x, self.grad_out = x, grad_out
        self.training = True

    def call(self) -> None:
        if self.training:
            # out is held until the backward ends, as training code (and torch's step) does.
            out, _ = self.module(self.x)
            self.module.backward(self.grad_out)
            del out
        else:
            self.module(self.x)

    def results(self) -> Results:
        m = self.module
        m.zero_grad()
        m.train()
        out, state = m(self.x)
        dx, _ = m.backward(self.grad_out)
        h_n, c_n = _split_state(self.cell, state)
        res = {"out": out, "h_n": h_n, "dx": dx}
        if c_n is not None:
            res["c_n"] = c_n
        res.update({f"grad_{k}": np.array(v) for k, v in m.grads.items()})
        m.eval()
        res["eval_out"] = m(self.x)[0]
        m.zero_grad()
        self.set_mode("training" if self.training else "inference")
        return res


class TorchImpl(_ModuleImpl):
    """torch.nn.RNN/LSTM/GRU with the same weights; no_grad + eval for inference."""

    def __init__(self, cell: str, config: Config, state_dict, x, grad_out):
        import torch

        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        self.torch = torch
        self.cell = cell
        self.module = cls(config.I, config.H, dtype=torch.float32)
        self.module.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()}
        )
        # Copies, so that torch never shares (or is charged for) rnnkit's arrays.
        self.x = torch.from_numpy(np.array(x))
        self.x_req = self.x.clone().requires_grad_(True)
        self.grad_out = torch.from_numpy(np.array(grad_out))
        self.training = True

    def call(self) -> None:
        if self.training:
            # rnnkit returns a fresh dx each step; torch computes (and allocates) one too.
            self.x_req.grad = None
            out, _ = self.module(self.x_req)
            out.backward(self.grad_out)
        else:
            with self.torch.no_grad():
                self.module(self.x)

    def results(self) -> Results:
        m = self.module
        m.zero_grad(set_to_none=True)
        m.train()
        self.x_req.grad = None
        out, state = m(self.x_req)
        out.backward(self.grad_out)
        h_n, c_n = _split_state(self.cell, state)
        res = {"out": out, "h_n": h_n, "dx": self.x_req.grad}
        if c_n is not None:
            res["c_n"] = c_n
        res.update({f"grad_{k}": p.grad for k, p in m.named_parameters()})
        m.eval()
        with self.torch.no_grad():
            res["eval_out"] = m(self.x)[0]
        m.zero_grad(set_to_none=True)
        self.x_req.grad = None
        self.set_mode("training" if self.training else "inference")
        return {k: v.detach().numpy().copy() for k, v in res.items()}


def _build_rnnkit(cell, config, state_dict, x, grad_out, rnnkit_backend="native"):
    return RnnkitImpl(cell, config, rnnkit_backend, state_dict, x, grad_out)


def _build_numpy(cell, config, state_dict, x, grad_out, rnnkit_backend="native"):
    return RnnkitImpl(cell, config, "numpy", state_dict, x, grad_out)


def _build_torch(cell, config, state_dict, x, grad_out, rnnkit_backend="native"):
    return TorchImpl(cell, config, state_dict, x, grad_out)


# name -> builder(cell, config, state_dict, x, grad_out, rnnkit_backend); tests may add
# entries. rnnkit_backend is the backend of the implementation named "rnnkit" ("native";
# "numpy" to exercise the benchmark itself before the native core is built).
BUILDERS: dict[str, Callable] = {
    "rnnkit": _build_rnnkit,
    "numpy": _build_numpy,
    "torch": _build_torch,
}


def reference_weights(cell: str, config: Config, seed: int) -> dict:
    """The shared weights: an rnnkit module's state dict initialised from ``seed``."""
    import rnnkit

    cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell]
    return cls(config.I, config.H, dtype="float32", backend="numpy", seed=seed).state_dict()


def build(
    names: list[str], cell: str, config: Config, seed: int, rnnkit_backend: str = "native"
) -> dict:
    """name -> implementation, all with the same weights, x and grad_out."""
    state_dict = reference_weights(cell, config, seed)
    x, grad_out = make_inputs(config, seed + 1)
    return {
        n: BUILDERS[n](cell, config, state_dict, x, grad_out, rnnkit_backend=rnnkit_backend)
        for n in names
    }
