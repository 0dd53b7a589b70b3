"""Save and load training state (modules, optimiser, small extras) as one ``.npz`` file.

Layout of the archive (every entry a plain array; loaded with ``allow_pickle=False``)::

    meta.format                  "rnnkit-checkpoint-1"
    module.<name>.<param>        each module's state_dict(), e.g. module.lstm.weight_hh_l0
    optimizer.<key>              the optimiser's state_dict(), e.g. optimizer.state.1.weight.exp_avg
    extra.<key>                  caller's arrays (vocabulary, epoch, ...)
"""

from __future__ import annotations

import os
import tokenize
import uuid
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "save", "load"]

_FORMAT = "rnnkit-checkpoint-1"
# What reading a damaged or foreign file raises inside np.load and zipfile: a cut archive
# (EOFError, BadZipFile), flipped bytes (BadZipFile: bad CRC; NotImplementedError: a
# "compression method" or "zip version" byte hit; RuntimeError: the "encrypted" flag hit;
# ValueError, SyntaxError, TokenError: a .npy header hit), a file that is no archive at all
# (ValueError: "contains pickled data"). Found by flipping bits of saved checkpoints.
_READ_ERRORS = (
    RuntimeError,
    ValueError,
    OSError,
    EOFError,
    KeyError,
    NotImplementedError,
    SyntaxError,
    tokenize.TokenError,
    zipfile.BadZipFile,
)
_NOT_THE_FILE = (FileNotFoundError, IsADirectoryError, PermissionError)  # clear as they are


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

    The file is written exactly at ``path`` (no suffix is added), atomically: the archive is
    written to a temporary file in the same folder, flushed to disk, then renamed over
    ``path``, so that a crash or kill at any moment leaves either the previous file or the
    new one, never a partial one (a kill may leave the temporary ``<path>.<hex>.tmp``).
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
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    # O_EXCL: never write into someone else's file; mode 0o666 less the umask, like open().
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    _sync_folder(os.path.dirname(os.path.abspath(path)))


def _sync_folder(folder: str) -> None:
    """Flush the folder entry of a rename to disk (POSIX; elsewhere the OS does it)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_entries(path: str) -> dict[str, np.ndarray]:
    """Every array of the archive at ``path``; ValueError naming the file when it is not a
    readable .npz archive. The file is closed however reading ends."""
    with open(path, "rb") as f:
        try:
            data = np.load(f, allow_pickle=False)
        except _NOT_THE_FILE:
            raise
        except _READ_ERRORS as e:
            raise ValueError(
                f"{path} is not a readable rnnkit checkpoint (not an intact .npz archive: {e})"
            ) from e
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} is not an rnnkit checkpoint: a single .npy array, not .npz")
        with data:
            try:
                return {key: data[key] for key in data.files}
            except _READ_ERRORS as e:
                raise ValueError(f"{path} is damaged (cut short or altered: {e})") from e


def _split_entries(path: str, stored: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
    """Archive entries -> (module name -> state dict, optimizer state, extras), checked."""
    fmt = stored.pop("meta.format", None)
    if fmt is None or fmt.dtype.kind != "U" or str(fmt) != _FORMAT:
        raise ValueError(f"{path} is not an rnnkit checkpoint (no meta.format '{_FORMAT}')")
    per_module: dict[str, dict[str, np.ndarray]] = {}
    opt_state: dict[str, np.ndarray] = {}
    extras: dict[str, np.ndarray] = {}
    for key, value in stored.items():
        kind, _, rest = key.partition(".")
        if kind == "module" and "." in rest.strip("."):
            name, param = rest.split(".", 1)
            per_module.setdefault(name, {})[param] = value
        elif kind == "optimizer" and rest:
            opt_state[rest] = value
        elif kind == "extra" and rest:
            extras[rest] = value
            continue  # the caller's arrays: any dtype
        else:
            raise ValueError(f"{path}: unexpected entry '{key}' in the checkpoint")
        if value.dtype.kind not in "biuf" and key != "optimizer.hyper.kind":
            raise ValueError(f"{path}: entry '{key}' has dtype {value.dtype}, expected numbers")
    return per_module, opt_state, extras


def load_checkpoint(
    path: str | os.PathLike[str],
    modules: Mapping[str, Any],
    optimizer: Any = None,
    strict: bool = True,
) -> dict[str, np.ndarray]:
    """Load what ``save_checkpoint`` wrote into ``modules`` (and ``optimizer``).

    With ``strict`` the file must hold exactly the modules named in ``modules`` (each loaded
    with ``load_state_dict(strict=True)``). Returns the ``extra`` arrays by key. A file that
    is not a checkpoint, is damaged, or does not fit the modules raises ``ValueError``
    naming the file and the problem, and leaves the modules and the optimiser unchanged.
    """
    _check_modules(modules)
    path = os.fspath(path)
    per_module, opt_state, extras = _split_entries(path, _read_entries(path))
    missing = [n for n in modules if n not in per_module]
    unexpected = [n for n in per_module if n not in modules]
    if missing or (strict and unexpected):
        raise ValueError(
            f"checkpoint {path} holds modules {sorted(per_module)}; "
            f"missing {missing}, unexpected {unexpected}"
        )
    if optimizer is not None and not opt_state:
        raise ValueError(f"checkpoint {path} holds no optimizer state")
    # Copies of the current state: a module that does not fit must not leave the others
    # (or itself, half copied) changed.
    saved = {name: mod.state_dict() for name, mod in modules.items()}
    saved_opt = optimizer.state_dict() if optimizer is not None else None
    try:
        for name, mod in modules.items():
            try:
                mod.load_state_dict(per_module[name], strict=strict)
            except (ValueError, TypeError) as e:
                raise ValueError(f"checkpoint {path} does not fit module '{name}': {e}") from e
        if optimizer is not None:
            try:
                optimizer.load_state_dict(opt_state)
            except (ValueError, TypeError) as e:
                raise ValueError(f"checkpoint {path} does not fit the optimizer: {e}") from e
    except ValueError:
        for name, mod in modules.items():
            mod.load_state_dict(saved[name])
        if optimizer is not None:
            optimizer.load_state_dict(saved_opt)
        raise
    return extras


# Short names for use as ``rnnkit.checkpoint.save(...)`` / ``rnnkit.checkpoint.load(...)``.
save = save_checkpoint
load = load_checkpoint
