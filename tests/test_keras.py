"""rnnkit.keras.load against Keras's own predict: random seeded models saved as .keras and
as legacy .h5, and the models of the README's layer table one kind at a time."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip(
    "keras", reason="the Keras comparison tests need keras (pip install keras)"
)
h5py = pytest.importorskip("h5py", reason="rnnkit.keras reads Keras files with h5py")

import rnnkit.keras  # noqa: E402
from rnnkit import nn  # noqa: E402

pytestmark = pytest.mark.native

L = keras.layers
CELL_ACTIVATIONS = ["tanh", "sigmoid", "relu", "hard_sigmoid", "softsign", "linear"]
DENSE_ACTIVATIONS = ["linear", "softmax", "relu", "sigmoid", "tanh", "hard_sigmoid", "elu"]
T, B, VOCAB = 6, 5, 12


def random_layers(rng: np.random.Generator, features: int) -> list:
    """1-3 recurrent layers (kinds, sizes, bidirectional merges, go_backwards, activations,
    use_bias, return_sequences), dropout, and a Dense head with a random activation."""
    out = []
    depth = int(rng.integers(1, 4))
    for k in range(depth):
        kind = rng.choice(["SimpleRNN", "LSTM", "GRU"])
        last = k == depth - 1
        opts = dict(
            units=int(rng.integers(2, 6)),
            return_sequences=bool(not last or rng.random() < 0.5),
            use_bias=bool(rng.random() < 0.8),
            activation=str(
                rng.choice(
                    CELL_ACTIVATIONS[:3] if kind == "SimpleRNN" else ["tanh", "tanh", "softsign"]
                )
            ),
        )
        if kind != "SimpleRNN":
            opts["recurrent_activation"] = str(rng.choice(["sigmoid", "sigmoid", "hard_sigmoid"]))
        if kind == "GRU":
            opts["reset_after"] = bool(rng.random() < 0.5)
        bidirectional = rng.random() < 0.4
        if not bidirectional:
            opts["go_backwards"] = bool(rng.random() < 0.3)
        layer = getattr(L, kind)(**opts)
        if bidirectional:
            layer = L.Bidirectional(
                layer, merge_mode=str(rng.choice(["concat", "sum", "mul", "ave"]))
            )
        out.append(layer)
        if rng.random() < 0.3:
            spatial = opts["return_sequences"] and rng.random() < 0.5
            out.append(L.SpatialDropout1D(0.2) if spatial else L.Dropout(0.2))
    out.append(L.Dense(int(rng.integers(2, 5)), activation=str(rng.choice(DENSE_ACTIVATIONS))))
    return out


def padded_inputs(rng: np.random.Generator, indices: bool, features: int):
    """A batch (B, T) of indices with 0 padding, or (B, T, F) floats padded with 0 rows;
    lengths T, T-1, 1, 3 and 0 (one sequence all padding)."""
    lengths = np.array([T, T - 1, 1, 3, 0])
    if indices:
        x = rng.integers(1, VOCAB, size=(B, T)).astype("int32")
    else:
        x = rng.standard_normal((B, T, features)).astype("float32")
    for b, n in enumerate(lengths):
        x[b, n:] = 0
    return x


def randomise_weights(model, rng: np.random.Generator) -> None:
    """Weights of scale 0.6 (Keras's zero biases and small kernels would test less)."""
    model.set_weights(
        [(0.6 * rng.standard_normal(w.shape)).astype("float32") for w in model.get_weights()]
    )


def make_model(seed: int, functional: bool = False):
    rng = np.random.default_rng(seed)
    indices = rng.random() < 0.5
    masked = rng.random() < 0.7
    F = int(rng.integers(2, 5))
    if indices:
        inp = keras.Input((T,), dtype="int32")
        front = [L.Embedding(VOCAB, F, mask_zero=masked)]
    else:
        inp = keras.Input((T, F))
        front = [L.Masking(0.0)] if masked else []
    layers = front + random_layers(rng, F)
    if functional:
        y = inp
        for layer in layers:
            y = layer(y)
        model = keras.Model(inp, y)
    else:
        model = keras.Sequential([inp, *layers])
    randomise_weights(model, rng)
    return model, padded_inputs(rng, indices, F)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Seeded random models, each saved in both formats, with Keras's predictions."""
    folder = tmp_path_factory.mktemp("keras_models")
    cases = []
    for seed in range(9):
        model, x = make_model(seed, functional=seed == 8)
        expected = model.predict(x, verbose=0)
        paths = [folder / f"m{seed}.keras", folder / f"m{seed}.h5"]
        for p in paths:
            model.save(p)
        cases.append((seed, model, paths, x, expected))
    return cases


def test_random_models_equal_keras_predict(saved):
    for seed, _model, paths, x, expected in saved:
        for path in paths:
            # one load through a child process (the default), the others in this one
            loaded = rnnkit.keras.load(path, isolated=seed == 0 and path.suffix == ".keras")
            assert isinstance(loaded, nn.Sequential)
            got = loaded(x)
            assert got.shape == expected.shape, (seed, path.name, loaded)
            np.testing.assert_allclose(
                got, expected, rtol=0, atol=1e-4, err_msg=f"seed {seed} {path.name}\n{loaded}"
            )


def test_summary_counts_parameters_as_keras_does(saved):
    for seed, model, paths, x, _expected in saved:
        loaded = rnnkit.keras.load(paths[0], isolated=False)
        text = loaded.summary(x.shape[1:])
        assert f"Total parameters: {model.count_params():,} (counted by Keras's" in text, (
            seed,
            text,
        )


def test_random_models_cover_the_options(saved):
    # The seeds above are chosen so that together they exercise every option of the table.
    configs = [
        layer.get_config() | {"cls": type(layer).__name__}
        for _, m, *_ in saved
        for layer in m.layers
    ]
    inner = [
        c["layer"]["config"] | {"cls": c["layer"]["class_name"]}
        for c in configs
        if c["cls"] == "Bidirectional"
    ]
    rec = [c for c in configs + inner if c["cls"] in ("SimpleRNN", "LSTM", "GRU")]
    assert {c["cls"] for c in rec} == {"SimpleRNN", "LSTM", "GRU"}
    assert {c["merge_mode"] for c in configs if c["cls"] == "Bidirectional"} == {
        "concat",
        "sum",
        "mul",
        "ave",
    }
    assert any(c.get("go_backwards") for c in rec) and any(not c["use_bias"] for c in rec)
    assert {True, False} <= {c["reset_after"] for c in rec if c["cls"] == "GRU"}
    assert any(c.get("recurrent_activation") == "hard_sigmoid" for c in rec)
    assert {c.get("mask_zero") for c in configs if c["cls"] == "Embedding"} >= {True}
    assert any(c["cls"] == "Masking" for c in configs)
    assert {c["return_sequences"] for c in rec} == {True, False}
    assert any(
        isinstance(m, keras.Model) and not isinstance(m, keras.Sequential) for _, m, *_ in saved
    )
