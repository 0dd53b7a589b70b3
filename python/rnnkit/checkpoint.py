"""Save and load training state (modules, optimiser, small extras) as one ``.npz`` file.

Layout of the archive (every entry a plain array; loaded with ``allow_pickle=False``)::

    meta.format                  "rnnkit-checkpoint-1"
    module.<name>.<param>        each module's state_dict(), e.g. module.lstm.weight_hh_l0
    optimizer.<key>              the optimiser's state_dict(), e.g. optimizer.state.1.weight.exp_avg
    extra.<key>                  caller's arrays (vocabulary, epoch, ...)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "save", "load"]

_FORMAT = "rnnkit-checkpoint-1"


def _check_modules(modules: Any) -> Mapping[str, Any]:
    if not isinstance(modules, Mapping):
        raise TypeError(f"modules must be a dict of name -> module, got {type(modules).__name__}")
    for name, mod in modules.items():
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"module names must be non-empty strings without '.', got {name!r}")
        if not (hasattr(mod, "state_dict") and hasattr(mod, "load_state_dict")):
            raise TypeError(
                f"modules['{name}'] must have state_dict() and load_state_dict(), "
                f"got {type(mod).__name__}"
            )
    return modules


def save_checkpoint(
    path: str | os.PathLike[str],
    modules: Mapping[str, Any],
    optimizer: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write ``modules`` (name -> module), ``optimizer`` and ``extra`` arrays to ``path``.

    The file is written exactly at ``path`` (no suffix is added), atomically: a crash
    mid-write leaves any previous file intact.
    """
    arrays: dict[str, np.ndarray] = {"meta.format": np.array(_FORMAT)}
    for name, mod in _check_modules(modules).items():
        for key, value in mod.state_dict().items():
            arrays[f"module.{name}.{key}"] = np.asarray(value)
    if optimizer is not None:
        for key, value in optimizer.state_dict().items():
            arrays[f"optimizer.{key}"] = np.asarray(value)
    for key, value in (extra or {}).items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"extra['{key}'] must convert to a non-object array")
        arrays[f"extra.{key}"] = arr
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_checkpoint(
    path: str | os.PathLike[str],
    modules: Mapping[str, Any],
    optimizer: Any = None,
    strict: bool = True,
) -> dict[str, np.ndarray]:
    """Load what ``save_checkpoint`` wrote into ``modules`` (and ``optimizer``).

    With ``strict`` the file must hold exactly the modules named in ``modules`` (each loaded
    with ``load_state_dict(strict=True)``). Returns the ``extra`` arrays by key.
    """
    _check_modules(modules)
    with np.load(os.fspath(path), allow_pickle=False) as data:
        stored = {k: data[k] for k in data.files}
    fmt = str(stored.pop("meta.format", ""))
    if fmt != _FORMAT:
        raise ValueError(f"{os.fspath(path)} is not an rnnkit checkpoint (format {fmt!r})")
    per_module: dict[str, dict[str, np.ndarray]] = {}
    opt_state: dict[str, np.ndarray] = {}
    extras: dict[str, np.ndarray] = {}
    for key, value in stored.items():
        kind, rest = key.split(".", 1)
        if kind == "module":
            name, param = rest.split(".", 1)
            per_module.setdefault(name, {})[param] = value
        elif kind == "optimizer":
            opt_state[rest] = value
        elif kind == "extra":
            extras[rest] = value
        else:
            raise ValueError(f"unexpected entry '{key}' in checkpoint {os.fspath(path)}")
    missing = [n for n in modules if n not in per_module]
    unexpected = [n for n in per_module if n not in modules]
    if missing or (strict and unexpected):
        raise ValueError(
            f"checkpoint {os.fspath(path)} holds modules {sorted(per_module)}; "
            f"missing {missing}, unexpected {unexpected}"
        )
    for name, mod in modules.items():
        mod.load_state_dict(per_module[name], strict=strict)
    if optimizer is not None:
        if not opt_state:
            raise ValueError(f"checkpoint {os.fspath(path)} holds no optimizer state")
        optimizer.load_state_dict(opt_state)
    return extras


# Short names for use as ``rnnkit.checkpoint.save(...)`` / ``rnnkit.checkpoint.load(...)``.
save = save_checkpoint
load = load_checkpoint
