"""Character language model in plain PyTorch, its LSTM running on rnnkit (rnnkit.torch.patch).

    nn.Embedding -> nn.LSTM (patched onto rnnkit) -> nn.Linear, torch.optim.Adam

The model is written with torch.nn.LSTM; ``rnnkit.torch.patch(model)`` then swaps the
LSTM's class in place, after the optimizer was made: the optimizer keeps updating the same
Parameters. The text (examples/data/coriolanus.txt) is cut into --batch-size streams and
trained with truncated BPTT, as in examples/char_lm.py; the last 10% is held out.

    python examples/torch_char_lm.py                    # rnnkit
    python examples/torch_char_lm.py --engine torch     # the same loop on torch's LSTM
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

try:
    import rnnkit.torch as rt
except ModuleNotFoundError:  # not installed: use the source checkout this script sits in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import rnnkit.torch as rt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from char_lm import DEFAULT_TEXT, read_text, streams  # noqa: E402 (the same data handling)


class CharLM(torch.nn.Module):
    """tokens (T, B) and a state -> logits (T, B, V) and the final (h, c), each (L, B, H)."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, num_layers=layers, dropout=dropout)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor, state=None):
        out, state = self.lstm(self.emb(tokens), state)
        return self.head(out), state


def evaluate(model: CharLM, data: torch.Tensor, bptt: int) -> float:
    """Mean cross-entropy (nats per character) over the streams ``data`` (N, B)."""
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for i in range(0, len(data) - 1, bptt):
            x, y = data[i : i + bptt], data[i + 1 : i + 1 + bptt]
            logits, state = model(x[: len(y)], state)
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"
            ).item()
            count += y.numel()
    model.train()
    return total / count


def sample(model: CharLM, chars: list[str], prime: str, length: int, seed: int) -> str:
    """``prime`` followed by ``length`` characters drawn from the model (temperature 0.8)."""
    stoi = {c: i for i, c in enumerate(chars)}
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    ids = [stoi[c] for c in prime if c in stoi] or [0]
    out = []
    with torch.no_grad():
        logits, state = model(torch.tensor(ids).reshape(-1, 1))
        for _ in range(length):
            p = torch.softmax(logits[-1, 0] / 0.8, dim=0)
            nxt = int(torch.multinomial(p, 1, generator=gen))
            out.append(chars[nxt])
            logits, state = model(torch.tensor([[nxt]]), state)
    model.train()
    return prime + "".join(out)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", choices=["rnnkit", "torch"], default="rnnkit")
    p.add_argument("--max-chars", type=int, default=0, help="use only this many (0: all)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--bptt", type=int, default=64)
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-len", type=int, default=200)
    args = p.parse_args(argv)

    text = read_text(DEFAULT_TEXT)[: args.max_chars or None]
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.int64)
    split = int(len(ids) * 0.9)
    train_data = torch.from_numpy(streams(ids[:split].numpy(), args.batch_size))  # (N, B)
    valid_data = torch.from_numpy(streams(ids[split:].numpy(), 1))

    torch.manual_seed(args.seed)
    model = CharLM(len(chars), args.embed, args.hidden, args.layers, args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    if args.engine == "rnnkit":
        rt.patch(model)  # the LSTM now runs on rnnkit; opt still holds its Parameters
    print(f"{type(model.lstm).__module__}.{type(model.lstm).__name__}, {len(chars)} characters")

    history = []
    for epoch in range(args.epochs):
        start, state, losses = time.perf_counter(), None, []
        for i in range(0, len(train_data) - 1, args.bptt):
            x, y = train_data[i : i + args.bptt], train_data[i + 1 : i + 1 + args.bptt]
            logits, state = model(x[: len(y)], state)
            state = tuple(s.detach() for s in state)  # truncated BPTT
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(loss.item())
        valid = evaluate(model, valid_data, args.bptt)
        history.append({"train": sum(losses) / len(losses), "valid": valid})
        print(
            f"epoch {epoch + 1}: train {history[-1]['train']:.3f}  valid {valid:.3f} nats/char "
            f"(perplexity {math.exp(valid):.1f})  {time.perf_counter() - start:.1f} s"
        )
    if args.sample_len:
        print(sample(model, chars, "MENENIUS:", args.sample_len, args.seed))
    return {"history": history, "model": model}


if __name__ == "__main__":
    main()
