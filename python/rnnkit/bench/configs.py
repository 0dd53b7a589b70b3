"""Benchmark configurations, thread counts and the FLOP formula.

FLOP formula (multiply-add = 2 FLOPs; elementwise work is not counted):

    forward  = sum over layers k and directions d of 2 * T * B * G * H * (I_k + H)
               (the input GEMM (T*B, I_k) x (I_k, G*H) plus, per step, the recurrent GEMM
               (B, H) x (H, G*H)); G = 1 (RNN), 3 (GRU), 4 (LSTM); I_0 = I, I_k = D*H
    training = 3 * forward
               (backward repeats both GEMMs twice: dgates @ W for dx and dh, and
               dgates^T @ [x, h] for dW)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rnnkit._core import MAX_THREADS

CELLS: tuple[str, ...] = ("rnn", "lstm", "gru")
MODES: tuple[str, ...] = ("inference", "training")
GATES: dict[str, int] = {"rnn": 1, "lstm": 4, "gru": 3}

FLOP_FORMULA: str = (
    "forward = sum over layer-directions of 2*T*B*G*H*(I+H) (G = 1 RNN, 3 GRU, 4 LSTM; "
    "multiply-add = 2, elementwise ignored); training (forward + backward) = 3 * forward"
)


@dataclass(frozen=True)
class Config:
    """One problem size: sequence length T, batch B, input size I, hidden size H."""

    name: str
    T: int
    B: int
    I: int  # noqa: E741 (the conventional name of the input size)
    H: int

    def label(self) -> str:
        return f"T={self.T} B={self.B} I={self.I} H={self.H}"

    def as_dict(self) -> dict:
        return {"name": self.name, "T": self.T, "B": self.B, "I": self.I, "H": self.H}


FULL_CONFIGS: dict[str, Config] = {
    "b1": Config("b1", 100, 1, 128, 128),
    "b32": Config("b32", 100, 32, 256, 256),
    "b64": Config("b64", 50, 64, 512, 512),
    "long": Config("long", 1000, 16, 128, 128),
}

QUICK_CONFIGS: dict[str, Config] = {
    "tiny1": Config("tiny1", 6, 1, 8, 8),
    "tiny4": Config("tiny4", 9, 4, 12, 20),
}


def parse_configs(text: str | None, quick: bool) -> list[Config]:
    """Configs from a comma-separated list of names (b1, b32, b64, long, tiny1, tiny4) or
    explicit sizes ``TxBxIxH`` / ``TxBxH`` (I = H); None gives the default set."""
    if text is None:
        return list((QUICK_CONFIGS if quick else FULL_CONFIGS).values())
    known = {**FULL_CONFIGS, **QUICK_CONFIGS}
    configs = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        if item in known:
            configs.append(known[item])
            continue
        parts = item.lower().split("x")
        if len(parts) not in (3, 4) or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError(
                f"--configs: {item!r} is neither a known name ({', '.join(known)}) nor "
                "TxBxIxH / TxBxH with positive integers"
            )
        sizes = [int(p) for p in parts]
        if len(sizes) == 3:
            sizes = [sizes[0], sizes[1], sizes[2], sizes[2]]
        configs.append(Config(item, *sizes))
    if not configs:
        raise ValueError(f"--configs: no configuration in {text!r}")
    return configs


def parse_names(text: str | None, allowed: tuple[str, ...], option: str) -> list[str]:
    """A comma-separated subset of ``allowed`` (all of them when ``text`` is None)."""
    if text is None:
        return list(allowed)
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ValueError(
            f"{option}: got {text!r}, expected a comma-separated subset of {','.join(allowed)}"
        )
    return list(dict.fromkeys(names))


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_threads(text: str | None) -> list[int]:
    """Thread counts from e.g. ``"1,all"`` or ``"1,2,4"``; duplicates dropped, order kept."""
    counts = []
    for item in (s.strip().lower() for s in (text or "1,all").split(",") if s.strip()):
        if item == "all":
            counts.append(available_cores())
        elif item.isdigit() and 1 <= int(item) <= MAX_THREADS:
            counts.append(int(item))
        else:
            raise ValueError(
                f"--threads: got {item!r}, expected 'all' or an integer from 1 to {MAX_THREADS}"
            )
    if not counts:
        raise ValueError(f"--threads: no thread count in {text!r}")
    return list(dict.fromkeys(counts))


def forward_flops(
    cell: str,
    T: int,
    B: int,
    I: int,  # noqa: E741 (the conventional name of the input size)
    H: int,
    num_layers: int = 1,
    bidirectional: bool = False,
) -> int:
    """FLOPs of one forward pass (see the module docstring for the formula)."""
    if cell not in GATES:
        raise ValueError(f"forward_flops: cell must be one of {tuple(GATES)}, got {cell!r}")
    G = GATES[cell]
    D = 2 if bidirectional else 1
    total = 0
    for k in range(num_layers):
        in_k = I if k == 0 else D * H
        total += D * 2 * T * B * G * H * (in_k + H)
    return total


def case_flops(cell: str, config: Config, mode: str) -> int:
    """FLOPs of one timed call: a forward pass (inference) or forward + backward (training)."""
    if mode not in MODES:
        raise ValueError(f"case_flops: mode must be one of {MODES}, got {mode!r}")
    fwd = forward_flops(cell, config.T, config.B, config.I, config.H)
    return fwd if mode == "inference" else 3 * fwd
