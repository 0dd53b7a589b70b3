"""Word embeddings: word2vec (CBOW and skip-gram) trained in the C++ core, and KeyedVectors
for querying and for the word2vec / GloVe / fastText vector file formats. The names and
semantics follow gensim 4."""

from rnnkit.embeddings.keyedvectors import KeyedVectors
from rnnkit.embeddings.word2vec import Word2Vec

__all__ = ["KeyedVectors", "Word2Vec"]
