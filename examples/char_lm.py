"""Character-level language model on Shakespeare, trained with truncated BPTT.

    Embedding -> LSTM (many-to-many) -> Linear -> softmax over the next character

The text (examples/data/coriolanus.txt, about 32 KB of Coriolanus, public domain) is cut into
--batch-size parallel streams; each step trains on a chunk of --bptt characters per stream
and hands the chunk's final (h, c) to the next chunk as its initial state, without
backpropagating across the boundary (truncated BPTT). The last 10% of the text is held out.

    python examples/char_lm.py                                  # train, then sample
    python examples/char_lm.py --temperature 0.5 --sample-len 400
    python examples/char_lm.py --score "What says the other troop?" "Tahw syas eth"
    python examples/char_lm.py --save lm.npz    # later: --load lm.npz --epochs 0 --score ...
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from argtypes import (
    ArgumentParser,
    add_backend_argument,
    check_writable,
    file_problem,
    float_in,
    int_at_least,
)

try:
    import rnnkit
except ModuleNotFoundError:  # not installed: use the source checkout this script sits in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import rnnkit
from rnnkit import nn, optim

try:
    from tqdm import tqdm
except ImportError:  # the progress bar is optional
    tqdm = None

DEFAULT_TEXT = Path(__file__).resolve().parent / "data" / "coriolanus.txt"


def read_text(path: str | Path) -> str:
    """The file's text without its leading '# ...' header lines (the source note)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    text = "".join(lines)
    if len(text) < 2:
        raise ValueError(f"{path}: needs at least 2 characters of text, got {len(text)}")
    return text


def streams(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """ids (N,) -> (N // B, B): column b is the b-th contiguous slice of the text."""
    n = len(ids) // batch_size
    if n < 2:
        raise ValueError(
            f"the text ({len(ids)} characters) is too short for --batch-size {batch_size}"
        )
    return np.ascontiguousarray(ids[: n * batch_size].reshape(batch_size, n).T)


class CharLM:
    """Embedding (V, E) -> LSTM (E -> H, L layers) -> Linear (H -> V)."""

    def __init__(self, vocab_size: int, args: argparse.Namespace) -> None:
        self.emb = nn.Embedding(vocab_size, args.embed, seed=args.seed)
        self.lstm = rnnkit.LSTM(
            args.embed,
            args.hidden,
            num_layers=args.layers,
            dropout=args.dropout,
            backend=args.backend,
            seed=args.seed + 1,
        )
        self.head = nn.Linear(args.hidden, vocab_size, seed=args.seed + 2)
        self.modules = {"emb": self.emb, "lstm": self.lstm, "head": self.head}

    def train(self, mode: bool = True) -> None:
        for m in self.modules.values():
            m.train(mode)

    def forward(self, tokens: np.ndarray, state: tuple | None) -> tuple[np.ndarray, tuple]:
        """tokens (T, B) -> logits (T, B, V) and the final (h_n, c_n), each (L, B, H)."""
        out, state = self.lstm(self.emb(tokens), state)  # out (T, B, H)
        return self.head(out), state

    def backward(self, dlogits: np.ndarray) -> None:
        """Gradients of one chunk; none flows into the state it started from."""
        dx, _ = self.lstm.backward(self.head.backward(dlogits), None)  # dx (T, B, E)
        self.emb.backward(dx)


def evaluate(model: CharLM, data: np.ndarray, bptt: int) -> float:
    """Mean cross-entropy (nats per character) of the model over streams ``data`` (N, B)."""
    model.train(False)
    total, count, state = 0.0, 0, None
    for i in range(0, len(data) - 1, bptt):
        x, y = data[i : i + bptt], data[i + 1 : i + 1 + bptt]
        x = x[: len(y)]
        logits, state = model.forward(x, state)
        total += nn.CrossEntropyLoss(reduction="sum")(logits, y)
        count += y.size
    model.train(True)
    return total / count


def step_logits(model: CharLM, ids: Sequence[int], state: tuple | None):
    """Feed ``ids`` one sequence (B = 1); return the last step's logits (V,) and the state."""
    logits, state = model.forward(np.asarray(ids, dtype=np.int64).reshape(-1, 1), state)
    return logits[-1, 0], state


def sample(
    model: CharLM, chars: list[str], prime: str, length: int, temperature: float, seed: int
) -> str:
    """``prime`` followed by ``length`` characters drawn from softmax(logits / temperature)."""
    stoi = {c: i for i, c in enumerate(chars)}
    missing = sorted({c for c in prime if c not in stoi})
    if missing:
        raise ValueError(f"--prime uses characters not in the text: {missing}")
    rng = np.random.default_rng(seed)
    model.train(False)
    logits, state = step_logits(model, [stoi[c] for c in prime], None)
    out = []
    for _ in range(length):
        p = nn.softmax(logits.astype(np.float64) / temperature)
        nxt = int(rng.choice(len(chars), p=p))
        out.append(chars[nxt])
        logits, state = step_logits(model, [nxt], state)
    model.train(True)
    return prime + "".join(out)


def score(model: CharLM, chars: list[str], text: str) -> tuple[float, int]:
    """log P(text) in nats, as the sum of log P(c_t | "\\n" c_1 .. c_{t-1}), and its length.

    The text is scored as if it started a new line, so its first character has a context.
    """
    stoi = {c: i for i, c in enumerate(chars)}
    missing = sorted({c for c in text if c not in stoi})
    if missing:
        raise ValueError(f"cannot score {text!r}: characters not in the training text {missing}")
    # without a newline in the vocabulary the first character has no context and is skipped
    ids = ([stoi["\n"]] if "\n" in stoi else []) + [stoi[c] for c in text]
    if len(ids) < 2:
        raise ValueError(f"nothing to score in {text!r}")
    model.train(False)
    logits, _ = model.forward(np.array(ids[:-1], dtype=np.int64)[:, None], None)  # (T, 1, V)
    model.train(True)
    logp = nn.log_softmax(logits[:, 0].astype(np.float64))  # (T, V)
    targets = np.array(ids[1:])
    picked = logp[np.arange(len(targets)), targets]  # log P of each scored character
    return float(picked.sum()), len(targets)


class Progress:
    """tqdm when it is installed, otherwise a line every ``every`` batches."""

    def __init__(self, total: int, desc: str, quiet: bool) -> None:
        self.bar = tqdm(total=total, desc=desc, leave=False) if tqdm and not quiet else None
        self.total, self.desc, self.quiet, self.n = total, desc, quiet, 0
        self.every = max(1, total // 4)

    def update(self, loss: float) -> None:
        self.n += 1
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}")
            self.bar.update(1)
        elif not self.quiet and (self.n % self.every == 0 and self.n < self.total):
            print(f"  {self.desc} [{self.n:4d}/{self.total}] loss {loss:.3f}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    positive, count = int_at_least(1), int_at_least(0)
    p.add_argument(
        "--text", help="UTF-8 text file to train on; None: the bundled examples/data/coriolanus.txt"
    )
    p.add_argument("--max-chars", type=count, default=0, help="use only this many (0: all)")
    p.add_argument("--embed", type=positive, default=32, help="embedding size")
    p.add_argument("--hidden", type=positive, default=64, help="LSTM hidden size")
    p.add_argument("--layers", type=positive, default=1, help="LSTM layers")
    p.add_argument(
        "--dropout", type=float_in(0, 1, low_ok=True), default=0.0, help="between LSTM layers"
    )
    p.add_argument("--epochs", type=count, default=10, help="passes over the text")
    p.add_argument("--batch-size", type=positive, default=16, help="parallel streams")
    p.add_argument("--bptt", type=positive, default=64, help="characters per truncated-BPTT chunk")
    p.add_argument("--lr", type=float_in(0), default=1e-2, help="Adam learning rate")
    p.add_argument(
        "--clip", type=float_in(0, low_ok=True), default=5.0, help="max gradient norm (0: none)"
    )
    add_backend_argument(p)
    p.add_argument("--seed", type=count, default=0, help="seed of the weights and the sample")
    p.add_argument("--temperature", type=float_in(0), default=0.8, help="sampling temperature")
    p.add_argument("--sample-len", type=count, default=300, help="characters to sample (0: none)")
    p.add_argument("--prime", default="MENENIUS:\n", help="text the sample starts from")
    p.add_argument("--score", nargs="+", metavar="SENTENCE", help="print P(sentence)")
    p.add_argument("--save", help="write a checkpoint (.npz) after training")
    p.add_argument("--load", help="start from a checkpoint written by --save")
    p.add_argument("--quiet", action="store_true", help="no per-batch progress")
    return p


SIZES = ("embed", "hidden", "layers")  # what a checkpoint's model must share with the arguments


def check_inputs(parser: argparse.ArgumentParser, args: argparse.Namespace, chars: list) -> None:
    """Before training: every text to sample from or score is in the character set, and a
    checkpoint to load fits the arguments."""
    known = set(chars)
    if args.sample_len > 0:
        if not args.prime:
            parser.error("--prime: empty, the sample needs at least one character to start")
        missing = sorted(set(args.prime) - known)
        if missing:
            parser.error(f"--prime uses characters that are not in the text: {missing}")
    for sentence in args.score or []:
        missing = sorted(set(sentence) - known)
        if missing:
            parser.error(f"--score {sentence!r}: characters not in the text: {missing}")
        if len(sentence) + ("\n" in known) < 2:
            parser.error(f"--score {sentence!r}: nothing to score")
    if args.save:
        check_writable(parser, "--save", args.save)
    if args.load:
        try:  # the extras only (no module named): sizes and characters, before any loading
            extra = rnnkit.load_checkpoint(args.load, {}, strict=False)
        except OSError as e:
            parser.error(f"--load {args.load}: {file_problem(e)}")
        except ValueError as e:  # not a checkpoint, or a damaged one: the message names it
            parser.error(f"--load: {e}")
        if "chars" not in extra:
            parser.error(f"--load {args.load}: not written by this script (no character set)")
        stored = {k: int(extra[k]) for k in SIZES if k in extra}
        wrong = [k for k, v in stored.items() if v != getattr(args, k)]
        if wrong:
            saved = " ".join(f"--{k} {v}" for k, v in stored.items())
            given = " ".join(f"--{k} {getattr(args, k)}" for k in wrong)
            parser.error(f"--load {args.load}: its model has {saved}, not {given}")
        if [str(c) for c in extra["chars"]] != chars:
            parser.error(
                f"--load {args.load}: trained on another character set ({len(extra['chars'])} "
                f"characters; this text has {len(chars)}): pass the same --text and --max-chars"
            )


def main(argv: Sequence[str] | None = None) -> dict:
    """Train (unless --epochs 0), then sample and score; return losses and samples."""
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    path = args.text or DEFAULT_TEXT
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as e:
        parser.error(f"--text {path}: {file_problem(e)}")
    except ValueError as e:  # too short
        parser.error(f"--text {e}")
    if args.max_chars:
        text = text[: args.max_chars]
    chars = sorted(set(text))
    check_inputs(parser, args, chars)
    model = CharLM(len(chars), args)
    opt = optim.Adam(list(model.modules.values()), lr=args.lr)
    if args.load:
        try:
            rnnkit.load_checkpoint(args.load, model.modules, opt)
        except ValueError as e:  # a checkpoint from an older version of this script
            parser.error(f"--load: {e}")
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.int64)  # (N,)
    split = int(0.9 * len(ids))
    try:
        train = streams(ids[:split], args.batch_size)  # (N_train / B, B)
        valid = streams(ids[split:], max(1, min(args.batch_size, (len(ids) - split) // 2)))
    except ValueError as e:  # too short for the batch size
        parser.error(str(e))
    loss_fn = nn.CrossEntropyLoss()
    print(
        f"{len(text)} characters ({len(chars)} distinct), {split} for training; LSTM "
        f"embed={args.embed} hidden={args.hidden} layers={args.layers}, "
        f"batch {args.batch_size} x bptt {args.bptt}, backend={args.backend}; "
        f"uniform guess: loss {math.log(len(chars)):.3f} (perplexity {len(chars)})"
    )
    history = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        starts = range(0, len(train) - 1, args.bptt)
        bar = Progress(len(starts), f"epoch {epoch}", args.quiet)
        total, count, state = 0.0, 0, None
        for i in starts:
            x, y = train[i : i + args.bptt], train[i + 1 : i + 1 + args.bptt]
            x = x[: len(y)]  # (T, B) inputs and their next characters
            opt.zero_grad()
            logits, (h, c) = model.forward(x, state)
            state = (h.copy(), c.copy())  # next chunk starts here; no gradient crosses back
            loss = loss_fn(logits, y)
            model.backward(loss_fn.backward())
            if args.clip > 0:
                rnnkit.clip_grad_norm(list(model.modules.values()), args.clip)
            opt.step()
            total, count = total + loss * y.size, count + y.size
            bar.update(loss)
        bar.close()
        train_loss, val_loss = total / count, evaluate(model, valid, args.bptt)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
        print(
            f"epoch {epoch:3d}  train loss {train_loss:.3f} (ppl {math.exp(train_loss):6.2f})  "
            f"held-out loss {val_loss:.3f} (ppl {math.exp(val_loss):6.2f})  "
            f"{time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    if args.save:
        extra = {"chars": np.array(chars), **{k: np.array(getattr(args, k)) for k in SIZES}}
        rnnkit.save_checkpoint(args.save, model.modules, opt, extra=extra)
        print(f"saved {args.save}")
    elapsed = time.perf_counter() - start
    if args.epochs:
        print(f"trained {args.epochs} epochs in {elapsed:.1f} s")
    text_out = ""
    if args.sample_len > 0:
        text_out = sample(model, chars, args.prime, args.sample_len, args.temperature, args.seed)
        print(f"--- sample (temperature {args.temperature}) ---\n{text_out}\n---")
    scores = []
    for sentence in args.score or []:
        logp, n = score(model, chars, sentence)
        print(
            f"P = {math.exp(logp):.3e}  log P = {logp:.2f} nats over {n} characters, "
            f"{logp / n:.3f} nats/char (perplexity {math.exp(-logp / n):.2f})  {sentence!r}"
        )
        scores.append((sentence, logp, n))
    return {
        "history": history,
        "vocab_size": len(chars),
        "sample": text_out,
        "scores": scores,
        "seconds": elapsed,
    }


if __name__ == "__main__":
    main()
