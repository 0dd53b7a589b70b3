"""ONNX models and rnnkit: run the RNN, GRU and LSTM nodes of an ONNX model with rnnkit's
modules, and write rnnkit modules as ONNX models.

- ``load_recurrent(model)``: every RNN / GRU / LSTM node of a model (subgraphs of If, Loop
  and Scan included) as an :class:`OnnxRecurrent`, keyed by node name.
- ``OnnxRecurrent(X, sequence_lens=None, initial_h=None, initial_c=None)``: the node's
  outputs with ONNX's semantics and layouts; ``.module`` is the rnnkit module doing the work.
- ``export(module, path)``: an ONNX model computing a module's eval-mode forward.

Needs the ``onnx`` package (``pip install "rnnkit[onnx]"``); ``import rnnkit`` alone never
imports it.
"""

try:
    import onnx  # noqa: F401 (imported here so that a missing package fails at once)
except ImportError as exc:  # pragma: no cover - exercised only without onnx installed
    raise ImportError(
        "rnnkit.onnx needs the onnx package: install the extra with "
        '`pip install "rnnkit[onnx]"` (or `pip install onnx`)'
    ) from exc

from rnnkit.onnx._export import export
from rnnkit.onnx._load import load_recurrent
from rnnkit.onnx._node import OnnxRecurrent

__all__ = ["load_recurrent", "OnnxRecurrent", "export"]
