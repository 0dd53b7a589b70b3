"""Numbers written in words to digits: an encoder-decoder over sequences of different lengths.

    source words (T_src, B) -> Embedding -> encoder GRU / LSTM (with lengths) -> final state
    final state -> decoder GRU / LSTM over <s> d1 d2 ... (teacher forcing) -> Linear -> digits

"nine hundred and seven thousand and twelve" (8 words) becomes "907012" (6 characters and an
end mark): the translation setting, where input and output differ in length and in
vocabulary. The pairs are generated deterministically from --seed (British English: "and"
after hundred, hyphens split into words); held-out numbers never occur in training. Training
feeds the decoder the true previous digit (teacher forcing); evaluation decodes greedily,
one `step` of the decoder at a time from its own previous choice, until it writes the end
mark. The probability of an output is the product of its per-token probabilities, end mark
included.

    python examples/seq2seq.py                       # GRU, prints held-out exact match per epoch
    python examples/seq2seq.py --cell lstm --translate "four hundred and two" "ninety thousand"
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from argtypes import ArgumentParser, add_backend_argument, float_in, int_at_least

try:
    import rnnkit
except ModuleNotFoundError:  # not installed: use the source checkout this script sits in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import rnnkit
from rnnkit import nn, optim

# --------------------------------------------------------------------------- the data

ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SOURCE_WORDS = ONES + TENS[2:] + ["hundred", "thousand", "and"]
PAD, BOS, EOS = "<pad>", "<s>", "</s>"
TARGET_TOKENS = [PAD, BOS, EOS] + list("0123456789")  # the decoder's vocabulary


def _below_thousand(n: int) -> list[str]:
    """Words of 1 <= n <= 999: "three hundred and forty two"."""
    words = [ONES[n // 100], "hundred"] if n >= 100 else []
    rest = n % 100
    if rest:
        words += ["and"] if words else []
        words += [ONES[rest]] if rest < 20 else [TENS[rest // 10]]
        words += [ONES[rest % 10]] if rest >= 20 and rest % 10 else []
    return words


def number_to_words(n: int) -> list[str]:
    """0 <= n <= 999,999 in British English words, hyphenated numbers split into words."""
    if n == 0:
        return ["zero"]
    thousands, rest = divmod(n, 1000)
    words = _below_thousand(thousands) + ["thousand"] if thousands else []
    if rest:
        # "one thousand and five": "and" also joins thousands to a remainder below 100
        words += ["and"] if thousands and rest < 100 else []
        words += _below_thousand(rest)
    return words


def make_pairs(n: int, seed: int, max_digits: int) -> list[tuple[list[str], str]]:
    """``n`` distinct (words, digits) pairs; the digit count is uniform in 1..max_digits, so
    short numbers are as common as long ones."""
    rng = np.random.default_rng(seed)
    available = 10**max_digits
    if n > available:
        raise ValueError(f"only {available} numbers have at most {max_digits} digits, asked {n}")
    seen: dict[int, None] = {}
    while len(seen) < n:
        digits = int(rng.integers(1, max_digits + 1))
        low = 0 if digits == 1 else 10 ** (digits - 1)
        seen.setdefault(int(rng.integers(low, 10**digits)), None)
    return [(number_to_words(k), str(k)) for k in seen]


class Vocab:
    """Tokens -> indices, index 0 being padding."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)


SOURCE = Vocab([PAD] + SOURCE_WORDS)
TARGET = Vocab(TARGET_TOKENS)


def source_batch(sentences: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Word lists -> indices (T_src, B) padded with 0, and lengths (B,)."""
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    tokens = np.zeros((int(lengths.max()), len(sentences)), dtype=np.int64)  # (T_src, B)
    for b, words in enumerate(sentences):
        tokens[: len(words), b] = [SOURCE.stoi[w] for w in words]
    return tokens, lengths


def target_batch(outputs: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digit strings -> decoder input ``<s> d1 .. dn`` (T_tgt, B), the tokens it must
    predict ``d1 .. dn </s>`` (T_tgt, B), and the mask of real (non-padding) steps."""
    T = max(len(o) for o in outputs) + 1
    inputs = np.zeros((T, len(outputs)), dtype=np.int64)  # (T_tgt, B)
    targets = np.zeros((T, len(outputs)), dtype=np.int64)  # (T_tgt, B)
    for b, out in enumerate(outputs):
        ids = [TARGET.stoi[c] for c in out]
        inputs[: len(ids) + 1, b] = [TARGET.stoi[BOS]] + ids
        targets[: len(ids) + 1, b] = ids + [TARGET.stoi[EOS]]
    return inputs, targets, targets != 0


# --------------------------------------------------------------------------- the model


class Seq2Seq:
    """Encoder and decoder of the same cell; the encoder's final state starts the decoder."""

    def __init__(self, args: argparse.Namespace) -> None:
        cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[args.cell]
        E, H, L, seed = args.embed, args.hidden, args.layers, args.seed
        self.src_emb = nn.Embedding(len(SOURCE), E, padding_idx=0, seed=seed)
        self.encoder = cls(E, H, num_layers=L, backend=args.backend, seed=seed + 1)
        self.tgt_emb = nn.Embedding(len(TARGET), E, padding_idx=0, seed=seed + 2)
        self.decoder = cls(E, H, num_layers=L, backend=args.backend, seed=seed + 3)
        self.head = nn.Linear(H, len(TARGET), seed=seed + 4)
        self.modules = [self.src_emb, self.encoder, self.tgt_emb, self.decoder, self.head]
        self.has_cell = args.cell == "lstm"

    def train(self, mode: bool = True) -> None:
        for m in self.modules:
            m.train(mode)

    def encode(self, src: np.ndarray, lengths: np.ndarray):
        """src (T_src, B), lengths (B,) -> the state after each sentence's last word."""
        out, state = self.encoder(self.src_emb(src), None, lengths)  # out (T_src, B, H)
        self._enc_out_shape = out.shape
        return state  # h (L, B, H), or (h, c) for the LSTM

    def forward(self, src: np.ndarray, lengths: np.ndarray, tgt_in: np.ndarray) -> np.ndarray:
        """Teacher forcing: logits (T_tgt, B, V) of each next token given the true ones."""
        state = self.encode(src, lengths)
        out, _ = self.decoder(self.tgt_emb(tgt_in), state)  # (T_tgt, B, H)
        return self.head(out)

    def backward(self, dlogits: np.ndarray) -> None:
        """dlogits (T_tgt, B, V): the decoder's gradient of its initial state flows into
        the encoder's final state."""
        dy, d_state = self.decoder.backward(self.head.backward(dlogits), None)
        self.tgt_emb.backward(dy)  # dy (T_tgt, B, E)
        grad_out = np.zeros(self._enc_out_shape, dtype=dy.dtype)  # the encoder's out is unused
        dx, _ = self.encoder.backward(grad_out, d_state)  # dx (T_src, B, E)
        self.src_emb.backward(dx)

    def greedy(
        self, sentences: Sequence[Sequence[str]], max_len: int
    ) -> list[tuple[str, float, bool]]:
        """Decode each sentence one ``step`` at a time, feeding back the most probable
        output token (a digit or the end mark: never padding or <s>), until the end mark,
        for at most ``max_len + 1`` tokens. Returns (digits, log P, whether it wrote the end
        mark), P the product of the chosen tokens' probabilities, the end mark's included."""
        self.train(False)
        state = self.encode(*source_batch(sentences))
        B, first_output = len(sentences), TARGET.stoi[EOS]  # outputs: </s> and the digits
        token = np.full(B, TARGET.stoi[BOS])
        log_p = np.zeros(B)
        done = np.zeros(B, dtype=bool)
        chosen = []
        for _ in range(max_len + 1):
            h_t, state = self.decoder.step(self.tgt_emb(token), state)  # h_t (B, H)
            logp = nn.log_softmax(self.head(h_t).astype(np.float64))  # (B, V)
            token = first_output + logp[:, first_output:].argmax(axis=1)  # (B,)
            log_p += np.where(done, 0.0, logp[np.arange(B), token])
            chosen.append(np.where(done, TARGET.stoi[PAD], token))
            done |= token == TARGET.stoi[EOS]
            if done.all():
                break
        self.train(True)
        steps = np.stack(chosen, axis=1)  # (B, steps taken)
        texts = ["".join(TARGET.itos[t] for t in row if t > first_output) for row in steps]
        return list(zip(texts, log_p.tolist(), done.tolist()))

    def token_log_probs(self, sentence: Sequence[str], output: str) -> np.ndarray:
        """log P of each token of ``output`` and of the end mark, given ``sentence`` and the
        tokens before it: (len(output) + 1,)."""
        self.train(False)
        src, lengths = source_batch([sentence])
        tgt_in, targets, _ = target_batch([output])
        logp = nn.log_softmax(self.forward(src, lengths, tgt_in).astype(np.float64))
        self.train(True)
        return np.take_along_axis(logp[:, 0], targets[:, :1], axis=1)[:, 0]


def exact_match(model: Seq2Seq, pairs: Sequence[tuple[list[str], str]], max_len: int) -> float:
    decoded = model.greedy([w for w, _ in pairs], max_len)
    return float(np.mean([out == digits for (out, _, _), (_, digits) in zip(decoded, pairs)]))


# --------------------------------------------------------------------------- main


def fit(model: Seq2Seq, train, test, args: argparse.Namespace, log) -> list[dict]:
    """Adam on minibatches; the loss counts only real target steps (the mask)."""
    rng = np.random.default_rng(args.seed + 5)
    opt = optim.Adam(model.modules, lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        total, count = 0.0, 0
        perm = rng.permutation(len(train))
        for i in range(0, len(perm), args.batch_size):
            batch = [train[j] for j in perm[i : i + args.batch_size]]
            src, lengths = source_batch([w for w, _ in batch])
            tgt_in, targets, mask = target_batch([d for _, d in batch])
            opt.zero_grad()
            loss = loss_fn(model.forward(src, lengths, tgt_in), targets, mask)
            model.backward(loss_fn.backward())
            rnnkit.clip_grad_norm(model.modules, args.clip)
            opt.step()
            total, count = total + loss * mask.sum(), count + int(mask.sum())
        accuracy = exact_match(model, test, args.max_digits)
        history.append({"epoch": epoch, "loss": total / count, "test_exact": accuracy})
        log(
            f"epoch {epoch:3d}  loss {total / count:.4f} per token  held-out exact match "
            f"{accuracy:.3f}  ({time.perf_counter() - t0:.1f} s)"
        )
    return history


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    positive = int_at_least(1)
    p.add_argument("--cell", choices=["gru", "lstm"], default="gru", help="recurrent cell")
    p.add_argument("--max-digits", type=int_at_least(1), default=6, help="numbers below 10**N")
    p.add_argument("--train-pairs", type=positive, default=8000, help="training pairs")
    p.add_argument("--test-pairs", type=positive, default=1000, help="held-out pairs")
    p.add_argument("--embed", type=positive, default=32, help="embedding size (both sides)")
    p.add_argument("--hidden", type=positive, default=128, help="hidden size")
    p.add_argument("--layers", type=positive, default=1, help="layers of encoder and decoder")
    p.add_argument("--epochs", type=positive, default=12, help="passes over the training set")
    p.add_argument("--batch-size", type=positive, default=64, help="pairs per batch")
    p.add_argument("--lr", type=float_in(0), default=3e-3, help="Adam learning rate")
    p.add_argument("--clip", type=float_in(0), default=5.0, help="max gradient norm")
    add_backend_argument(p)
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of data and weights")
    p.add_argument("--translate", nargs="+", metavar="WORDS", help="decode these afterwards")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    return p


def check_words(parser: argparse.ArgumentParser, texts: Sequence[str]) -> list[list[str]]:
    """--translate texts as word lists; one-line error for a word the encoder never saw."""
    sentences = []
    for text in texts:
        words = text.lower().replace("-", " ").replace(",", " ").split()
        unknown = [w for w in words if w not in SOURCE.stoi]
        if not words or unknown:
            what = f"unknown words {', '.join(unknown)}" if unknown else "no words"
            parser.error(f"--translate {text!r}: {what} (the words are {' '.join(SOURCE_WORDS)})")
        sentences.append(words)
    return sentences


def main(argv: Sequence[str] | None = None) -> dict:
    """Train, print progress, decode ``--translate``; return the history and results."""
    parser = build_parser()
    args = parser.parse_args(argv)
    to_translate = check_words(parser, args.translate or [])
    if args.train_pairs + args.test_pairs > 10**args.max_digits:
        parser.error(
            f"--train-pairs {args.train_pairs} + --test-pairs {args.test_pairs} exceed the "
            f"{10**args.max_digits} numbers of at most --max-digits {args.max_digits} digits"
        )
    start = time.perf_counter()
    pairs = make_pairs(args.train_pairs + args.test_pairs, args.seed, args.max_digits)
    train, test = pairs[: args.train_pairs], pairs[args.train_pairs :]
    log = (lambda *a, **k: None) if args.quiet else print
    log(
        f"{len(train)} training and {len(test)} held-out pairs, numbers below "
        f"10**{args.max_digits}; e.g. {' '.join(train[0][0])!r} -> {train[0][1]!r}; "
        f"{args.cell.upper()} encoder-decoder embed={args.embed} hidden={args.hidden} "
        f"backend={args.backend}"
    )
    model = Seq2Seq(args)
    history = fit(model, train, test, args, log)
    elapsed = time.perf_counter() - start
    print(
        f"final: held-out exact match {history[-1]['test_exact']:.3f} "
        f"({args.cell}, {args.epochs} epochs, {elapsed:.1f} s)"
    )
    translations = []
    if to_translate:
        for words, (digits, log_p, ended) in zip(to_translate, model.greedy(to_translate, 12)):
            # the end mark's probability counts only when the decoder wrote it
            per_token = np.exp(model.token_log_probs(words, digits))[: len(digits) + ended]
            shown = " x ".join(f"{p:.3f}" for p in per_token)
            shown += "" if ended else f" (no end mark after {len(digits)} digits)"
            print(
                f"{' '.join(words)!r} -> {digits!r}  P = {shown} = {np.exp(log_p):.4g}  "
                f"log P = {log_p:.4f}"
            )
            translations.append((" ".join(words), digits, log_p, per_token, ended))
    return {"history": history, "test_exact": history[-1]["test_exact"],
            "translations": translations, "seconds": elapsed}  # fmt: skip


if __name__ == "__main__":
    main()
