"""Import a Keras model into rnnkit, check it against Keras, fine-tune it, time both.

Without --model it builds a small Keras classifier (Embedding with mask_zero, a
bidirectional LSTM, a GRU, a softmax Dense; needs keras with KERAS_BACKEND=torch or any
backend), saves it as .keras and legacy .h5, and loads both with ``rnnkit.keras.load``. With
``--model PATH`` it loads that file instead (only h5py needed; the Keras comparison and timing
run when keras is installed). Then:

1. the largest difference between rnnkit's ``model(x)`` and Keras's ``model.predict(x)`` on
   a padded batch (different lengths, 0 = padding);
2. a few steps of fine-tuning with rnnkit.optim.Adam on a toy task (the label is whether the
   first token is in the lower half of the vocabulary), printing the loss;
3. the median time of one forward pass on the batch: rnnkit's ``model(x)`` against Keras's
   ``model.predict(x)`` and its direct call ``model(x)``.

    python examples/keras_import.py
    python examples/keras_import.py --model my_model.keras --length 40
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from argtypes import ArgumentParser, int_at_least

try:
    import rnnkit
except ModuleNotFoundError:  # not installed: use the source checkout this script sits in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import rnnkit
import rnnkit.keras
from rnnkit import nn, optim

VOCAB = 50


def import_keras():
    """keras (torch backend unless KERAS_BACKEND says otherwise), or None."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        return None
    return keras


def build_keras_model(keras, seed: int):
    """A small classifier over token sequences: 2 classes, softmax output."""
    keras.utils.set_random_seed(seed)
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(VOCAB, 16, mask_zero=True),
            L.Bidirectional(L.LSTM(24, return_sequences=True), merge_mode="concat"),
            L.GRU(16),
            L.Dense(2, activation="softmax"),
        ]
    )


def padded_batch(model: nn.Sequential, batch: int, length: int, rng: np.random.Generator):
    """Input for the model's first layer: token indices (0 = padding) for an Embedding,
    else floats with zero rows as padding; lengths spread over 1..length."""
    lengths = rng.integers(1, length + 1, size=batch)
    first = model[0]
    if isinstance(first, nn.Embedding):
        x = rng.integers(1, first.num_embeddings, size=(batch, length)).astype("int32")
    else:
        features = next(
            getattr(layer, "in_features", None) or layer.module.input_size
            for layer in model
            if isinstance(layer, (nn.Dense, nn.Recurrent))
        )
        x = rng.standard_normal((batch, length, features)).astype("float32")
    for b, n in enumerate(lengths):
        x[b, n:] = 0
    return x


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fine_tune(model: nn.Sequential, x: np.ndarray, steps: int, lr: float) -> list[float]:
    """Adam steps on the toy labels, through the model's probability outputs (B, C):
    loss = mean -log p[label]; returns the loss at each step."""
    C = model(x).shape[-1]
    labels = (x[:, 0] < VOCAB // 2).astype(int) % C if x.ndim == 2 else np.arange(len(x)) % C
    rows = np.arange(len(x))
    opt = optim.Adam([model], lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        p = model(x)  # (B, C)
        losses.append(float(-np.log(p[rows, labels]).mean()))
        grad = np.zeros_like(p)
        grad[rows, labels] = -1.0 / (len(x) * p[rows, labels])
        model.backward(grad)
        opt.step()
        opt.zero_grad()
    model.eval()
    return losses


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="a .keras or .h5 file (default: build one)")
    p.add_argument("--batch", type=int_at_least(1), default=32)
    p.add_argument("--length", type=int_at_least(1), default=20, help="steps per sequence")
    p.add_argument("--steps", type=int_at_least(0), default=20, help="fine-tuning steps")
    p.add_argument("--repeats", type=int_at_least(1), default=3, help="timed predicts")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    keras = import_keras()
    if args.model is None and keras is None:
        parser.error("without --model this example builds a Keras model: pip install keras")
    if args.model is not None and not args.model.is_file():
        parser.error(f"--model {args.model}: no such file")
    rng = np.random.default_rng(args.seed)
    result: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        if args.model is None:
            keras_model = build_keras_model(keras, args.seed)
            paths = [Path(folder) / "model.keras", Path(folder) / "model.h5"]
            for path in paths:
                keras_model.save(path)
        else:
            paths = [args.model]
            keras_model = keras.models.load_model(args.model) if keras is not None else None
        models = {path.suffix: rnnkit.keras.load(path) for path in paths}
    model = next(iter(models.values()))
    print(f"rnnkit model:\n{model}")
    x = padded_batch(model, args.batch, args.length, rng)
    if keras_model is not None:
        expected = keras_model.predict(x, verbose=0)
        diffs = {name: float(np.abs(m(x) - expected).max()) for name, m in models.items()}
        result["max_abs_diff"] = diffs
        for name, diff in diffs.items():
            print(f"{name:>7}: max |rnnkit - keras predict| = {diff:.2e}")
    out = model(x)
    if args.steps and out.ndim == 2:
        result["losses"] = fine_tune(model, x, args.steps, lr=1e-2)
        losses = result["losses"]
        print(f"fine-tuning, {args.steps} Adam steps: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    times = {"rnnkit": median_seconds(lambda: model(x), args.repeats)}
    if keras_model is not None:
        times["keras predict"] = median_seconds(
            lambda: keras_model.predict(x, verbose=0), args.repeats
        )
        # A direct call skips predict's batching machinery: Keras's own lower bound.
        times["keras call"] = median_seconds(lambda: keras_model(x), args.repeats)
    result["seconds"] = times
    shape = "x".join(map(str, x.shape))
    print(
        "predict on "
        + shape
        + ", median of "
        + str(args.repeats)
        + ": "
        + ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in times.items())
    )
    return result


if __name__ == "__main__":
    main()
