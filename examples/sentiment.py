"""Sentiment of short sentences, negations included: a many-to-one recurrent classifier.

    Embedding -> RNN / LSTM / GRU over the padded batch (with lengths) -> h_n of the last
    layer -> Linear -> softmax cross-entropy

The data are a few hundred short movie-review sentences generated from templates written for
this example ("the plot was not bad", "i loved the cast but the ending was dull", ...).
The label of a sentence depends on word order: "not" flips the adjective after it, and after
"but" only the second clause counts, so a bag of words cannot solve it and a recurrent
network must.

    python examples/sentiment.py                       # LSTM, prints accuracy per epoch
    python examples/sentiment.py --cell gru --epochs 10 --baseline
    python examples/sentiment.py --predict "the story was not bad" "i did not enjoy it"
"""

from __future__ import annotations

import abc
import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from argtypes import ArgumentParser, add_backend_argument, file_problem, float_in, int_at_least

try:
    import rnnkit
except ModuleNotFoundError:  # not installed: use the source checkout this script sits in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import rnnkit
from rnnkit import nn, optim

PAD, UNK = "<pad>", "<unk>"

# --------------------------------------------------------------------------- the data

SUBJECTS = [
    "the movie", "this film", "the plot", "the acting", "the ending", "the music",
    "the story", "the cast", "the dialogue", "the script", "the director", "the show",
]  # fmt: skip
VERBS = ["was", "is", "seemed", "felt"]
INTENSIFIERS = ["", "really", "very", "truly", "quite", "so"]
POSITIVE = ["good", "great", "wonderful", "excellent", "fun", "brilliant", "enjoyable", "moving"]
NEGATIVE = ["bad", "terrible", "boring", "awful", "dull", "poor", "weak", "painful"]
LIKE = ["liked", "loved", "enjoyed", "adored"]
DISLIKE = ["hated", "disliked", "loathed", "regretted"]


def _clause(rng: np.random.Generator) -> tuple[str, int]:
    """One clause and its label (1 positive, 0 negative)."""
    form = rng.integers(4)
    if form <= 1:  # "the plot was (not) (really) good"
        positive = bool(rng.integers(2))
        adj = rng.choice(POSITIVE if positive else NEGATIVE)
        negated = form == 1
        words = [rng.choice(SUBJECTS), rng.choice(VERBS)]
        words += ["not"] if negated else []
        words += [rng.choice(INTENSIFIERS), adj]
        return " ".join(w for w in words if w), int(positive != negated)
    positive = bool(rng.integers(2))
    obj = rng.choice(SUBJECTS + ["it"])
    if form == 2:  # "i loved the cast"
        return f"i {rng.choice(LIKE if positive else DISLIKE)} {obj}", int(positive)
    # "i did not enjoy the music": the base verb of the opposite feeling, negated
    verb = rng.choice(["like", "love", "enjoy"] if positive else ["hate", "dislike"])
    return f"i did not {verb} {obj}", int(not positive)


def make_dataset(n: int, seed: int) -> list[tuple[str, int]]:
    """``n`` distinct labelled sentences; a quarter join two clauses with "but"."""
    rng = np.random.default_rng(seed)
    seen: dict[str, int] = {}
    while len(seen) < n:
        text, label = _clause(rng)
        if rng.random() < 0.25:  # "A but B": B decides, and B contradicts A
            second, label2 = _clause(rng)
            while label2 == label:
                second, label2 = _clause(rng)
            text, label = f"{text} but {second}", label2
        seen.setdefault(text, label)
    return list(seen.items())


def read_tsv(path: str) -> list[tuple[str, int]]:
    """Lines ``label<TAB>sentence`` with label 0 (negative) or 1 (positive)."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        label, _, text = line.partition("\t")
        if label not in ("0", "1") or not text:
            raise ValueError(f"{path}:{lineno}: expected 'label<TAB>sentence', got {line!r}")
        rows.append((text, int(label)))
    return rows


def tokenize(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c in "' " else " " for c in text.lower()).split()


class Vocab:
    """Words seen in training -> indices; 0 is padding, 1 is every unknown word."""

    def __init__(self, sentences: Sequence[str]) -> None:
        words = sorted({w for s in sentences for w in tokenize(s)})
        self.itos = [PAD, UNK] + words
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, 1) for w in tokenize(text)] or [1]


def pad_batch(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token lists -> time-major indices (T, B) padded with 0, and lengths (B,)."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    tokens = np.zeros((int(lengths.max()), len(seqs)), dtype=np.int64)  # (T, B)
    for b, s in enumerate(seqs):
        tokens[: len(s), b] = s
    return tokens, lengths


# --------------------------------------------------------------------------- the model


class _Model(abc.ABC):
    """What the training loop needs: modules, train/eval, forward, backward."""

    modules: list

    def train(self, mode: bool = True) -> None:
        for m in self.modules:
            m.train(mode)

    @abc.abstractmethod
    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """tokens (T, B) int, lengths (B,) -> logits (B, 2)."""

    @abc.abstractmethod
    def backward(self, dlogits: np.ndarray) -> None:
        """dlogits (B, 2): adds every module's parameter gradients."""

    def predict_proba(self, vocab: Vocab, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each text, in eval mode."""
        self.train(False)
        tokens, lengths = pad_batch([vocab.encode(t) for t in texts])
        probs = nn.softmax(self.forward(tokens, lengths))[:, 1]
        self.train(True)
        return probs


class Classifier(_Model):
    """Embedding -> recurrent cell -> last layer's h_n -> Linear (2 classes)."""

    def __init__(self, vocab_size: int, args: argparse.Namespace) -> None:
        cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[args.cell]
        self.emb = nn.Embedding(vocab_size, args.embed, padding_idx=0, seed=args.seed)
        self.rnn = cls(
            args.embed,
            args.hidden,
            num_layers=args.layers,
            bidirectional=args.bidirectional,
            backend=args.backend,
            seed=args.seed + 1,
        )
        self.D = 2 if args.bidirectional else 1
        self.head = nn.Linear(self.D * args.hidden, 2, seed=args.seed + 2)
        self.modules = [self.emb, self.rnn, self.head]

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """tokens (T, B), lengths (B,) -> logits (B, 2)."""
        x = self.emb(tokens)  # (T, B, E)
        out, state = self.rnn(x, None, lengths)  # out (T, B, D*H); h_n (L*D, B, H)
        h_n = state[0] if isinstance(state, tuple) else state
        self._shapes = (out.shape, h_n.shape)
        # the last layer's final state per direction (the reverse one ends at step 0)
        last = np.concatenate(list(h_n[-self.D :]), axis=-1)  # (B, D*H)
        return self.head(last)

    def backward(self, dlogits: np.ndarray) -> None:
        out_shape, hn_shape = self._shapes
        dlast = self.head.backward(dlogits)  # (B, D*H)
        grad_h_n = np.zeros(hn_shape, dtype=dlast.dtype)  # (L*D, B, H)
        grad_h_n[-self.D :] = np.stack(np.split(dlast, self.D, axis=-1))
        grad_out = np.zeros(out_shape, dtype=dlast.dtype)  # the loss does not read out
        grad_state = (grad_h_n, None) if isinstance(self.rnn, rnnkit.LSTM) else grad_h_n
        dx, _ = self.rnn.backward(grad_out, grad_state)  # dx (T, B, E)
        self.emb.backward(dx)


class BagOfWords(_Model):
    """Baseline without word order: mean of the word embeddings -> Linear (2 classes)."""

    def __init__(self, vocab_size: int, args: argparse.Namespace) -> None:
        self.emb = nn.Embedding(vocab_size, args.embed, padding_idx=0, seed=args.seed)
        self.head = nn.Linear(args.embed, 2, seed=args.seed + 2)
        self.modules = [self.emb, self.head]

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        self._scale = 1.0 / lengths[:, None]  # (B, 1); padding rows are zero vectors
        self._T = tokens.shape[0]
        return self.head(self.emb(tokens).sum(axis=0) * self._scale)  # (B, 2)

    def backward(self, dlogits: np.ndarray) -> None:
        dmean = self.head.backward(dlogits) * self._scale  # (B, E)
        self.emb.backward(np.broadcast_to(dmean, (self._T,) + dmean.shape))


def accuracy(model: _Model, vocab: Vocab, data: Sequence[tuple[str, int]]) -> float:
    probs = model.predict_proba(vocab, [t for t, _ in data])
    labels = np.array([y for _, y in data])
    return float(np.mean((probs > 0.5) == labels))


# --------------------------------------------------------------------------- main


def fit(
    model: _Model,
    vocab: Vocab,
    train: Sequence[tuple[str, int]],
    test: Sequence[tuple[str, int]],
    args: argparse.Namespace,
    log,
) -> list[dict]:
    """Adam on minibatches of padded sentences; accuracy on both sets after each epoch."""
    rng = np.random.default_rng(args.seed + 3)
    encoded = [(vocab.encode(t), y) for t, y in train]
    opt = optim.Adam(model.modules, lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        total, count = 0.0, 0
        perm = rng.permutation(len(encoded))
        for i in range(0, len(perm), args.batch_size):
            batch = [encoded[j] for j in perm[i : i + args.batch_size]]
            tokens, lengths = pad_batch([s for s, _ in batch])
            labels = np.array([y for _, y in batch])
            opt.zero_grad()
            loss = loss_fn(model.forward(tokens, lengths), labels)
            model.backward(loss_fn.backward())
            if args.clip > 0:
                rnnkit.clip_grad_norm(model.modules, args.clip)
            opt.step()
            total, count = total + loss * len(batch), count + len(batch)
        train_acc, test_acc = accuracy(model, vocab, train), accuracy(model, vocab, test)
        history.append(
            {"epoch": epoch, "loss": total / count, "train_acc": train_acc, "test_acc": test_acc}
        )
        log(
            f"epoch {epoch:3d}  loss {total / count:.4f}  train acc {train_acc:.3f}  "
            f"held-out acc {test_acc:.3f}  ({time.perf_counter() - t0:.2f} s)"
        )
    return history


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    positive = int_at_least(1)
    p.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="lstm", help="recurrent cell")
    p.add_argument("--data", help="TSV file 'label<TAB>sentence' instead of generated data")
    p.add_argument("--num-sentences", type=int_at_least(2), default=600, help="generated sentences")
    p.add_argument("--test-fraction", type=float_in(0, 1), default=0.2, help="held out for testing")
    p.add_argument("--embed", type=positive, default=32, help="embedding size")
    p.add_argument("--hidden", type=positive, default=64, help="hidden size")
    p.add_argument("--layers", type=positive, default=1, help="recurrent layers")
    p.add_argument("--bidirectional", action="store_true", help="read both directions")
    p.add_argument("--epochs", type=positive, default=15, help="passes over the training set")
    p.add_argument("--batch-size", type=positive, default=32, help="sentences per batch")
    p.add_argument("--lr", type=float_in(0), default=5e-3, help="Adam learning rate")
    p.add_argument(
        "--clip", type=float_in(0, low_ok=True), default=5.0, help="max gradient norm (0: none)"
    )
    add_backend_argument(p)
    p.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of data split, weights and batches"
    )
    p.add_argument("--predict", nargs="+", metavar="SENTENCE", help="classify these afterwards")
    p.add_argument(
        "--baseline", action="store_true", help="also train a bag-of-words model (no word order)"
    )
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Train, print progress, return the history and final accuracies."""
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    for text in args.predict or []:
        if not tokenize(text):
            parser.error(f"--predict {text!r}: no words to classify")
    if args.data:
        try:
            data = read_tsv(args.data)
        except (OSError, UnicodeDecodeError) as e:
            parser.error(f"--data {args.data}: {file_problem(e)}")
        except ValueError as e:  # a line that is not label<TAB>sentence; e names it
            parser.error(f"--data {e}")
    else:
        data = make_dataset(args.num_sentences, args.seed)
    n_test = max(1, int(round(args.test_fraction * len(data))))
    if n_test >= len(data):
        parser.error(
            f"{len(data)} sentence(s) with --test-fraction {args.test_fraction:g} leave none "
            "to train on: at least 2 sentences and a smaller fraction are needed"
        )
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(data))
    test = [data[i] for i in order[:n_test]]
    train = [data[i] for i in order[n_test:]]
    vocab = Vocab([t for t, _ in train])
    log = (lambda *a, **k: None) if args.quiet else print
    log(
        f"{len(train)} training and {len(test)} held-out sentences, {len(vocab)} words; "
        f"{args.cell.upper()} embed={args.embed} hidden={args.hidden} backend={args.backend}"
    )
    model = Classifier(len(vocab), args)
    history = fit(model, vocab, train, test, args, log)
    elapsed = time.perf_counter() - start
    final = history[-1]
    print(
        f"final: train acc {final['train_acc']:.3f}, held-out acc {final['test_acc']:.3f} "
        f"({args.cell}, {args.epochs} epochs, {elapsed:.1f} s)"
    )
    predictions = []
    if args.predict:
        for text, p in zip(args.predict, model.predict_proba(vocab, args.predict)):
            label = "positive" if p > 0.5 else "negative"
            unknown = [w for w in tokenize(text) if w not in vocab.stoi]
            note = f"  (unknown words: {', '.join(unknown)})" if unknown else ""
            print(f"{label:8s}  p(positive)={p:.3f}  {text}{note}")
            predictions.append((text, float(p)))
    baseline = None
    if args.baseline:
        bow = BagOfWords(len(vocab), args)
        bow_final = fit(bow, vocab, train, test, args, lambda *a, **k: None)[-1]
        baseline = {"train_acc": bow_final["train_acc"], "test_acc": bow_final["test_acc"]}
        print(
            f"bag-of-words baseline (same embedding and training, no word order): "
            f"train acc {baseline['train_acc']:.3f}, held-out acc {baseline['test_acc']:.3f}"
        )
    return {
        "history": history,
        "train_acc": final["train_acc"],
        "test_acc": final["test_acc"],
        "predictions": predictions,
        "baseline": baseline,
        "seconds": elapsed,
    }


if __name__ == "__main__":
    main()
