"""Saving and loading embedding models (.npz + JSON metadata, no pickle), damaged and
foreign files, the evaluation helpers against gensim's, and the models' summaries."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
from rnnkit.embeddings import Doc2Vec, KeyedVectors, TaggedDocument, Word2Vec
from rnnkit.embeddings.doc2vec import DocumentVectors
from test_doc2vec import topic_documents
from test_embeddings import ring_corpus

SMALL = dict(vector_size=16, window=3, min_count=2, epochs=2, workers=2, seed=5)


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    return ring_corpus(1500)


def assert_same_arrays(a, b, names):
    for name in names:
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None, name
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


W2V_ARRAYS = ["syn1neg", "syn1", "rng_states", "word_counts", "sample_int", "cum_table", "codes"]


@pytest.mark.native
@pytest.mark.parametrize("mode", [dict(sg=0, hs=0, negative=5), dict(sg=1, hs=1, negative=2)])
def test_word2vec_round_trip_and_continued_training_are_bit_for_bit(tmp_path, corpus, mode):
    """A loaded model holds everything training needs: training it further gives the bits
    that training the saved model further gives."""
    model = Word2Vec(corpus, **SMALL, **mode)
    model.save(tmp_path / "w2v.npz")
    loaded = Word2Vec.load(tmp_path / "w2v.npz")
    assert loaded.wv.index_to_key == model.wv.index_to_key
    np.testing.assert_array_equal(loaded.wv.vectors, model.wv.vectors)
    assert_same_arrays(loaded, model, W2V_ARRAYS)
    for name in Word2Vec._settings + ("corpus_total_words",):
        assert getattr(loaded, name) == getattr(model, name), name
    model.train(corpus[:500], epochs=1)
    loaded.train(corpus[:500], epochs=1)
    np.testing.assert_array_equal(loaded.wv.vectors, model.wv.vectors)
    assert_same_arrays(loaded, model, W2V_ARRAYS)


@pytest.mark.native
@pytest.mark.parametrize("dm", [0, 1])
def test_doc2vec_round_trip_infers_and_trains_on_as_the_saved_model(tmp_path, dm):
    documents = topic_documents(120)
    documents += [TaggedDocument(["f1", "f2", "t0w3"], ["named"])]
    model = Doc2Vec(documents, dm=dm, **SMALL)
    model.save(tmp_path / "d2v.npz")
    loaded = Doc2Vec.load(tmp_path / "d2v.npz")
    assert loaded.dv.index_to_key == model.dv.index_to_key  # ints stay ints
    assert (loaded.dm, loaded.dm_mean, loaded.dbow_words) == (model.dm, model.dm_mean, 0)
    np.testing.assert_array_equal(loaded.dv.vectors, model.dv.vectors)
    np.testing.assert_array_equal(
        loaded.infer_vector(documents[3].words), model.infer_vector(documents[3].words)
    )
    model.train(documents, epochs=1)
    loaded.train(documents, epochs=1)
    np.testing.assert_array_equal(loaded.dv.vectors, model.dv.vectors)
    np.testing.assert_array_equal(loaded.wv.vectors, model.wv.vectors)
    with pytest.raises(ValueError, match="holds a 'Doc2Vec', not a 'Word2Vec'"):
        Word2Vec.load(tmp_path / "d2v.npz")


def test_keyed_vectors_round_trip(tmp_path):
    kv = KeyedVectors(["a", "bé", "c d"], np.arange(6, dtype=np.float32).reshape(3, 2))
    kv.save(tmp_path / "kv.npz")
    loaded = KeyedVectors.load(tmp_path / "kv.npz")
    assert loaded.index_to_key == kv.index_to_key
    np.testing.assert_array_equal(loaded.vectors, kv.vectors)
    docs = DocumentVectors([0, 1, "x"], np.ones((3, 2), np.float32))
    docs.save(tmp_path / "dv.npz")
    assert DocumentVectors.load(tmp_path / "dv.npz").index_to_key == [0, 1, "x"]
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, renamed


def saved_vectors(tmp_path) -> str:
    path = str(tmp_path / "kv.npz")
    rng = np.random.default_rng(0)
    KeyedVectors([f"w{i}" for i in range(50)], rng.random((50, 8), dtype=np.float32)).save(path)
    return path


def test_damaged_files_raise_value_error(tmp_path):
    path = saved_vectors(tmp_path)
    data = open(path, "rb").read()
    for cut in (10, len(data) // 2, len(data) - 10):
        with open(tmp_path / "cut.npz", "wb") as out:
            out.write(data[:cut])
        with pytest.raises(ValueError):
            KeyedVectors.load(tmp_path / "cut.npz")
    rng = np.random.default_rng(1)
    for position in rng.integers(0, len(data), size=40).tolist():
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        with open(tmp_path / "flipped.npz", "wb") as out:
            out.write(bytes(flipped))
        try:
            loaded = KeyedVectors.load(tmp_path / "flipped.npz")
        except ValueError:
            continue
        assert len(loaded) == 50  # a flip in a vector's bytes loads other numbers


def test_foreign_files_raise_value_error(tmp_path):
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="not a readable rnnkit embeddings file"):
        KeyedVectors.load(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not an rnnkit checkpoint"):
        KeyedVectors.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="holds a 'KeyedVectors', not a 'Word2Vec'"):
        Word2Vec.load(saved_vectors(tmp_path))


def test_a_header_claiming_more_than_the_file_holds_is_refused_before_reading(tmp_path):
    """An entry whose .npy header claims 2^40 floats: refused from the sizes, nothing of
    that size is allocated."""
    path = tmp_path / "huge.npz"
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }"
    header += b" " * (118 - len(header)) + b"\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("extra.vectors.npy", b"\x93NUMPY\x01\x00v\x00" + header + b"\0" * 64)
    with pytest.raises(ValueError, match="claims 4398046511104 bytes"):
        KeyedVectors.load(path)


def gensim_data(name: str) -> str:
    """A file of gensim's test data (the tests below skip without gensim)."""
    reason = "gensim (pip install gensim==4.4.0) is the reference for these tests"
    gensim = pytest.importorskip("gensim", reason=reason)
    return os.path.join(os.path.dirname(gensim.__file__), "test", "test_data", name)


def twins(keys, vectors):
    from gensim import models as gensim_models

    theirs = gensim_models.KeyedVectors(vectors.shape[1])
    theirs.add_vectors(keys, vectors)
    return KeyedVectors(keys, vectors), theirs


def analogy_vectors() -> tuple[list[str], np.ndarray]:
    """Vectors for questions-words.txt's words in which country = capital + a shared offset
    + noise, so that a good share of the capital questions are answered right."""
    rng = np.random.default_rng(3)
    words: dict[str, np.ndarray] = {}
    offset = rng.standard_normal(20).astype(np.float32)
    with open(gensim_data("questions-words.txt"), encoding="utf8") as lines:
        for line in lines:
            parts = line.split()
            if line.startswith(":") or len(parts) != 4:
                continue
            for capital, country in ((parts[0], parts[1]), (parts[2], parts[3])):
                if capital.lower() not in words:
                    words[capital.lower()] = rng.standard_normal(20).astype(np.float32)
                if country.lower() not in words:
                    noise = 0.6 * rng.standard_normal(20).astype(np.float32)
                    words[country.lower()] = words[capital.lower()] + offset + noise
    keys = list(words)[:2500]
    return keys, np.stack([words[k] for k in keys])


def test_word_analogies_equal_gensims():
    ours, theirs = twins(*analogy_vectors())
    path = gensim_data("questions-words.txt")
    for settings in (dict(), dict(restrict_vocab=800), dict(case_insensitive=False)):
        score, sections = ours.evaluate_word_analogies(path, **settings)
        their_score, their_sections = theirs.evaluate_word_analogies(path, **settings)
        assert score == their_score and sections == their_sections, settings
    assert 0.05 < score < 1


def test_word_pairs_equal_gensims():
    keys, vectors = analogy_vectors()
    with open(gensim_data("wordsim353.tsv"), encoding="utf8") as lines:
        pair_words = {w.lower() for line in lines if not line.startswith("#")
                      for w in line.split("\t")[:2]}  # fmt: skip
    rng = np.random.default_rng(4)
    keys += sorted(pair_words - set(keys))[:300]
    vectors = np.vstack([vectors, rng.standard_normal((len(keys) - len(vectors), 20))])
    ours, theirs = twins(keys, vectors.astype(np.float32))
    path = gensim_data("wordsim353.tsv")
    for settings in (dict(), dict(dummy4unknown=True), dict(restrict_vocab=2600)):
        pearson, spearman, oov = ours.evaluate_word_pairs(path, **settings)
        their_pearson, their_spearman, their_oov = theirs.evaluate_word_pairs(path, **settings)
        assert pearson == pytest.approx(their_pearson[0], abs=1e-6)
        assert spearman == pytest.approx(their_spearman[0], abs=1e-12)
        assert oov == their_oov


def test_most_similar_cosmul_equals_gensims():
    keys, vectors = analogy_vectors()
    ours, theirs = twins(keys, vectors)
    for positive, negative in ((["paris", "germany"], ["berlin"]), (["athens"], [])):
        mine = ours.most_similar_cosmul(positive, negative, topn=5)
        their = theirs.most_similar_cosmul(positive, negative, topn=5)
        assert [w for w, _ in mine] == [w for w, _ in their]
        np.testing.assert_allclose([s for _, s in mine], [s for _, s in their], rtol=1e-6)


@pytest.mark.native
def test_summary_names_vocabulary_vector_size_and_trained_words(corpus):
    model = Word2Vec(**SMALL)
    assert "no vocabulary yet" in repr(model)
    model.build_vocab(corpus)
    model.train(corpus, epochs=1)
    trained = model.training_stats[0]["trained_words"]
    assert 0 < trained <= 1500 * 12
    assert (
        repr(model)
        == model.summary()
        == (
            f"Word2Vec(vocab={len(model.wv)}, vector_size=16, trained_words={trained}, "
            "epochs_trained=1, CBOW, window=3, negative=5, hs=0)"
        )
    )
