"""Standard evaluations of word vectors, computed as gensim 4 computes them: correlation with
human similarity judgements (word pairs, e.g. WordSim-353) and analogy questions
(e.g. Mikolov's questions-words.txt)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rnnkit.embeddings.keyedvectors import KeyedVectors

logger = logging.getLogger("rnnkit.embeddings")


def _vocabulary(kv: KeyedVectors, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
    """Lookup key -> row over the first restrict_vocab words; case-insensitively, the
    upper-cased key maps to the first (most frequent) word that upper-cases to it."""
    if (
        isinstance(restrict_vocab, bool)
        or not isinstance(restrict_vocab, int)
        or restrict_vocab < 1
    ):
        raise ValueError(f"restrict_vocab must be an int >= 1, got {restrict_vocab!r}")
    keys = kv.index_to_key[:restrict_vocab]
    if case_insensitive:
        return {k.upper(): i for i, k in reversed(list(enumerate(keys)))}
    return {k: i for i, k in enumerate(keys)}


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation coefficient of two (n,) samples (float64)."""
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def ranks(x: np.ndarray) -> np.ndarray:
    """(n,) ranks 1..n of x, ties given their mean rank (as scipy.stats.rankdata)."""
    order = np.argsort(x, kind="mergesort")
    ranked = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    while start < len(x):
        end = start + 1
        while end < len(x) and sorted_x[end] == sorted_x[start]:
            end += 1
        ranked[order[start:end]] = (start + end + 1) / 2.0
        start = end
    return ranked


def evaluate_word_pairs(
    kv: KeyedVectors, pairs: str | os.PathLike, delimiter: str, encoding: str,
    restrict_vocab: int, case_insensitive: bool, dummy4unknown: bool,
) -> tuple[float, float, float]:  # fmt: skip
    """KeyedVectors.evaluate_word_pairs (which holds the defaults and says what they do)."""
    vocabulary = _vocabulary(kv, restrict_vocab, case_insensitive)
    gold: list[float] = []
    model: list[float] = []
    oov = 0
    with open(pairs, encoding=encoding) as lines:
        for line_no, line in enumerate(lines):
            if not line or line.startswith("#"):
                continue
            try:
                fields = line.split(delimiter)
                a, b, similarity = [f.upper() for f in fields] if case_insensitive else fields
                similarity = float(similarity)
            except (ValueError, TypeError):
                logger.info("skipping invalid line #%d in %s", line_no, pairs)
                continue
            if a not in vocabulary or b not in vocabulary:
                oov += 1
                if dummy4unknown:
                    model.append(0.0)
                    gold.append(similarity)
                continue
            gold.append(similarity)
            va, vb = kv.vectors[vocabulary[a]], kv.vectors[vocabulary[b]]
            # float32 unit vectors and their float32 dot product, as gensim's similarity
            model.append(float(np.dot(va / np.linalg.norm(va), vb / np.linalg.norm(vb))))
    if not gold:
        raise ValueError(
            f"no valid similarity judgements found in {pairs}: either invalid format or all "
            f"are out-of-vocabulary in {kv!r}"
        )
    gold_a, model_a = np.array(gold), np.array(model)
    pearson_r = pearson(gold_a, model_a)
    spearman_r = pearson(ranks(gold_a), ranks(model_a))
    oov_ratio = oov / (len(gold) if dummy4unknown else len(gold) + oov) * 100
    logger.info(
        "%s: Pearson %.4f, Spearman %.4f, pairs with unknown words %.1f%%",
        pairs, pearson_r, spearman_r, oov_ratio,
    )  # fmt: skip
    return pearson_r, spearman_r, oov_ratio


def evaluate_word_analogies(
    kv: KeyedVectors, analogies: str | os.PathLike, restrict_vocab: int,
    case_insensitive: bool, dummy4unknown: bool,
) -> tuple[float, list[dict[str, Any]]]:  # fmt: skip
    """KeyedVectors.evaluate_word_analogies (which holds the defaults and says what they
    do)."""
    vocabulary = _vocabulary(kv, restrict_vocab, case_insensitive)
    limit = min(restrict_vocab, len(kv))
    unit = kv.vectors[:limit] / kv.norms()[:limit, None]
    norms = kv.norms()[:limit]
    sections: list[dict[str, Any]] = []
    section: dict[str, Any] | None = None
    oov = questions = 0
    with open(analogies, "rb") as lines:
        for line_no, raw in enumerate(lines):
            line = raw.decode("utf8")
            if line.startswith(": "):
                if section:
                    sections.append(section)
                section = {"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []}
                continue
            if not section:
                raise ValueError(f"missing section header before line #{line_no} in {analogies}")
            words = [w.upper() for w in line.split()] if case_insensitive else line.split()
            if len(words) != 4:
                logger.info("skipping invalid line #%d in %s", line_no, analogies)
                continue
            questions += 1
            a, b, c, expected = words
            if any(w not in vocabulary for w in words):
                oov += 1
                if dummy4unknown:
                    section["incorrect"].append((a, b, c, expected))
                continue
            rows = [vocabulary[a], vocabulary[b], vocabulary[c]]
            predicted = _solve(kv, unit, norms, rows, vocabulary, {a, b, c}, case_insensitive)
            outcome = "correct" if predicted == expected else "incorrect"
            section[outcome].append((a, b, c, expected))
    if section:
        sections.append(section)
    total = {
        "section": "Total accuracy",
        "correct": [q for s in sections for q in s["correct"]],
        "incorrect": [q for s in sections for q in s["incorrect"]],
    }
    sections.append(total)
    answered = len(total["correct"]) + len(total["incorrect"])
    score = len(total["correct"]) / answered if answered else 0.0
    logger.info(
        "%s: %.1f%% correct of %d; questions with unknown words %.1f%%",
        analogies, 100 * score, answered, 100 * oov / max(questions, 1),
    )  # fmt: skip
    return score, sections


def _solve(
    kv: KeyedVectors,
    unit: np.ndarray,
    norms: np.ndarray,
    rows: list[int],
    vocabulary: dict[str, int],
    ignore: set[str],
    case_insensitive: bool,
) -> str | None:
    """3CosAdd over the restricted vectors (gensim's most_similar with topn=5): the first
    of the 5 nearest to b - a + c (leaving out a, b, c) that is in the vocabulary and not a
    question word, or the last of them when none is."""
    a, b, c = rows
    mean = np.stack([unit[b], unit[c], -unit[a]]).mean(axis=0)
    mean = (mean / np.linalg.norm(mean)).astype(np.float32)
    distances = kv.vectors[: len(norms)] @ mean / norms
    best = np.argsort(-distances, kind="stable")[: 5 + 3]
    candidates = [i for i in best if i not in rows][:5]
    predicted = None
    for i in candidates:
        predicted = kv.index_to_key[i].upper() if case_insensitive else kv.index_to_key[i]
        if predicted in vocabulary and predicted not in ignore:
            break
    return predicted
