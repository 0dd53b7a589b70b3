"""The facts about each recurrent cell kind that Python needs, kept in one place.

A mode names a cell kind as the backends know it. Per mode: G, how many gate blocks of H
rows its weights stack, and whether it carries a second state (the LSTM's cell state c).
Every kind has the same parameters per layer and direction, under PyTorch's names: the
kinds below, suffixed ``_l{layer}`` and ``_reverse`` for the second direction.
"""

from __future__ import annotations

from typing import NamedTuple


class CellKind(NamedTuple):
    gates: int  # G: blocks of H rows in each weight and bias
    has_cell_state: bool  # a second state c besides h (LSTM)


CELL_KINDS: dict[str, CellKind] = {
    "rnn_tanh": CellKind(gates=1, has_cell_state=False),
    "rnn_relu": CellKind(gates=1, has_cell_state=False),
    "lstm": CellKind(gates=4, has_cell_state=True),
    "gru": CellKind(gates=3, has_cell_state=False),
    "gru_reset_before": CellKind(gates=3, has_cell_state=False),
}
MODES: tuple[str, ...] = tuple(CELL_KINDS)

# One layer and direction's parameters, in PyTorch's order; the biases only with bias=True.
WEIGHT_KINDS = ("weight_ih", "weight_hh")
BIAS_KINDS = ("bias_ih", "bias_hh")


def cell_kind(mode: str) -> CellKind:
    """The facts of ``mode``; ValueError naming the modes for an unknown one."""
    kind = CELL_KINDS.get(mode)
    if kind is None:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return kind


def gate_count(mode: str) -> int:
    """Number of gate blocks G of a mode: 1 (rnn), 4 (lstm), 3 (gru)."""
    return cell_kind(mode).gates


def parameter_name(kind: str, layer: int, direction: int) -> str:
    """PyTorch's name of parameter ``kind`` of ``layer`` (0-based) and ``direction`` (0, 1)."""
    return f"{kind}_l{layer}" + ("_reverse" if direction == 1 else "")
