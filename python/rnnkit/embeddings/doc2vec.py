"""Doc2Vec: paragraph vectors (PV-DM and PV-DBOW) trained in the C++ core, with gensim's
names and semantics. The word side (vocabulary, tables, batches, learning-rate decay,
workers, saving) is Word2Vec's."""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from rnnkit._validation import check_nbytes
from rnnkit.embeddings import model_io
from rnnkit.embeddings.keyedvectors import KeyedVectors
from rnnkit.embeddings.word2vec import (
    BATCH_WORDS_PER_WORKER,
    MAX_SENTENCE_WORDS,
    Word2Vec,
    _groups,
    check_corpus,
    check_float,
    check_int,
    initial_vectors,
    split_long,
)

# Document tags index a matrix of int32 rows.
MAX_DOCUMENT_TAGS = 2**31 - 2


class TaggedDocument(NamedTuple):
    """One training document: its words (str tokens) and its tags (ints or strs), each tag
    naming a document vector (usually one unique tag per document)."""

    words: Sequence[str]
    tags: Sequence[int | str]


class DocumentVectors(KeyedVectors):
    """KeyedVectors of document vectors, keyed by tag: int tags are their own row (as in
    gensim: rows 0..max int tag), str tags follow in order of first appearance."""

    _key_kind = "str or int"

    @staticmethod
    def _is_key(value: object) -> bool:
        return isinstance(value, (str, int, np.integer)) and not isinstance(value, bool)


class _Words:
    """The documents' word lists, re-iterable (for Word2Vec's vocabulary scan)."""

    def __init__(self, documents: Iterable) -> None:
        self.documents = documents

    def __iter__(self) -> Iterator[Sequence[str]]:
        return (document.words for document in self.documents)


def _word_count(document: TaggedDocument) -> int:
    return len(document.words)


def _scan_tags(documents: Iterable, vector_size: int) -> list[int | str]:
    """The document-vector keys: 0..(largest int tag), then the str tags in order of first
    appearance. TypeError or ValueError naming the first bad document; MemoryError when
    the vectors ((keys, vector_size) float32) and keys would not fit in memory."""
    largest = -1
    names: dict[str, None] = {}
    for number, document in enumerate(documents):
        if not (hasattr(document, "words") and hasattr(document, "tags")):
            raise TypeError(
                f"Doc2Vec: document {number} must be a TaggedDocument(words, tags), got "
                f"{type(document).__name__}"
            )
        tags = document.tags
        if isinstance(tags, (str, bytes)) or not isinstance(tags, Iterable):
            raise TypeError(
                f"Doc2Vec: the tags of document {number} must be a list of int or str tags, "
                f"got {tags!r}"
            )
        for tag in tags:
            if isinstance(tag, str):
                names.setdefault(tag)
            elif isinstance(tag, (int, np.integer)) and not isinstance(tag, bool):
                if not 0 <= tag < MAX_DOCUMENT_TAGS:
                    raise ValueError(
                        f"Doc2Vec: int tag {tag} of document {number} must be in "
                        f"0..{MAX_DOCUMENT_TAGS - 1} (an int tag is its vector's row)"
                    )
                largest = max(largest, int(tag))
            else:
                hashable = "" if isinstance(tag, Hashable) else "an unhashable "
                raise TypeError(
                    f"Doc2Vec: tag {tag!r} of document {number} is {hashable}"
                    f"{type(tag).__name__}, expected an int or a str"
                )
    n_keys = largest + 1 + len(names)
    check_nbytes(
        f"Doc2Vec's document vectors (int tags are rows: the largest int tag is {largest}, "
        f"so {n_keys} rows of {vector_size})",
        n_keys * vector_size,
        4,
        extra_bytes=64 * n_keys,  # the keys, as Python objects in a list
    )
    keys: list[int | str] = [*range(largest + 1), *names]
    if not keys:
        raise ValueError("Doc2Vec: no document has a tag: nothing to learn document vectors for")
    if len(keys) > MAX_DOCUMENT_TAGS:
        raise ValueError(f"Doc2Vec: {len(keys)} tags is more than int32 rows can hold")
    return keys


class Doc2Vec(Word2Vec):
    """Document vectors by paragraph vectors (Le and Mikolov), trained as gensim 4's
    Doc2Vec trains them.

    ``documents`` is a re-iterable of TaggedDocument (or objects with ``words`` and
    ``tags``). ``dm=1`` trains PV-DM: the document's tag vectors join the context words to
    predict each word (their mean, or their sum with ``dm_mean=0``; default mean);
    ``dm=0`` trains PV-DBOW: each tag vector predicts the document's words, and with
    ``dbow_words=1`` skip-gram word vectors train on the same windows. The other
    arguments are Word2Vec's. ``model.dv[tag]`` is a document vector (``model.dv`` a
    KeyedVectors over (n_tags, vector_size) float32), ``model.wv`` the word vectors, and
    ``infer_vector(words)`` trains a vector for a new document against the frozen model.
    A seed and a worker count give the same vectors on every run.
    """

    _corpus_name = "documents"
    # sg follows from dm
    _settings = (*(n for n in Word2Vec._settings if n != "sg"), "dm", "dm_mean", "dbow_words")

    def __init__(
        self,
        documents: Iterable[TaggedDocument] | None = None,
        dm: int = 1,
        vector_size: int = 100,
        window: int = 5,
        min_count: int = 5,
        epochs: int = 10,
        alpha: float = 0.025,
        min_alpha: float = 1e-4,
        negative: int = 5,
        hs: int = 0,
        sample: float = 1e-3,
        dm_mean: int | None = None,
        dbow_words: int = 0,
        ns_exponent: float = 0.75,
        workers: int | None = None,
        seed: int = 0,
        max_vocab_size: int | None = None,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.dm = check_int("Doc2Vec", "dm", dm, 0, 1)
        self.dm_mean = 1 if dm_mean is None else check_int("Doc2Vec", "dm_mean", dm_mean, 0, 1)
        self.dbow_words = check_int("Doc2Vec", "dbow_words", dbow_words, 0, 1)
        self.dv: DocumentVectors | None = None
        self._inference_trainer: Any = None
        super().__init__(
            None, vector_size=vector_size, window=window, min_count=min_count,
            sg=1 - self.dm, hs=hs, negative=negative, ns_exponent=ns_exponent, sample=sample,
            alpha=alpha, min_alpha=min_alpha, epochs=epochs, workers=workers, seed=seed,
            max_vocab_size=max_vocab_size, callbacks=callbacks,
        )  # fmt: skip
        if documents is not None:
            self.build_vocab(documents)
            self.train(documents)

    def build_vocab(self, documents: Iterable[TaggedDocument]) -> None:
        """Count the words (as Word2Vec.build_vocab) and the tags, and make the initial
        document vectors (uniform in [-1/D, 1/D), from the seed)."""
        documents = check_corpus("Doc2Vec", documents, "documents")
        keys = _scan_tags(documents, self.vector_size)
        super().build_vocab(_Words(documents))
        rng = np.random.default_rng(np.random.SeedSequence((self.seed % 2**64, 1)))
        self.dv = DocumentVectors(keys, initial_vectors(rng, len(keys), self.vector_size))
        self._inference_trainer = None

    def _describe(self) -> str:
        kind = f"PV-DM ({'mean' if self.dm_mean else 'sum'})" if self.dm else "PV-DBOW"
        words = ", dbow_words" if not self.dm and self.dbow_words else ""
        documents = len(self.dv) if self.dv is not None else 0
        return (
            f"{kind}{words}, documents={documents}, window={self.window}, "
            f"negative={self.negative}, hs={self.hs}"
        )

    def _train_batch(self, trainer: Any, batch: tuple, alpha: float) -> int:
        ids, ends, tags, tag_ends, _ = batch
        return trainer.train_documents(
            ids, ends, tags, tag_ends, self.dv.vectors, alpha, self.rng_states, self.workers,
            dm=bool(self.dm), dm_mean=bool(self.dm_mean), dbow_words=bool(self.dbow_words),
            learn_words=True, learn_hidden=True, learn_doctags=True,
        )  # fmt: skip

    def _batches(self, documents: Iterable) -> Iterator[tuple]:
        """Batches of about workers * BATCH_WORDS_PER_WORKER words: (ids (n,) int32,
        sentence_ends (S,) int64, tags (T,) int32 rows of dv, tag_ends (S,) int64, n). A
        document longer than MAX_SENTENCE_WORDS trains as pieces that share its tags."""
        row = self.dv.key_to_index
        limit = BATCH_WORDS_PER_WORKER * self.workers
        for group, n in _groups(documents, limit, size=_word_count):
            ids, lengths = self._encode([document.words for document in group], n)
            tags: list[int] = []
            tag_ends: list[int] = []
            for document, length in zip(group, lengths.tolist()):
                rows = [self._row(row, tag) for tag in document.tags]
                for _ in range(max(1, -(-length // MAX_SENTENCE_WORDS))):
                    tags.extend(rows)
                    tag_ends.append(len(tags))
            tag_array = np.array(tags, dtype=np.int32)
            yield ids, np.cumsum(split_long(lengths)), tag_array, np.array(tag_ends), n

    @staticmethod
    def _row(row: dict, tag: int | str) -> int:
        """The document-vector row of ``tag``; ValueError when build_vocab did not see it."""
        try:
            return row[tag]
        except (KeyError, TypeError):
            raise ValueError(
                f"Doc2Vec.train: tag {tag!r} is not one of the model's tags (build_vocab fixes "
                "them; training new tags into a built model is not supported)"
            ) from None

    def infer_vector(
        self,
        doc_words: Sequence[str],
        alpha: float | None = None,
        min_alpha: float | None = None,
        epochs: int | None = None,
    ) -> np.ndarray:
        """A (vector_size,) float32 vector for a new document, trained for ``epochs``
        (default: the model's) passes with the word vectors and output weights frozen, the
        learning rate falling linearly from ``alpha`` to ``min_alpha`` (defaults: the
        model's) as gensim does. Deterministic: the start vector and the random draws come
        from the model's seed and the document's words."""
        if self.dv is None:
            raise RuntimeError("Doc2Vec.infer_vector: the model is not trained yet")
        if isinstance(doc_words, (str, bytes)) or not isinstance(doc_words, Sequence):
            raise TypeError(
                "Doc2Vec.infer_vector: doc_words must be a list of str tokens, got "
                f"{type(doc_words).__name__}"
            )
        for token in doc_words:
            if not isinstance(token, str):
                raise TypeError(f"Doc2Vec.infer_vector: token {token!r} is not a str")
        epochs = self.epochs if epochs is None else check_int("Doc2Vec", "epochs", epochs, 1)
        alpha = self.alpha if alpha is None else check_float("Doc2Vec", "alpha", alpha, 0.0)
        min_alpha = (
            self.min_alpha
            if min_alpha is None
            else check_float("Doc2Vec", "min_alpha", min_alpha, 0.0)
        )
        text = "\n".join(doc_words).encode("utf-8")
        seeds = np.random.SeedSequence((self.seed % 2**64, 2, zlib.crc32(text), len(text)))
        rng = np.random.default_rng(seeds)
        vector = ((rng.random((1, self.vector_size)) - 0.5) / self.vector_size).astype(np.float32)
        rng_state = seeds.generate_state(1, np.uint64) & np.uint64(2**48 - 1)
        ids, lengths = self._encode([doc_words], len(doc_words))
        pieces = split_long(lengths)
        ends = np.cumsum(pieces)
        tags = np.zeros(len(pieces), dtype=np.int32)
        tag_ends = np.arange(1, len(pieces) + 1, dtype=np.int64)
        if self._inference_trainer is None:
            self._inference_trainer = self._trainer()
        step = (alpha - min_alpha) / max(epochs - 1, 1)
        for _ in range(epochs):
            self._inference_trainer.train_documents(
                ids, ends, tags, tag_ends, vector, alpha, rng_state, 1,
                dm=bool(self.dm), dm_mean=bool(self.dm_mean), dbow_words=False,
                learn_words=False, learn_hidden=False, learn_doctags=True,
            )  # fmt: skip
            alpha -= step
        return vector[0]

    def _save_more(self, meta: dict, arrays: dict) -> None:
        meta["document_count"] = len(self.dv)
        arrays["doc_vectors"] = self.dv.vectors
        keys = model_io.encode_keys(self.dv.index_to_key)
        arrays.update({f"doc_{name}": value for name, value in keys.items()})

    def _restore(self, path: object, meta: dict, arrays: dict) -> None:
        super()._restore(path, meta, arrays)
        n = model_io.setting(path, meta, "document_count", int)
        keys = model_io.decode_keys(
            path, {k[4:]: v for k, v in arrays.items() if k.startswith("doc_key")}, n
        )
        vectors = model_io.require(path, arrays, "doc_vectors", np.float32, (n, self.vector_size))
        try:
            self.dv = DocumentVectors(keys, vectors)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: the stored document tags are not valid ({error})") from None
