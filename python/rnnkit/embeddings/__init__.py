"""Word embeddings: word2vec (CBOW and skip-gram) and doc2vec (paragraph vectors) trained in
the C++ core, and KeyedVectors for querying, evaluating and for the word2vec / GloVe /
fastText vector file formats. Models save to and load from .npz archives. The names and
semantics follow gensim 4."""

from rnnkit.embeddings.doc2vec import Doc2Vec, TaggedDocument
from rnnkit.embeddings.keyedvectors import KeyedVectors
from rnnkit.embeddings.word2vec import Word2Vec

__all__ = ["Doc2Vec", "KeyedVectors", "TaggedDocument", "Word2Vec"]
