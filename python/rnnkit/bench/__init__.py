"""rnnkit's benchmark: rnnkit (native) against torch and the NumPy reference.

``python -m rnnkit.bench --help`` for the options. For each cell (RNN, LSTM, GRU), config
and thread count it checks that the implementations' results agree, then times inference
(eval-mode forward) and training (forward + backward) with the implementations
interleaved, and reports torch/rnnkit, rnnkit's GFLOP/s and its fraction of the machine's
practical peak (NumPy's float32 matmul), and the peak memory of one training step. With
--peers it also times onnxruntime and OpenVINO (inference) on an ONNX model of the same
weights; --per-call adds single T=1, B=1 calls and --mixed a training loop next to NumPy.
Modules: configs (sizes, FLOP formula), impls (the implementations), peers (the ONNX
model and the inference peers), check, timing, blas (threads, peak), memory, mixed (the
mixed loop), machine, runner, report, cli.
"""

from rnnkit.bench.cli import main
from rnnkit.bench.configs import case_flops, forward_flops
from rnnkit.bench.runner import Options, run

__all__ = ["main", "run", "Options", "forward_flops", "case_flops"]
