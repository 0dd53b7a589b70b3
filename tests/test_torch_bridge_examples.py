"""The rnnkit.torch examples: examples/torch_ddp.py (2 processes under
DistributedDataParallel, gloo on 127.0.0.1, reach the same parameters as one process on the
whole batch) and examples/torch_char_lm.py (the patched model learns)."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import rnnkit  # noqa: E402 (after the skip: the examples need torch)

pytestmark = pytest.mark.native

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--steps",
    "4",
    "--batch",
    "8",
    "--bptt",
    "12",
    "--embed",
    "8",
    "--hidden",
    "16",
    "--max-chars",
    "4000",
    "--threads",
    "1",
    "--float64",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    # The rnnkit this test imports (installed, or the development build), not the sources.
    package_root = str(Path(rnnkit.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": package_root, "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=480
    )


def run_ddp(script: str, args: list[str], tmp_path: Path) -> None:
    """torchrun with 2 processes on 127.0.0.1; a new port once if another process took the
    free one between our check and torchrun's bind."""
    for attempt in range(2):
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            script,
            *args,
        ]
        done = run(command, tmp_path)
        if done.returncode == 0:
            return
        output = done.stdout + done.stderr
        if attempt == 1 or "address already in use" not in output.lower():
            raise AssertionError(output)


def test_two_processes_match_one_process_on_the_full_batch(tmp_path):
    script = str(ROOT / "examples" / "torch_ddp.py")
    done = run([sys.executable, script, *ARGS, "--save", "one.pt"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    run_ddp(script, [*ARGS, "--save", "two.pt"], tmp_path)
    one = torch.load(tmp_path / "one.pt")
    two = torch.load(tmp_path / "two.pt")
    assert list(one) == list(two)
    # Training moved every parameter away from its initial value.
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import torch_ddp
    finally:
        sys.path.pop(0)
    text = torch_ddp.read_text(torch_ddp.DEFAULT_TEXT)[:4000]
    torch.manual_seed(0)
    initial = torch_ddp.CharModel(len(set(text)), 8, 16, 2).to(torch.float64).state_dict()
    for name in one:
        assert not torch.equal(one[name], initial[name]), name
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-9, atol=1e-12, msg=name)


def test_char_lm_example_learns_with_the_patched_lstm(capsys):
    import rnnkit.torch as rt

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import torch_char_lm
    finally:
        sys.path.pop(0)
    argv = [
        "--max-chars",
        "6000",
        "--epochs",
        "3",
        "--hidden",
        "32",
        "--embed",
        "16",
        "--batch-size",
        "8",
        "--bptt",
        "32",
        "--sample-len",
        "20",
        "--lr",
        "1e-2",
    ]
    result = torch_char_lm.main(argv)
    assert type(result["model"].lstm) is rt.LSTM
    history = result["history"]
    vocab = len(set(torch_char_lm.read_text(torch_char_lm.DEFAULT_TEXT)[:3000]))
    assert history[-1]["train"] < history[0]["train"]
    assert history[-1]["valid"] < 0.85 * math.log(vocab)  # well below a uniform guess
    assert "MENENIUS:" in capsys.readouterr().out
