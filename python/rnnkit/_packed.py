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

from rnnkit import _core
from rnnkit._parameters import as_parameter


class PackedWeights:
    """Mixin of the recurrent modules: the write counter and the packed weights. The host
    has ``_params``, ``_mode``, ``_directions`` and Module's copy protocol."""

    _params: dict[str, np.ndarray]
    _mode: str
    _directions: int

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
