"""rnnkit.torch: torch.nn.RNN, LSTM and GRU running on rnnkit's C++ core.

``rnnkit.torch.RNN``, ``LSTM`` and ``GRU`` subclass torch's modules (same constructor,
Parameters and state dict) and run CPU float32/float64 forwards and backwards on rnnkit's
core through the custom operators ``torch.ops.rnnkit.stack_forward`` and
``stack_backward`` (autograd, torch.compile and DistributedDataParallel work through
them); everything else runs on torch's own implementation. :func:`patch` turns the torch
modules inside a model into these classes in place.

Importing this module lets Dynamo trace these three classes (it refuses every subclass of
torch.nn.RNN/LSTM/GRU unless ``torch._dynamo.config.allow_rnn`` is set); the flag itself
stays as it is, so torch's own recurrent modules compile as before (see _compile.py).

Importing it also runs rnnkit's large parallel regions opened on the importing thread on
torch's own OpenMP threads (:func:`use_torch_threads`; ``use_torch_threads(False)`` switches back),
so that torch's spinning workers and rnnkit's do not fight for the cores.
"""

from __future__ import annotations

import torch

from rnnkit.torch._compile import allow_bridge_modules_in_dynamo
from rnnkit.torch._modules import GRU, LSTM, RNN, _Bridge, runs_natively
from rnnkit.torch._threads import torch_threads_in_use, use_torch_threads

__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "patch",
    "runs_natively",
    "use_torch_threads",
    "torch_threads_in_use",
]

allow_bridge_modules_in_dynamo(_Bridge)
use_torch_threads(True)  # rnnkit's large teams on torch's OpenMP threads (see _threads.py)

# torch's class -> ours; an exact type match, so subclasses of torch's modules that a user
# wrote (with their own forward) are left alone.
_REPLACEMENTS: dict[type, type] = {
    torch.nn.RNN: RNN,
    torch.nn.LSTM: LSTM,
    torch.nn.GRU: GRU,
}


def patch(model: torch.nn.Module) -> torch.nn.Module:
    """Make every torch.nn.RNN/LSTM/GRU in ``model`` (``model`` itself included) run on
    rnnkit, in place, and return ``model``.

    Only the class changes (``module.__class__``): the Parameter objects, buffers, hooks
    and state dict stay the same, so an optimizer created before, DistributedDataParallel
    and saved state dicts keep working. Exact instances of torch's three classes are
    patched; subclasses of them are left as they are.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"patch: model must be a torch.nn.Module, got {type(model).__name__}")
    for module in model.modules():
        replacement = _REPLACEMENTS.get(type(module))
        if replacement is not None:
            module.__class__ = replacement
    return model
