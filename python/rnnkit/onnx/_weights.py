"""An ONNX node's W, R, B and P against rnnkit's parameters (PyTorch's names and layout).

ONNX stacks both directions in one tensor and orders the gate blocks differently:

    W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) = [Wb, Rb], P (D, 3*H)   (LSTM only)
    LSTM gates: ONNX [i, o, f, c], rnnkit [i, f, g, o] (c is rnnkit's g)
    GRU gates:  ONNX [z, r, h],    rnnkit [r, z, n]    (h is rnnkit's n)
    LSTM P:     ONNX [i, o, f],    rnnkit weight_ph [p_i, p_f, p_o]

Direction 0 of a tensor is the forward one, 1 the reverse one (rnnkit's "_reverse" names).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.onnx._attributes import GATES

# For each op: the ONNX gate block that holds rnnkit's block k (rnnkit from ONNX) ...
RNNKIT_FROM_ONNX = {"RNN": [0], "GRU": [1, 0, 2], "LSTM": [0, 2, 3, 1]}
# ... and the rnnkit block that holds ONNX's block k (ONNX from rnnkit).
ONNX_FROM_RNNKIT = {"RNN": [0], "GRU": [1, 0, 2], "LSTM": [0, 3, 1, 2]}
# Peephole blocks: the same permutation both ways ([i, o, f] <-> [i, f, o]).
PEEPHOLE_ORDER = [0, 2, 1]


def reorder_blocks(a: np.ndarray, order: list[int], H: int) -> np.ndarray:
    """The H-row blocks of ``a`` (first axis) in ``order``."""
    return np.concatenate([a[k * H : (k + 1) * H] for k in order], axis=0)


@dataclass(frozen=True)
class NodeWeights:
    """A node's weight tensors, shapes checked (see the module docstring)."""

    W: np.ndarray
    R: np.ndarray
    B: np.ndarray | None
    P: np.ndarray | None
    hidden_size: int
    input_size: int

    def state_dict(self, op: str, direction: int, suffix: str) -> dict[str, np.ndarray]:
        """rnnkit's parameters of ONNX direction ``direction``, named with ``suffix``
        ("" or "_reverse") for layer 0."""
        H, order = self.hidden_size, RNNKIT_FROM_ONNX[op]
        GH = GATES[op] * H
        out = {
            f"weight_ih_l0{suffix}": reorder_blocks(self.W[direction], order, H),
            f"weight_hh_l0{suffix}": reorder_blocks(self.R[direction], order, H),
        }
        if self.B is not None:
            out[f"bias_ih_l0{suffix}"] = reorder_blocks(self.B[direction, :GH], order, H)
            out[f"bias_hh_l0{suffix}"] = reorder_blocks(self.B[direction, GH:], order, H)
        if self.P is not None:
            out[f"weight_ph_l0{suffix}"] = reorder_blocks(self.P[direction], PEEPHOLE_ORDER, H)
        return out


def check_weights(
    op: str,
    label: str,
    hidden_size: int | None,
    num_directions: int,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None,
    P: np.ndarray | None,
) -> NodeWeights:
    """``NodeWeights`` of a node, or ValueError naming ``label``, the tensor, its shape and
    the shape expected (``hidden_size``: the attribute, None when absent)."""
    G, D = GATES[op], num_directions
    for name, a in (("W", W), ("R", R), ("B", B), ("P", P)):
        if a is not None and a.dtype.kind != "f":
            raise ValueError(f"{label}: {name} must be a floating tensor, got {a.dtype}")
    if R.ndim != 3 or R.shape[0] != D or R.shape[2] < 1 or R.shape[1] != G * R.shape[2]:
        raise ValueError(
            f"{label}: R must have shape (num_directions={D}, {G}*hidden_size, hidden_size), "
            f"got {R.shape}"
        )
    H = R.shape[2]
    if hidden_size is not None and hidden_size != H:
        raise ValueError(
            f"{label}: hidden_size attribute is {hidden_size} but R has shape {R.shape} "
            f"(hidden_size {H})"
        )
    if W.ndim != 3 or W.shape[:2] != (D, G * H) or W.shape[2] < 1:
        raise ValueError(
            f"{label}: W must have shape ({D}, {G * H}, input_size >= 1) for hidden_size {H}, "
            f"got {W.shape}"
        )
    if B is not None and B.shape != (D, 2 * G * H):
        raise ValueError(f"{label}: B must have shape ({D}, {2 * G * H}), got {B.shape}")
    if P is not None and P.shape != (D, 3 * H):
        raise ValueError(f"{label}: P must have shape ({D}, {3 * H}), got {P.shape}")
    return NodeWeights(W, R, B, P, H, W.shape[2])
