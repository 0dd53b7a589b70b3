"""examples/keras_import.py, run in-process through its main() at reduced sizes."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("keras", reason="the example builds a Keras model (pip install keras)")
pytest.importorskip("h5py", reason="rnnkit.keras reads Keras files with h5py")

pytestmark = pytest.mark.native

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))  # argtypes.py, which the script imports from beside it


def test_keras_import_example_matches_keras_and_fine_tunes():
    spec = importlib.util.spec_from_file_location(
        "rnnkit_example_keras_import", EXAMPLES / "keras_import.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    argv = ["--batch", "6", "--length", "5", "--steps", "8", "--repeats", "1"]
    result = example.main(argv)
    assert set(result["max_abs_diff"]) == {".keras", ".h5"}
    assert max(result["max_abs_diff"].values()) < 1e-4
    assert result["losses"][-1] < result["losses"][0]
    assert set(result["seconds"]) == {"rnnkit", "keras predict", "keras call"}
