"""Let torch.compile trace rnnkit.torch's modules, and only those, without graph breaks.

Dynamo refuses to wrap any instance of torch.nn.RNN/LSTM/GRU (subclasses included) unless
``torch._dynamo.config.allow_rnn`` is true. Setting that flag for the whole process would
also make Dynamo trace torch's own recurrent modules, and torch 2.13 then fails to compile
a training nn.LSTM (Inductor: "expected Tensor() for op: aten.mkldnn_rnn_layer"). So the
flag is turned on only while Dynamo wraps one of our modules: the one place that reads it
(``VariableBuilder.wrap_module``) is wrapped to do that. torch's own modules keep torch's
default behaviour (a graph break, or the user's own setting of the flag).
"""

from __future__ import annotations

import functools
import warnings


def allow_bridge_modules_in_dynamo(bridge_class: type) -> bool:
    """Install the narrow allow_rnn switch for instances of ``bridge_class``; returns
    False (with a warning) where this torch's Dynamo lacks the expected hook."""
    try:
        import torch._dynamo
        from torch._dynamo.variables.builder import VariableBuilder
    except ImportError:
        return False
    original = getattr(VariableBuilder, "wrap_module", None)
    if original is None or not hasattr(torch._dynamo.config, "allow_rnn"):
        warnings.warn(
            "rnnkit.torch: this torch's Dynamo has no VariableBuilder.wrap_module or "
            "allow_rnn; set torch._dynamo.config.allow_rnn = True to compile rnnkit modules",
            stacklevel=2,
        )
        return False
    if getattr(original, "_rnnkit_bridge", False):
        return True

    @functools.wraps(original)
    def wrap_module(self, value):
        if isinstance(value, bridge_class) and not torch._dynamo.config.allow_rnn:
            with torch._dynamo.config.patch(allow_rnn=True):
                return original(self, value)
        return original(self, value)

    wrap_module._rnnkit_bridge = True
    VariableBuilder.wrap_module = wrap_module
    return True
