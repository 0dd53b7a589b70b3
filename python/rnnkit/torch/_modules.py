"""``rnnkit.torch.RNN``, ``LSTM``, ``GRU``: torch's modules whose forward runs on rnnkit's core.

Each class subclasses torch's (same constructor, Parameters and state dict) and replaces
only ``forward``: CPU float32/float64 inputs go to the ``rnnkit::stack_forward`` operator;
everything else goes to torch's own forward (``super().forward``), which computes it or
raises torch's error.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence

from rnnkit.torch import _ops  # noqa: F401 (registers the rnnkit:: operators)

__all__ = ["RNN", "LSTM", "GRU", "runs_natively"]

_NATIVE_DTYPES = (torch.float32, torch.float64)


def _states(module: torch.nn.RNNBase, hx) -> list[torch.Tensor]:
    if hx is None:
        return []
    return list(hx) if isinstance(module, torch.nn.LSTM) else [hx]


def runs_natively(module: torch.nn.RNNBase, input, hx=None) -> bool:
    """True when ``module(input, hx)`` runs on rnnkit's core, False when torch runs it.

    Native: CPU tensors of one dtype, float32 or float64 (input, states and parameters),
    no autocast, a 2-D or 3-D input (an LSTM's ``proj_size`` included). Anything else
    (CUDA, float16/bfloat16, mixed dtypes or devices) goes to torch, which computes it or
    raises its own error.
    """
    data = input.data if isinstance(input, PackedSequence) else input
    if not isinstance(data, torch.Tensor):
        return False
    if data.dtype not in _NATIVE_DTYPES or data.device.type != "cpu":
        return False
    if not isinstance(input, PackedSequence) and data.dim() not in (2, 3):
        return False  # torch raises its error
    if torch.is_autocast_enabled("cpu"):
        return False
    tensors = [getattr(module, name) for name in module._flat_weights_names]
    tensors += _states(module, hx)
    return all(
        isinstance(t, torch.Tensor) and t.dtype == data.dtype and t.device.type == "cpu"
        for t in tensors
    )


def _check_state_dims(module: torch.nn.RNNBase, states: list, batched: bool) -> None:
    """torch's checks (and messages) of the states' number of dimensions."""
    want = 3 if batched else 2
    kind = "batched 3-D" if batched else "unbatched 2-D"
    if isinstance(module, torch.nn.LSTM):
        if states[0].dim() != want or states[1].dim() != want:
            raise RuntimeError(
                f"For {kind} input, hx and cx should also be {want}-D but got "
                f"({states[0].dim()}-D, {states[1].dim()}-D) tensors"
            )
    elif states[0].dim() != want:
        raise RuntimeError(
            f"For {kind} input, hx should also be {want}-D but got {states[0].dim()}-D tensor"
        )


def _check_state_sizes(module: torch.nn.RNNBase, states: list, expected: list) -> None:
    """torch's check (and message) of the states' shapes: ``expected`` (h's, then c's),
    (L*D, B, R) and (L*D, B, H)."""
    if isinstance(module, torch.nn.LSTM):
        messages = ["Expected hidden[0] size {}, got {}", "Expected hidden[1] size {}, got {}"]
    else:
        messages = ["Expected hidden size {}, got {}"]
    for state, shape, message in zip(states, expected, messages):
        module.check_hidden_size(state, shape, message)


def _check_batch_sizes(batch_sizes: torch.Tensor, rows: int, batch: int) -> None:
    """A PackedSequence's batch_sizes (T,): non-increasing, from ``batch`` down to >= 1,
    summing to the packed rows (torch's pack_padded_sequence always makes them so)."""
    if batch_sizes.dim() != 1 or batch_sizes.dtype != torch.int64 or batch_sizes.numel() < 1:
        raise ValueError(
            "PackedSequence.batch_sizes must be a non-empty 1-D int64 tensor, got "
            f"shape {tuple(batch_sizes.shape)} dtype {batch_sizes.dtype}"
        )
    sizes = batch_sizes.tolist()
    if sizes[0] != batch or sizes[-1] < 1 or any(a < b for a, b in zip(sizes, sizes[1:])):
        raise ValueError(
            f"PackedSequence.batch_sizes must be non-increasing from the batch size {batch} "
            f"down to at least 1, got {sizes}"
        )
    if sum(sizes) != rows:
        raise ValueError(
            f"PackedSequence.batch_sizes sum to {sum(sizes)}, but the packed data has {rows} rows"
        )


def _packed_layout(batch_sizes: torch.Tensor, rows: int, batch: int):
    """Where each packed row sits in the padded (T*B) rows, and the sequence lengths.

    Row n of the packed data is step t of sorted sequence b (b < batch_sizes[t]); it goes
    to padded row t*B + b. Returns (index (N,) int64, lengths (B,) int64, sorted order).
    """
    steps = batch_sizes.shape[0]
    step_of_row = torch.repeat_interleave(torch.arange(steps), batch_sizes, output_size=rows)
    first_row = torch.cumsum(batch_sizes, 0) - batch_sizes  # (T,) first row of step t
    index = step_of_row * batch + (torch.arange(rows) - first_row[step_of_row])
    lengths = (batch_sizes.unsqueeze(0) > torch.arange(batch).unsqueeze(1)).sum(1)
    return index, lengths


def _permute(state: torch.Tensor, order: torch.Tensor | None) -> torch.Tensor:
    """state (L*D, B, F) with its sequences in ``order`` (torch's permute_hidden)."""
    return state if order is None else state.index_select(1, order)


def _dropout_masks(module: torch.nn.RNNBase, shape: tuple, like: torch.Tensor) -> list:
    """L-1 masks (T, B, D*R) with inverted scaling, drawn from torch's generator, for the
    outputs of every layer but the last (torch's semantics) in training mode."""
    p = float(module.dropout)
    if not module.training or p == 0 or module.num_layers == 1:
        return []
    if p == 1:
        return [like.new_zeros(shape) for _ in range(module.num_layers - 1)]
    keep = like.new_full(shape, 1.0 - p)
    return [torch.bernoulli(keep) / (1.0 - p) for _ in range(module.num_layers - 1)]


class _Bridge:
    """The shared forward of the three classes (placed before torch's class in the MRO)."""

    def _rnnkit_mode(self) -> str:
        raise NotImplementedError

    def forward(self, input, hx=None):
        if not runs_natively(self, input, hx):
            return super().forward(input, hx)
        return _native_forward(self, input, hx)


def _native_forward(module, input, hx):
    """torch's forward of ``module`` on the core: input (T, B, I), (B, T, I) with
    batch_first, (T, I) unbatched, or a PackedSequence; states h (L*D, B, R) and an LSTM's
    c (L*D, B, H), R = proj_size or H (out is D*R wide). Checks as torch does, brings the
    input to time-major (T, B, I) (a PackedSequence into padded rows in its sorted order,
    with its lengths), runs ``rnnkit::stack_forward`` and returns torch's output
    structure."""
    is_lstm = isinstance(module, torch.nn.LSTM)
    D = 2 if module.bidirectional else 1
    LD, H = module.num_layers * D, module.hidden_size
    R = module.proj_size or H  # width of h and of each direction's output
    states = _states(module, hx)
    packed = isinstance(input, PackedSequence)
    unbatched = False
    if packed:
        data, batch_sizes, sorted_indices, unsorted_indices = input
        module.check_input(data, batch_sizes)
        # B from the permutation's shape keeps torch.compile free of data-dependent sizes.
        B = int(batch_sizes[0]) if sorted_indices is None else sorted_indices.shape[0]
        if not torch.compiler.is_compiling():
            _check_batch_sizes(batch_sizes, data.shape[0], B)
        _check_state_sizes(module, states, [(LD, B, R), (LD, B, H)])
        index, lengths = _packed_layout(batch_sizes, data.shape[0], B)
        T = batch_sizes.shape[0]
        # Every sequence T long: the packed rows are the padded rows, in order (no copy).
        # Eager only: compiled, B may be a data-dependent size that cannot be compared.
        full = not torch.compiler.is_compiling() and data.shape[0] == T * B
        if full:
            x = data.reshape(T, B, data.shape[1])
        else:
            x = data.new_zeros((T * B, data.shape[1])).index_copy(0, index, data)
            x = x.view(T, B, data.shape[1])
        states = [_permute(s, sorted_indices) for s in states]
    else:
        unbatched = input.dim() == 2
        if states:
            _check_state_dims(module, states, batched=not unbatched)
        x = input.unsqueeze(0 if module.batch_first else 1) if unbatched else input
        states = [s.unsqueeze(1) for s in states] if unbatched else states
        module.check_input(x, None)
        x = x.transpose(0, 1) if module.batch_first else x
        T, B = x.shape[0], x.shape[1]
        _check_state_sizes(module, states, [(LD, B, R), (LD, B, H)])
        lengths = sorted_indices = unsorted_indices = None
    if not states:
        states = [x.new_zeros(shape) for shape in [(LD, B, R), (LD, B, H)][: 2 if is_lstm else 1]]

    weights = [getattr(module, name) for name in module._flat_weights_names]
    keep_cache = torch.is_grad_enabled() and any(t.requires_grad for t in [x, *states, *weights])
    masks = _dropout_masks(module, (T, B, D * R), x)
    out, h_n, c_n, _handle = torch.ops.rnnkit.stack_forward(
        module._rnnkit_mode(),
        x,
        states[0],
        states[1] if is_lstm else None,
        weights,
        lengths,
        masks,
        D,
        bool(module.bias),
        keep_cache,
    )
    finals = [h_n, c_n] if is_lstm else [h_n]
    if packed:
        out = out.reshape(T * B, D * R)
        out = PackedSequence(
            out if full else out.index_select(0, index),
            batch_sizes,
            sorted_indices,
            unsorted_indices,
        )
        finals = [_permute(s, unsorted_indices) for s in finals]
    else:
        out = out.transpose(0, 1) if module.batch_first else out
        if unbatched:
            out = out.squeeze(0 if module.batch_first else 1)
            finals = [s.squeeze(1) for s in finals]
    return out, (tuple(finals) if is_lstm else finals[0])


class LSTM(_Bridge, torch.nn.LSTM):
    """torch.nn.LSTM running on rnnkit's core (CPU float32/float64, ``proj_size`` included)."""

    def _rnnkit_mode(self) -> str:
        return "lstm"


class GRU(_Bridge, torch.nn.GRU):
    """torch.nn.GRU running on rnnkit's core (CPU float32/float64)."""

    def _rnnkit_mode(self) -> str:
        return "gru"


class RNN(_Bridge, torch.nn.RNN):
    """torch.nn.RNN (tanh or relu) running on rnnkit's core (CPU float32/float64)."""

    def _rnnkit_mode(self) -> str:
        return f"rnn_{self.nonlinearity}"
