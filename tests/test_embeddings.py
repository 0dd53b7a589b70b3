"""rnnkit.embeddings.Word2Vec: vocabulary tables, training semantics, reproducibility,
errors, and closeness to gensim's vectors (when gensim is installed)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import rnnkit
from rnnkit import _core
from rnnkit.embeddings import Word2Vec

TOPICS, RING = 6, 24  # topics, words per topic (on a ring)
MODES = {
    "cbow-neg": dict(sg=0, hs=0, negative=5),
    "sg-neg": dict(sg=1, hs=0, negative=5),
    "cbow-hs": dict(sg=0, hs=1, negative=0),
    "sg-hs": dict(sg=1, hs=1, negative=0),
}
SMALL = dict(vector_size=32, window=3, min_count=2, epochs=5, workers=1)


def ring_corpus(n_sentences: int = 4000, seed: int = 0) -> list[list[str]]:
    """Sentences of 12 tokens: a random walk (steps -2..2, not 0) around one topic's ring
    of words, with function words mixed in at 25%. Words of a topic share contexts; on
    the ring, near words share more."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([-2, -1, 1, 2], size=(n_sentences, 12))
    topic = rng.integers(TOPICS, size=n_sentences)
    start = rng.integers(RING, size=n_sentences)
    function = rng.random((n_sentences, 12)) < 0.25
    function_word = rng.integers(8, size=(n_sentences, 12))
    sentences = []
    for s in range(n_sentences):
        position = (start[s] + np.cumsum(steps[s])) % RING
        sentences.append(
            [
                f"f{function_word[s, i]}" if function[s, i] else f"t{topic[s]}w{position[i]}"
                for i in range(12)
            ]
        )
    return sentences


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    return ring_corpus()


def topic_margin(model: Word2Vec) -> float:
    """Mean cosine between words of the same topic minus that between different topics."""
    kv = model.wv
    words = [f"t{t}w{i}" for t in range(TOPICS) for i in range(RING)]
    unit = kv[words] / np.linalg.norm(kv[words], axis=1, keepdims=True)
    cosine = unit @ unit.T
    same = np.kron(np.eye(TOPICS), np.ones((RING, RING))).astype(bool)
    np.fill_diagonal(same, False)
    other = ~np.kron(np.eye(TOPICS), np.ones((RING, RING))).astype(bool)
    return float(cosine[same].mean() - cosine[other].mean())


def neighbour_overlap(a, b, words: list[str], k: int = 10) -> float:
    top = [
        len({w for w, _ in a.most_similar(x, topn=k)} & {w for w, _ in b.most_similar(x, topn=k)})
        for x in words
    ]
    return float(np.mean(top)) / k


@pytest.mark.parametrize("mode", MODES)
def test_words_of_a_topic_are_nearer_than_words_of_other_topics(corpus, mode):
    model = Word2Vec(corpus, seed=1, **{**SMALL, **MODES[mode]})
    assert topic_margin(model) > 0.25
    # The nearest words of a topic word are words of its own topic.
    for word in ("t0w0", "t3w7"):
        topic = word.split("w")[0]
        assert all(w.startswith(topic + "w") for w, _ in model.wv.most_similar(word, topn=5))


def test_same_seed_and_workers_give_the_same_vectors(corpus):
    settings = {**SMALL, "sg": 1, "hs": 1, "negative": 3}
    a = Word2Vec(corpus, seed=7, **settings)
    b = Word2Vec(corpus, seed=7, **settings)
    c = Word2Vec(corpus, seed=8, **settings)
    assert np.array_equal(a.wv.vectors, b.wv.vectors)
    assert np.array_equal(a.syn1neg, b.syn1neg) and np.array_equal(a.syn1, b.syn1)
    assert not np.array_equal(a.wv.vectors, c.wv.vectors)


def test_two_workers_train_as_well(corpus):
    model = Word2Vec(corpus, seed=1, **{**SMALL, "workers": 2})
    assert model.workers == 2
    assert topic_margin(model) > 0.25


def test_workers_default_to_the_thread_count():
    assert Word2Vec(vector_size=4).workers == rnnkit.get_num_threads()


class FileCorpus:
    """A corpus read from a file on every pass: never held in memory whole."""

    def __init__(self, path):
        self.path = path

    def __iter__(self):
        with open(self.path, encoding="utf-8") as source:
            for line in source:
                yield line.split()


def test_streamed_corpus_gives_the_list_corpus_vectors(corpus, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(" ".join(s) + "\n" for s in corpus), encoding="utf-8")
    from_file = Word2Vec(FileCorpus(path), seed=3, **SMALL)
    from_list = Word2Vec(corpus, seed=3, **SMALL)
    assert from_file.wv.index_to_key == from_list.wv.index_to_key
    assert np.array_equal(from_file.wv.vectors, from_list.wv.vectors)


def test_sentences_longer_than_a_piece_train(corpus):
    one_line = [[w for s in corpus[:2000] for w in s]]  # 24000 words in one sentence
    model = Word2Vec(one_line, seed=0, **SMALL)
    assert model.training_stats[-1]["raw_words"] == 24000
    assert topic_margin(model) > 0.1


def test_progress_is_logged_and_callbacks_run_per_epoch(corpus, caplog):
    seen = []

    class OnEpochEnd:
        def __init__(self):
            self.calls = 0

        def on_epoch_end(self, model):
            self.calls += 1

    gensim_style = OnEpochEnd()
    with caplog.at_level(logging.INFO, logger="rnnkit.embeddings"):
        model = Word2Vec(
            corpus[:500],
            callbacks=[lambda m, epoch: seen.append((m, epoch)), gensim_style],
            **{**SMALL, "epochs": 3},
        )
    assert [epoch for _, epoch in seen] == [0, 1, 2] and all(m is model for m, _ in seen)
    assert gensim_style.calls == 3
    lines = [r.getMessage() for r in caplog.records if "words/s" in r.getMessage()]
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3:")
    assert [s["epoch"] for s in model.training_stats] == [0, 1, 2]


def test_negative_sampling_picks_the_word_bisection_finds():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 5000, size=3000)
    counts[::7] = 1
    cum = np.round(np.cumsum(counts**0.75) / np.sum(counts**0.75) * (2**31 - 1))
    cum = cum.astype(np.uint32)
    draws = np.concatenate(
        [rng.integers(0, cum[-1], 200_000), cum[:-1], cum[:-1] + 1, cum[:-1] - 1, [0]]
    )
    draws = draws[draws < cum[-1]].astype(np.uint32)
    expected = np.searchsorted(cum, draws, side="left")
    assert np.array_equal(_core._word2vec_negative_words(cum, draws), expected)


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentences, error, match",
    [
        ([], ValueError, "corpus is empty"),
        ([[], []], ValueError, "corpus is empty"),
        ([["a", "b"], ["c"]], ValueError, "min_count=5"),
        ([["a", "b"], ["c", 3]], TypeError, r"token 3 in sentence 1 is a int"),
        ([["a"], "a sentence"], TypeError, "sentence 1 is a str"),
        ([["a"], [["nested"]]], TypeError, "sentence 1"),
        ([["a"], 5], TypeError, "sentence 1"),
        ("just a string", TypeError, "iterable of token lists"),
        (iter([["a"]]), TypeError, "re-iterable"),
        (5, TypeError, "iterable of token lists"),
    ],
)
def test_bad_corpus_raises_naming_the_problem(sentences, error, match):
    with pytest.raises(error, match=match):
        Word2Vec(sentences, vector_size=8)


def test_non_string_token_pruned_by_max_vocab_size_is_still_reported():
    sentences = [["a"] * 5, [b"bytes"], ["b", "c", "d", "e"]] + [["a"]] * 3
    with pytest.raises(TypeError, match=r"token b'bytes' in sentence 1 is a bytes"):
        Word2Vec(sentences, vector_size=4, min_count=1, max_vocab_size=2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(vector_size=0), ValueError, "vector_size must be in 1"),
        (dict(vector_size=2.5), TypeError, "vector_size must be an int"),
        (dict(window=0), ValueError, "window"),
        (dict(hs=0, negative=0), ValueError, "hs=1 or negative > 0"),
        (dict(negative=-1), ValueError, "negative"),
        (dict(sg=2), ValueError, "sg must be in 0..1"),
        (dict(alpha=0.0), ValueError, "alpha must be finite and > 0"),
        (dict(sample=float("nan")), ValueError, "sample"),
        (dict(workers=0), ValueError, "workers"),
        (dict(epochs=0), ValueError, "epochs"),
        (dict(max_vocab_size=0), ValueError, "max_vocab_size"),
    ],
)
def test_bad_parameters_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        Word2Vec(**kwargs)


def test_train_before_build_vocab_raises():
    with pytest.raises(RuntimeError, match="build_vocab"):
        Word2Vec(vector_size=4).train([["a"]])


def test_core_refuses_arrays_that_do_not_fit(corpus):
    model = Word2Vec(corpus[:200], **SMALL)
    args = [model.wv.vectors, model.syn1neg, model.syn1, model.cum_table, model.sample_int]
    trainer = _core.Word2VecTrainer(*args, None, None, None, False, 5, 3, True)
    V = len(model.wv)
    ends = np.array([3], np.int64)
    with pytest.raises(ValueError, match="ids\\[1\\] = .* outside -1"):
        trainer.train_batch(np.array([0, V, 1], np.int32), ends, 0.01, model.rng_states, 1)
    with pytest.raises(TypeError, match="ids must have dtype int32"):
        trainer.train_batch(np.array([0, 1, 1]), ends, 0.01, model.rng_states, 1)
    with pytest.raises(ValueError, match="sentence_ends must end at len"):
        trainer.train_batch(np.zeros(4, np.int32), ends, 0.01, model.rng_states, 1)
    with pytest.raises(ValueError, match="rng_states has shape"):
        trainer.train_batch(np.zeros(3, np.int32), ends, 0.01, model.rng_states, 2)
    with pytest.raises(ValueError, match="syn0 must be an aligned C-contiguous writeable"):
        _core.Word2VecTrainer(model.wv.vectors[:, ::2].copy(order="F"), *args[1:], None, None,
                              None, False, 5, 3, True)  # fmt: skip
    with pytest.raises(ValueError, match="syn1neg has shape"):
        _core.Word2VecTrainer(args[0], args[0][:-1], *args[2:], None, None, None, False, 5, 3, True)
    bad_cum = model.cum_table.copy()
    bad_cum[0] = bad_cum[1] + 1
    with pytest.raises(ValueError, match="cum_table must be nondecreasing"):
        _core.Word2VecTrainer(*args[:3], bad_cum, args[4], None, None, None, False, 5, 3, True)
