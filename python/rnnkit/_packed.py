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
