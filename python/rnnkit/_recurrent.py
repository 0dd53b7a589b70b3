"""The base of the public recurrent modules: configuration, parameters, and the driving of
a backend's ``stack_forward`` / ``stack_backward`` from the user's arrays.

The numerical work is done by a backend implementing those two functions:
``rnnkit.reference`` (NumPy) or ``rnnkit._native`` (the C++ core). Backends only ever see
time-major, C-contiguous arrays of one dtype.

Parameters are the live arrays of ``parameters()``; in-place edits (by an optimiser, say)
are seen by the next call. The native backend keeps the weights packed between calls
(``rnnkit._packed`` says when they are repacked).
"""

from __future__ import annotations

import abc
import inspect
import math
from typing import Any

import numpy as np

from rnnkit import _layout
from rnnkit._cell_options import check_options
from rnnkit._cells import cell_kind
from rnnkit._module import Module
from rnnkit._packed import PackedWeights
from rnnkit._parameters import (
    check_grads,
    check_grads_do_not_overlap,
    check_parameter_memory,
    entry_names,
    parameter_shapes,
)
from rnnkit._validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_dropout,
    check_dtype,
    check_lengths,
    check_nbytes,
    check_positive_int,
    check_seed,
    refuse_arguments,
    refuse_packed_sequence,
)
from rnnkit.activations import Activation

ArrayLike = Any  # anything np.asarray accepts (NumPy arrays, nested lists, CPU tensors)
# A recurrent state as the user sees it: h for RNN/GRU, (h, c) for LSTM.
State = np.ndarray | tuple[np.ndarray, np.ndarray]

BACKENDS = ("native", "numpy")


def _load_backend(name: str) -> Any:
    """The module implementing ``stack_forward`` / ``stack_backward`` for ``name`` (imported
    on each call, which costs a dict lookup once it is loaded)."""
    if name == "numpy":
        from rnnkit import reference

        return reference
    try:
        from rnnkit import _native
    except ImportError as exc:
        raise RuntimeError(
            f"backend='native' is not built yet ({exc}); use backend='numpy'"
        ) from exc
    return _native


class RecurrentBase(PackedWeights, Module):
    """Multi-layer, optionally bidirectional recurrent network over a whole sequence.

    Its constructor's arguments are those every public module takes (LSTM takes exactly
    these); a subclass sets its own arguments before calling it and names its cell kind
    with ``_cell_mode`` (see ``rnnkit._cells``).
    """

    # The recurrent modules' wording of backward without a saved forward.
    _NO_SAVED_MESSAGE = "backward needs a preceding forward pass in training mode: {reason}"
    # P, an LSTM's projection size (LSTM sets it before calling __init__); 0: none.
    _proj_size = 0
    _NOT_COPIED = {**Module._NOT_COPIED, "_grads_checked": None, "_packed": None}
    # The LSTM's own options (rnnkit.LSTM sets them before calling __init__).
    _peepholes = False
    _input_forget = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: str | np.dtype = "float32",
        backend: str = "native",
        seed: int | None = None,
        *,
        activations: Any = None,
        clip: float | None = None,
        reverse: bool = False,
        **unknown: Any,
    ) -> None:
        if unknown:
            self._refuse_arguments(unknown)
        self._input_size = check_positive_int("input_size", input_size)
        self._hidden_size = check_positive_int("hidden_size", hidden_size)
        if self._proj_size >= self._hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size={hidden_size} (0: no projection), "
                f"got {self._proj_size}"
            )
        self._num_layers = check_positive_int("num_layers", num_layers)
        self._bias = check_bool("bias", bias)
        self._batch_first = check_bool("batch_first", batch_first)
        self._dropout = check_dropout(dropout)
        self._bidirectional = check_bool("bidirectional", bidirectional)
        super().__init__(check_dtype(dtype))
        self._backend = check_choice("backend", backend, BACKENDS)
        self._seed = check_seed(seed)
        self._mode = self._cell_mode()
        kind = cell_kind(self._mode)
        self._gates, self._has_cell = kind.gates, kind.has_cell_state
        self._directions = 2 if self._bidirectional else 1
        self._options = check_options(
            self._mode,
            type(self).__name__,
            self._bidirectional,
            activations,
            clip,
            reverse,
            self._peepholes,
            self._input_forget,
        )
        # What the backends are given: None where the options change nothing.
        self._backend_options = None if self._options.is_default(self._mode) else self._options
        # States: h (L*D, B, R), c (L*D, B, H), with B filled in; h and out are R = (P or
        # H) wide per direction, and messages name the argument that sets R.
        L, D, H, P = self._num_layers, self._directions, self._hidden_size, self._proj_size
        self._h_size, self._h_name = (P, "proj_size") if P else (H, "hidden_size")
        check_parameter_memory(
            self._gates, self._input_size, H, L, D, self._bias, self._dtype.itemsize, P
        )
        # Fixed by the configuration, which never changes: kept for the per-call checks.
        self._names = self._entry_names(L, D, self._bias)
        self._shapes = parameter_shapes(self._gates, self._input_size, H, D, self._names, P)

        # One generator for the module's life: parameters first (in PyTorch's order), then
        # the dropout masks of each training forward, so both are reproducible from `seed`.
        self._rng = np.random.default_rng(self._seed)
        bound = 1.0 / math.sqrt(H)
        for name, shape in self._shapes.items():
            self._add_parameter(name, self._rng.uniform(-bound, bound, size=shape))
        self._track_parameter_writes()
        # The parameter arrays never change identity (load_state_dict copies into them), so
        # the list handed to the backend and the per-call checks are built once.
        p = self._params
        self._weight_list = [
            tuple(p[name] if name else None for name in names) for names in self._names
        ]
        self._weight_checks = tuple((name, p[name], shape) for name, shape in self._shapes.items())
        # The grads arrays last found not to overlap (see _grad_arrays), or None.
        self._grads_checked: tuple[np.ndarray, ...] | None = None

    # -- configuration ------------------------------------------------------------------

    @abc.abstractmethod
    def _cell_mode(self) -> str:
        """The cell kind this module runs, from its own arguments ("lstm", "gru", ...)."""

    def _entry_names(self, num_layers: int, directions: int, bias: bool) -> list[Any]:
        """Parameter names per entry of the backends' weight list (PyTorch's)."""
        return entry_names(num_layers, directions, bias, self._proj_size > 0, self._peepholes)

    # Arguments a subclass takes besides the ones of RecurrentBase.__init__.
    _OWN_ARGUMENTS: tuple[str, ...] = ()

    def _refuse_arguments(self, unknown: dict[str, Any]) -> None:
        """TypeError naming the public class and the first unknown keyword argument."""
        mro = type(self).__mro__
        public = next((c for c in mro if c.__module__ == "rnnkit.modules"), type(self))
        params = inspect.signature(RecurrentBase.__init__).parameters.values()
        taken = [p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD]
        refuse_arguments(public.__name__, unknown, taken + list(self._OWN_ARGUMENTS))

    @property
    def mode(self) -> str:
        """The backends' cell name ("lstm", "gru", "rnn_tanh", ...)."""
        return self._mode

    input_size = property(lambda self: self._input_size, doc="I: features per step of x.")
    hidden_size = property(lambda self: self._hidden_size, doc="H: features of each state.")
    num_layers = property(lambda self: self._num_layers, doc="L: stacked layers.")
    bias = property(lambda self: self._bias, doc="Whether the layers have bias vectors.")
    batch_first = property(lambda self: self._batch_first, doc="x and out are (B, T, F).")
    dropout = property(lambda self: self._dropout, doc="Dropout between layers in training.")
    bidirectional = property(lambda self: self._bidirectional, doc="D = 2 when True.")
    num_directions = property(lambda self: self._directions, doc="D: 1, or 2 when bidirectional.")
    seed = property(lambda self: self._seed, doc="The seed of parameters and dropout, or None.")
    clip = property(lambda self: self._options.clip, doc="Bound of the gate pre-activations.")
    reverse = property(lambda self: self._options.reverse, doc="The one direction runs backwards.")

    @property
    def activations(self) -> tuple[Activation, ...]:
        """The cell's activation functions in ONNX's order (f, g, h), complete."""
        return self._options.activations

    @property
    def backend(self) -> str:
        """ "native" (the C++ core) or "numpy" (the reference); may be reassigned."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = check_choice("backend", value, BACKENDS)

    def extra_repr(self) -> str:
        """The constructor arguments that differ from their defaults, torch-style."""
        parts = [str(self._input_size), str(self._hidden_size)]
        if self._num_layers != 1:
            parts.append(f"num_layers={self._num_layers}")
        if not self._bias:
            parts.append("bias=False")
        if self._batch_first:
            parts.append("batch_first=True")
        if self._dropout:
            parts.append(f"dropout={self._dropout}")
        if self._bidirectional:
            parts.append("bidirectional=True")
        parts.extend(self._extra_repr_parts())
        parts.extend(self._options.repr_parts(self._mode))
        parts.append(f"dtype='{self._dtype.name}'")
        parts.append(f"backend='{self._backend}'")
        return ", ".join(parts)

    def _extra_repr_parts(self) -> list[str]:
        return []

    # -- the arrays handed to the backend ---------------------------------------------------

    def _weights(self) -> list[tuple[np.ndarray, ...]]:
        """The live parameter arrays in the backends' layout (list of L*D tuples).

        ``parameters()`` hands these arrays out, so each is checked first: one reshaped or
        retyped in place (``p.shape = ...``, ``p.dtype = ...``) would otherwise be broadcast
        or read as garbage by the NumPy backend, without an error.
        """
        dtype = self._dtype
        for name, arr, shape in self._weight_checks:
            if arr.shape != shape or arr.dtype != dtype or not arr.flags.c_contiguous:
                raise ValueError(
                    f"parameter {name!r} was changed in place to shape {arr.shape}, dtype "
                    f"{arr.dtype}; it must stay a C-contiguous {shape} {dtype} array "
                    f"(assign values with p[...] = ..., or use load_state_dict)"
                )
        return self._weight_list

    def _grad_arrays(self) -> list[tuple[np.ndarray | None, ...]]:
        """The arrays of ``self.grads`` in the backends' layout (list of L*D tuples), for
        the backend to add into, each checked first (see ``check_grads``)."""
        g = self.grads
        arrays = check_grads(g, self._shapes, self._dtype)
        # Overlaps are looked for only when the arrays are not the ones checked last time
        # (an array's memory never moves): the check costs microseconds, which a step at
        # B = 1 would notice.
        checked = self._grads_checked
        if checked is None or any(a is not b for a, b in zip(arrays, checked)):
            check_grads_do_not_overlap(g, self._shapes)
            self._grads_checked = arrays
        return [tuple(g[name] if name else None for name in names) for names in self._names]

    def _dropout_masks(self, T: int, B: int) -> list[np.ndarray] | None:
        """L-1 inverted-dropout masks (T, B, D*R): 0 or 1/(1-p); None when not applied."""
        if not self.training or self._dropout == 0.0 or self._num_layers == 1:
            return None
        p = self._dropout
        scale = self._dtype.type(1.0 / (1.0 - p))
        shape = (T, B, self._directions * self._h_size)
        return [
            np.where(self._rng.random(shape) >= p, scale, self._dtype.type(0))
            for _ in range(self._num_layers - 1)
        ]

    # -- forward and backward ---------------------------------------------------------------

    def __call__(
        self, x: ArrayLike, hx: Any = None, lengths: ArrayLike | None = None
    ) -> tuple[np.ndarray, State]:
        return self.forward(x, hx, lengths)

    def forward(
        self, x: ArrayLike, hx: Any = None, lengths: ArrayLike | None = None
    ) -> tuple[np.ndarray, State]:
        """Run the network over a whole sequence.

        x: (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I). T and B must be
            >= 1 (an empty sequence or batch raises ValueError). Floating inputs of another
            precision are converted to the module's dtype.
        hx: LSTM: a tuple (h0, c0), either may be None; RNN/GRU: h0 or None. Each state is
            (L*D, B, H), or (L*D, H) for unbatched x; None means zeros. With proj_size P
            h0 is (L*D, B, P) (c0 stays H wide).
        lengths: optional integers (B,), each in 1..T: sequence b uses steps
            0..lengths[b]-1 (out is zero past it; h_n is its state at its last step).

        Returns out (T, B, D*H) (or (B, T, D*H) with batch_first, (T, D*H) unbatched) and
        (h_n, c_n) for LSTM / h_n otherwise, each (L*D, B, H) (or (L*D, H) unbatched); with
        proj_size P, out and h_n are P wide instead of H.
        """
        training = self.training
        if not training and lengths is None and self._backend == "native":
            lean = self._lean_call(x, hx)  # T = 1 on the packed weights (rnnkit._packed)
            if lean is not None:
                return lean
        self._enter(exclusive=training)
        try:
            return self._forward(x, hx, lengths, training)
        finally:
            self._leave()

    def _forward(
        self,
        x: ArrayLike,
        hx: Any,
        lengths: Any,
        training: bool,
        batch_first: bool | None = None,
        save: bool = True,
    ) -> Any:
        """forward's work. batch_first: x's layout (None: the module's); save: whether a
        training call keeps what backward needs (dropout applies in training either way)."""
        # Whatever an earlier forward saved is stale from here on, even if this one fails.
        self._saved = None
        self._no_saved_reason = "the last forward pass did not complete"
        if not isinstance(x, np.ndarray):
            refuse_packed_sequence(type(self).__name__, x)
        batch_first = self._batch_first if batch_first is None else batch_first
        arr, unbatched = _layout.input_to_time_major(as_float_array("x", x), batch_first)
        T, B, n_in = arr.shape
        if n_in != self._input_size:
            raise ValueError(
                f"x must have input_size={self._input_size} features in its last dimension, "
                f"got shape {np.shape(x)}"
            )
        if T == 0 or B == 0:
            raise ValueError(
                f"x must have at least one time step and one sequence, got shape {np.shape(x)}"
            )
        L, D, H, dtype = self._num_layers, self._directions, self._hidden_size, self._dtype
        R = self._h_size  # width of h and of each direction's output
        # Checked before any copy: the converted x, the output and, when training, roughly
        # what a backend keeps per layer and direction (gate values and states per step)
        # plus the dropout masks. x may be a zero-stride view far larger than its memory.
        # Cell options keep the pre-activations too (and the LSTM's c_t beside them).
        n_buffer = T * B * (n_in + D * R)
        if training:
            # Roughly: the gates, h_{t-1} and one more (T, B, H) state (the LSTM's c, the
            # GRU's h W_hn^T + b_hn or r * h); + o*tanh(c) if projected.
            kept = self._gates + 2 + (1 if self._proj_size else 0)
            if self._backend_options is not None:
                kept += self._gates + (1 if self._has_cell else 0)
            n_buffer += L * D * T * B * kept * H + (L - 1) * T * B * D * R
        check_nbytes("the forward pass's buffers", n_buffer, dtype.itemsize)

        x_tm = np.ascontiguousarray(arr, dtype=dtype)  # (T, B, I)
        stack = (L * D, B, R)
        cell_stack = (L * D, B, H)
        h0_in, c0_in = _layout.split_state(
            "hx", hx, ("h0", "c0"), type(self).__name__, self._has_cell
        )
        # States (L*D, B, H); zeros for None (made here: a call less on the common path).
        h0 = (
            np.zeros(stack, dtype)
            if h0_in is None
            else _layout.state_to_stack("h0", h0_in, stack, unbatched, dtype, self._h_name)
        )
        c0 = None
        if self._has_cell:
            c0 = (
                np.zeros(cell_stack, dtype)
                if c0_in is None
                else _layout.state_to_stack("c0", c0_in, cell_stack, unbatched, dtype)
            )
        lens = None if lengths is None else check_lengths(lengths, T, B, unbatched)  # (B,) int64

        masks = self._dropout_masks(T, B) if training else None  # L-1 arrays (T, B, D*H)
        weights = self._weights()
        backend = _load_backend(self._backend)
        keep = training and save  # whether the backend keeps a cache for backward
        # The native backend also takes the weights' packed copies (rnnkit._packed).
        extra = {"packed": self._packed_weights(weights, keep)} if self._backend == "native" else {}
        out, h_n, c_n, cache = backend.stack_forward(
            self._mode,
            x_tm,
            h0,
            c0,
            weights,
            lens,
            masks,
            keep,
            num_directions=D,
            options=self._backend_options,
            **extra,
        )
        if keep:
            self._saved = (cache, T, B, unbatched, batch_first)
        elif training:
            self._no_saved_reason = "the last call was step(), which keeps nothing for backward"
        else:
            self._no_saved_reason = "the last forward pass ran in eval mode"

        if unbatched or batch_first:
            out = _layout.to_user_layout(out, unbatched, batch_first)
        if unbatched:
            h_n = _layout.state_to_user(h_n, unbatched)
            c_n = None if c_n is None else _layout.state_to_user(c_n, unbatched)
        return (out, (h_n, c_n)) if self._has_cell else (out, h_n)

    def backward(self, grad_out: ArrayLike, grad_state: Any = None) -> tuple[np.ndarray, State]:
        """Backpropagate through the last training-mode forward pass.

        grad_out: gradient of the loss w.r.t. ``out``, in out's layout.
        grad_state: LSTM: a tuple (grad_h_n, grad_c_n), either may be None; RNN/GRU:
            grad_h_n or None. Each in h_n's layout; None means zeros.

        Returns dx (x's layout) and (dh0, dc0) for LSTM / dh0 otherwise (h0's layout).
        Adds the parameter gradients into ``self.grads``. The saved forward state is
        released, so each forward supports exactly one backward. Raises RuntimeError when
        x, a parameter, or for RNN and GRU out, was modified in place since the forward
        (they are referenced, not copied, as torch does: step an optimiser after backward).
        """
        self._enter(exclusive=True)
        try:
            return self._backward(grad_out, grad_state)
        finally:
            self._leave()

    def _backward(self, grad_out: ArrayLike, grad_state: Any) -> Any:
        cache, T, B, unbatched, batch_first = self._saved_or_raise()
        D, H, R, dtype = self._directions, self._hidden_size, self._h_size, self._dtype
        g = _layout.output_to_time_major("grad_out", grad_out, T, B, D * R, unbatched, batch_first)
        dout = np.ascontiguousarray(g, dtype=dtype)  # (T, B, D*R)

        name, has_cell = type(self).__name__, self._has_cell
        gh_in, gc_in = _layout.split_state(
            "grad_state", grad_state, ("grad_h_n", "grad_c_n"), name, has_cell
        )
        stack, cell_stack = (self._num_layers * D, B, R), (self._num_layers * D, B, H)
        dh_n = _layout.state_to_stack("grad_h_n", gh_in, stack, unbatched, dtype, self._h_name)
        dc_n = None
        if has_cell:
            dc_n = _layout.state_to_stack("grad_c_n", gc_in, cell_stack, unbatched, dtype)

        grads = self._grad_arrays()
        self._drop_saved("backward was already called for the last forward pass")
        # The backend adds the parameter gradients into self.grads in place (no fresh
        # arrays the size of the weights).
        backend = _load_backend(self._backend)
        dx, dh0, dc0, _ = backend.stack_backward(self._mode, cache, dout, dh_n, dc_n, grads)

        dx = _layout.to_user_layout(dx, unbatched, batch_first)
        dh0 = _layout.state_to_user(dh0, unbatched)
        if has_cell:
            return dx, (dh0, _layout.state_to_user(dc0, unbatched))
        return dx, dh0
