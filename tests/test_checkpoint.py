"""rnnkit.save_checkpoint / load_checkpoint: atomic writes (a killed writer leaves the old
file or the new one) and clear errors for damaged, foreign or mismatched files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rnnkit
from rnnkit import nn, optim


def _model(seed: int = 0) -> tuple[dict, optim.Adam]:
    """An LSTM and a Linear head with one Adam step taken (so the optimiser has state)."""
    lstm = rnnkit.LSTM(8, 16, seed=seed)
    head = nn.Linear(16, 5, seed=seed + 1)
    opt = optim.Adam([lstm, head], lr=1e-3)
    out, _ = lstm(np.ones((3, 2, 8), np.float32))
    lstm.backward(head.backward(head(out)), None)
    opt.step()
    return {"lstm": lstm, "head": head}, opt


def _state(modules: dict) -> dict:
    return {f"{n}.{k}": v for n, m in modules.items() for k, v in m.state_dict().items()}


def _assert_same_state(a: dict, b: dict) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


@pytest.fixture()
def saved(tmp_path) -> tuple[Path, dict, bytes]:
    """A checkpoint file, the modules it holds, and its bytes."""
    modules, opt = _model()
    path = tmp_path / "model.npz"
    rnnkit.save_checkpoint(path, modules, opt, extra={"chars": np.array(list("abc"))})
    return path, modules, path.read_bytes()


def _load_into_fresh(path: Path) -> tuple[dict, dict]:
    modules, opt = _model(seed=7)  # different weights from the saved ones
    extra = rnnkit.load_checkpoint(path, modules, opt)
    return modules, extra


# --- writing -------------------------------------------------------------------------


def test_save_round_trip_leaves_no_temporary_file(saved):
    path, modules, _ = saved
    loaded, extra = _load_into_fresh(path)
    _assert_same_state(loaded, modules)
    assert extra["chars"].tolist() == ["a", "b", "c"]
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]


def test_saved_file_mode_follows_the_umask(saved):
    path, _, _ = saved
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_save_keeps_the_old_file_and_cleans_up(saved, monkeypatch):
    path, modules, before = saved

    def savez_then_fail(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_then_fail)
    new_modules, opt = _model(seed=3)
    with pytest.raises(OSError, match="disk full"):
        rnnkit.save_checkpoint(path, new_modules, opt)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]


# A child that saves a ~4 MB checkpoint over and over; version k holds k in every weight
# and in extra["version"], so a torn or mixed file cannot pass for a whole one.
WRITER = """
import sys, numpy as np, rnnkit
from rnnkit import nn
head = nn.Linear(1024, 1024, seed=0)
k = 0
while True:
    k += 1
    for p in head.parameters().values():
        p[...] = k
    rnnkit.save_checkpoint(sys.argv[1], {"head": head}, extra={"version": np.array(k)})
    if k == 1:
        print("first", flush=True)
"""


def test_checkpoint_survives_sigkill_at_random_moments(tmp_path):
    path = tmp_path / "big.npz"
    package_root = str(Path(rnnkit.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": package_root, "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(0)
    versions = []
    for _ in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], env=env, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout.readline() == "first\n"  # one whole file exists from here on
        time.sleep(float(rng.uniform(0.0, 0.15)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        head = nn.Linear(1024, 1024)
        extra = rnnkit.load_checkpoint(path, {"head": head})
        k = int(extra["version"])
        for name, value in head.parameters().items():  # one whole version
            assert np.all(value == k), name
        versions.append(k)
    assert all(k >= 1 for k in versions)


# --- reading damaged, foreign and mismatched files ----------------------------------


def _expect_clear_error(path: Path, what: str) -> None:
    modules, opt = _model(seed=7)
    before = _state(modules)
    with pytest.raises(ValueError, match=what) as info:
        rnnkit.load_checkpoint(path, modules, opt)
    assert str(path) in str(info.value)
    for key, value in _state(modules).items():  # nothing was changed
        np.testing.assert_array_equal(value, before[key], err_msg=key)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_truncated_checkpoint_raises_value_error(saved, fraction):
    path, _, data = saved
    path.write_bytes(data[: int(fraction * len(data))])
    _expect_clear_error(path, "not a readable rnnkit checkpoint|is damaged")


def test_flipped_bytes_raise_or_change_nothing(saved):
    """Random bit flips: either a ValueError, or (a flip in zip metadata that no check
    covers, such as a timestamp) exactly the saved values."""
    path, modules, data = saved
    rng = np.random.default_rng(1)
    errors = 0
    for _ in range(200):
        corrupt = bytearray(data)
        for pos in rng.integers(len(data), size=int(rng.integers(1, 4))):
            corrupt[pos] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(corrupt))
        try:
            loaded, _ = _load_into_fresh(path)
        except ValueError as e:
            assert str(path) in str(e)
            errors += 1
        else:
            _assert_same_state(loaded, modules)
    assert errors > 150  # nearly every flip lands in checked bytes


@pytest.mark.parametrize(
    "content, what",
    [
        (b"", "not a readable rnnkit checkpoint"),
        (b"weights: 1 2 3\n", "not a readable rnnkit checkpoint"),
        ("npy", "a single .npy array"),
        ("npz", "not an rnnkit checkpoint"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_raises_value_error(tmp_path, content, what):
    path = tmp_path / "model.npz"
    if content == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif content == "npz":
        np.savez(path, weight=np.zeros(3))
    else:
        path.write_bytes(content)
    _expect_clear_error(path, what)


def _rewrite(path: Path, edit) -> None:
    """Load the archive's entries, apply ``edit`` to the dict, save them again."""
    with np.load(path) as data:
        entries = {k: data[k] for k in data.files}
    edit(entries)
    with open(path, "wb") as f:
        np.savez(f, **entries)


def test_missing_entry_names_the_file_and_the_key(saved):
    path, _, _ = saved
    _rewrite(path, lambda e: e.pop("module.lstm.bias_hh_l0"))
    _expect_clear_error(path, r"does not fit module 'lstm'.*missing keys \['bias_hh_l0'\]")


def test_wrong_shape_names_the_file_and_leaves_every_module_unchanged(saved):
    path, _, _ = saved

    def edit(e):
        e["module.head.weight"] = np.zeros((5, 17), np.float32)

    _rewrite(path, edit)
    # the LSTM, loaded first, fits: it must be restored when the head does not
    _expect_clear_error(path, r"does not fit module 'head'.*\(5, 17\)")


def test_wrong_dtype_names_the_entry(saved):
    path, _, _ = saved

    def edit(e):
        e["module.head.bias"] = np.array(["a"] * 5)

    _rewrite(path, edit)
    _expect_clear_error(path, r"'module.head.bias' has dtype <U1, expected numbers")


def test_optimizer_state_that_does_not_fit(saved):
    path, _, _ = saved

    def edit(e):
        key = next(k for k in e if k.startswith("optimizer.state.") and k.endswith("exp_avg"))
        e[key] = np.zeros(3, np.float32)

    _rewrite(path, edit)
    _expect_clear_error(path, "does not fit the optimizer")


def test_unexpected_entry(saved):
    path, _, _ = saved
    _rewrite(path, lambda e: e.update({"weights": np.zeros(2)}))
    _expect_clear_error(path, "unexpected entry 'weights'")


def test_a_missing_file_is_file_not_found(tmp_path):
    modules, _ = _model()
    with pytest.raises(FileNotFoundError):
        rnnkit.load_checkpoint(tmp_path / "nothing.npz", modules)
