"""The checks and table-building behind ``Embedding.from_pretrained`` and
``Embedding.from_keyed_vectors``: a pretrained matrix validated, and a vocabulary's rows
looked up in a set of word vectors, with the rows of missing words initialised."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnnkit._validation import DTYPES, as_state_value, check_choice, check_dtype, check_seed

MISSING_CHOICES = ("random", "zeros")
# The logger of rnnkit.embeddings, where Word2Vec reports too.
logger = logging.getLogger("rnnkit.embeddings")


def table_dtype(name: str, values: np.ndarray, dtype: Any) -> np.dtype:
    """``dtype`` checked, or (None) the table's own when it is float32/float64, else float32.

    ``values`` must already be a floating array; ``name`` is how messages show it."""
    if dtype is not None:
        return check_dtype(dtype)
    if values.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {values.dtype}")
    return values.dtype if values.dtype in DTYPES.values() else DTYPES["float32"]


def as_pretrained_matrix(name: str, value: Any) -> np.ndarray:
    """``value`` (a NumPy array, array-like or torch tensor) as a finite, floating 2-D array
    ``(num_embeddings >= 1, embedding_dim >= 1)``, not copied when it already is one."""
    arr = as_state_value(name, value)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(
            f"{name} must be 2-D (num_embeddings, embedding_dim) with both sizes >= 1, "
            f"got shape {arr.shape}"
        )
    # one pass without a temporary the size of the table; NaN and infinity reach the sum
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN: still caught
        total = arr.sum(dtype=np.float64)
    if not np.isfinite(total):
        bad = ~np.isfinite(arr).all(axis=1)  # (n,)
        if bad.any():
            raise ValueError(
                f"{name} must be finite: row {int(np.argmax(bad))} holds NaN or infinity "
                f"({int(bad.sum())} such row(s))"
            )
    return arr


def check_vocabulary(vocabulary: Any) -> list[str]:
    """A sequence of distinct strings, one per embedding row, as a list."""
    if isinstance(vocabulary, (str, bytes)) or not isinstance(vocabulary, Sequence):
        raise TypeError(
            "vocabulary must be a sequence of words (list or tuple of str; row i embeds "
            f"vocabulary[i]), got {type(vocabulary).__name__}"
        )
    words = list(vocabulary)
    if not words:
        raise ValueError("vocabulary is empty: expected at least one word")
    first_at: dict[str, int] = {}
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise TypeError(f"vocabulary[{i}] must be a str, got {word!r} ({type(word).__name__})")
        if word in first_at:
            raise ValueError(
                f"vocabulary[{i}] = {word!r} repeats vocabulary[{first_at[word]}]: "
                "each word must have one row"
            )
        first_at[word] = i
    return words


def keyed_vectors_parts(kv: Any) -> tuple[np.ndarray, Mapping[str, int]]:
    """``kv.vectors (n, dim)`` and ``kv.key_to_index`` of a KeyedVectors (rnnkit's or
    gensim's: anything with those two attributes), checked."""
    vectors = getattr(kv, "vectors", None)
    key_to_index = getattr(kv, "key_to_index", None)
    if vectors is None or not isinstance(key_to_index, Mapping):
        raise TypeError(
            "kv must be a KeyedVectors (with .vectors and .key_to_index, such as "
            f"rnnkit.embeddings.KeyedVectors or gensim's), got {type(kv).__name__}"
        )
    return as_pretrained_matrix("kv.vectors", vectors), key_to_index


def rows_for_vocabulary(
    vectors: np.ndarray,
    key_to_index: Mapping[str, int],
    words: list[str],
    padding_idx: int | None,
    missing: str,
    seed: Any,
    dtype: np.dtype,
) -> tuple[np.ndarray, list[str]]:
    """The table ``(len(words), dim)`` whose row i is the vector of ``words[i]``, and the
    words that ``key_to_index`` lacks, in vocabulary order.

    Missing rows are zeros, or (``missing="random"``) drawn from N(0, s^2) with s the
    standard deviation of all of ``vectors``, so they start at the found rows' scale. The
    row ``padding_idx`` (already in [0, len(words))) is zeros and never counts as missing.
    """
    missing = check_choice("missing", missing, MISSING_CHOICES)
    seed = check_seed(seed)
    dim = vectors.shape[1]
    table = np.zeros((len(words), dim), dtype=dtype)  # (V, dim)
    found_rows, found_at, missing_rows = [], [], []
    for i, word in enumerate(words):
        if i == padding_idx:
            continue
        j = key_to_index.get(word)
        if j is None:
            missing_rows.append(i)
        else:
            found_rows.append(i)
            found_at.append(j)
    table[found_rows] = vectors[found_at]
    scale = 0.0
    if missing == "random" and missing_rows:
        scale = float(vectors.std(dtype=np.float64))
        rng = np.random.default_rng(seed)
        table[missing_rows] = rng.normal(0.0, scale, (len(missing_rows), dim))
    missing_words = [words[i] for i in missing_rows]
    if missing_words:  # the caller gets the list; a log reader sees the count
        fill = "zeros" if missing == "zeros" else f"drawn from N(0, {scale:.4g}^2)"
        more = ", ..." if len(missing_words) > 10 else ""
        logger.info(
            "%d of %d vocabulary words are not in the vectors (%s%s); their rows are %s",
            len(missing_words), len(words), ", ".join(missing_words[:10]), more, fill,
        )  # fmt: skip
    return table, missing_words
