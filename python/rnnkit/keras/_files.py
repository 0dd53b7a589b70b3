"""Reading a saved Keras model: its configuration and its weight arrays, checked.

Two formats: Keras 3's ``.keras`` (a zip holding ``config.json``, ``metadata.json`` and
``model.weights.h5``) and the legacy full-model HDF5 file (``model_config`` and
``keras_version`` attributes, weights under ``model_weights/<layer name>`` in the order of
each group's ``weight_names`` attribute). Nothing is allocated from a size the file states
before that size is checked against what the file holds.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

# The largest config.json / metadata.json read, and the most a zip member may expand.
_MAX_JSON_BYTES = 64 * 2**20
_MAX_EXPANSION = 100
_MAX_WEIGHT_BYTES = 2**34
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def import_h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(
            "rnnkit.keras needs h5py to read Keras files: pip install 'rnnkit[keras]' "
            "(or pip install h5py)"
        ) from exc
    return h5py


def _parse_json(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from exc


class SavedModel:
    """An open Keras file: ``config`` (the model's config dict), ``keras_version`` (str),
    and ``arrays(layer_key, name, sub)`` for one layer's weights. Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        h5py = import_h5py()
        with open(self.path, "rb") as f:
            head = f.read(8)
        self._zip: zipfile.ZipFile | None = None
        try:
            if head.startswith(b"PK"):
                self._open_keras_zip(h5py)
            elif head == _HDF5_SIGNATURE:
                self._open_legacy_h5(h5py)
            else:
                raise ValueError(
                    f"{self.path} is neither a .keras zip nor an HDF5 file (it starts with "
                    f"{head!r})"
                )
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError, RuntimeError) as exc:
            self.close()
            raise ValueError(f"{self.path} is damaged or truncated: {exc}") from exc
        except BaseException:
            self.close()
            raise
        if not isinstance(self.config, dict):
            self.close()
            raise ValueError(f"{self.path}: the model config is not a JSON object")

    def _member(self, name: str) -> zipfile.ZipInfo:
        assert self._zip is not None
        try:
            return self._zip.getinfo(name)
        except KeyError:
            raise ValueError(f"{self.path} has no {name} (not a Keras 3 .keras file)") from None

    def _read_member(self, name: str, limit: int) -> bytes:
        """A zip member's bytes, refused when it says it expands past ``limit``."""
        info = self._member(name)
        if info.file_size > limit:
            raise ValueError(
                f"{self.path}: {name} says it holds {info.file_size} bytes, more than the "
                f"{limit} accepted"
            )
        return self._zip.read(name)  # type: ignore[union-attr]

    def _open_keras_zip(self, h5py: Any) -> None:
        self._zip = zipfile.ZipFile(self.path)
        self.config = _parse_json(self._read_member("config.json", _MAX_JSON_BYTES), "config.json")
        self.keras_version = "3"
        if "metadata.json" in self._zip.namelist():
            meta = _parse_json(self._read_member("metadata.json", _MAX_JSON_BYTES), "metadata")
            if isinstance(meta, dict) and isinstance(meta.get("keras_version"), str):
                self.keras_version = meta["keras_version"]
        stored = self._member("model.weights.h5").compress_size
        limit = min(_MAX_WEIGHT_BYTES, max(_MAX_JSON_BYTES, _MAX_EXPANSION * stored))
        data = self._read_member("model.weights.h5", limit)
        self._h5 = h5py.File(io.BytesIO(data), "r")
        self._legacy = False
        self._weights_root = self._h5

    def _open_legacy_h5(self, h5py: Any) -> None:
        self._h5 = h5py.File(self.path, "r")
        self._legacy = True
        attrs = self._h5.attrs
        if "model_config" not in attrs:
            raise ValueError(
                f"{self.path} has no model_config attribute: it holds weights only, not a "
                f"whole model (save it with model.save(path))"
            )
        raw = attrs["model_config"]
        self.config = _parse_json(raw.decode() if isinstance(raw, bytes) else raw, "model_config")
        version = attrs.get("keras_version", "2")
        self.keras_version = version.decode() if isinstance(version, bytes) else str(version)
        if "model_weights" not in self._h5:
            raise ValueError(f"{self.path} has no model_weights group")
        self._weights_root = self._h5["model_weights"]

    @property
    def keras_major(self) -> int:
        """The major version of the Keras that wrote the file (2 or 3)."""
        head = self.keras_version.split(".", 1)[0]
        return int(head) if head.isdigit() else 3

    def arrays(self, key: str, name: str, sub: str, where: str) -> list[np.ndarray]:
        """The weights of one layer, in Keras's order (kernel, recurrent kernel, bias).

        ``key``: the layer's group in a .keras file (its class in snake case, numbered);
        ``name``: its name, the group in a legacy file; ``sub``: "" for the layer itself,
        "cell" for a recurrent layer's cell, "forward_layer/cell" or "backward_layer/cell"
        for a Bidirectional's halves. ``where`` names the layer in error messages.
        """
        try:
            if self._legacy:
                return self._legacy_arrays(name, sub, where)
            path = f"layers/{key}/{sub}/vars" if sub else f"layers/{key}/vars"
            if path not in self._weights_root:
                raise ValueError(f"{where}: the weights file has no group {path!r}")
            group = self._weights_root[path]
            names = sorted(group.keys(), key=lambda n: int(n) if n.isdigit() else -1)
            return [_read_dataset(group[n], f"{where}: weight {path}/{n}") for n in names]
        except (OSError, KeyError, RuntimeError) as exc:  # h5py's errors on a damaged file
            raise ValueError(f"{where}: its weights cannot be read: {exc}") from exc

    def _legacy_arrays(self, name: str, sub: str, where: str) -> list[np.ndarray]:
        if name not in self._weights_root:
            raise ValueError(f"{where}: model_weights has no group {name!r}")
        group = self._weights_root[name]
        names = [
            n.decode() if isinstance(n, bytes) else str(n)
            for n in group.attrs.get("weight_names", [])
        ]
        if sub.startswith(("forward_layer", "backward_layer")):
            if len(names) % 2:
                raise ValueError(
                    f"{where}: a Bidirectional layer needs as many backward weights as "
                    f"forward ones, got {len(names)} weights"
                )
            half = len(names) // 2
            names = names[:half] if sub.startswith("forward") else names[half:]
        out = []
        for n in names:
            if n not in group:
                raise ValueError(f"{where}: weight {n!r} is named but missing from the file")
            out.append(_read_dataset(group[n], f"{where}: weight {n!r}"))
        return out

    def close(self) -> None:
        for attr in ("_h5", "_zip"):
            handle = getattr(self, attr, None)
            if handle is not None:
                handle.close()
                setattr(self, attr, None)

    def __enter__(self) -> SavedModel:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _read_dataset(ds: Any, where: str) -> np.ndarray:
    """A floating HDF5 dataset as an array, after checking its declared size is stored."""
    if not hasattr(ds, "dtype") or not hasattr(ds, "shape"):
        raise ValueError(f"{where} is not an array")
    if ds.dtype.kind != "f":
        raise ValueError(f"{where} has dtype {ds.dtype}, expected a floating type")
    nbytes = int(np.prod(ds.shape, dtype=np.float64) * ds.dtype.itemsize)
    if nbytes > _MAX_WEIGHT_BYTES:
        raise ValueError(f"{where} declares shape {ds.shape}: {nbytes} bytes, too large")
    if nbytes and ds.compression is None and ds.id.get_storage_size() < nbytes:
        raise ValueError(
            f"{where} declares shape {ds.shape} ({nbytes} bytes) but the file stores only "
            f"{ds.id.get_storage_size()} bytes of it (truncated?)"
        )
    return np.asarray(ds[()])
