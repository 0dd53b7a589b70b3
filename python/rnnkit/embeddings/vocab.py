"""Vocabulary of a Word2Vec model: the counting pass over the corpus and the tables the
training core reads (subsampling thresholds, the negative-sampling table, the Huffman tree).

Each construction follows gensim 4's, so that the same corpus and settings give the same
vocabulary order and the same tables.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Iterable

import numpy as np

logger = logging.getLogger("rnnkit.embeddings")


def check_sentence(sentence: object, sentence_no: int) -> None:
    """Raise TypeError unless ``sentence`` is a list-like of tokens (not a bare string)."""
    if isinstance(sentence, (str, bytes)):
        raise TypeError(
            f"sentences: sentence {sentence_no} is a {type(sentence).__name__}, expected a list "
            "of str tokens (split the text into words first)"
        )


def _first_sentence_with(sentences: Iterable, token: object) -> int:
    """Index of the first sentence holding ``token`` (for error messages only)."""
    for sentence_no, sentence in enumerate(sentences):
        if token in sentence:
            return sentence_no
    return -1


def _check_tokens(counts: Counter, sentences: Iterable) -> None:
    for token in counts:
        if not isinstance(token, str):
            sentence_no = _first_sentence_with(sentences, token)
            raise TypeError(
                f"sentences: token {token!r} in sentence {sentence_no} is a "
                f"{type(token).__name__}, expected str"
            )


def scan_vocab(sentences: Iterable, max_vocab_size: int | None) -> tuple[Counter, int, int]:
    """Count the tokens of the corpus, in the order they first occur.

    Returns (counts, total_words, n_sentences). When ``max_vocab_size`` is set and the
    count of distinct words passes it, words with a count below a rising threshold are
    dropped (gensim's prune_vocab: the threshold starts at 1 and grows by 1 per pruning).
    """
    counts: Counter = Counter()
    total_words = 0
    min_reduce = 1
    n_sentences = 0
    for sentence_no, sentence in enumerate(sentences):
        check_sentence(sentence, sentence_no)
        try:
            counts.update(sentence)
            total_words += len(sentence)
        except TypeError as error:
            raise TypeError(
                f"sentences: sentence {sentence_no} must be a sized iterable of str tokens "
                f"({error})"
            ) from None
        n_sentences = sentence_no + 1
        if max_vocab_size and len(counts) > max_vocab_size:
            _check_tokens(counts, sentences)
            for word in [w for w, c in counts.items() if c < min_reduce]:
                del counts[word]
            min_reduce += 1
    _check_tokens(counts, sentences)
    return counts, total_words, n_sentences


def sort_vocab(counts: Counter, min_count: int) -> tuple[list[str], np.ndarray]:
    """Words with count >= min_count, by descending count; ties: the word seen later first
    (gensim's order). Returns (index_to_key, counts (V,) int64)."""
    kept = [(w, c) for w, c in counts.items() if c >= min_count]
    kept_counts = np.array([c for _, c in kept], dtype=np.int64)
    order = np.lexsort((-np.arange(len(kept)), -kept_counts))
    return [kept[i][0] for i in order], kept_counts[order]


def sample_thresholds(counts: np.ndarray, sample: float) -> np.ndarray:
    """(V,) uint32 thresholds: word w survives subsampling with probability
    min(1, (sqrt(c_w / t) + 1) * t / c_w), t = sample * total (or the count `sample`
    itself scaled by (3 + sqrt 5) / 2 when sample >= 1), as gensim computes it."""
    retain_total = int(counts.sum())
    if not sample:
        threshold = float(retain_total)
    elif sample < 1.0:
        threshold = sample * retain_total
    else:
        threshold = float(int(sample * (3 + np.sqrt(5)) / 2))
    out = np.empty(len(counts), dtype=np.uint32)
    for w, v in enumerate(counts.tolist()):
        probability = (np.sqrt(v / threshold) + 1) * (threshold / v)
        out[w] = np.uint32(min(probability, 1.0) * (2**32 - 1))
    return out


def cum_table(counts: np.ndarray, ns_exponent: float) -> np.ndarray:
    """(V,) uint32 cumulative table of count ** ns_exponent scaled to 2**31 - 1: a draw x
    uniform in [0, last) picks the first word whose entry exceeds x (gensim's make_cum_table)."""
    domain = 2**31 - 1
    powers = [c ** float(ns_exponent) for c in counts.tolist()]
    total = sum(powers)
    table = np.zeros(len(counts), dtype=np.uint32)
    cumulative = 0.0
    for w, p in enumerate(powers):
        cumulative += p
        table[w] = round(cumulative / total * domain)
    return table


class _Node(tuple):
    """(count, index, left, right) ordered by count alone, as gensim's heap items are: equal
    counts keep the heap's own order, which decides the tree."""

    def __lt__(self, other: tuple) -> bool:
        return self[0] < other[0]


def huffman_codes(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Huffman tree over the counts, built as gensim builds it (a heap of nodes by count,
    inner node i numbered V + i, left child code 0, right 1).

    Returns codes (V, L) uint8, points (V, L) uint32 (inner node ids 0..V-2 from the root
    down) and code_lengths (V,) int32, L the longest code (at least 1).
    """
    V = len(counts)
    heap = [_Node((c, i, None, None)) for i, c in enumerate(counts.tolist())]
    heapq.heapify(heap)
    for i in range(V - 1):
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        heapq.heappush(heap, _Node((a[0] + b[0], i + V, a, b)))
    paths: list[tuple[list[int], list[int]]] = [([], [])] * V
    stack = [(heap[0], [], [])]
    while stack:
        node, code, point = stack.pop()
        if node[1] < V:
            paths[node[1]] = (code, point)
        else:
            point = point + [node[1] - V]
            stack.append((node[2], code + [0], point))
            stack.append((node[3], code + [1], point))
    L = max(1, max(len(c) for c, _ in paths))
    codes = np.zeros((V, L), dtype=np.uint8)
    points = np.zeros((V, L), dtype=np.uint32)
    lengths = np.zeros(V, dtype=np.int32)
    for w, (code, point) in enumerate(paths):
        codes[w, : len(code)] = code
        points[w, : len(point)] = point
        lengths[w] = len(code)
    return codes, points, lengths
