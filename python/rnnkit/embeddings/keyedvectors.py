"""KeyedVectors: a vocabulary of words with one vector each, and the queries on them."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from rnnkit.embeddings import evaluation, model_io, word2vec_format

# A query term: a word of the vocabulary or a raw vector of vector_size floats.
Term = str | np.ndarray


class KeyedVectors:
    """Words and their vectors, with gensim's names.

    ``vectors`` (n, vector_size) float32: row i is the vector of ``index_to_key[i]``;
    ``key_to_index`` maps a word to its row. ``kv[word]`` is a (vector_size,) row (a view:
    writing to it changes the vector), ``kv[[w1, w2]]`` a (2, vector_size) copy.
    """

    def __init__(self, index_to_key: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be 2-D (n, vector_size), got shape {vectors.shape}")
        if len(index_to_key) != vectors.shape[0]:
            raise ValueError(
                f"index_to_key has {len(index_to_key)} words but vectors has "
                f"{vectors.shape[0]} rows"
            )
        for key in index_to_key:
            if not self._is_key(key):
                raise TypeError(f"index_to_key: every key must be a {self._key_kind}, got {key!r}")
        self.index_to_key: list[str] = list(index_to_key)
        self.key_to_index: dict[str, int] = {k: i for i, k in enumerate(self.index_to_key)}
        if len(self.key_to_index) != len(self.index_to_key):
            raise ValueError("index_to_key holds a word twice")
        self.vectors: np.ndarray = np.ascontiguousarray(vectors, dtype=np.float32)

    # What a key is; a subclass keyed by other values overrides both.
    _key_kind = "str"

    @staticmethod
    def _is_key(value: object) -> bool:
        return isinstance(value, str)

    @property
    def vector_size(self) -> int:
        """Dimension of the vectors."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key: object) -> bool:
        return key in self.key_to_index

    def __repr__(self) -> str:
        return f"KeyedVectors({len(self)} words, vector_size={self.vector_size})"

    def get_index(self, key: str) -> int:
        """Row of ``key`` in ``vectors``; KeyError naming the word if it is not there."""
        try:
            return self.key_to_index[key]
        except KeyError:
            raise KeyError(f"word {key!r} not in vocabulary ({len(self)} words)") from None
        except TypeError:
            raise TypeError(f"a key must be a str, got {type(key).__name__}") from None

    def get_vector(self, key: str, norm: bool = False) -> np.ndarray:
        """(vector_size,) vector of ``key``; scaled to unit length when ``norm``."""
        vector = self.vectors[self.get_index(key)]
        if norm:
            length = float(np.linalg.norm(vector))
            return vector / length if length > 0 else vector.copy()
        return vector

    def __getitem__(self, key: str | Sequence[str]) -> np.ndarray:
        if self._is_key(key):
            return self.get_vector(key)
        return np.stack([self.get_vector(k) for k in key]) if len(key) else self.vectors[:0]

    def norms(self) -> np.ndarray:
        """(n,) float32 Euclidean length of every vector (1 for a zero vector, so that
        dividing by it leaves the zero vector)."""
        lengths = np.linalg.norm(self.vectors, axis=1)
        lengths[lengths == 0] = 1.0
        return lengths

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words."""
        return float(np.dot(self.get_vector(w1, norm=True), self.get_vector(w2, norm=True)))

    def most_similar(
        self,
        positive: Term | Sequence[Term] | None = None,
        negative: Term | Sequence[Term] | None = None,
        topn: int = 10,
    ) -> list[tuple[str, float]]:
        """The ``topn`` words nearest by cosine to the mean of the unit vectors of
        ``positive`` minus those of ``negative`` (3CosAdd, as gensim), leaving out the
        query words. Terms are words or raw (vector_size,) vectors. Returns (word, cosine)
        pairs, most similar first."""
        if isinstance(topn, bool) or not isinstance(topn, int) or topn < 0:
            raise ValueError(f"most_similar: topn must be an int >= 0, got {topn!r}")
        terms = [(t, 1.0) for t in self._as_terms(positive)]
        terms += [(t, -1.0) for t in self._as_terms(negative)]
        if not terms:
            raise ValueError("most_similar: give at least one word in positive or negative")
        mean = np.zeros(self.vector_size, dtype=np.float32)
        exclude = set()
        for term, weight in terms:
            if self._is_key(term):
                exclude.add(self.get_index(term))
                mean += weight * self.get_vector(term, norm=True)
            else:
                vector = np.asarray(term, dtype=np.float32)
                if vector.shape != (self.vector_size,):
                    raise ValueError(
                        f"most_similar: a vector term must have shape ({self.vector_size},), "
                        f"got {vector.shape}"
                    )
                mean += weight * vector
        mean /= len(terms)
        length = float(np.linalg.norm(mean))
        if length > 0:
            mean /= length
        cosines = (self.vectors @ mean) / self.norms()
        count = min(len(self), topn + len(exclude))
        best = np.argpartition(-cosines, count - 1)[:count] if count else np.zeros(0, np.int64)
        best = best[np.argsort(-cosines[best], kind="stable")]
        result = [(self.index_to_key[i], float(cosines[i])) for i in best if i not in exclude]
        return result[:topn]

    def save_word2vec_format(self, path: str | os.PathLike, binary: bool = False) -> None:
        """Write the word2vec format: a header line "<count> <dim>", then one line
        "word v1 v2 ..." per word (text), or "word " and dim little-endian float32 (binary),
        in row order; the bytes gensim writes for the same words and vectors."""
        word2vec_format.save(path, self.index_to_key, self.vectors, binary=binary)

    @classmethod
    def load_word2vec_format(
        cls,
        path: str | os.PathLike,
        binary: bool = False,
        no_header: bool = False,
        unicode_errors: str = "strict",
    ) -> KeyedVectors:
        """Read word2vec text or binary files, fastText ``.vec`` (text with a header) and
        GloVe text (``no_header=True``: the count and dimension come from the lines).
        A word listed twice keeps its first vector. Malformed files raise ValueError (or
        EOFError when the file ends early, UnicodeDecodeError on non-UTF-8 words with
        ``unicode_errors="strict"``) naming the line or word."""
        keys, vectors = word2vec_format.load(
            path, binary=binary, no_header=no_header, unicode_errors=unicode_errors
        )
        return cls(keys, vectors)

    def most_similar_cosmul(
        self,
        positive: Term | Sequence[Term] | None = None,
        negative: Term | Sequence[Term] | None = None,
        topn: int = 10,
    ) -> list[tuple[str, float]]:
        """The ``topn`` words best by 3CosMul (Levy and Goldberg): the product of the
        positive terms' cosines shifted to [0, 1] over the product of the negative terms'
        plus 1e-6, leaving out the query words (gensim's most_similar_cosmul)."""
        if isinstance(topn, bool) or not isinstance(topn, int) or topn < 0:
            raise ValueError(f"most_similar_cosmul: topn must be an int >= 0, got {topn!r}")
        positive, negative = self._as_terms(positive), self._as_terms(negative)
        if not positive:
            raise ValueError("most_similar_cosmul: give at least one positive term")
        exclude = {self.get_index(t) for t in positive + negative if self._is_key(t)}
        norms = self.norms()

        def shifted(term: Term) -> np.ndarray:
            vector = self.get_vector(term, norm=True) if self._is_key(term) else term
            return (1 + self.vectors @ np.asarray(vector, dtype=np.float32) / norms) / 2

        scores = np.prod([shifted(t) for t in positive], axis=0)
        scores = scores / (np.prod([shifted(t) for t in negative], axis=0) + 0.000001)
        best = np.argsort(-scores, kind="stable")[: topn + len(exclude)]
        result = [(self.index_to_key[i], float(scores[i])) for i in best if i not in exclude]
        return result[:topn]

    def evaluate_word_pairs(
        self,
        pairs: str | os.PathLike,
        delimiter: str = "\t",
        encoding: str = "utf8",
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> tuple[float, float, float]:
        """Correlation of the vectors' cosine similarities with human judgements: ``pairs``
        is a text file of "word1<delimiter>word2<delimiter>score" lines ("#" starts a
        comment; malformed lines are skipped), e.g. WordSim-353. Only the first
        ``restrict_vocab`` words count as known; pairs with an unknown word are left out
        (or scored 0 with ``dummy4unknown``). Returns (Pearson r, Spearman rho, percent of
        pairs with an unknown word), as gensim's evaluate_word_pairs (which also returns
        p-values)."""
        return evaluation.evaluate_word_pairs(
            self, pairs, delimiter, encoding, restrict_vocab, case_insensitive, dummy4unknown
        )

    def evaluate_word_analogies(
        self,
        analogies: str | os.PathLike,
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> tuple[float, list[dict]]:
        """Accuracy on analogy questions "a b c d" (a is to b as c is to d), in sections
        headed ": name" (questions-words.txt's format), answered by 3CosAdd over the first
        ``restrict_vocab`` words as gensim's evaluate_word_analogies does. Returns (overall
        accuracy, sections): each section a dict with "section", "correct" and "incorrect"
        lists of question tuples, the last one "Total accuracy". Questions with an unknown
        word are skipped (counted incorrect with ``dummy4unknown``)."""
        return evaluation.evaluate_word_analogies(
            self, analogies, restrict_vocab, case_insensitive, dummy4unknown
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the keys and vectors to ``path`` as an .npz archive (atomically; no
        pickle); ``load`` reads it back."""
        arrays = {"vectors": self.vectors, **model_io.encode_keys(self.index_to_key)}
        model_io.save(path, type(self).__name__, {"count": len(self)}, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> KeyedVectors:
        """Read what ``save`` wrote; ValueError naming the file when it is not such a file
        or is damaged."""
        meta, arrays = model_io.load(path, cls.__name__)
        count = model_io.setting(path, meta, "count", int)
        keys = model_io.decode_keys(path, arrays, count)
        vectors = model_io.require(path, arrays, "vectors", np.float32, (count, -1))
        try:
            return cls(keys, vectors)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{path}: the stored keys or vectors are not valid ({error})"
            ) from None

    def _as_terms(self, terms: Term | Sequence[Term] | None) -> list[Term]:
        """A query's terms as a list: one key or vector, or a sequence of them."""
        if terms is None:
            return []
        if self._is_key(terms) or isinstance(terms, np.ndarray):
            return [terms]
        return list(terms)
