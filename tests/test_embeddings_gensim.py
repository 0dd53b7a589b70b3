"""rnnkit.embeddings against gensim 4 (a test-only peer): the same vocabulary tables and
initial vectors, vectors as close to gensim's as two gensim seeds are to each other, and
vector files that each library reads from the other bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from rnnkit.embeddings import KeyedVectors, Word2Vec

gensim_models = pytest.importorskip(
    "gensim.models", reason="gensim (pip install gensim==4.4.0) is the reference for these tests"
)
from test_embeddings import MODES, SMALL, neighbour_overlap, ring_corpus  # noqa: E402


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    return ring_corpus()


def gensim_model(sentences, seed, **settings):
    return gensim_models.Word2Vec(sentences, seed=seed, **settings)


def test_vocabulary_tables_and_initial_vectors_are_gensims(corpus):
    # Ties in count, a pruned vocabulary, both objectives: every table must match.
    sentences = corpus[:600] + [["rare1", "rare2"], ["rare2", "rare1", "rare3"]]
    settings = dict(vector_size=16, min_count=1, hs=1, negative=5, max_vocab_size=150)
    ours = Word2Vec(vector_size=16, min_count=1, hs=1, negative=5, max_vocab_size=150, seed=4)
    ours.build_vocab(sentences)
    theirs = gensim_models.Word2Vec(seed=4, **settings)
    theirs.build_vocab(sentences)
    assert ours.wv.index_to_key == theirs.wv.index_to_key
    assert np.array_equal(ours.wv.vectors, theirs.wv.vectors)
    assert np.array_equal(ours.sample_int, theirs.wv.expandos["sample_int"])
    assert np.array_equal(ours.cum_table, theirs.cum_table)
    for w in range(len(ours.wv)):
        n = ours.code_lengths[w]
        assert list(ours.codes[w, :n]) == list(theirs.wv.expandos["code"][w])
        assert list(ours.points[w, :n]) == list(theirs.wv.expandos["point"][w])


@pytest.mark.parametrize("mode", MODES)
def test_neighbours_as_close_to_gensim_as_gensim_seeds_are(corpus, mode):
    settings = {**SMALL, **MODES[mode]}
    ours = Word2Vec(corpus, seed=0, **settings).wv
    theirs = [gensim_model(corpus, seed, **settings).wv for seed in (0, 1)]
    words = theirs[0].index_to_key[:60]
    between_seeds = neighbour_overlap(theirs[1], theirs[0], words)
    ours_to_theirs = np.mean([neighbour_overlap(ours, t, words) for t in theirs])
    assert between_seeds > 0.5  # the corpus has neighbours worth comparing
    assert ours_to_theirs >= between_seeds - 0.05, (ours_to_theirs, between_seeds)


@pytest.fixture(scope="module")
def vectors() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    words = ["the", "Zürich", "naïve", "日本語", "a_b", "x" * 50, "end"]
    values = rng.standard_normal((len(words), 9)).astype(np.float32)
    values[0, :3] = [1e-8, -3.5e12, 0.0]  # exponents and zeros print as numpy prints them
    return words, values


def gensim_keyed_vectors(words, values):
    kv = gensim_models.KeyedVectors(values.shape[1])
    kv.add_vectors(words, values)
    return kv


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_files_load_bit_for_bit(tmp_path, vectors, binary):
    words, values = vectors
    path = tmp_path / "gensim.vec"
    gensim_keyed_vectors(words, values).save_word2vec_format(str(path), binary=binary)
    kv = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert kv.index_to_key == words
    assert kv.vectors.tobytes() == values.tobytes()


@pytest.mark.parametrize("binary", [False, True])
def test_rnnkit_files_are_gensims_bytes_and_load_in_gensim(tmp_path, vectors, binary):
    words, values = vectors
    ours, theirs = tmp_path / "rnnkit.vec", tmp_path / "gensim.vec"
    KeyedVectors(words, values).save_word2vec_format(ours, binary=binary)
    gensim_keyed_vectors(words, values).save_word2vec_format(str(theirs), binary=binary)
    assert ours.read_bytes() == theirs.read_bytes()
    loaded = gensim_models.KeyedVectors.load_word2vec_format(str(ours), binary=binary)
    assert loaded.index_to_key == words
    assert loaded.vectors.tobytes() == values.tobytes()


def test_glove_text_loads_as_gensim_loads_it(tmp_path):
    rng = np.random.default_rng(1)
    lines = [f"w{i} " + " ".join(f"{v:.6f}" for v in rng.standard_normal(5)) for i in range(40)]
    path = tmp_path / "glove.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ours = KeyedVectors.load_word2vec_format(path, no_header=True)
    theirs = gensim_models.KeyedVectors.load_word2vec_format(str(path), no_header=True)
    assert ours.index_to_key == theirs.index_to_key
    assert ours.vectors.tobytes() == theirs.vectors.tobytes()


def test_most_similar_and_similarity_agree_with_gensim(corpus):
    model = Word2Vec(corpus[:1500], seed=0, **SMALL)
    theirs = gensim_keyed_vectors(model.wv.index_to_key, model.wv.vectors)
    for query in [dict(positive=["t0w1"]), dict(positive=["t0w1", "t1w2"], negative=["t2w3"])]:
        ours_top = model.wv.most_similar(**query, topn=8)
        theirs_top = theirs.most_similar(**query, topn=8)
        assert [w for w, _ in ours_top] == [w for w, _ in theirs_top]
        np.testing.assert_allclose([s for _, s in ours_top], [s for _, s in theirs_top], atol=1e-5)
    assert model.wv.similarity("t0w1", "f3") == pytest.approx(
        float(theirs.similarity("t0w1", "f3")), abs=1e-6
    )
