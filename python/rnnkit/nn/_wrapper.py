"""``Wrapper``: a layer whose parameters are those of one inner module; ``take_saved``,
how the ``nn`` layers' backward takes what their forward saved.

``Dense`` (a ``Linear``) and ``Recurrent`` (an ``rnnkit.RNN``/``LSTM``/``GRU``) expose their
inner module's parameters under its own names: ``parameters()`` and ``grads`` are the inner
module's dicts themselves, ``load_state_dict`` is the inner module's (so its checks and
its bookkeeping of rewritten weights apply), and ``train``/``eval`` switch the inner
modules too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rnnkit._module import Module


class Wrapper(Module):
    """Base of the layers built around one module that owns the parameters."""

    def __init__(self, inner: Module, *others: Module) -> None:
        """``inner`` owns the parameters; ``others`` (no parameters) follow the mode too."""
        super().__init__(inner.dtype)
        self._inner = inner
        self._others = others
        # The same dict objects: an optimiser reading them sees the inner module's arrays.
        self._params = inner._params
        self.grads = inner.grads
        self.train(inner.training)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """The inner module's ``load_state_dict`` (same names, checks and conversions)."""
        self._inner.load_state_dict(state_dict, strict=strict)

    def train(self, mode: bool = True) -> Module:
        """Training or eval mode for this layer and the modules inside it; returns self."""
        super().train(mode)
        for module in (self._inner, *self._others):
            module.train(self.training)
        return self


def take_saved(module: Module) -> Any:
    """What ``module``'s last training forward saved, taken for its backward (once per
    forward; RuntimeError saying why when there is none)."""
    module._enter(exclusive=True)
    try:
        saved = module._saved_or_raise()
        module._drop_saved("backward was already called for the last forward pass")
        return saved
    finally:
        module._leave()
