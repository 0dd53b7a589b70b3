"""Word2Vec: CBOW and skip-gram word vectors trained in the C++ core (gensim's names and
semantics)."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np

from rnnkit import _core
from rnnkit.embeddings import vocab
from rnnkit.embeddings.keyedvectors import KeyedVectors

logger = logging.getLogger("rnnkit.embeddings")

# A sentence longer than this is trained as consecutive pieces of this many words
# (windows do not cross a piece's border), like gensim's MAX_WORDS_IN_BATCH.
MAX_SENTENCE_WORDS = 10000
# Words of corpus per worker in one call to the core.
BATCH_WORDS_PER_WORKER = 10000


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Word2Vec: {name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"Word2Vec: {name} must be {bound}, got {value}")
    return int(value)


def _check_float(name: str, value: object, low: float, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"Word2Vec: {name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(f"Word2Vec: {name} must be finite and {'>' if strict else '>='} {low}")
    return value


def _check_corpus(sentences: object) -> Iterable:
    if isinstance(sentences, (str, bytes)) or not isinstance(sentences, Iterable):
        raise TypeError(
            "Word2Vec: sentences must be an iterable of token lists, got "
            f"{type(sentences).__name__}"
        )
    if iter(sentences) is sentences:
        raise TypeError(
            "Word2Vec: sentences must be re-iterable (read once per epoch): a list, or an "
            f"object whose __iter__ starts over; got a one-shot {type(sentences).__name__}"
        )
    return sentences


class Word2Vec:
    """Word vectors by word2vec (Mikolov et al.), trained as gensim 4 trains them.

    ``sentences`` is any re-iterable of token lists (str tokens); it is read once to
    count words and once per epoch, and fed to the core in batches, never held whole.
    ``sg=1`` trains skip-gram (else CBOW, the mean of the context); ``hs=1`` hierarchical
    softmax, ``negative > 0`` negative sampling (both may be on). ``sample`` is the
    subsampling threshold of frequent words, ``alpha`` decays linearly to ``min_alpha``
    over all epochs. ``workers`` threads train (default ``rnnkit.get_num_threads()``);
    with ``workers=1`` a seed gives the same vectors on every run. ``callbacks``: each is
    called after every epoch as ``callback(model, epoch)`` (or ``callback.on_epoch_end(
    model)`` when it has that method). The vectors are ``model.wv`` (a KeyedVectors over
    the model's own (V, vector_size) float32 input matrix).
    """

    def __init__(
        self,
        sentences: Iterable[Sequence[str]] | None = None,
        vector_size: int = 100,
        window: int = 5,
        min_count: int = 5,
        sg: int = 0,
        hs: int = 0,
        negative: int = 5,
        ns_exponent: float = 0.75,
        sample: float = 1e-3,
        alpha: float = 0.025,
        min_alpha: float = 1e-4,
        epochs: int = 5,
        workers: int | None = None,
        seed: int = 0,
        max_vocab_size: int | None = None,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.vector_size = _check_int("vector_size", vector_size, 1, 1 << 20)
        self.window = _check_int("window", window, 1, 1 << 20)
        self.min_count = _check_int("min_count", min_count, 0)
        self.sg = _check_int("sg", sg, 0, 1)
        self.hs = _check_int("hs", hs, 0, 1)
        self.negative = _check_int("negative", negative, 0, 1 << 20)
        if self.hs == 0 and self.negative == 0:
            raise ValueError("Word2Vec: set hs=1 or negative > 0, otherwise nothing is trained")
        self.ns_exponent = _check_float("ns_exponent", ns_exponent, -math.inf)
        self.sample = _check_float("sample", sample, 0.0)
        self.alpha = _check_float("alpha", alpha, 0.0, strict=True)
        self.min_alpha = _check_float("min_alpha", min_alpha, 0.0)
        self.epochs = _check_int("epochs", epochs, 1)
        if workers is None:
            workers = _core.get_num_threads()
        self.workers = _check_int("workers", workers, 1, _core.MAX_THREADS)
        self.seed = _check_int("seed", seed, -(2**63), 2**64 - 1)
        self.max_vocab_size = (
            None if max_vocab_size is None else _check_int("max_vocab_size", max_vocab_size, 1)
        )
        self.callbacks = list(callbacks)
        self.wv: KeyedVectors | None = None
        self.training_stats: list[dict[str, float]] = []
        if sentences is not None:
            self.build_vocab(sentences)
            self.train(sentences)

    def build_vocab(self, sentences: Iterable[Sequence[str]]) -> None:
        """Count the corpus, keep words with count >= min_count (by descending count) and
        build the tables and the initial vectors (uniform in [-1/(2 D), 1/(2 D)) from seed,
        the output matrices zero)."""
        sentences = _check_corpus(sentences)
        counts, total_words, n_sentences = vocab.scan_vocab(sentences, self.max_vocab_size)
        if total_words == 0:
            raise ValueError(
                f"Word2Vec: the corpus is empty ({n_sentences} sentences, no words): nothing "
                "to train on"
            )
        words, word_counts = vocab.sort_vocab(counts, self.min_count)
        if not words:
            raise ValueError(
                f"Word2Vec: no word occurs min_count={self.min_count} times (the most "
                f"frequent occurs {max(counts.values())} times in {total_words} words): the "
                "vocabulary is empty; lower min_count or give a larger corpus"
            )
        if len(words) >= 2**31 - 1:
            raise ValueError(f"Word2Vec: {len(words)} words is more than int32 ids can hold")
        logger.info(
            "vocabulary: %d sentences, %d words, %d distinct, %d with count >= %d",
            n_sentences, total_words, len(counts), len(words), self.min_count,
        )  # fmt: skip
        self.corpus_total_words = total_words
        self.word_counts = word_counts
        V, D = len(words), self.vector_size
        self.sample_int = vocab.sample_thresholds(word_counts, self.sample)
        self.cum_table = vocab.cum_table(word_counts, self.ns_exponent) if self.negative else None
        if self.hs:
            self.codes, self.points, self.code_lengths = vocab.huffman_codes(word_counts)
        else:
            self.codes = self.points = self.code_lengths = None
        rng = np.random.default_rng(seed=self.seed)
        vectors = rng.random((V, D), dtype=np.float32)
        vectors *= 2.0
        vectors -= 1.0
        vectors /= D
        self.wv = KeyedVectors(words, vectors)
        self.syn1neg = np.zeros((V, D), np.float32) if self.negative else None
        self.syn1 = np.zeros((V - 1, D), np.float32) if self.hs else None
        # One LCG state per worker (48 bits), derived from the seed.
        states = np.random.SeedSequence(self.seed % 2**64).generate_state(self.workers, np.uint64)
        self.rng_states = states & np.uint64(2**48 - 1)

    def train(self, sentences: Iterable[Sequence[str]], epochs: int | None = None) -> None:
        """Train ``epochs`` (default: the model's) passes over ``sentences`` (the corpus
        build_vocab counted: its word total drives the learning-rate decay)."""
        if self.wv is None:
            raise RuntimeError("Word2Vec.train: call build_vocab(sentences) first")
        sentences = _check_corpus(sentences)
        epochs = self.epochs if epochs is None else _check_int("epochs", epochs, 1)
        trainer = _core.Word2VecTrainer(
            self.wv.vectors, self.syn1neg, self.syn1, self.cum_table, self.sample_int,
            self.codes, self.points, self.code_lengths,
            bool(self.sg), self.negative, self.window, self.sample > 0,
        )  # fmt: skip
        total = self.corpus_total_words
        for epoch in range(epochs):
            start = time.perf_counter()
            raw_words = trained = 0
            for ids, ends, batch_raw in _prefetch(self._batches(sentences)):
                progress = (epoch + raw_words / total) / epochs
                alpha = max(self.min_alpha, self.alpha - (self.alpha - self.min_alpha) * progress)
                trained += trainer.train_batch(ids, ends, alpha, self.rng_states, self.workers)
                raw_words += batch_raw
            seconds = time.perf_counter() - start
            rate = raw_words / seconds if seconds > 0 else float("inf")
            self.training_stats.append(
                {"epoch": epoch, "raw_words": raw_words, "trained_words": trained,
                 "seconds": seconds, "words_per_second": rate}
            )  # fmt: skip
            logger.info(
                "epoch %d/%d: %d words (%d after subsampling) in %.2f s, %.0f words/s, %d workers",
                epoch + 1, epochs, raw_words, trained, seconds, rate, self.workers,
            )  # fmt: skip
            for callback in self.callbacks:
                if hasattr(callback, "on_epoch_end"):
                    callback.on_epoch_end(self)
                else:
                    callback(self, epoch)

    def _batches(self, sentences: Iterable) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """Batches of about workers * BATCH_WORDS_PER_WORKER words: (ids (n,) int32 with -1
        for words outside the vocabulary, sentence_ends (S,) int64, n). The tokens' types
        were checked by the vocabulary scan; here the per-sentence work is kept to a list
        append, as it costs as much as converting a short sentence's words."""
        lookup = self.wv.key_to_index.get
        limit = BATCH_WORDS_PER_WORKER * self.workers
        sentence_iter = iter(sentences)
        while True:
            batch: list = []
            n = 0
            for sentence in sentence_iter:
                batch.append(sentence)
                n += len(sentence)
                if n >= limit:
                    break
            if not batch:
                return
            words = chain.from_iterable(batch)
            try:
                ids = np.fromiter(map(lookup, words, repeat(-1)), dtype=np.int32, count=n)
            except TypeError as error:
                raise TypeError(f"sentences: every token must be a str ({error})") from None
            lengths = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
            if lengths.max() > MAX_SENTENCE_WORDS:
                lengths = np.array([p for ln in lengths.tolist() for p in _pieces(ln)])
            yield ids, np.cumsum(lengths), n


def _pieces(length: int) -> list[int]:
    """Lengths of the pieces a sentence of ``length`` words is trained as."""
    full, rest = divmod(length, MAX_SENTENCE_WORDS)
    return [MAX_SENTENCE_WORDS] * full + ([rest] if rest or not full else [])


def _prefetch(batches: Iterator, depth: int = 4) -> Iterator:
    """Iterate ``batches`` on a helper thread, ``depth`` items ahead, so that reading and
    converting the next batch overlaps the core's training (which releases the GIL).
    An exception in the producer is raised here; leaving the loop early stops it."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: tuple) -> bool:
        """Queue an entry unless the consumer has left; False when it has."""
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in batches:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as error:  # handed to the consumer, which raises it
            put((done, error))

    thread = threading.Thread(target=produce, name="rnnkit-word2vec-batches", daemon=True)
    thread.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join()
