"""Layers around the recurrent modules, and ``Sequential`` to chain them.

They share the base class of ``rnnkit.RNN``/``LSTM``/``GRU`` (``rnnkit._module.Module``) and
so its conventions: ``parameters()`` returns an ordered dict of the live NumPy arrays under
PyTorch's names (``weight``, ``bias``), ``grads`` holds the gradients under the same names
and accumulates across ``backward`` calls until ``zero_grad()``, ``forward`` (also
``__call__``) keeps what ``backward`` needs when the layer is in training mode, and
``backward`` consumes it; copies and threads follow the same rules too.

Shapes (``...`` is any number of leading dimensions, including none):

- ``Embedding(V, E)``: indices ``(...)`` of any integer dtype -> ``(..., E)``.
- ``Linear(I, O)``: ``x (..., I)`` -> ``(..., O)``, computed as ``x @ W.T + b``;
  ``Dense(I, O, activation)`` applies an ``Activation`` after it.
- ``Activation(name)``, ``Dropout(p)``: ``(...)`` -> ``(...)``; ``Masking``: ``(B, T, F)``.
- ``Recurrent(module)``: ``(B, T, I)`` -> ``(B, T, F)`` or ``(B, F)``.
- ``CrossEntropyLoss``: logits ``(..., C)``, targets ``(...)`` -> scalar loss; ``backward``
  returns ``dlogits (..., C)``.
"""

from rnnkit.nn._layers import Embedding, Linear
from rnnkit.nn.activations import ACTIVATION_NAMES, Activation
from rnnkit.nn.dense import Dense
from rnnkit.nn.dropout import Dropout, Masking
from rnnkit.nn.loss import CrossEntropyLoss, cross_entropy, log_softmax, softmax
from rnnkit.nn.recurrent import MERGE_MODES, Recurrent
from rnnkit.nn.sequential import Sequential

__all__ = [
    "Embedding",
    "Linear",
    "Dense",
    "Activation",
    "ACTIVATION_NAMES",
    "Dropout",
    "Masking",
    "Recurrent",
    "MERGE_MODES",
    "Sequential",
    "CrossEntropyLoss",
    "cross_entropy",
    "log_softmax",
    "softmax",
]
