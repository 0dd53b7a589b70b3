"""Word2Vec: CBOW and skip-gram word vectors trained in the C++ core (gensim's names and
semantics)."""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np

from rnnkit import _core
from rnnkit.embeddings import model_io, vocab
from rnnkit.embeddings.keyedvectors import KeyedVectors

logger = logging.getLogger("rnnkit.embeddings")

# A sentence longer than this is trained as consecutive pieces of this many words
# (windows do not cross a piece's border), like gensim's MAX_WORDS_IN_BATCH.
MAX_SENTENCE_WORDS = 10000
# Words of corpus per worker in one call to the core.
BATCH_WORDS_PER_WORKER = 10000


def check_int(who: str, name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int in low..high; TypeError or ValueError naming ``who``'s argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{who}: {name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{who}: {name} must be {bound}, got {value}")
    return int(value)


def check_float(who: str, name: str, value: object, low: float, strict: bool = False) -> float:
    """``value`` as a finite float >= low (> low when strict)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{who}: {name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(f"{who}: {name} must be finite and {'>' if strict else '>='} {low}")
    return value


def check_corpus(who: str, sentences: object, what: str = "sentences") -> Iterable:
    """``sentences`` if it is a re-iterable corpus (read once per epoch)."""
    if isinstance(sentences, (str, bytes)) or not isinstance(sentences, Iterable):
        raise TypeError(
            f"{who}: {what} must be an iterable of token lists, got {type(sentences).__name__}"
        )
    if iter(sentences) is sentences:
        raise TypeError(
            f"{who}: {what} must be re-iterable (read once per epoch): a list, or an "
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
    a seed and a worker count give the same vectors on every run (another worker count
    splits the corpus otherwise, so gives other vectors). ``callbacks``: each is
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
        who = type(self).__name__
        self.vector_size = check_int(who, "vector_size", vector_size, 1, 1 << 20)
        self.window = check_int(who, "window", window, 1, 1 << 20)
        self.min_count = check_int(who, "min_count", min_count, 0)
        self.sg = check_int(who, "sg", sg, 0, 1)
        self.hs = check_int(who, "hs", hs, 0, 1)
        self.negative = check_int(who, "negative", negative, 0, 1 << 20)
        if self.hs == 0 and self.negative == 0:
            raise ValueError(f"{who}: set hs=1 or negative > 0, otherwise nothing is trained")
        self.ns_exponent = check_float(who, "ns_exponent", ns_exponent, -math.inf)
        self.sample = check_float(who, "sample", sample, 0.0)
        self.alpha = check_float(who, "alpha", alpha, 0.0, strict=True)
        self.min_alpha = check_float(who, "min_alpha", min_alpha, 0.0)
        self.epochs = check_int(who, "epochs", epochs, 1)
        if workers is None:
            workers = _core.get_num_threads()
        self.workers = check_int(who, "workers", workers, 1, _core.MAX_THREADS)
        self.seed = check_int(who, "seed", seed, -(2**63), 2**64 - 1)
        self.max_vocab_size = (
            None if max_vocab_size is None else check_int(who, "max_vocab_size", max_vocab_size, 1)
        )
        self.callbacks = list(callbacks)
        self.wv: KeyedVectors | None = None
        self.training_stats: list[dict[str, float]] = []
        if sentences is not None:
            self.build_vocab(sentences)
            self.train(sentences)

    def build_vocab(self, sentences: Iterable[Sequence[str]]) -> None:
        """Count the corpus, keep words with count >= min_count (by descending count) and
        build the tables and the initial vectors (uniform in [-1/D, 1/D) from seed,
        the output matrices zero)."""
        who = type(self).__name__
        sentences = check_corpus(who, sentences)
        counts, total_words, n_sentences = vocab.scan_vocab(sentences, self.max_vocab_size)
        if total_words == 0:
            raise ValueError(
                f"{who}: the corpus is empty ({n_sentences} sentences, no words): nothing "
                "to train on"
            )
        words, word_counts = vocab.sort_vocab(counts, self.min_count)
        if not words:
            raise ValueError(
                f"{who}: no word occurs min_count={self.min_count} times (the most "
                f"frequent occurs {max(counts.values())} times in {total_words} words): the "
                "vocabulary is empty; lower min_count or give a larger corpus"
            )
        if len(words) >= 2**31 - 1:
            raise ValueError(f"{who}: {len(words)} words is more than int32 ids can hold")
        logger.info(
            "vocabulary: %d sentences, %d words, %d distinct, %d with count >= %d",
            n_sentences, total_words, len(counts), len(words), self.min_count,
        )  # fmt: skip
        self.corpus_total_words = total_words
        self.word_counts = word_counts
        V, D = len(words), self.vector_size
        self._build_tables(word_counts)
        self.wv = KeyedVectors(words, initial_vectors(np.random.default_rng(seed=self.seed), V, D))
        self.syn1neg = np.zeros((V, D), np.float32) if self.negative else None
        self.syn1 = np.zeros((V - 1, D), np.float32) if self.hs else None
        # One LCG state per worker (48 bits), derived from the seed.
        states = np.random.SeedSequence(self.seed % 2**64).generate_state(self.workers, np.uint64)
        self.rng_states = states & np.uint64(2**48 - 1)

    def _build_tables(self, word_counts: np.ndarray) -> None:
        """The core's tables from the (V,) word counts: subsampling thresholds, the
        negative-sampling table, the Huffman codes (as the settings ask)."""
        self.sample_int = vocab.sample_thresholds(word_counts, self.sample)
        self.cum_table = vocab.cum_table(word_counts, self.ns_exponent) if self.negative else None
        if self.hs:
            self.codes, self.points, self.code_lengths = vocab.huffman_codes(word_counts)
        else:
            self.codes = self.points = self.code_lengths = None

    def train(self, sentences: Iterable[Sequence[str]], epochs: int | None = None) -> None:
        """Train ``epochs`` (default: the model's) passes over ``sentences`` (the corpus
        build_vocab counted: its word total drives the learning-rate decay)."""
        who = type(self).__name__
        if self.wv is None:
            raise RuntimeError(f"{who}.train: call build_vocab first")
        sentences = check_corpus(who, sentences, self._corpus_name)
        epochs = self.epochs if epochs is None else check_int(who, "epochs", epochs, 1)
        trainer = self._trainer()
        total = self.corpus_total_words
        for epoch in range(epochs):
            start = time.perf_counter()
            raw_words = trained = 0
            for batch in _prefetch(self._batches(sentences)):
                progress = (epoch + raw_words / total) / epochs
                alpha = max(self.min_alpha, self.alpha - (self.alpha - self.min_alpha) * progress)
                trained += self._train_batch(trainer, batch, alpha)
                raw_words += batch[-1]
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

    # The constructor arguments save() stores and load() passes back (besides the
    # vectors, the vocabulary and the training state).
    _settings = (
        "vector_size", "window", "min_count", "sg", "hs", "negative", "ns_exponent", "sample",
        "alpha", "min_alpha", "epochs", "workers", "seed", "max_vocab_size",
    )  # fmt: skip

    def summary(self) -> str:
        """One line: vocabulary size, vector size, words trained on so far, settings."""
        if self.wv is None:
            return f"{type(self).__name__}(no vocabulary yet, vector_size={self.vector_size})"
        trained = sum(int(stats["trained_words"]) for stats in self.training_stats)
        return (
            f"{type(self).__name__}(vocab={len(self.wv)}, vector_size={self.vector_size}, "
            f"trained_words={trained}, epochs_trained={len(self.training_stats)}, "
            f"{self._describe()})"
        )

    def __repr__(self) -> str:
        return self.summary()

    def _describe(self) -> str:
        kind = "skip-gram" if self.sg else "CBOW"
        return f"{kind}, window={self.window}, negative={self.negative}, hs={self.hs}"

    def save(self, path: str | os.PathLike) -> None:
        """Write the whole model to ``path`` (an .npz archive, written atomically; no
        pickle): settings, vocabulary with counts, vectors, output weights, the workers'
        RNG states and the corpus size, so that load(path).train(...) continues as this
        model would. Callbacks and training_stats are not stored."""
        if self.wv is None:
            raise RuntimeError(f"{type(self).__name__}.save: the model has no vocabulary yet")
        meta = {name: getattr(self, name) for name in self._settings}
        meta["corpus_total_words"] = int(self.corpus_total_words)
        meta["vocab_size"] = len(self.wv)
        arrays = {
            "vectors": self.wv.vectors, "word_counts": self.word_counts,
            "syn1neg": self.syn1neg, "syn1": self.syn1, "rng_states": self.rng_states,
            **model_io.encode_keys(self.wv.index_to_key),
        }  # fmt: skip
        self._save_more(meta, arrays)
        model_io.save(path, type(self).__name__, meta, arrays)

    def _save_more(self, meta: dict, arrays: dict) -> None:
        """Hook for subclasses: add their settings and arrays."""

    @classmethod
    def load(cls, path: str | os.PathLike) -> Word2Vec:
        """Read a model that save() wrote. A file that is not one, or is damaged, raises
        ValueError naming the file and the problem."""
        meta, arrays = model_io.load(path, cls.__name__)
        settings = {}
        for name in cls._settings:
            value = meta.get(name)
            if name == "max_vocab_size" and value is None:
                settings[name] = None
                continue
            kind = float if isinstance(value, float) else int
            settings[name] = model_io.setting(path, meta, name, kind)
        try:
            model = cls(**settings)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: the stored settings are not valid ({error})") from None
        model._restore(path, meta, arrays)
        return model

    def _restore(self, path: object, meta: dict, arrays: dict) -> None:
        """Set the vocabulary, tables and arrays from a loaded file (checked)."""
        V = model_io.setting(path, meta, "vocab_size", int)
        D = self.vector_size
        if V < 1:
            raise ValueError(f"{path}: vocab_size must be >= 1, got {V}")
        keys = model_io.decode_keys(path, arrays, V)
        vectors = model_io.require(path, arrays, "vectors", np.float32, (V, D))
        counts = model_io.require(path, arrays, "word_counts", np.int64, (V,))
        if np.any(counts < 1):
            raise ValueError(f"{path}: word_counts must be >= 1")
        try:
            self.wv = KeyedVectors(keys, vectors)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: the stored vocabulary is not valid ({error})") from None
        self.word_counts = counts
        self.corpus_total_words = model_io.setting(path, meta, "corpus_total_words", int)
        self._build_tables(counts)
        req = model_io.require
        self.syn1neg = req(path, arrays, "syn1neg", np.float32, (V, D)) if self.negative else None
        self.syn1 = req(path, arrays, "syn1", np.float32, (V - 1, D)) if self.hs else None
        self.rng_states = req(path, arrays, "rng_states", np.uint64, (self.workers,)).copy()

    # What train() calls its corpus argument in error messages.
    _corpus_name = "sentences"

    def _trainer(self) -> Any:
        """The core's trainer over this model's arrays (trains them in place)."""
        return _core.Word2VecTrainer(
            self.wv.vectors, self.syn1neg, self.syn1, self.cum_table, self.sample_int,
            self.codes, self.points, self.code_lengths,
            bool(self.sg), self.negative, self.window, self.sample > 0,
        )  # fmt: skip

    def _train_batch(self, trainer: Any, batch: tuple, alpha: float) -> int:
        """Train one batch of _batches at ``alpha``; returns the words trained on."""
        ids, ends, _ = batch
        return trainer.train_batch(ids, ends, alpha, self.rng_states, self.workers)

    def _batches(self, sentences: Iterable) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """Batches of about workers * BATCH_WORDS_PER_WORKER words: (ids (n,) int32 with -1
        for words outside the vocabulary, sentence_ends (S,) int64, n)."""
        for batch, n in _groups(sentences, BATCH_WORDS_PER_WORKER * self.workers):
            ids, lengths = self._encode(batch, n)
            yield ids, np.cumsum(split_long(lengths)), n

    def _encode(self, sentences: list, n: int) -> tuple[np.ndarray, np.ndarray]:
        """ids (n,) int32 of the ``n`` words of ``sentences`` (-1: outside the vocabulary)
        and the sentences' lengths (S,) int64. The tokens' types were checked by the
        vocabulary scan."""
        lookup = self.wv.key_to_index.get
        words = chain.from_iterable(sentences)
        try:
            ids = np.fromiter(map(lookup, words, repeat(-1)), dtype=np.int32, count=n)
        except TypeError as error:
            raise TypeError(f"sentences: every token must be a str ({error})") from None
        return ids, np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))


def initial_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """(n, dim) float32 uniform in [-1/dim, 1/dim) from rng, computed as gensim does."""
    vectors = rng.random((n, dim), dtype=np.float32)
    vectors *= 2.0
    vectors -= 1.0
    vectors /= dim
    return vectors


def _groups(
    sentences: Iterable, limit: int, size: Callable[[Any], int] = len
) -> Iterator[tuple[list, int]]:
    """The sentences in consecutive groups of about ``limit`` words (``size`` of each):
    (group, word count). The per-sentence work is kept to a list append, as it costs as
    much as converting a short sentence's words."""
    sentence_iter = iter(sentences)
    while True:
        batch: list = []
        n = 0
        for sentence in sentence_iter:
            batch.append(sentence)
            n += size(sentence)
            if n >= limit:
                break
        if not batch:
            return
        yield batch, n


def split_long(lengths: np.ndarray) -> np.ndarray:
    """(S,) sentence lengths -> the lengths of the pieces they are trained as."""
    if len(lengths) == 0 or lengths.max() <= MAX_SENTENCE_WORDS:
        return lengths
    return np.array([p for ln in lengths.tolist() for p in _pieces(ln)], dtype=np.int64)


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
