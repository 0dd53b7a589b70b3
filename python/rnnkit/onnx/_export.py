"""``export``: an rnnkit RNN / GRU / LSTM module as an ONNX model, one node per layer."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, helper, numpy_helper

import rnnkit
from rnnkit.onnx._weights import ONNX_FROM_RNNKIT, PEEPHOLE_ORDER, reorder_blocks

MIN_OPSET = 14  # the RNN operators' latest revision (layout) and what the graph needs
DEFAULT_OPSET = 17

_OPS = ((rnnkit.LSTM, "LSTM"), (rnnkit.GRU, "GRU"), (rnnkit.RNN, "RNN"))
_ELEM_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


def export(
    module: Any,
    path: str | os.PathLike | None,
    batch_first: bool | None = None,
    opset: int = DEFAULT_OPSET,
    initial_states: bool = False,
    lengths: bool = False,
) -> ModelProto:
    """Write ``module`` (an ``rnnkit.RNN``, ``GRU`` or ``LSTM``) as an ONNX model to ``path``
    (None: write nothing) and return the ``onnx.ModelProto``.

    The model computes the module's eval-mode forward: dropout between layers is not
    applied (ONNX's RNN operators have none; at inference rnnkit applies none either).
    Graph inputs: "X" (T, B, I), or (B, T, I) when ``batch_first`` (default: the module's);
    with ``initial_states`` also "h0" (and "c0" for an LSTM), (L*D, B, H) as the module's
    states; with ``lengths`` also "lengths" int32 (B,) (ONNX's sequence_lens, each in
    1..T). Outputs: "output" (T, B, D*H) (or (B, T, D*H)), "h_n" (L*D, B, H) and for an
    LSTM "c_n", equal to ``module(X, state, lengths)``.

    One ONNX node per layer (layout 0, opset ``opset`` >= 14), the cell options as its
    attributes (activations with their alphas and betas, clip, input_forget, direction
    "reverse" for ``reverse=True``, linear_before_reset=1 for GRU ``reset_after=True``) and
    peepholes as its P input. Each layer's Y (T, D, B, H) is transposed and reshaped into
    the next layer's (T, B, D*H).
    """
    op = next((name for cls, name in _OPS if isinstance(module, cls)), None)
    if op is None:
        raise TypeError(
            f"export: module must be an rnnkit.RNN, GRU or LSTM, got {type(module).__name__}"
        )
    if getattr(module, "proj_size", 0):
        raise ValueError(
            f"export: ONNX's LSTM has no output projection; this module has proj_size="
            f"{module.proj_size}"
        )
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= latest:
        raise ValueError(f"export: opset must be an int in {MIN_OPSET}..{latest}, got {opset!r}")
    batch_first = module.batch_first if batch_first is None else bool(batch_first)
    builder = _GraphBuilder(module, op, batch_first, initial_states, lengths)
    model = helper.make_model(
        builder.graph(), opset_imports=[helper.make_opsetid("", opset)], producer_name="rnnkit"
    )
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model


class _GraphBuilder:
    """The nodes and initializers of the exported graph, added layer by layer."""

    def __init__(
        self, module: Any, op: str, batch_first: bool, initial_states: bool, lengths: bool
    ) -> None:
        self.m, self.op, self.batch_first = module, op, batch_first
        self.with_states, self.with_lengths = initial_states, lengths
        self.elem = _ELEM_TYPES[np.dtype(module.dtype)]
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op_type: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        self.nodes.append(helper.make_node(op_type, inputs, outputs, **attrs))

    def graph(self) -> onnx.GraphProto:
        m, op = self.m, self.op
        L, D, H = m.num_layers, m.num_directions, m.hidden_size
        has_cell = op == "LSTM"
        x_dims = ["batch", "seq_length"] if self.batch_first else ["seq_length", "batch"]
        x_dims.append(m.input_size)
        state_dims = [L * D, "batch", H]
        inputs = [helper.make_tensor_value_info("X", self.elem, x_dims)]
        state_names = ["h0", "c0"] if has_cell else ["h0"]
        if self.with_states:
            for name in state_names:
                inputs.append(helper.make_tensor_value_info(name, self.elem, state_dims))
        if self.with_lengths:
            inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]))
        layer_in = "X"
        if self.batch_first:
            self.node("Transpose", ["X"], ["X_time_major"], perm=[1, 0, 2])
            layer_in = "X_time_major"
        ys, hs, cs = [], [], []
        for k in range(L):
            y, h, c = self.layer(k, layer_in)
            ys.append(y)
            hs.append(h)
            cs.append(c)
            last = k == L - 1
            # Y (T, D, B, H) -> (T, B, D, H), or (B, T, D, H) for a batch-first output;
            # then the last two axes merged: (T, B, D*H) / (B, T, D*H).
            perm = [2, 0, 1, 3] if last and self.batch_first else [0, 2, 1, 3]
            self.node("Transpose", [y], [f"{y}_t"], perm=perm)
            layer_in = "output" if last else f"layer{k + 1}_input"
            shape = self.const(f"{y}_merge_shape", np.array([0, 0, D * H], dtype=np.int64))
            self.node("Reshape", [f"{y}_t", shape], [layer_in])
        self.node("Concat", hs, ["h_n"], axis=0)
        out_dims = [*x_dims[:2], D * H]
        outputs = [
            helper.make_tensor_value_info("output", self.elem, out_dims),
            helper.make_tensor_value_info("h_n", self.elem, state_dims),
        ]
        if has_cell:
            self.node("Concat", cs, ["c_n"], axis=0)
            outputs.append(helper.make_tensor_value_info("c_n", self.elem, state_dims))
        return helper.make_graph(
            self.nodes, f"rnnkit_{op.lower()}", inputs, outputs, initializer=self.inits
        )

    def layer(self, k: int, layer_in: str) -> tuple[str, str, str]:
        """The node of layer ``k``; returns the names of its Y, Y_h and Y_c."""
        m, op = self.m, self.op
        D, H = m.num_directions, m.hidden_size
        params = m.state_dict()
        suffixes = ["", "_reverse"][:D]
        order = ONNX_FROM_RNNKIT[op]

        def stacked(name: str) -> np.ndarray:
            return np.stack([params[f"{name}_l{k}{s}"] for s in suffixes])

        W = np.stack([reorder_blocks(w, order, H) for w in stacked("weight_ih")])
        R = np.stack([reorder_blocks(r, order, H) for r in stacked("weight_hh")])
        inputs = [layer_in, self.const(f"W_l{k}", W), self.const(f"R_l{k}", R), "", "", "", ""]
        if m.bias:
            b_ih, b_hh = stacked("bias_ih"), stacked("bias_hh")
            B = np.concatenate(
                [np.stack([reorder_blocks(b, order, H) for b in bs]) for bs in (b_ih, b_hh)],
                axis=1,
            )
            inputs[3] = self.const(f"B_l{k}", B)
        if self.with_lengths:
            inputs[4] = "lengths"
        if self.with_states:
            for index, name in ((5, "h0"), (6, "c0")) if op == "LSTM" else ((5, "h0"),):
                inputs[index] = self.state_slice(name, k, D)
        if getattr(m, "peepholes", False):
            P = np.stack([reorder_blocks(p, PEEPHOLE_ORDER, H) for p in stacked("weight_ph")])
            inputs.append(self.const(f"P_l{k}", P))
        while inputs[-1] == "":
            inputs.pop()
        outputs = [f"Y_l{k}", f"Y_h_l{k}"] + ([f"Y_c_l{k}"] if op == "LSTM" else [])
        self.node(op, inputs, outputs, name=f"{op.lower()}_l{k}", **self.attributes())
        return outputs[0], outputs[1], outputs[2] if op == "LSTM" else ""

    def state_slice(self, name: str, k: int, D: int) -> str:
        """Layer ``k``'s rows [k*D, (k+1)*D) of state input ``name``."""
        starts = self.const(f"{name}_l{k}_start", np.array([k * D], dtype=np.int64))
        ends = self.const(f"{name}_l{k}_end", np.array([(k + 1) * D], dtype=np.int64))
        self.node("Slice", [name, starts, ends], [f"{name}_l{k}"])
        return f"{name}_l{k}"

    def attributes(self) -> dict[str, Any]:
        m, op = self.m, self.op
        D = m.num_directions
        direction = "bidirectional" if D == 2 else ("reverse" if m.reverse else "forward")
        acts = list(m.activations) * D
        attrs: dict[str, Any] = {
            "hidden_size": m.hidden_size,
            "direction": direction,
            "activations": [a.name for a in acts],
        }
        alphas = [a.alpha for a in acts if a.alpha is not None]
        betas = [a.beta for a in acts if a.beta is not None]
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
        if m.clip is not None:
            attrs["clip"] = m.clip
        if op == "LSTM" and m.input_forget:
            attrs["input_forget"] = 1
        if op == "GRU":
            attrs["linear_before_reset"] = int(m.reset_after)
        return attrs
