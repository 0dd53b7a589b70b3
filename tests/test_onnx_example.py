"""examples/onnx_finetune.py, run in-process through its main() at reduced sizes."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx", reason="the example needs the onnx package (extra 'onnx')")
pytest.importorskip("onnxruntime", reason="the example checks and times onnxruntime")

import onnx  # noqa: E402

pytestmark = pytest.mark.native
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load_example():
    sys.path.insert(0, str(EXAMPLES))  # argtypes.py, which the script imports from beside it
    spec = importlib.util.spec_from_file_location(
        "rnnkit_example_onnx", EXAMPLES / "onnx_finetune.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_onnx_finetune_learns_exports_and_agrees(tmp_path, capsys):
    example = _load_example()
    out = tmp_path / "tuned.onnx"
    argv = ["--steps", "60", "--hidden", "16", "--seq-len", "20", "--batch", "16"]
    argv += ["--repeats", "3", "--out", str(out), "--quiet"]
    result = example.main(argv)
    assert result["loaded_diff"] < 1e-5
    assert result["loss_after"] < 0.5 * result["loss_before"]
    assert result["exported_diff"] < 1e-4
    assert set(result["times"]) == {"rnnkit", "onnxruntime"}
    assert any(n.op_type == "LSTM" for n in onnx.load(str(out)).graph.node)
    assert "median of 3: rnnkit" in capsys.readouterr().out
    # the written model loads as the starting model of another run
    again = example.main(["--model", str(out), "--steps", "2", "--repeats", "1", "--quiet"])
    assert again["loaded_diff"] is None and again["exported_diff"] < 1e-4
