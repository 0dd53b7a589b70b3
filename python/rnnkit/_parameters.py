"""The parameters of an L-layer, D-direction recurrent stack: PyTorch's names, shapes and
order, and the names in the backends' layout (one tuple per layer and direction)."""

from __future__ import annotations

from rnnkit._cells import BIAS_KINDS, WEIGHT_KINDS, parameter_name
from rnnkit._validation import check_nbytes

# Bytes Python spends per parameter array besides its data (the ndarray object, its name,
# the dict slots); measured about 540 for a parameter and its gradient together.
_ARRAY_OVERHEAD = 256

# Names of (w_ih, w_hh, b_ih, b_hh) of one layer and direction; the biases None without bias.
EntryNames = tuple[str, str, "str | None", "str | None"]


def check_parameter_memory(
    gates: int,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    directions: int,
    bias: bool,
    itemsize: int,
) -> None:
    """Refuse a stack whose parameters and gradients cannot fit in memory.

    Checked in closed form before anything is built: with num_layers = 2**40 even the dict
    of parameter shapes would exhaust memory. Parameters and their gradients live side by
    side (twice the parameter bytes), and each of those arrays costs Python about
    _ARRAY_OVERHEAD bytes besides its data (what counts for tiny huge stacks).
    """
    G, H, D, L = gates, hidden_size, directions, num_layers
    per_cell = 2 if bias else 0  # (G*H, in_k) + (G*H, H) [+ 2 x (G*H,)] elements
    n_params = D * G * H * (input_size + H + per_cell) + (L - 1) * D * G * H * (
        D * H + H + per_cell
    )
    n_arrays = L * D * (4 if bias else 2)
    check_nbytes(
        "the parameters and their gradients",
        2 * n_params,
        itemsize,
        extra_bytes=2 * n_arrays * _ARRAY_OVERHEAD,
    )


def entry_names(num_layers: int, directions: int, bias: bool) -> list[EntryNames]:
    """Names of (w_ih, w_hh, b_ih, b_hh) per entry k*D + d of the backends' weight list."""
    names: list[EntryNames] = []
    for k in range(num_layers):
        for d in range(directions):
            w_ih, w_hh = (parameter_name(kind, k, d) for kind in WEIGHT_KINDS)
            b_ih, b_hh = (parameter_name(kind, k, d) if bias else None for kind in BIAS_KINDS)
            names.append((w_ih, w_hh, b_ih, b_hh))
    return names


def parameter_shapes(
    gates: int, input_size: int, hidden_size: int, directions: int, names: list[EntryNames]
) -> dict[str, tuple[int, ...]]:
    """PyTorch's names and shapes, in PyTorch's order (layer, direction, ih/hh, w/b), of the
    stack whose entries are ``names`` (from :func:`entry_names`): layer 0 reads the input,
    each later layer the D*H features of the one below."""
    G, H = gates, hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(names):
        in_k = input_size if i < directions else directions * H
        shapes[w_ih] = (G * H, in_k)
        shapes[w_hh] = (G * H, H)
        if b_ih is not None and b_hh is not None:
            shapes[b_ih] = (G * H,)
            shapes[b_hh] = (G * H,)
    return shapes
