"""Reading and writing the word2vec vector formats (text and binary), GloVe text and
fastText ``.vec``, byte-compatible with gensim's files.

Nothing is allocated from a header before the header is checked against the file's size:
a text row holds at least 2 * dim + 1 bytes, a binary record dim * 4 + 2, so a header
claiming more words than the file can hold is refused before any array is made.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger("rnnkit.embeddings")


def save(path: str | os.PathLike, keys: Sequence[str], vectors: np.ndarray, binary: bool) -> None:
    """Write ``keys`` and their rows of ``vectors`` (n, dim): the header "n dim\\n", then
    per word "word v1 ... vdim\\n" with each float32 printed as numpy's str does (text) or
    "word " and the dim float32 in little-endian order, no separator (binary)."""
    vectors = np.asarray(vectors, dtype="<f4")
    with open(path, "wb") as out:
        out.write(f"{len(keys)} {vectors.shape[1]}\n".encode())
        for key, row in zip(keys, vectors):
            if binary:
                out.write(f"{key} ".encode() + row.tobytes())
            else:
                out.write(f"{key} {' '.join(str(v) for v in row)}\n".encode())


def load(
    path: str | os.PathLike, binary: bool, no_header: bool, unicode_errors: str = "strict"
) -> tuple[list[str], np.ndarray]:
    """Read a vectors file; returns (keys, vectors (n, dim) float32)."""
    if binary and no_header:
        raise ValueError("load_word2vec_format: no_header=True is only for text files")
    with open(path, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        if size == 0:
            raise ValueError(f"{path}: the file is empty, expected a word2vec vectors file")
        with mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if no_header:
                count, dim, start = _sizes_from_rows(data, path, unicode_errors)
            else:
                count, dim, start = _read_header(data, path)
            record = dim * 4 + 2 if binary else 2 * dim + 1
            if count * record > size - start:
                raise EOFError(
                    f"{path}: the header claims {count} words of {dim} floats, which need at "
                    f"least {count * record} bytes, but only {size - start} bytes follow it: "
                    "the file is truncated or its header is wrong"
                )
            reader = _read_binary if binary else _read_text
            return reader(data, start, count, dim, path, unicode_errors)


def _decode(raw: bytes, path: object, where: str, unicode_errors: str) -> str:
    try:
        return raw.decode("utf-8", errors=unicode_errors)
    except UnicodeDecodeError as error:
        raise UnicodeDecodeError(
            "utf-8",
            raw,
            error.start,
            error.end,
            f"{error.reason} in {where} of {path} (unicode_errors='replace' or 'ignore' "
            "loads it anyway)",
        ) from None


def _read_header(data: mmap.mmap, path: object) -> tuple[int, int, int]:
    end = data.find(b"\n", 0, 256)
    raw = data[: end if end >= 0 else 256]
    fields = raw.split()
    try:
        count, dim = (int(f) for f in fields) if len(fields) == 2 else (None, None)
    except ValueError:
        count = dim = None
    if end < 0 or count is None or count < 0 or dim < 1:
        shown = raw.decode("utf-8", errors="replace")[:80]
        raise ValueError(
            f"{path}: line 1 must be the header '<word count> <dimension>' (count >= 0, "
            f"dimension >= 1), got {shown!r}"
        )
    return count, dim, end + 1


def _sizes_from_rows(data: mmap.mmap, path: object, unicode_errors: str) -> tuple[int, int, int]:
    """GloVe: the count is the number of lines, the dimension that of the first line."""
    first_end = data.find(b"\n")
    first = data[: first_end if first_end >= 0 else len(data)]
    dim = len(_decode(first.rstrip(), path, "line 1", unicode_errors).split(" ")) - 1
    if dim < 1:
        raise ValueError(f"{path}: line 1 holds no floats after its word")
    count = sum(1 for _ in iter(data.readline, b""))
    return count, dim, 0


def _read_text(
    data: mmap.mmap, start: int, count: int, dim: int, path: object, unicode_errors: str
) -> tuple[list[str], np.ndarray]:
    keys: list[str] = []
    seen: set[str] = set()
    vectors = np.empty((count, dim), dtype=np.float32)
    data.seek(start)
    line_no = 1 if start else 0
    for _ in range(count):
        raw = data.readline()
        line_no += 1
        if not raw:
            raise EOFError(
                f"{path}: the file ends at line {line_no - 1}, but the header claims {count} "
                "words: the file is truncated or its header is wrong"
            )
        parts = _decode(raw.rstrip(), path, f"line {line_no}", unicode_errors).split(" ")
        if len(parts) != dim + 1:
            raise ValueError(
                f"{path}: line {line_no} (word {parts[0][:40]!r}) has {len(parts) - 1} floats, "
                f"expected {dim}"
            )
        try:
            row = np.array(parts[1:], dtype=np.float32)
        except ValueError as error:
            raise ValueError(f"{path}: line {line_no}: {error}") from None
        _add(keys, seen, vectors, parts[0], row)
    return keys, vectors[: len(keys)]


def _read_binary(
    data: mmap.mmap, start: int, count: int, dim: int, path: object, unicode_errors: str
) -> tuple[list[str], np.ndarray]:
    keys: list[str] = []
    seen: set[str] = set()
    vectors = np.empty((count, dim), dtype=np.float32)
    size, position = len(data), start
    for i in range(count):
        space = data.find(b" ", position)
        if space < 0 or size - (space + 1) < dim * 4:
            raise EOFError(
                f"{path}: the file ends in word {i + 1} of the {count} its header claims: the "
                "file is truncated or its header is wrong"
            )
        where = f"word {i + 1} (byte {position})"
        word = _decode(data[position:space], path, where, unicode_errors).lstrip("\n")
        # A bytes copy, not a view: the mmap cannot close while a view of it lives.
        row = np.frombuffer(data[space + 1 : space + 1 + dim * 4], dtype="<f4")
        _add(keys, seen, vectors, word, row)
        position = space + 1 + dim * 4
    return keys, vectors[: len(keys)]


def _add(keys: list[str], seen: set[str], vectors: np.ndarray, word: str, row: np.ndarray):
    if word in seen:
        logger.warning("word %r listed twice in the vectors file; keeping its first vector", word)
        return
    vectors[len(keys)] = row
    keys.append(word)
    seen.add(word)
