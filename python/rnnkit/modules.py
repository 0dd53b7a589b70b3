"""The public recurrent modules: :class:`RNN`, :class:`LSTM` and :class:`GRU`.

Each only names its cell kind and its own arguments; everything they share lives in
``rnnkit._recurrent`` (the common arguments, forward and backward), ``rnnkit._module``
(parameters, state dicts, modes, threads, copies) and ``rnnkit._validation`` (checks).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import _layout
from rnnkit._recurrent import ArrayLike, RecurrentBase, State  # noqa: F401 (importable here)
from rnnkit._validation import as_float_array, check_bool, check_choice, check_int_at_least
from rnnkit.activations import Activation, resolve_activations

__all__ = ["RNN", "LSTM", "GRU"]

_NONLINEARITIES = ("tanh", "relu")


class NonlinearityOption:
    """RNN's and RNNCell's ``nonlinearity`` ("tanh" or "relu") and the mode it selects."""

    _nonlinearity: str

    def _cell_mode(self) -> str:
        return f"rnn_{self._nonlinearity}"

    @property
    def nonlinearity(self) -> str:
        return self._nonlinearity

    def _extra_repr_parts(self) -> list[str]:
        return [] if self._nonlinearity == "tanh" else [f"nonlinearity='{self._nonlinearity}'"]


class ResetAfterOption:
    """GRU's and GRUCell's ``reset_after`` and the mode it selects."""

    _reset_after: bool

    def _cell_mode(self) -> str:
        return "gru" if self._reset_after else "gru_reset_before"

    @property
    def reset_after(self) -> bool:
        return self._reset_after

    def _extra_repr_parts(self) -> list[str]:
        return [] if self._reset_after else ["reset_after=False"]


class _Streaming(RecurrentBase):
    """``step``: one time step through all layers, for streaming input."""

    def step(self, x_t: ArrayLike, state: Any = None) -> tuple[np.ndarray, State]:
        """Advance the network by one time step.

        x_t: (B, I), or unbatched (I,), whatever ``batch_first`` says (there is no time
            axis). state: as ``hx`` of a call: LSTM (h, c), either may be None; RNN/GRU h or
            None; each (L, B, H), or (L, H) unbatched (h (L, B, P) with proj_size P); None
            means zeros.

        Returns out_t (B, H) (or (H,); P wide with proj_size P) and the new state (the last
        layer's output and each layer's state), equal to a call over the whole sequence (the
        same bits with either backend). Bidirectional modules raise ValueError (the reverse
        direction needs the whole sequence). In training mode dropout applies between
        layers as in a call (one mask per step from the module's generator), but nothing is
        kept for ``backward``:
        train on whole sequences.
        """
        if not self.training and self._backend == "native" and not self._bidirectional:
            lean = self._lean_step(x_t, state, True, 2, True)
            if lean is not None:
                return lean[0], ((lean[1], lean[2]) if self._has_cell else lean[1])
        name = type(self).__name__
        if self._bidirectional or self._options.reverse:
            what = "a bidirectional module" if self._bidirectional else "a module with reverse=True"
            raise ValueError(
                f"{name}.step: {what} cannot run step by step (its reverse "
                f"direction needs the whole sequence); call it on the sequence instead"
            )
        x = as_float_array("x_t", x_t)
        if x.ndim not in (1, 2) or x.shape[-1] != self._input_size:
            raise ValueError(
                f"x_t must have shape (batch, input_size={self._input_size}) or "
                f"(input_size={self._input_size},), got shape {x.shape}"
            )
        if x.size == 0:
            raise ValueError(f"x_t must have at least one sequence, got shape {x.shape}")
        training = self.training
        self._enter(exclusive=training)
        try:
            if training or self._backend != "native" or self._backend_options is not None:
                out, new_state = self._forward(x[None], state, None, training, False, save=False)
                return out[0], new_state
            return self._eval_step_native_user(x, state)
        finally:
            self._leave()

    def _eval_step_native_user(self, x: np.ndarray, state: Any) -> tuple[np.ndarray, State]:
        """step in eval mode on the native backend: the user's layouts around
        _eval_step_native (x (B, I) or (I,); states (L, B, H) or (L, H), h P wide with
        proj_size P)."""
        unbatched = x.ndim == 1
        B = 1 if unbatched else x.shape[0]
        stack = (self._num_layers, B, self._hidden_size)
        h_stack = (self._num_layers, B, self._h_size)
        h_in, c_in = _layout.split_state(
            "hx", state, ("h0", "c0"), type(self).__name__, self._has_cell
        )
        h0 = (
            None
            if h_in is None
            else _layout.state_to_stack("h0", h_in, h_stack, unbatched, self._dtype, self._h_name)
        )
        c0 = None
        if self._has_cell and c_in is not None:
            c0 = _layout.state_to_stack("c0", c_in, stack, unbatched, self._dtype)
        out, h_n, c_n = self._eval_step_native(x.reshape(B, -1), h0, c0)
        if unbatched:
            out, h_n = out[0], h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        return out, ((h_n, c_n) if self._has_cell else h_n)


class LSTM(_Streaming):
    """Long short-term memory, PyTorch's equations and gate order [i, f, g, o].

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, dtype="float32", backend="native", seed=None,
    *, proj_size=0, activations=None, clip=None, peepholes=False, input_forget=False,
    reverse=False)``.
    ``out, (h_n, c_n) = lstm(x, (h0, c0), lengths=None)``;
    ``dx, (dh0, dc0) = lstm.backward(grad_out, (grad_h_n, grad_c_n))``;
    ``out_t, (h, c) = lstm.step(x_t, (h, c))`` for streaming, one step at a time.
    torch's ``device`` and unknown keyword arguments raise TypeError.

    ``proj_size`` P (keyword only; 0 < P < hidden_size), torch's projection:
    ``h_t = (o_t * tanh(c_t)) W_hr^T`` with ``weight_hr_l{k}[_reverse]`` (P, H). Then h,
    out and the next layer's input are P wide per direction: out (T, B, D*P), h0 and h_n
    (L*D, B, P), ``weight_hh_l{k}`` (4H, P); c0 and c_n stay (L*D, B, H).

    Cell variants (keyword only; README "Cell variants"): ``activations`` (f for the i, f,
    o gates, g for the candidate, h for the cell state's output; default sigmoid, tanh,
    tanh), ``clip`` (bound of every gate's pre-activation), ``peepholes`` (i and f see
    c_{t-1}, o sees c_t; parameters ``weight_ph_l{k}`` (3H,) as [p_i, p_f, p_o]),
    ``input_forget`` (f = 1 - i) and ``reverse`` (one direction, run backwards). They
    combine with ``proj_size``: the peepholes and h act on c, which stays H wide.

    Threads: eval-mode forwards may run from several threads at once; a training-mode
    forward or a backward started while another thread is inside this module's forward or
    backward raises RuntimeError (train one module per thread, and run each forward and
    its backward from one thread).

    Copies (``copy.deepcopy``, ``pickle``) keep the parameters, gradients, mode, settings
    and the dropout generator's state (the copy continues the same random stream); they
    drop the state saved by a training forward, so ``backward`` on a copy raises
    RuntimeError until the copy runs a forward of its own.
    """

    _OWN_ARGUMENTS = ("proj_size", "peepholes", "input_forget")

    def __init__(
        self,
        *args: Any,
        proj_size: int = 0,
        peepholes: bool = False,
        input_forget: bool = False,
        **kwargs: Any,
    ) -> None:
        # >= 0 here; the base checks it against hidden_size.
        self._proj_size = check_int_at_least("proj_size", proj_size, 0)
        self._peepholes = check_bool("peepholes", peepholes)
        self._input_forget = check_bool("input_forget", input_forget)
        super().__init__(*args, **kwargs)

    def _cell_mode(self) -> str:
        return "lstm"

    peepholes = property(lambda self: self._peepholes, doc="Whether the gates see c.")
    input_forget = property(lambda self: self._input_forget, doc="f = 1 - i when True.")

    @property
    def proj_size(self) -> int:
        """P: the projection's size (h and out are P wide per direction), 0 for none."""
        return self._proj_size

    def _extra_repr_parts(self) -> list[str]:
        return [f"proj_size={self._proj_size}"] if self._proj_size else []


class RNN(NonlinearityOption, _Streaming):
    """Elman RNN: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, act = tanh or relu.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, ...)``:
    arguments, threads and copies as :class:`LSTM`, plus ``nonlinearity`` ("tanh" or
    "relu"), fourth as in torch. ``out, h_n = rnn(x, h0, lengths=None)``;
    ``dx, dh0 = rnn.backward(grad_out, grad_h_n)``. Cell variants: ``activations`` (one
    entry; a Relu selects nonlinearity "relu"; one contradicting an explicit
    ``nonlinearity="relu"`` raises), ``clip`` and ``reverse``, as :class:`LSTM`.
    """

    _OWN_ARGUMENTS = ("nonlinearity",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self._nonlinearity = check_choice("nonlinearity", nonlinearity, _NONLINEARITIES)
        activations = kwargs.get("activations")
        if activations is not None:
            (act,) = resolve_activations(activations, 1, "RNN", "f for h")
            if self._nonlinearity == "relu" and act != Activation("Relu"):
                raise ValueError(
                    f"rnnkit.RNN: activations={activations!r} contradicts "
                    f"nonlinearity='relu'; give one of them"
                )
            if act == Activation("Relu"):
                self._nonlinearity = "relu"
        super().__init__(input_size, hidden_size, num_layers, *args, **kwargs)


class GRU(ResetAfterOption, _Streaming):
    """Gated recurrent unit, PyTorch's equations and gate order [r, z, n].

    ``GRU(input_size, hidden_size, ..., seed=None, reset_after=True)``: arguments,
    threads and copies as :class:`LSTM`, plus ``reset_after``, last: True (PyTorch's GRU)
    applies the reset gate after the recurrent matmul, False (the original GRU, ONNX's
    default) before it. ``out, h_n = gru(x, h0, lengths=None)``;
    ``dx, dh0 = gru.backward(grad_out, grad_h_n)``. Cell variants: ``activations`` (f for
    the z and r gates, g for the candidate n), ``clip`` and ``reverse``, as :class:`LSTM`.
    """

    _OWN_ARGUMENTS = ("reset_after",)
    # LSTM's ten arguments come first: reset_after is the eleventh when passed by position.
    _POSITIONAL_BEFORE_RESET_AFTER = 10

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        n = self._POSITIONAL_BEFORE_RESET_AFTER
        if len(args) > n:
            if "reset_after" in kwargs:
                raise TypeError("rnnkit.GRU got multiple values for argument 'reset_after'")
            kwargs["reset_after"] = args[n]
            args = args[:n] + args[n + 1 :]  # any further ones: the base says too many
        self._reset_after = check_bool("reset_after", kwargs.pop("reset_after", True))
        super().__init__(*args, **kwargs)
