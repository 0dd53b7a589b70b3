"""Saving and loading embedding models (KeyedVectors, Word2Vec, Doc2Vec) as one ``.npz``
archive of plain arrays plus JSON metadata; no pickle.

The archive is written by ``rnnkit.checkpoint.save_checkpoint`` (atomically: a temporary
file renamed over the target) with the model's arrays as its extras::

    extra.meta          JSON text: {"format": "rnnkit-embeddings-1", "kind": ..., settings}
    extra.<name>        the model's arrays (vectors, counts, output weights, ...)

Keys (words, document tags) are stored as UTF-8 bytes joined into one uint8 array with
(n,) int64 end offsets, and a (n,) uint8 mask marking int keys (document tags may be ints).

Before numpy reads an entry, its .npy header is checked against the entry's stored size,
so a damaged or foreign file cannot make the loader allocate more than the file holds.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnnkit import checkpoint

FORMAT = "rnnkit-embeddings-1"
# A key is a word (str) or a document tag (str or int).
Key = str | int


def save(path: str | os.PathLike, kind: str, meta: Mapping[str, Any], arrays: Mapping) -> None:
    """Write ``arrays`` (name -> array of numbers) and ``meta`` (JSON-able settings) for a
    model of ``kind`` to ``path`` (exactly that path, no suffix added)."""
    header = {"format": FORMAT, "kind": kind, **meta}
    extra = {"meta": np.array(json.dumps(header))}
    for name, value in arrays.items():
        if value is not None:
            extra[name] = np.ascontiguousarray(value)
    checkpoint.save_checkpoint(path, {}, extra=extra)


def load(path: str | os.PathLike, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read what ``save`` wrote for a model of ``kind``; returns (meta, arrays). A file that
    is not such an archive, holds another kind, or is damaged raises ValueError naming it."""
    path = os.fspath(path)
    _check_entry_sizes(path)
    extras = checkpoint.load_checkpoint(path, {})
    raw = extras.pop("meta", None)
    if raw is None or raw.dtype.kind != "U" or raw.ndim != 0:
        raise ValueError(f"{path} is not an rnnkit embeddings file (no JSON metadata entry)")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the metadata is not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an rnnkit embeddings file (format is not {FORMAT!r})")
    if meta.get("kind") != kind:
        raise ValueError(f"{path} holds a {meta.get('kind')!r}, not a {kind!r}")
    for name, value in extras.items():
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{path}: entry {name!r} has dtype {value.dtype}, expected numbers")
    return meta, extras


def _check_entry_sizes(path: str) -> None:
    """ValueError unless every entry of the archive is stored uncompressed and its .npy
    header claims no more bytes than the entry holds."""
    try:
        with zipfile.ZipFile(path) as archive:
            file_size = os.path.getsize(path)
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > file_size:
                    raise ValueError(f"entry {info.filename!r} is compressed or oversized")
                with archive.open(info) as entry:
                    version = np.lib.format.read_magic(entry)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(entry)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(entry)
                    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if dtype.hasobject or claimed > info.file_size:
                        raise ValueError(
                            f"entry {info.filename!r} claims {claimed} bytes of {dtype} but "
                            f"holds {info.file_size}"
                        )
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, SyntaxError) as error:
        raise ValueError(f"{path} is not a readable rnnkit embeddings file ({error})") from None


def encode_keys(keys: Sequence[Key]) -> dict[str, np.ndarray]:
    """Keys as arrays: key_bytes (total,) uint8, key_ends (n,) int64, key_is_int (n,) uint8."""
    encoded = [str(k).encode("utf-8") for k in keys]
    return {
        "key_bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "key_ends": np.cumsum([len(e) for e in encoded], dtype=np.int64),
        "key_is_int": np.array([not isinstance(k, str) for k in keys], dtype=np.uint8),
    }


def decode_keys(path: object, arrays: Mapping[str, np.ndarray], count: int) -> list[Key]:
    """The ``count`` keys that encode_keys stored; ValueError when the arrays do not hold
    them."""
    blob = require(path, arrays, "key_bytes", np.uint8, (-1,)).tobytes()
    ends = require(path, arrays, "key_ends", np.int64, (count,))
    is_int = require(path, arrays, "key_is_int", np.uint8, (count,))
    if count and (np.any(np.diff(ends) < 0) or ends[0] < 0 or ends[-1] != len(blob)):
        raise ValueError(f"{path}: the key offsets do not fit the stored key bytes")
    keys: list[Key] = []
    start = 0
    try:
        for end, integer in zip(ends.tolist(), is_int.tolist()):
            text = blob[start:end].decode("utf-8")
            keys.append(int(text) if integer else text)
            start = end
    except ValueError as error:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"{path}: key {len(keys)} is damaged ({error})") from None
    return keys


def require(
    path: object, arrays: Mapping[str, np.ndarray], name: str, dtype: type, shape: tuple
) -> np.ndarray:
    """arrays[name], checked to have ``dtype`` and ``shape`` (-1: any extent)."""
    if name not in arrays:
        raise ValueError(f"{path}: entry {name!r} is missing")
    value = arrays[name]
    fits = len(value.shape) == len(shape) and all(
        want in (-1, got) for want, got in zip(shape, value.shape)
    )
    if value.dtype != np.dtype(dtype) or not fits:
        raise ValueError(
            f"{path}: entry {name!r} has dtype {value.dtype} and shape {value.shape}, expected "
            f"{np.dtype(dtype)} and {shape} (-1: any)"
        )
    return value


def setting(path: object, meta: Mapping[str, Any], name: str, kind: type) -> Any:
    """meta[name], checked to be of ``kind`` (int settings are not bools)."""
    value = meta.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{path}: setting {name!r} is {value!r}, expected a {kind.__name__}")
    return value
