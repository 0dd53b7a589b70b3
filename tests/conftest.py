"""Shared test helpers: random weight lists in the backend contract's layout, and copying
them into (or out of) torch.nn.RNN / LSTM / GRU; the vector ISAs this CPU runs. Import
them with ``from conftest import make_weights, torch_module``."""

from __future__ import annotations

import numpy as np
from rnnkit import _core

# The vector kernel ISAs ("avx2", "avx512") this build and CPU run: tests comparing them
# need two (on a CPU without AVX-512 there is nothing to compare).
VECTOR_ISAS = [name for name in _core.cpu_info()["available_isas"] if name != "plain"]

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3, "gru_reset_before": 3}


def make_weights(
    mode: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    num_directions: int,
    bias: bool,
    dtype,
    rng: np.random.Generator,
    scale: float = 0.5,
) -> list:
    """Random contract-layout weights: L*D tuples (w_ih (G*H, I_k), w_hh (G*H, H), b_ih, b_hh),
    entry k*D + d, biases (G*H,) or None; uniform in (-scale, scale)."""
    gh = GATES[mode] * hidden_size
    weights = []
    for k in range(num_layers):
        in_k = input_size if k == 0 else num_directions * hidden_size
        for _ in range(num_directions):
            shapes = [(gh, in_k), (gh, hidden_size)] + ([(gh,), (gh,)] if bias else [])
            arrays = [rng.uniform(-scale, scale, s).astype(dtype) for s in shapes]
            weights.append(tuple(arrays) if bias else (arrays[0], arrays[1], None, None))
    return weights


def param_names(num_layers: int, num_directions: int, bias: bool) -> list:
    """Torch parameter names per contract entry k*D + d, in (w_ih, w_hh, b_ih, b_hh) order
    (None for absent biases)."""
    names = []
    for k in range(num_layers):
        for d in range(num_directions):
            sfx = f"_l{k}" + ("_reverse" if d == 1 else "")
            kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            names.append(
                tuple(f"{kind}{sfx}" if bias or i < 2 else None for i, kind in enumerate(kinds))
            )
    return names


def torch_module(mode: str, weights: list, num_directions: int, dtype=None):
    """A torch.nn.RNN/LSTM/GRU (time-major, eval mode, no dropout) holding ``weights``.
    Torch has no reset-before GRU, so "gru_reset_before" raises ValueError."""
    import torch

    if mode == "gru_reset_before":
        raise ValueError("torch.nn.GRU has no reset_after=False variant")
    w_ih0, w_hh0, b_ih0, _ = weights[0]
    hidden = w_hh0.shape[1]
    kwargs = dict(
        input_size=w_ih0.shape[1],
        hidden_size=hidden,
        num_layers=len(weights) // num_directions,
        bias=b_ih0 is not None,
        bidirectional=num_directions == 2,
        dtype=dtype or torch.from_numpy(w_ih0).dtype,
    )
    if mode.startswith("rnn_"):
        module = torch.nn.RNN(nonlinearity=mode[4:], **kwargs)
    else:
        module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[mode](**kwargs)
    names = param_names(kwargs["num_layers"], num_directions, kwargs["bias"])
    with torch.no_grad():
        for entry, entry_names in zip(weights, names):
            for array, name in zip(entry, entry_names):
                if name is not None:
                    getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(array)))
    return module.eval()
