"""NumPy reference implementation of rnnkit: the readable twin of the C++ core.

Cells (one step, batched over B) live in ``rnn``, ``lstm`` and ``gru``; ``stack`` drives them
over layers, directions, variable lengths and dropout masks with the backend contract's
``stack_forward`` / ``stack_backward``.
"""

from rnnkit.reference.stack import MODES, gate_count, stack_backward, stack_forward

__all__ = ["MODES", "gate_count", "stack_backward", "stack_forward"]
