"""nn.Embedding.from_pretrained / from_keyed_vectors: torch's semantics, freezing honoured by
backward, the optimisers and gradient clipping, the rows of missing words, and the errors."""

from __future__ import annotations

import copy
import logging
import pickle

import numpy as np
import pytest
import rnnkit
import torch
from rnnkit import nn, optim
from rnnkit.embeddings import KeyedVectors

RNG = np.random.default_rng(0)
TABLE = RNG.standard_normal((6, 4))  # (V, E) float64
INDICES = np.array([[0, 2, 5], [2, 2, 1]])  # (2, 3): row 2 three times, row 0 once


def test_from_pretrained_copies_the_table_like_torch():
    emb = nn.Embedding.from_pretrained(TABLE, padding_idx=0)
    ref = torch.nn.Embedding.from_pretrained(torch.from_numpy(TABLE), padding_idx=0)
    assert emb.dtype == np.float64 and emb.freeze
    assert (emb.num_embeddings, emb.embedding_dim, emb.padding_idx) == (6, 4, 0)
    # the padding row keeps its value, as in torch: it only receives no gradient
    np.testing.assert_array_equal(emb.parameters()["weight"], ref.weight.detach().numpy())
    np.testing.assert_array_equal(emb(INDICES), ref(torch.from_numpy(INDICES)).numpy())
    assert not np.shares_memory(emb.parameters()["weight"], TABLE)
    assert repr(emb) == "Embedding(6, 4, padding_idx=0, freeze=True, dtype=float64)"


def test_from_pretrained_dtypes_and_tensors():
    assert nn.Embedding.from_pretrained(TABLE.astype(np.float32)).dtype == np.float32
    assert nn.Embedding.from_pretrained(TABLE.astype(np.float16)).dtype == np.float32
    emb = nn.Embedding.from_pretrained(torch.from_numpy(TABLE), dtype="float32")
    np.testing.assert_array_equal(emb.parameters()["weight"], TABLE.astype(np.float32))


def test_unfrozen_gradient_matches_torch_padding_row_excluded():
    emb = nn.Embedding.from_pretrained(TABLE, freeze=False, padding_idx=2)
    ref = torch.nn.Embedding.from_pretrained(torch.from_numpy(TABLE), freeze=False, padding_idx=2)
    grad_out = RNG.standard_normal(INDICES.shape + (4,))
    emb(INDICES)
    emb.backward(grad_out)
    ref(torch.from_numpy(INDICES)).backward(torch.from_numpy(grad_out))
    np.testing.assert_allclose(emb.grads["weight"], ref.weight.grad.numpy(), rtol=1e-12)
    assert not emb.grads["weight"][2].any()
    assert list(emb.trainable_parameters()) == ["weight"]


def _train_steps(opt_cls, frozen: bool, **opt_args) -> tuple[np.ndarray, np.ndarray]:
    """Two steps of Embedding -> Linear; the weights of both afterwards."""
    emb = nn.Embedding.from_pretrained(TABLE, freeze=frozen)
    head = nn.Linear(4, 3, dtype="float64", seed=1)
    opt = opt_cls([emb, head], **opt_args)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(2):
        opt.zero_grad()
        loss_fn(head(emb(INDICES)), np.array([[0, 1, 2], [2, 1, 0]]))
        emb.backward(head.backward(loss_fn.backward()))
        rnnkit.clip_grad_norm([emb, head], 0.01)
        opt.step()
    return emb.parameters()["weight"], head.parameters()["weight"]


@pytest.mark.parametrize(
    "opt_cls, opt_args",
    [
        (optim.SGD, {"lr": 0.5, "momentum": 0.9, "weight_decay": 0.1}),
        (optim.Adam, {"lr": 0.1, "weight_decay": 0.1}),
    ],
)
def test_frozen_weight_is_never_stepped(opt_cls, opt_args):
    frozen_emb, frozen_head = _train_steps(opt_cls, True, **opt_args)
    np.testing.assert_array_equal(frozen_emb, TABLE)  # weight decay would have moved it
    tuned_emb, _ = _train_steps(opt_cls, False, **opt_args)
    assert not np.array_equal(tuned_emb, TABLE)
    assert not np.array_equal(
        frozen_head, nn.Linear(4, 3, dtype="float64", seed=1).parameters()["weight"]
    )


def test_frozen_backward_adds_nothing_and_clipping_ignores_it():
    emb = nn.Embedding.from_pretrained(TABLE)
    emb(INDICES)
    emb.backward(np.ones(INDICES.shape + (4,)))
    assert not emb.grads["weight"].any() and emb.trainable_parameters() == {}
    assert rnnkit.clip_grad_norm([emb], 1.0) == 0.0
    emb(INDICES)
    with pytest.raises(ValueError, match=r"grad_out must have shape \(2, 3, 4\)"):
        emb.backward(np.ones((2, 4)))  # checked even while frozen


def test_unfreezing_starts_fine_tuning_and_copies_keep_the_flag():
    emb = nn.Embedding.from_pretrained(TABLE)
    twin = copy.deepcopy(emb)
    assert twin.freeze and pickle.loads(pickle.dumps(emb)).freeze
    emb.freeze = False
    opt = optim.SGD([emb], lr=1.0)
    emb(np.array([3]))
    emb.backward(np.ones((1, 4)))
    opt.step()
    np.testing.assert_array_equal(emb.parameters()["weight"][3], TABLE[3] - 1.0)
    assert nn.Embedding(5, 2).freeze is False
    with pytest.raises(TypeError, match="freeze must be a bool, got 'yes'"):
        emb.freeze = "yes"


@pytest.mark.parametrize(
    "table, error, message",
    [
        (np.ones(4), ValueError, r"embeddings must be 2-D .* got shape \(4,\)"),
        (np.ones((2, 3, 4)), ValueError, r"got shape \(2, 3, 4\)"),
        (np.ones((0, 4)), ValueError, r"both sizes >= 1, got shape \(0, 4\)"),
        (np.ones((3, 4), dtype=np.int64), TypeError, "floating-point array, got dtype int64"),
        (np.ones((3, 4), dtype=complex), TypeError, "real numeric array, got dtype complex128"),
        ([[1.0, np.nan], [0.0, 1.0]], ValueError, r"row 0 holds NaN or infinity \(1 such"),
        ([[1.0, 2.0], [np.inf, 0.0], [-np.inf, 1]], ValueError, r"row 1 .* \(2 such row\(s\)\)"),
        ("abc", TypeError, "got dtype <U3"),
    ],
)
def test_from_pretrained_rejects_bad_tables(table, error, message):
    with pytest.raises(error, match=message):
        nn.Embedding.from_pretrained(table)


def test_from_pretrained_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"padding_idx must lie in \[-6, 5\], got 6"):
        nn.Embedding.from_pretrained(TABLE, padding_idx=6)
    assert nn.Embedding.from_pretrained(TABLE, padding_idx=-1).padding_idx == 5
    with pytest.raises(TypeError, match="padding_idx must be an int or None, got 1.5"):
        nn.Embedding.from_pretrained(TABLE, padding_idx=1.5)
    with pytest.raises(TypeError, match="freeze must be a bool, got 1"):
        nn.Embedding.from_pretrained(TABLE, freeze=1)
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64', got 'int8'"):
        nn.Embedding.from_pretrained(TABLE, dtype="int8")


# ---------------------------------------------------------------- from_keyed_vectors

KV = KeyedVectors(["the", "cat", "sat", "dog"], RNG.standard_normal((4, 3)) * 2.0)


def test_from_keyed_vectors_rows_missing_words_and_padding(caplog):
    vocab = ["<pad>", "dog", "Cat", "the", "zebra"]
    with caplog.at_level(logging.INFO, logger="rnnkit.embeddings"):
        emb, missing = nn.Embedding.from_keyed_vectors(KV, vocab, padding_idx=0)
    assert missing == ["Cat", "zebra"]  # exact match: "Cat" is not "cat"
    assert "2 of 5 vocabulary words are not in the vectors (Cat, zebra)" in caplog.text
    w = emb.parameters()["weight"]
    assert w.shape == (5, 3) and w.dtype == np.float32 and emb.freeze
    np.testing.assert_array_equal(w[1], KV["dog"])
    np.testing.assert_array_equal(w[3], KV["the"])
    assert not w[0].any() and w[2].any() and w[4].any()
    again, _ = nn.Embedding.from_keyed_vectors(KV, vocab, padding_idx=0)
    np.testing.assert_array_equal(again.parameters()["weight"], w)  # seed=0 by default
    other, _ = nn.Embedding.from_keyed_vectors(KV, vocab, padding_idx=0, seed=1)
    assert not np.array_equal(other.parameters()["weight"][2], w[2])
    zeros, missing = nn.Embedding.from_keyed_vectors(
        KV, vocab, missing="zeros", freeze=False, dtype="float64"
    )
    assert missing == ["<pad>", "Cat", "zebra"] and not zeros.freeze
    wz = zeros.parameters()["weight"]
    assert wz.dtype == np.float64 and not wz[[0, 2, 4]].any()


def test_random_rows_have_the_scale_of_the_vectors():
    kv = KeyedVectors(["a"], np.full((1, 400), 3.0) + RNG.standard_normal((1, 400)) * 0.5)
    emb, missing = nn.Embedding.from_keyed_vectors(kv, [f"w{i}" for i in range(50)])
    assert len(missing) == 50
    assert np.std(emb.parameters()["weight"]) == pytest.approx(np.std(kv.vectors), rel=0.05)


def test_from_keyed_vectors_takes_gensim_keyed_vectors():
    gensim_models = pytest.importorskip("gensim.models")
    kv = gensim_models.KeyedVectors(3)
    kv.add_vectors(KV.index_to_key, KV.vectors)
    emb, missing = nn.Embedding.from_keyed_vectors(kv, ["sat", "moon"], missing="zeros")
    np.testing.assert_array_equal(emb.parameters()["weight"], [KV["sat"], [0, 0, 0]])
    assert missing == ["moon"]


@pytest.mark.parametrize(
    "kv, vocab, kwargs, error, message",
    [
        ("not kv", ["cat"], {}, TypeError, "kv must be a KeyedVectors .* got str"),
        (KeyedVectors(["a"], [[np.inf]]), ["a"], {}, ValueError, "kv.vectors must be finite"),
        (KV, "cat", {}, TypeError, "vocabulary must be a sequence of words .* got str"),
        (KV, {"cat"}, {}, TypeError, "got set"),
        (KV, [], {}, ValueError, "vocabulary is empty"),
        (KV, ["cat", 7], {}, TypeError, r"vocabulary\[1\] must be a str, got 7 \(int\)"),
        (KV, ["cat", "dog", "cat"], {}, ValueError, r"vocabulary\[2\] = 'cat' repeats vocab"),
        (KV, ["cat"], {"missing": "mean"}, ValueError, "missing must be one of"),
        (KV, ["cat"], {"padding_idx": 1}, ValueError, r"padding_idx must lie in \[-1, 0\]"),
        (KV, ["cat"], {"seed": -1}, ValueError, "seed must be None or a non-negative int"),
    ],
)
def test_from_keyed_vectors_rejects_bad_arguments(kv, vocab, kwargs, error, message):
    with pytest.raises(error, match=message):
        nn.Embedding.from_keyed_vectors(kv, vocab, **kwargs)
