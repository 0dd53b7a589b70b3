"""The core as two torch custom operators, ``rnnkit::stack_forward`` and ``rnnkit::stack_backward``.

Both wrap the core (``rnnkit._native``) and share tensors with it without copies
(``Tensor.numpy()`` and ``torch.from_numpy`` share memory) where the tensor is already
C-contiguous. Each has a fake implementation (shapes only, for torch.compile) and the
forward has an autograd formula that calls the backward operator.

What the backward needs. The core's training forward returns an opaque ``StackCache`` (the
gates and states it saved), and an operator may only return tensors. The forward operator
therefore returns a one-byte "handle" tensor whose storage is a NumPy array that owns the
cache: the cache lives exactly as long as the handle (autograd saves the handle for the
backward, and frees it with the graph), and the backward operator finds the cache from the
handle's address. The other choice, running the forward again inside the backward, costs
one more forward per training step; keeping the cache costs nothing.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence

import numpy as np
import torch

from rnnkit import _core, _native

__all__ = ["stack_forward", "stack_backward", "sync_threads"]


class _CacheHolder(np.ndarray):
    """A one-byte array that owns a StackCache (attribute ``cache``) and the tensors it was
    computed from (attribute ``inputs``); a handle's storage."""


# Address of a holder's byte -> the holder, while some tensor still shares its storage.
_HOLDERS: weakref.WeakValueDictionary[int, _CacheHolder] = weakref.WeakValueDictionary()


def _handle_for(cache: object, inputs: list) -> torch.Tensor:
    """A uint8 tensor (1,), value 0, that keeps ``cache`` alive as long as its storage."""
    holder = np.zeros(1, dtype=np.uint8).view(_CacheHolder)
    holder.cache = cache
    holder.inputs = [None if t is None else t.detach() for t in inputs]
    _HOLDERS[holder.ctypes.data] = holder
    return torch.from_numpy(holder)


def _same(saved: torch.Tensor | None, given: torch.Tensor | None) -> bool:
    """Whether ``given`` holds what ``saved`` held: the same memory, or equal values (a
    compiled backward may compute an input again, e.g. zeros or the padded input, rather
    than keep it; the core is deterministic, so equal inputs give the same cache)."""
    if saved is None or given is None:
        return saved is given
    if saved.shape != given.shape or saved.dtype != given.dtype:
        return False
    if saved.data_ptr() == given.data_ptr() and saved.stride() == given.stride():
        return True
    return bool(torch.equal(saved, given))


def _saved_cache(handle: torch.Tensor, inputs: list) -> object | None:
    """The cache the handle owns if it was computed from ``inputs``, else None."""
    holder = _HOLDERS.get(handle.data_ptr())
    if holder is None or len(holder.inputs) != len(inputs):
        return None
    if not all(_same(a, b) for a, b in zip(holder.inputs, inputs)):
        return None
    return holder.cache


# Threads: the bridge follows torch.get_num_threads() until the user sets rnnkit's count
# (rnnkit.set_num_threads). A count other than the one the bridge last wrote (or, before
# the first call, other than the core's default) means the user set it.
_thread_state = {"written": None, "user_set": False}


def _default_thread_count() -> int:
    """The count the core starts with when nobody sets one (threads.h): OMP_NUM_THREADS,
    else the cores the process may use; 1 in a build without the thread pool."""
    if not _core.have_threads():
        return 1
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if first.isdigit() and int(first) > 0:
        n = int(first)
    else:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(n or 1, _core.MAX_THREADS)


def sync_threads() -> None:
    """Give the core torch's thread count, unless the user set rnnkit's own."""
    state = _thread_state
    if state["user_set"]:
        return
    current = _core.get_num_threads()
    expected = _default_thread_count() if state["written"] is None else state["written"]
    if current != expected:
        state["user_set"] = True
        return
    wanted = min(max(torch.get_num_threads(), 1), _core.MAX_THREADS)
    if current != wanted:
        _core.set_num_threads(wanted)
    state["written"] = wanted


def _array(t: torch.Tensor) -> np.ndarray:
    """The tensor's memory as a C-contiguous array (a copy only where it is not already)."""
    return t.detach().resolve_conj().resolve_neg().contiguous().numpy()


def _cells(
    weights: Sequence[torch.Tensor],
    bias: bool,
    num_cells: int,
    as_array: Callable[[torch.Tensor], np.ndarray] = _array,
) -> list[tuple]:
    """The flat parameter list (torch's order: w_ih, w_hh[, b_ih, b_hh][, w_hr] per layer
    and direction) as the core's (w_ih, w_hh, b_ih, b_hh[, w_hr]) tuples, ``num_cells`` =
    L*D of them: an LSTM with a projection has one weight more per cell, w_hr. Each
    tensor goes through ``as_array`` (``torch.Tensor.numpy`` for fresh contiguous ones)."""
    per_cell = len(weights) // num_cells
    projected = per_cell == (4 if bias else 2) + 1
    cells = []
    for i in range(0, len(weights), per_cell):
        arrays = [as_array(w) for w in weights[i : i + per_cell]]
        cell = tuple(arrays[:4]) if bias else (arrays[0], arrays[1], None, None)
        cells.append(cell + (arrays[-1],) if projected else cell)
    return cells


def _empty(like: torch.Tensor) -> torch.Tensor:
    """The placeholder for an absent cell state (an operator returns tensors only)."""
    return like.new_empty((0,))


def _run_forward(mode, x, h0, c0, weights, lengths, masks, num_directions, bias, training):
    """The core's stack_forward on the tensors' memory: (out, h_n, c_n | None, cache)."""
    sync_threads()
    return _native.stack_forward(
        mode,
        _array(x),
        _array(h0),
        None if c0 is None else _array(c0),
        _cells(weights, bias, h0.shape[0]),
        None if lengths is None else _array(lengths.to(torch.int64)),
        [_array(m) for m in masks] or None,
        training,
        num_directions=num_directions,
    )


@torch.library.custom_op("rnnkit::stack_forward", mutates_args=())
def stack_forward(
    mode: str,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor | None,
    weights: Sequence[torch.Tensor],
    lengths: torch.Tensor | None,
    dropout_masks: Sequence[torch.Tensor],
    num_directions: int,
    bias: bool,
    keep_cache: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward of an L-layer, D-direction stack on the core.

    mode: "lstm", "gru", "rnn_tanh" or "rnn_relu"; x (T, B, I); h0 (L*D, B, R), c0
    (L*D, B, H) (c0 for "lstm", else None); weights: torch's flat parameter list (w_ih,
    w_hh[, b_ih, b_hh][, w_hr]) per layer and direction, ``bias`` saying which, w_hr (P, H)
    for an LSTM with a projection (then R = P, else R = H); lengths int64 (B,) in 1..T or
    None; dropout_masks: L-1 tensors (T, B, D*R), already scaled, or none. Returns (out
    (T, B, D*R), h_n (L*D, B, R), c_n (L*D, B, H) or (0,), handle uint8 (1,)); with
    ``keep_cache`` the handle owns what the backward needs.
    """
    out, h_n, c_n, cache = _run_forward(
        mode, x, h0, c0, weights, lengths, dropout_masks, num_directions, bias, keep_cache
    )
    out_t, h_n_t = torch.from_numpy(out), torch.from_numpy(h_n)
    c_n_t = _empty(x) if c_n is None else torch.from_numpy(c_n)
    if keep_cache:
        handle = _handle_for(cache, [x, h0, c0, *weights, lengths, *dropout_masks])
    else:
        handle = torch.zeros(1, dtype=torch.uint8)
    return out_t, h_n_t, c_n_t, handle


@stack_forward.register_fake
def _(mode, x, h0, c0, weights, lengths, dropout_masks, num_directions, bias, keep_cache):
    T, B = x.shape[0], x.shape[1]
    hidden = h0.shape[2]
    out = x.new_empty((T, B, num_directions * hidden))
    c_n = _empty(x) if c0 is None else x.new_empty(c0.shape)
    return out, x.new_empty(h0.shape), c_n, x.new_empty((1,), dtype=torch.uint8)


# How many backwards had to run the forward again (no live cache for their handle).
recomputed_forwards = 0


@torch.library.custom_op("rnnkit::stack_backward", mutates_args=())
def stack_backward(
    mode: str,
    handle: torch.Tensor,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor | None,
    weights: Sequence[torch.Tensor],
    lengths: torch.Tensor | None,
    dropout_masks: Sequence[torch.Tensor],
    num_directions: int,
    bias: bool,
    dout: torch.Tensor,
    dh_n: torch.Tensor,
    dc_n: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Backward of ``stack_forward``: the forward's arguments and handle, then dout
    (T, B, D*R), dh_n (L*D, B, R), dc_n (L*D, B, H) (dc_n for "lstm", else None).

    Uses the cache the handle owns when it was computed from these tensors (the same memory
    or equal values); otherwise (a copied handle, or a forward run without ``keep_cache``)
    it runs the forward again in training mode first: the core is deterministic, so the
    result is the same. Returns
    (dx (T, B, I), dh0 (L*D, B, R), dc0 (L*D, B, H) or (0,), the gradients of ``weights``
    in their order).
    """
    global recomputed_forwards
    cache = _saved_cache(handle, [x, h0, c0, *weights, lengths, *dropout_masks])
    if cache is None:
        recomputed_forwards += 1
        args = (mode, x, h0, c0, weights, lengths, dropout_masks, num_directions, bias, True)
        cache = _run_forward(*args)[3]
    sync_threads()
    # The core writes the parameter gradients straight into torch-owned storage (no copy):
    # autograd keeps them as .grad and DistributedDataParallel's gloo threads may free
    # them, which for a tensor over a NumPy array needs the GIL (a process group's
    # teardown then deadlocked).
    dweights = [torch.empty(w.shape, dtype=w.dtype) for w in weights]
    dx, dh0, dc0, _ = _native.stack_backward(
        mode,
        cache,
        _array(dout),
        _array(dh_n),
        None if dc_n is None else _array(dc_n),
        _cells(dweights, bias, h0.shape[0], torch.Tensor.numpy),
        add_into_grads=False,
    )
    dc0_t = _empty(x) if dc0 is None else torch.from_numpy(dc0)
    return torch.from_numpy(dx), torch.from_numpy(dh0), dc0_t, dweights


@stack_backward.register_fake
def _(mode, handle, x, h0, c0, weights, lengths, masks, num_directions, bias, dout, dh_n, dc_n):
    # The core returns C-contiguous arrays, whatever the inputs' strides.
    dc0 = _empty(x) if c0 is None else x.new_empty(c0.shape)
    return x.new_empty(x.shape), x.new_empty(h0.shape), dc0, [x.new_empty(w.shape) for w in weights]


def _setup_context(ctx, inputs, output) -> None:
    mode, x, h0, c0, weights, lengths, masks, num_directions, bias, _keep_cache = inputs
    ctx.args = (mode, num_directions, bias)
    ctx.has_cell_state = c0 is not None
    ctx.num_weights, ctx.num_masks = len(weights), len(masks)
    ctx.has_lengths = lengths is not None
    ctx.out_shape = output[0].shape  # (T, B, D*R)
    ctx.state_shape = output[1].shape  # (L*D, B, R)
    ctx.cell_state_shape = output[2].shape  # (L*D, B, H), or (0,) without a cell state
    saved = [output[3], x, h0, *weights, *masks]
    saved += [c0] if c0 is not None else []
    saved += [lengths] if lengths is not None else []
    ctx.save_for_backward(*saved)


def _backward(ctx, dout, dh_n, dc_n, _dhandle):
    saved = list(ctx.saved_tensors)
    handle, x, h0 = saved[:3]
    weights = saved[3 : 3 + ctx.num_weights]
    rest = saved[3 + ctx.num_weights :]
    masks, rest = rest[: ctx.num_masks], rest[ctx.num_masks :]
    c0 = rest.pop(0) if ctx.has_cell_state else None
    lengths = rest.pop(0) if ctx.has_lengths else None
    # Outputs that took no part in the loss may come without a gradient.
    dout = x.new_zeros(ctx.out_shape) if dout is None else dout
    dh_n = x.new_zeros(ctx.state_shape) if dh_n is None else dh_n
    if ctx.has_cell_state and dc_n is None:
        dc_n = x.new_zeros(ctx.cell_state_shape)
    mode, num_directions, bias = ctx.args
    dx, dh0, dc0, dweights = torch.ops.rnnkit.stack_backward(
        mode,
        handle,
        x,
        h0,
        c0,
        weights,
        lengths,
        masks,
        num_directions,
        bias,
        dout,
        dh_n,
        dc_n if ctx.has_cell_state else None,
    )
    dc0 = dc0 if ctx.has_cell_state else None
    return None, dx, dh0, dc0, list(dweights), None, [None] * ctx.num_masks, None, None, None


stack_forward.register_autograd(_backward, setup_context=_setup_context)


def _backward_of_backward(ctx, *grads):
    raise RuntimeError(
        "rnnkit::stack_backward has no derivative: rnnkit.torch does not support double "
        "backward (create_graph=True through an rnnkit module); use torch's own module"
    )


def _setup_backward_context(ctx, inputs, output) -> None:
    return None


stack_backward.register_autograd(_backward_of_backward, setup_context=_setup_backward_context)
