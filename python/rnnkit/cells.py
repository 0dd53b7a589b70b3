"""Single-step cells: :class:`RNNCell`, :class:`LSTMCell` and :class:`GRUCell`.

torch.nn's cells: their parameter names (``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``), shapes and call forms, so a torch cell's state dict loads unchanged. A cell is
one layer, one direction, one time step of the same core as the modules (and of the NumPy
reference with ``backend="numpy"``), with the packed weights kept across calls.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit._recurrent import ArrayLike, RecurrentBase
from rnnkit._validation import as_float_array, check_bool, check_choice
from rnnkit.modules import NonlinearityOption, ResetAfterOption

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]

CellState = np.ndarray | tuple[np.ndarray, np.ndarray]


class _Cell(RecurrentBase):
    """What the three cells share: the call, the backward and the checks of their input."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: str | np.dtype = "float32",
        backend: str = "native",
        seed: int | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, 1, bias, False, 0.0, False, dtype, backend, seed)

    def _entry_names(self, num_layers: int, directions: int, bias: bool) -> list[Any]:
        return [
            ("weight_ih", "weight_hh", "bias_ih" if bias else None, "bias_hh" if bias else None)
        ]

    def extra_repr(self) -> str:
        parts = [str(self._input_size), str(self._hidden_size)]
        if not self._bias:
            parts.append("bias=False")
        parts.extend(self._extra_repr_parts())
        parts.append(f"dtype='{self._dtype.name}'")
        parts.append(f"backend='{self._backend}'")
        return ", ".join(parts)

    def _state_array(self, name: str, value: Any, batch: int | None) -> np.ndarray | None:
        """A state argument checked to be (B, H), or (H,) for an unbatched x."""
        if value is None:
            return None
        arr = as_float_array(name, value)
        H = self._hidden_size
        expected = (H,) if batch is None else (batch, H)
        if arr.shape != expected:
            what = "(hidden_size,)" if batch is None else "(batch, hidden_size)"
            raise ValueError(
                f"{name} must have shape {what} = {expected} like x, got shape {arr.shape}"
            )
        return arr[None]  # one layer: (1, B, H) or (1, H)

    def __call__(self, x: ArrayLike, hx: Any = None) -> CellState:
        return self.forward(x, hx)

    def forward(self, x: ArrayLike, hx: Any = None) -> CellState:
        """One step. x: (B, I) or unbatched (I,). hx: LSTMCell a tuple (h, c), either may
        be None; RNNCell/GRUCell h or None; each (B, H) ((H,) unbatched); None means zeros.
        Returns h' (B, H), or (h', c') for LSTMCell, in x's layout. In training mode the
        step is kept for one ``backward``."""
        if not self.training and self._backend == "native":
            lean = self._lean_step(x, hx, False, 2, False)
            if lean is not None:
                return (lean[1], lean[2]) if self._has_cell else lean[1]
        arr = as_float_array("x", x)
        if arr.ndim not in (1, 2) or arr.shape[-1] != self._input_size or arr.size == 0:
            raise ValueError(
                f"x must have shape (batch >= 1, input_size={self._input_size}) or "
                f"(input_size={self._input_size},), got shape {arr.shape}"
            )
        batch = None if arr.ndim == 1 else arr.shape[0]
        if self._has_cell:
            if hx is not None and not (isinstance(hx, tuple) and len(hx) == 2):
                raise TypeError(
                    f"{type(self).__name__}: hx must be a tuple (h, c) or None, "
                    f"got {type(hx).__name__}"
                )
            h, c = (None, None) if hx is None else hx
            state: Any = (self._state_array("h", h, batch), self._state_array("c", c, batch))
        else:
            state = self._state_array("h", hx, batch)
        training = self.training
        self._enter(exclusive=training)
        try:
            if not training and self._backend == "native":
                h0, c0 = state if self._has_cell else (state, None)
                lead = (1, 1 if batch is None else batch, self._hidden_size)
                _, h_n, c_n = self._eval_step_native(
                    arr.reshape(lead[1], -1),
                    None if h0 is None else h0.reshape(lead),
                    None if c0 is None else c0.reshape(lead),
                )
                if batch is None:
                    h_n, c_n = h_n[:, 0], None if c_n is None else c_n[:, 0]
                new_state = (h_n, c_n) if self._has_cell else h_n
            else:
                _, new_state = self._forward(arr[None], state, None, training, False)
        finally:
            self._leave()
        if self._has_cell:
            return new_state[0][0], new_state[1][0]
        return new_state[0]

    def backward(self, grad_h: ArrayLike, grad_c: ArrayLike | None = None) -> Any:
        """Backpropagate through the last training-mode call. grad_h (and for LSTMCell
        grad_c, None meaning zeros): the gradient w.r.t. h' (c') in its layout. Returns dx
        and dh (RNNCell, GRUCell) or (dh, dc) (LSTMCell); adds into ``grads``."""
        if grad_c is not None and not self._has_cell:
            raise TypeError(f"{type(self).__name__}.backward takes no grad_c (no cell state)")
        saved = self._saved_or_raise()
        B, unbatched = saved[2], saved[3]
        batch = None if unbatched else B
        gh = self._state_array("grad_h", grad_h, batch)
        gc = self._state_array("grad_c", grad_c, batch) if self._has_cell else None
        zeros = np.zeros((1, self._hidden_size) if unbatched else (1, B, self._hidden_size))
        grad_state = (gh, gc) if self._has_cell else gh
        dx, dstate = super().backward(zeros, grad_state)
        if self._has_cell:
            return dx[0], (dstate[0][0], dstate[1][0])
        return dx[0], dstate[0]


class LSTMCell(_Cell):
    """``LSTMCell(input_size, hidden_size, bias=True, dtype="float32", backend="native",
    seed=None)``: ``h', c' = cell(x, (h, c))``; ``dx, (dh, dc) = cell.backward(grad_h,
    grad_c)`` after a training-mode call. torch.nn.LSTMCell's equations and names."""

    def _cell_mode(self) -> str:
        return "lstm"


class RNNCell(NonlinearityOption, _Cell):
    """``RNNCell(input_size, hidden_size, bias=True, nonlinearity="tanh", ...)``:
    ``h' = cell(x, h)``; ``dx, dh = cell.backward(grad_h)``. torch.nn.RNNCell's."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        dtype: str | np.dtype = "float32",
        backend: str = "native",
        seed: int | None = None,
    ) -> None:
        self._nonlinearity = check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, bias, dtype, backend, seed)


class GRUCell(ResetAfterOption, _Cell):
    """``GRUCell(input_size, hidden_size, bias=True, dtype="float32", backend="native",
    seed=None, reset_after=True)``: ``h' = cell(x, h)``; ``dx, dh = cell.backward(grad_h)``.
    torch.nn.GRUCell's with reset_after=True (the reset gate after the recurrent matmul);
    False is the original GRU (ONNX's default)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: str | np.dtype = "float32",
        backend: str = "native",
        seed: int | None = None,
        reset_after: bool = True,
    ) -> None:
        self._reset_after = check_bool("reset_after", reset_after)
        super().__init__(input_size, hidden_size, bias, dtype, backend, seed)
