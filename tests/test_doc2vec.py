"""rnnkit.embeddings.Doc2Vec: PV-DM and PV-DBOW training, reproducibility, infer_vector,
document-vector lookups, bad arguments, and the self-retrieval rate against gensim's on
gensim's Lee corpus (when gensim is installed)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from rnnkit.embeddings import Doc2Vec, TaggedDocument
from rnnkit.embeddings.word2vec import MAX_SENTENCE_WORDS

pytestmark = pytest.mark.native

SMALL = dict(vector_size=24, window=3, min_count=1, epochs=3, workers=1)
MODES = {
    "dm-mean-neg": dict(dm=1, hs=0, negative=5),
    "dm-sum-hs": dict(dm=1, dm_mean=0, hs=1, negative=0),
    "dbow-neg": dict(dm=0, hs=0, negative=5),
    "dbow-words-hs-neg": dict(dm=0, dbow_words=1, hs=1, negative=3),
}


def topic_documents(n_documents: int = 300, seed: int = 0) -> list[TaggedDocument]:
    """Documents of 20 to 60 words, each drawn from one of 5 topics' 30 words (plus shared
    function words); document i is tagged [i] and its topic's name."""
    rng = np.random.default_rng(seed)
    documents = []
    for i in range(n_documents):
        topic = int(rng.integers(5))
        length = int(rng.integers(20, 60))
        shared = rng.random(length) < 0.3
        words = [
            f"f{rng.integers(10)}" if shared[k] else f"t{topic}w{rng.integers(30)}"
            for k in range(length)
        ]
        documents.append(TaggedDocument(words, [i, f"topic{topic}"]))
    return documents


@pytest.fixture(scope="module")
def documents() -> list[TaggedDocument]:
    return topic_documents()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_mode_trains_every_document_vector_reproducibly(documents, mode):
    model = Doc2Vec(documents, **SMALL, **MODES[mode])
    again = Doc2Vec(documents, **SMALL, **MODES[mode])
    assert len(model.dv) == 300 + 5
    assert model.dv.index_to_key[:3] == [0, 1, 2]
    assert model.dv.index_to_key[300] == documents[0].tags[1]  # str tags in first-seen order
    np.testing.assert_array_equal(model.dv.vectors, again.dv.vectors)
    np.testing.assert_array_equal(model.wv.vectors, again.wv.vectors)
    untrained = Doc2Vec(**SMALL, **MODES[mode])
    untrained.build_vocab(documents)
    moved = np.linalg.norm(model.dv.vectors - untrained.dv.vectors, axis=1)
    assert np.all(moved > 0) and np.all(np.isfinite(model.dv.vectors))
    words_moved = not np.array_equal(model.wv.vectors, untrained.wv.vectors)
    # PV-DBOW without dbow_words trains no word vectors (gensim's rule).
    assert words_moved == (MODES[mode]["dm"] == 1 or MODES[mode].get("dbow_words", 0) == 1)


@pytest.mark.parametrize("mode", ["dm-mean-neg", "dbow-neg"])
def test_topic_vectors_are_nearest_their_documents(documents, mode):
    model = Doc2Vec(documents, **{**SMALL, "epochs": 10}, **MODES[mode])
    right = 0
    for i, document in enumerate(documents):
        topic = document.tags[1]
        nearest = model.dv.most_similar(i, topn=len(model.dv))
        topics = [tag for tag, _ in nearest if isinstance(tag, str)]
        right += topics[0] == topic
    assert right / len(documents) > 0.9


def test_worker_count_is_part_of_the_result(documents):
    """A seed and a worker count fix the vectors; another worker count splits the corpus
    otherwise and draws other numbers, so it gives other (equally good) vectors."""
    two = [Doc2Vec(documents, **{**SMALL, "workers": 2}) for _ in range(2)]
    one = Doc2Vec(documents, **SMALL)
    np.testing.assert_array_equal(two[0].dv.vectors, two[1].dv.vectors)
    assert not np.array_equal(two[0].dv.vectors, one.dv.vectors)


def test_infer_vector_is_deterministic_and_leaves_the_model_alone(documents):
    model = Doc2Vec(documents, **SMALL)
    before = [a.copy() for a in (model.wv.vectors, model.syn1neg, model.dv.vectors)]
    first = model.infer_vector(documents[7].words)
    assert first.shape == (24,) and first.dtype == np.float32
    np.testing.assert_array_equal(first, model.infer_vector(documents[7].words))
    assert not np.array_equal(first, model.infer_vector(documents[8].words))
    assert not np.array_equal(first, model.infer_vector(documents[7].words, epochs=7))
    for array, saved in zip((model.wv.vectors, model.syn1neg, model.dv.vectors), before):
        np.testing.assert_array_equal(array, saved)
    empty = model.infer_vector([])  # no words: the start vector, untrained
    assert empty.shape == (24,)
    unknown = model.infer_vector(["never", "seen"])
    np.testing.assert_array_equal(unknown, model.infer_vector(["never", "seen"]))


def test_string_tags_and_lookups(documents):
    named = [TaggedDocument(d.words, [f"doc{i}"]) for i, d in enumerate(documents)]
    model = Doc2Vec(named, **SMALL)
    assert model.dv.index_to_key[:2] == ["doc0", "doc1"]
    assert model.dv["doc5"].shape == (24,) and model.dv[["doc1", "doc2"]].shape == (2, 24)
    assert "doc0" not in [tag for tag, _ in model.dv.most_similar("doc0", topn=3)]
    with pytest.raises(KeyError, match="doc999"):
        model.dv["doc999"]
    assert "documents=300" in repr(model) and "vocab=" in model.summary()


def test_a_document_longer_than_a_batch_piece_trains_as_pieces_with_its_tags():
    rng = np.random.default_rng(1)
    words = [f"w{k}" for k in rng.integers(50, size=MAX_SENTENCE_WORDS + 500)]
    model = Doc2Vec([TaggedDocument(words, ["long"]), TaggedDocument(words[:30], ["short"])],
                    **SMALL)  # fmt: skip
    assert model.training_stats[-1]["raw_words"] == len(words) + 30
    assert model.infer_vector(words[:20000], epochs=2).shape == (24,)


@pytest.mark.parametrize(
    "documents, error, match",
    [
        ([], ValueError, "no document has a tag"),
        ([TaggedDocument([], [0])], ValueError, "corpus is empty"),
        ([TaggedDocument(["a"], [])], ValueError, "no document has a tag"),
        ([TaggedDocument(["a"], [["x"]])], TypeError, "unhashable list"),
        ([TaggedDocument(["a"], [1.5])], TypeError, "tag 1.5 of document 0 is float"),
        ([TaggedDocument(["a"], [-1])], ValueError, "int tag -1"),
        ([TaggedDocument(["a"], "doc0")], TypeError, "must be a list of int or str tags"),
        ([["a", "b"]], TypeError, "document 0 must be a TaggedDocument"),
        ([TaggedDocument("a b", [0])], TypeError, "sentence 0 is a str"),
        (iter([TaggedDocument(["a"], [0])]), TypeError, "must be re-iterable"),
    ],
)
def test_bad_documents_are_refused_clearly(documents, error, match):
    with pytest.raises(error, match=match):
        Doc2Vec(documents, **SMALL)


@pytest.mark.parametrize(
    "settings, error, match",
    [
        (dict(vector_size=0), ValueError, "Doc2Vec: vector_size must be in 1"),
        (dict(vector_size=2.0), TypeError, "Doc2Vec: vector_size must be an int"),
        (dict(dm=2), ValueError, "Doc2Vec: dm must be in 0..1"),
        (dict(dm_mean=3), ValueError, "dm_mean must be in 0..1"),
        (dict(hs=0, negative=0), ValueError, "set hs=1 or negative > 0"),
        (dict(epochs=0), ValueError, "epochs must be >= 1"),
    ],
)
def test_bad_settings_are_refused_clearly(settings, error, match):
    with pytest.raises(error, match=match):
        Doc2Vec(**{**SMALL, **settings})


def test_a_huge_int_tag_is_refused_before_allocating(documents):
    """An int tag is its vector's row: a tag of 2**31 - 3 would need 2**31 rows of 100
    floats (800 GiB), which is refused before anything is allocated."""
    docs = [*documents[:3], TaggedDocument(documents[3].words, [2**31 - 3])]
    with pytest.raises(MemoryError, match="largest int tag is 2147483645"):
        Doc2Vec(docs, **{**SMALL, "vector_size": 100})


def test_infer_vector_refuses_bad_input(documents):
    model = Doc2Vec(documents, **SMALL)
    with pytest.raises(TypeError, match="list of str tokens, got str"):
        model.infer_vector("a whole string")
    with pytest.raises(TypeError, match="token 3 is not a str"):
        model.infer_vector(["a", 3])
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        model.infer_vector(["a"], epochs=0)
    with pytest.raises(RuntimeError, match="not trained"):
        Doc2Vec(**SMALL).infer_vector(["a"])


def lee_path(name: str) -> str:
    gensim = pytest.importorskip(
        "gensim", reason="gensim (pip install gensim==4.4.0) ships the Lee corpus"
    )
    return os.path.join(os.path.dirname(gensim.__file__), "test", "test_data", name)


def self_retrieval_rate(model, documents, top: int) -> float:
    """Share of training documents whose inferred vector finds the document itself among
    the `top` nearest document vectors."""
    hits = 0
    for i, document in enumerate(documents):
        nearest = model.dv.most_similar([model.infer_vector(document.words)], topn=top)
        hits += i in [tag for tag, _ in nearest]
    return hits / len(documents)


@pytest.mark.parametrize("dm", [0, 1])
def test_self_retrieval_on_lee_corpus_matches_gensims(dm):
    """Inferring each training document of gensim's Lee corpus finds the document itself
    in the top 3 about as often as with gensim's Doc2Vec, same settings (small epochs)."""
    from gensim.models import doc2vec as gensim_doc2vec

    with open(lee_path("lee_background.cor"), encoding="utf8") as lines:
        texts = [line.split() for line in lines]
    ours_docs = [TaggedDocument(words, [i]) for i, words in enumerate(texts)]
    theirs_docs = [gensim_doc2vec.TaggedDocument(words, [i]) for i, words in enumerate(texts)]
    settings = dict(dm=dm, vector_size=40, min_count=2, epochs=8, workers=1, seed=0)
    ours = self_retrieval_rate(Doc2Vec(ours_docs, **settings), ours_docs, 3)
    theirs = self_retrieval_rate(gensim_doc2vec.Doc2Vec(theirs_docs, **settings), theirs_docs, 3)
    assert ours >= theirs - 0.1, (ours, theirs)
    assert ours > 0.2  # chance is 1%


def test_training_documents_with_unknown_tags_is_refused(documents):
    model = Doc2Vec(documents, **SMALL)
    with pytest.raises(ValueError, match="tag 'new' is not one of the model's tags"):
        model.train([TaggedDocument(["f1", "f2"], ["new"])])


def test_the_core_checks_every_document_batch(documents):
    """The core's document entry refuses tags outside the document-vector matrix and tag
    offsets that do not fit, before training anything."""
    model = Doc2Vec(documents[:20], **SMALL, sample=0)  # no subsampling: every word trains
    trainer = model._trainer()
    ids = np.zeros(4, dtype=np.int32)
    ends = np.array([2, 4], dtype=np.int64)
    states = model.rng_states.copy()
    flags = dict(dm=True, dm_mean=True, dbow_words=False, learn_words=True, learn_hidden=True,
                 learn_doctags=True)  # fmt: skip

    def train(tags, tag_ends, vectors=model.dv.vectors):
        return trainer.train_documents(ids, ends, np.array(tags, dtype=np.int32),
                                       np.array(tag_ends, dtype=np.int64), vectors, 0.025,
                                       states, 1, **flags)  # fmt: skip

    before = model.dv.vectors.copy()
    n = len(model.dv)  # 20 numbered documents and their topics
    with pytest.raises(ValueError, match=rf"tags\[1\] = {n} is outside 0..{n - 1}"):
        train([0, n], [1, 2])
    with pytest.raises(ValueError, match="tag_ends must end at len\\(tags\\) = 2"):
        train([0, 1], [1, 1])
    with pytest.raises(ValueError, match="tag_ends has shape"):
        train([0, 1], [2])
    with pytest.raises(ValueError, match="doctag_vectors has shape"):
        train([0, 1], [1, 2], np.zeros((n, 5), np.float32))
    np.testing.assert_array_equal(model.dv.vectors, before)
    assert train([0, 1], [1, 2]) == 4
    changed = np.any(model.dv.vectors != before, axis=1)
    assert changed[:2].all() and not changed[2:].any()
