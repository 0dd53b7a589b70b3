"""The native backend's packed weights of a recurrent module, kept across calls.

Packing W_ih and W_hh for the core's GEMMs reads and writes every weight: at a few rows
per call (one step of streaming) it costs more than the arithmetic. The module keeps one
``_core.PackedStack`` and reuses it while it is current:

- eval mode: while the module's write counter is unchanged. The parameters are
  :class:`rnnkit._parameters.Parameter` arrays, which bump the counter after every NumPy
  write through them or their views (``load_state_dict`` and the optimisers write that
  way); the writes that bypass NumPy are listed there, with ``mark_parameters_changed()``
  for them.
- training mode: the core checksums the weights anyway (for the backward's in-place check)
  and repacks when the checksums differ from the packed ones, whatever wrote them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import _core, _native
from rnnkit._parameters import as_parameter
from rnnkit._validation import check_nbytes


class PackedWeights:
    """Mixin of the recurrent modules: the write counter, the packed weights and the
    eval-mode step that uses them. The host (RecurrentBase) has the attributes below,
    ``_weights()`` and Module's copy protocol."""

    _params: dict[str, np.ndarray]
    _mode: str
    _directions: int
    _batch_first: bool
    _dtype: Any
    _num_layers: int
    _hidden_size: int
    _h_size: int
    _has_cell: bool
    _saved: Any
    _no_saved_reason: str
    _weights: Any  # the host's method: the checked parameter arrays per entry

    def _track_parameter_writes(self) -> None:
        """Makes the parameters Parameter arrays counting their writes in one module-wide
        counter, and drops the packed weights (built at the next native call)."""
        self._stamp = [0]  # bumped after every write into a parameter (see Parameter)
        for name, arr in self._params.items():
            self._params[name] = as_parameter(arr, self._stamp)
        # (_core.PackedStack of the weights, the counter when it was made current), or
        # None; one attribute, so that concurrent eval calls see the pair consistently.
        self._packed: tuple[Any, int] | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        # A copy's parameters are new arrays: they count into the copy's own counter.
        for arr in self._params.values():
            arr._stamp = self._stamp

    def mark_parameters_changed(self) -> None:
        """Tells the module that its parameters were written in a way NumPy cannot see
        (through ``np.asarray(p)``, ``p.flat``, ``memoryview``, ``torch.from_numpy``, C
        code): the next eval-mode call repacks the native backend's copies of the weights.
        Writes through the arrays of ``parameters()`` and their views need no call."""
        self._stamp[0] += 1

    def _packed_weights(self, weights: list[tuple[np.ndarray, ...]], training: bool) -> Any:
        """The native backend's packed weights for this call, made current (see the
        module docstring): repacked here when the write counter moved since they were
        made, except in training, where the core checks their checksums itself."""
        stamp = self._stamp[0]  # read before packing: a write meanwhile repacks next call
        current = self._packed
        if current is None or (current[1] != stamp and not training):
            packed = _core.PackedStack(self._mode, weights, self._directions)
        else:
            packed = current[0]  # in training the core repacks it if the weights changed
        self._packed = (packed, stamp)
        return packed

    def _lean_step(
        self, x: Any, hx: Any, layer_axis: bool, batched_ndim: int, with_out: bool
    ) -> Any:
        """One eval-mode step on the packed weights through the core's lean entry
        (``_core.PackedStack.step``), when it applies: O(1) work here, the checks in C++.

        x as the caller received it: (B, I), or (I,) when its ndim is batched_ndim - 1;
        hx: h or, for the LSTM, a tuple (h, c) (either may be None), each [L,] [B,] H
        (L when layer_axis). Returns (out x.shape[:-1] + (H,) or None unless with_out,
        h_n, c_n or None), or None when the lean entry does not take the call (the packed
        weights are not current, or the arguments are not exactly C-contiguous arrays of
        the module's dtype and shapes, ...): the caller's general path then converts,
        checks and raises."""
        if self._backend_options is not None:
            return None  # the lean entry runs the default cells only (no cell variants)
        current = self._packed
        if current is None or current[1] != self._stamp[0]:
            return None  # the general path repacks
        result = current[0].step(self, x, hx, layer_axis, batched_ndim, with_out)
        if result is not None:
            self._saved = None
            self._no_saved_reason = "the last forward pass ran in eval mode"
        return result

    def _lean_call(self, x: Any, hx: Any) -> Any:
        """An eval-mode call without lengths over one time step (x (1, B, I), (B, 1, I)
        with batch_first, or unbatched (1, I)) through _lean_step: forward's result, or
        None when the lean entry does not take it (then forward's general path runs)."""
        if self._directions != 1 or type(x) is not np.ndarray or x.ndim not in (2, 3):
            return None
        if x.shape[1 if self._batch_first and x.ndim == 3 else 0] != 1:
            return None
        lean = self._lean_step(x, hx, True, 3, True)
        if lean is None:
            return None
        out, h_n, c_n = lean
        return (out, (h_n, c_n)) if self._has_cell else (out, h_n)

    def _eval_step_native(
        self, x: np.ndarray, h0: np.ndarray | None, c0: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One eval-mode time step on the native backend, without the sequence call's
        general path (layouts, lengths, dropout): what a streaming step needs per call.

        x (B, I) of the module's input size, h0 (L, B, R) and c0 (L, B, H) or None (zeros),
        already checked by the caller (any float dtype); R = proj_size or H. Returns out
        (B, R), h_n (L, B, R), c_n (L, B, H) (c_n None without a cell state). The caller
        holds _enter."""
        self._saved = None
        self._no_saved_reason = "the last forward pass ran in eval mode"
        B, dtype = x.shape[0], self._dtype
        stack = (self._num_layers, B, self._hidden_size)
        check_nbytes(
            "the forward pass's buffers", B * (x.shape[1] + 3 * stack[0] * stack[2]), dtype.itemsize
        )
        h_stack = (self._num_layers, B, self._h_size)
        x3 = np.ascontiguousarray(x[None], dtype=dtype)  # (1, B, I)
        h = np.zeros(h_stack, dtype) if h0 is None else np.ascontiguousarray(h0, dtype=dtype)
        c = None
        if self._has_cell:
            c = np.zeros(stack, dtype) if c0 is None else np.ascontiguousarray(c0, dtype=dtype)
        weights = self._weights()
        packed = self._packed_weights(weights, False)
        out, h_n, c_n, _ = _native.stack_forward(
            self._mode, x3, h, c, weights, None, None, False, num_directions=1, packed=packed
        )
        return out[0], h_n, c_n
