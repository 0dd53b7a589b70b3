"""The inference peers: onnxruntime and OpenVINO running an ONNX model of rnnkit's weights.

``onnx_model`` writes an rnnkit module's weights (torch's layout, see rnnkit's state dict)
as an ONNX graph with one RNN / GRU / LSTM node per layer. ONNX orders the gates
differently from torch:

    torch LSTM rows [i, f, g, o]  ->  ONNX LSTM [i, o, f, c]   (c is torch's g)
    torch GRU  rows [r, z, n]     ->  ONNX GRU  [z, r, h]      (h is torch's n), with
                                      linear_before_reset=1: torch applies the reset gate
                                      after the recurrent product, r * (W_hn h + b_hn)
    RNN: one gate, tanh, nothing to reorder

ONNX's per-node tensors: W (D, G*H, I_k), R (D, G*H, H), B (D, 2*G*H) = [b_ih, b_hh],
direction 0 forward, 1 reverse. A node's output Y is (T, D, B, H); the next layer's input
and the graph's output are (T, B, D*H), as rnnkit's and torch's.

The peers are inference only (no backward): ``OnnxRuntimeImpl`` and ``OpenVinoImpl`` run
the model with the benchmark's thread count (onnxruntime: intra-op threads, inter-op 1;
OpenVINO: INFERENCE_NUM_THREADS and float32 precision, on the CPU plugin).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from rnnkit.bench.configs import Config

OPSET: int = 17
IR_VERSION: int = 9  # readable by onnxruntime and OpenVINO releases of the last years

# Peer name -> the Python packages it needs.
PEER_PACKAGES: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnx", "onnxruntime"),
    "openvino": ("onnx", "openvino"),
}
# Short names in the table's column headers.
SHORT_NAMES: dict[str, str] = {"onnxruntime": "ort", "openvino": "ov"}

_ONNX_OP = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
# For each cell, the torch gate blocks in ONNX's order.
_GATE_ORDER = {"rnn": [0], "lstm": [0, 3, 1, 2], "gru": [1, 0, 2]}


def missing_packages(peer: str) -> list[str]:
    """The packages ``peer`` needs that are not installed (empty: it can run)."""
    return [p for p in PEER_PACKAGES[peer] if importlib.util.find_spec(p) is None]


def _reorder(cell: str, a: np.ndarray, H: int) -> np.ndarray:
    """Torch's gate blocks of ``a`` (G*H rows first) in ONNX's order."""
    blocks = [a[g * H : (g + 1) * H] for g in _GATE_ORDER[cell]]
    return np.ascontiguousarray(np.concatenate(blocks, axis=0), dtype=np.float32)


def onnx_model(
    cell: str,
    state_dict: dict,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
):
    """An ``onnx.ModelProto`` computing the eval-mode forward of an rnnkit module with
    ``state_dict``: input "x" (T, B, input_size) float32, output "out" (T, B, D*H)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H, D = hidden_size, 2 if bidirectional else 1
    suffixes = ["", "_reverse"][:D]
    nodes, inits = [], []
    layer_in = "x"
    for k in range(num_layers):
        names = {key: f"{key}_l{k}" for key in ("W", "R", "B", "Y")}
        stack = {
            "W": [
                _reorder(cell, np.asarray(state_dict[f"weight_ih_l{k}{s}"]), H) for s in suffixes
            ],
            "R": [
                _reorder(cell, np.asarray(state_dict[f"weight_hh_l{k}{s}"]), H) for s in suffixes
            ],
        }
        has_bias = f"bias_ih_l{k}" in state_dict
        if has_bias:
            stack["B"] = [
                np.concatenate(
                    [
                        _reorder(cell, np.asarray(state_dict[f"bias_ih_l{k}{s}"]), H),
                        _reorder(cell, np.asarray(state_dict[f"bias_hh_l{k}{s}"]), H),
                    ]
                )
                for s in suffixes
            ]
        for key, arrays in stack.items():
            inits.append(numpy_helper.from_array(np.stack(arrays), names[key]))
        attrs = {
            "hidden_size": H,
            "direction": "bidirectional" if bidirectional else "forward",
        }
        if cell == "gru":
            attrs["linear_before_reset"] = 1
        if cell == "rnn":
            attrs["activations"] = ["Tanh"] * D
        node_inputs = [layer_in, names["W"], names["R"]] + ([names["B"]] if has_bias else [])
        nodes.append(helper.make_node(_ONNX_OP[cell], node_inputs, [names["Y"]], **attrs))
        # Y (T, D, B, H) -> (T, B, D, H) -> (T, B, D*H)
        nodes.append(helper.make_node("Transpose", [names["Y"]], [f"tbdh_l{k}"], perm=[0, 2, 1, 3]))
        layer_in = "out" if k == num_layers - 1 else f"in_l{k + 1}"
        shape_name = f"shape_l{k}"
        inits.append(numpy_helper.from_array(np.array([0, 0, D * H], dtype=np.int64), shape_name))
        nodes.append(helper.make_node("Reshape", [f"tbdh_l{k}", shape_name], [layer_in]))
    graph = helper.make_graph(
        nodes,
        f"rnnkit_{cell}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", input_size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["T", "B", D * H])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def onnxruntime_session(model, threads: int):
    """An onnxruntime CPU session of ``model`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    if hasattr(ort, "disable_telemetry_events"):  # a benchmark reports to no one
        ort.disable_telemetry_events()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def openvino_compiled(model, threads: int):
    """An OpenVINO CPU compiled model of ``model`` with ``threads`` inference threads."""
    import openvino as ov

    core = ov.Core()
    ov_model = core.read_model(model=model.SerializeToString(), weights=b"")
    # f32 precision: on CPUs with bfloat16 instructions (AVX512_BF16, AMX) OpenVINO would
    # otherwise compute in bfloat16 (relative error ~1e-3) and fail the check.
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    return core.compile_model(ov_model, "CPU", config)


class _PeerImpl:
    """Common to the peers: inference only; ``results()`` holds "eval_out" alone."""

    def __init__(self, x: np.ndarray):
        self.x = np.ascontiguousarray(x, dtype=np.float32)

    def set_mode(self, mode: str) -> None:
        if mode != "inference":
            raise ValueError(f"{type(self).__name__}: inference only, got mode {mode!r}")

    def results(self) -> dict:
        return {"eval_out": np.array(self.forward(self.x))}


class OnnxRuntimeImpl(_PeerImpl):
    def __init__(self, model, x: np.ndarray, threads: int):
        super().__init__(x)
        self.session = onnxruntime_session(model, threads)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(["out"], {"x": x})[0]

    def call(self) -> None:
        self.session.run(["out"], {"x": self.x})


class OpenVinoImpl(_PeerImpl):
    def __init__(self, model, x: np.ndarray, threads: int):
        super().__init__(x)
        self.compiled = openvino_compiled(model, threads)
        self.request = self.compiled.create_infer_request()

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.array(self.request.infer({"x": x})[self.compiled.output(0)])

    def call(self) -> None:
        self.request.infer({"x": self.x})


def build_peers(
    names: list[str], cell: str, config: Config, state_dict: dict, x: np.ndarray, threads: int
) -> dict:
    """peer name -> implementation, for the peers in ``names`` (one layer, one direction)."""
    if not names:
        return {}
    model = onnx_model(cell, state_dict, config.I, config.H)
    classes = {"onnxruntime": OnnxRuntimeImpl, "openvino": OpenVinoImpl}
    return {n: classes[n](model, x, threads) for n in names}


def versions() -> dict:
    """Installed version of each peer package (None when missing)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("onnx", "onnxruntime", "openvino"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
