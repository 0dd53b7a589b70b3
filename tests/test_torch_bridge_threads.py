"""rnnkit.torch follows torch's thread count from the first call in a fresh process (the
core's own default, OMP_NUM_THREADS or the cores, is not mistaken for a user's choice)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import rnnkit

pytest.importorskip("torch")

pytestmark = pytest.mark.native

# The rnnkit under test: the installed package, or a development build's python/.
PYTHON_DIR = Path(rnnkit.__file__).resolve().parents[1]

SCRIPT = """
import torch
torch.set_num_threads(1)
import rnnkit, rnnkit.torch as rt
rt.LSTM(4, 8)(torch.randn(3, 2, 4))
print(rnnkit.get_num_threads(), torch.get_num_threads())
"""


def test_first_call_follows_torch():
    # The core's default is 2 threads here; torch is set to 1.
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(PYTHON_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["1", "1"]
