"""One ONNX RNN / GRU / LSTM node run by rnnkit: :class:`OnnxRecurrent`."""

from __future__ import annotations

from typing import Any

import numpy as np

import rnnkit
from rnnkit.activations import Activation
from rnnkit.onnx._attributes import NodeAttributes
from rnnkit.onnx._weights import NodeWeights

_CLASSES = {"RNN": rnnkit.RNN, "GRU": rnnkit.GRU, "LSTM": rnnkit.LSTM}


class OnnxRecurrent:
    """An ONNX RNN, GRU or LSTM node computed by an rnnkit module.

    ``Y, Y_h = node(X, sequence_lens=None, initial_h=None, initial_c=None)`` (RNN, GRU) or
    ``Y, Y_h, Y_c = node(...)`` (LSTM), with the node's ONNX semantics and layout:

    - layout 0: X (T, B, I); Y (T, D, B, H); Y_h, Y_c, initial_h, initial_c (D, B, H).
    - layout 1: X (B, T, I); Y (B, T, D, H); Y_h, Y_c, initial_h, initial_c (B, D, H).

    D = 2 for direction="bidirectional", else 1. sequence_lens: integers (B,), each in
    1..T; Y is 0 past each sequence's length and Y_h, Y_c hold the state at its last valid
    step (for the reverse direction: after step 0). Arguments left None take the node's
    constant input when the graph gives one, else zeros / full length. Outputs are NumPy
    arrays of the weights' dtype (float32 computes float16 weights).

    ``module`` is the rnnkit module doing the work: an ``rnnkit.RNN``, ``GRU`` or ``LSTM``
    with one layer, ``batch_first`` for layout 1, the node's weights (gate blocks reordered
    to rnnkit's, see rnnkit.onnx._weights) and options; in eval mode, trainable like any
    other (``module.train()``). A node whose two directions use different activations
    runs as two single-direction modules, the second with ``reverse=True``: ``module`` is
    then the tuple (forward module, reverse module). An LSTM's P of zeros is the same as
    no peepholes, and runs without them.
    """

    def __init__(
        self,
        name: str,
        attributes: NodeAttributes,
        weights: NodeWeights,
        defaults: dict[str, np.ndarray | None] | None = None,
    ) -> None:
        self.name = name
        self.attributes = attributes
        self._label = f"{attributes.op} node {name!r}"  # how errors name the node
        self._weights = weights
        self._defaults = dict(defaults or {})
        self._out_dtype = weights.W.dtype
        dtype = "float64" if weights.W.dtype == np.float64 else "float32"
        a, D = attributes, attributes.num_directions
        if D == 2 and a.activations[0] != a.activations[1]:
            modules = (self._make_module([0], False, dtype), self._make_module([1], True, dtype))
            self._modules: tuple = modules
            self.module: Any = modules
        else:
            reverse = a.direction == "reverse"
            self._modules = (self._make_module(list(range(D)), reverse, dtype),)
            self.module = self._modules[0]

    op = property(lambda self: self.attributes.op, doc='"RNN", "GRU" or "LSTM".')
    hidden_size = property(lambda self: self._weights.hidden_size, doc="H.")
    input_size = property(lambda self: self._weights.input_size, doc="I: features of X.")
    num_directions = property(lambda self: self.attributes.num_directions, doc="D.")
    layout = property(lambda self: self.attributes.layout, doc="0: time-major; 1: batch-major.")

    def __repr__(self) -> str:
        a = self.attributes
        return (
            f"OnnxRecurrent({self.name!r}, {a.op}, input_size={self.input_size}, "
            f"hidden_size={self.hidden_size}, direction={a.direction!r}, layout={a.layout})"
        )

    def _make_module(self, directions: list[int], reverse: bool, dtype: str) -> Any:
        """An rnnkit module computing ONNX directions ``directions`` ([0], [1] or [0, 1])."""
        a, w = self.attributes, self._weights
        acts = a.activations[directions[0]]
        kwargs: dict[str, Any] = {
            "bias": w.B is not None,
            "batch_first": a.layout == 1,
            "bidirectional": len(directions) == 2,
            "dtype": dtype,
            "seed": 0,  # every parameter is overwritten below
            "reverse": reverse,
            "clip": a.clip,
        }
        if a.op == "RNN" and acts[0][0] in ("Tanh", "Relu"):
            kwargs["nonlinearity"] = acts[0][0].lower()  # the core's own RNN cells
        else:  # the defaults given explicitly run the usual cells
            kwargs["activations"] = [Activation(*act) for act in acts]
        if a.op == "GRU":
            kwargs["reset_after"] = a.linear_before_reset
        peepholes = w.P is not None and bool(np.any(w.P))
        if a.op == "LSTM":
            kwargs["peepholes"] = peepholes
            kwargs["input_forget"] = a.input_forget
        module = _CLASSES[a.op](w.input_size, w.hidden_size, **kwargs)
        state = {}
        for index, d in enumerate(directions):
            state.update(w.state_dict(a.op, d, "_reverse" if index else ""))
        if not peepholes:
            state = {k: v for k, v in state.items() if not k.startswith("weight_ph")}
        module.load_state_dict(state)
        return module.eval()

    # -- calls --------------------------------------------------------------------------

    def __call__(
        self,
        X: Any,
        sequence_lens: Any = None,
        initial_h: Any = None,
        initial_c: Any = None,
    ) -> tuple[np.ndarray, ...]:
        a, H, D = self.attributes, self.hidden_size, self.num_directions
        has_cell = a.op == "LSTM"
        X = self._check_x(X)
        B, T = (X.shape[0], X.shape[1]) if a.layout == 1 else (X.shape[1], X.shape[0])
        lengths = self._check_lengths(self._or_default("sequence_lens", sequence_lens), T, B)
        h0 = self._check_state("initial_h", self._or_default("initial_h", initial_h), B)
        if not has_cell and initial_c is not None:
            raise ValueError(f"{self._label}: initial_c is an LSTM input")
        c0 = self._check_state("initial_c", self._or_default("initial_c", initial_c), B)

        outs, h_ns, c_ns = [], [], []
        d = 0
        for module in self._modules:
            n = module.num_directions
            h = None if h0 is None else h0[d : d + n]
            c = None if c0 is None else c0[d : d + n]
            out, state = module(X, (h, c) if has_cell else h, lengths)
            outs.append(out)
            h_ns.append(state[0] if has_cell else state)
            if has_cell:
                c_ns.append(state[1])
            d += n
        out = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)
        if a.layout == 0:  # out (T, B, D*H) -> Y (T, D, B, H)
            Y = out.reshape(T, B, D, H).transpose(0, 2, 1, 3)
        else:  # out (B, T, D*H) -> Y (B, T, D, H)
            Y = out.reshape(B, T, D, H)
        results = [Y] + [self._state_out(s) for s in (h_ns, c_ns) if s]
        return tuple(np.ascontiguousarray(r, dtype=self._out_dtype) for r in results)

    def _or_default(self, name: str, value: Any) -> Any:
        return self._defaults.get(name) if value is None else value

    def _state_out(self, parts: list[np.ndarray]) -> np.ndarray:
        """Each module's (n, B, H) states as the node's (D, B, H), or (B, D, H) for layout 1."""
        s = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        return s.transpose(1, 0, 2) if self.attributes.layout == 1 else s

    def _check_x(self, X: Any) -> np.ndarray:
        a = self.attributes
        X = np.asarray(X)
        if X.dtype.kind != "f":
            raise TypeError(f"{self._label}: X must be a floating array, got dtype {X.dtype}")
        want = "(batch, seq_length, input_size)" if a.layout else "(seq_length, batch, input_size)"
        if X.ndim != 3 or X.shape[2] != self.input_size:
            raise ValueError(
                f"{self._label}: X must have shape {want} with input_size="
                f"{self.input_size} (layout {a.layout}), got shape {X.shape}"
            )
        if X.size == 0:
            raise ValueError(
                f"{self._label}: X must hold at least one step of one sequence, got shape {X.shape}"
            )
        return X

    def _check_lengths(self, lengths: Any, T: int, B: int) -> np.ndarray | None:
        if lengths is None:
            return None
        label = self._label
        lengths = np.asarray(lengths)
        if lengths.dtype.kind not in "iu" or lengths.shape != (B,):
            raise ValueError(
                f"{label}: sequence_lens must be integers of shape (batch={B},), got "
                f"{lengths.dtype} of shape {lengths.shape}"
            )
        if lengths.min() < 1 or lengths.max() > T:
            raise ValueError(
                f"{label}: sequence_lens must lie in 1..seq_length={T}, got values from "
                f"{lengths.min()} to {lengths.max()}"
            )
        return lengths

    def _check_state(self, name: str, value: Any, B: int) -> np.ndarray | None:
        """The state ``name`` as (D, B, H) (time-major), or None."""
        if value is None:
            return None
        a, D, H = self.attributes, self.num_directions, self.hidden_size
        value = np.asarray(value)
        want = (B, D, H) if a.layout == 1 else (D, B, H)
        if value.shape != want or value.dtype.kind != "f":
            raise ValueError(
                f"{self._label}: {name} must be a floating array of shape {want} "
                f"(layout {a.layout}), got {value.dtype} of shape {value.shape}"
            )
        return value.transpose(1, 0, 2) if a.layout == 1 else value
