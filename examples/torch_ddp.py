"""Data-parallel training of a character language model on rnnkit.torch with DDP (gloo).

    Embedding -> rnnkit.torch.LSTM -> Linear, DistributedDataParallel over processes

Each process takes an equal share of every global batch (the rows ``rank::world``); DDP
averages the gradients, so every process takes the same steps as one process on the whole
batch. Run it on one machine with 2 processes:

    torchrun --nproc_per_node 2 examples/torch_ddp.py

across 2 machines (run on each, --node_rank 0 on the one at MASTER_IP):

    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 2 \\
        --master_addr MASTER_IP --master_port 29500 examples/torch_ddp.py

or as a single process (no torchrun): ``python examples/torch_ddp.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

try:
    import rnnkit.torch as rt
except ModuleNotFoundError:  # not installed: use the source checkout this script sits in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import rnnkit.torch as rt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from char_lm import DEFAULT_TEXT, read_text  # noqa: E402 (the same text and reader)


class CharModel(torch.nn.Module):
    """tokens (B, T) -> logits (B, T, V)."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, embed)
        self.lstm = rt.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.emb(tokens))[0])


def batches(text: str, batch: int, bptt: int, steps: int, seed: int):
    """``steps`` global batches (inputs, targets), each (batch, bptt) int64, drawn at
    random offsets of the text with a fixed seed (the same on every process)."""
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text], dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - bptt - 1, (batch,), generator=gen)
        window = torch.stack([ids[s : s + bptt + 1] for s in starts.tolist()])
        yield window[:, :-1], window[:, 1:]


def train(args: argparse.Namespace) -> dict:
    """Train; returns the final state dict (the same on every process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch % world:
        raise ValueError(f"--batch {args.batch} must be a multiple of the {world} processes")
    text = read_text(DEFAULT_TEXT)[: args.max_chars or None]
    vocab = len(set(text))
    torch.manual_seed(args.seed)  # the same initial parameters on every process
    model = CharModel(vocab, args.embed, args.hidden, args.layers).to(args.dtype)
    net = DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    for step, (inputs, targets) in enumerate(
        batches(text, args.batch, args.bptt, args.steps, args.seed)
    ):
        mine = slice(rank, None, world)  # this process's share of the global batch
        logits = net(inputs[mine])
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, vocab), targets[mine].reshape(-1)
        )
        opt.zero_grad()
        loss.backward()  # DDP averages the gradients over the processes
        opt.step()
        if rank == 0 and (step % max(1, args.steps // 5) == 0 or step == args.steps - 1):
            print(f"step {step:4d}  loss {loss.item():.3f}  ({world} process(es))", flush=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if args.save and rank == 0:
        torch.save(state, args.save)
    if world > 1:
        # DDP's reducer holds the process group: drop it while the group still exists (a
        # reducer destroyed after the group could hang at exit), then meet at a barrier so
        # that every process is done with its collectives before the group goes.
        del net, opt
        dist.barrier()
        dist.destroy_process_group()
    return state


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=100, help="training steps")
    p.add_argument("--batch", type=int, default=32, help="global batch (all processes)")
    p.add_argument("--bptt", type=int, default=50, help="characters per sequence")
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-chars", type=int, default=0, help="use only this many (0: all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads per process (0: keep)")
    p.add_argument(
        "--float64",
        dest="dtype",
        action="store_const",
        const=torch.float64,
        default=torch.float32,
        help="train in float64",
    )
    p.add_argument("--save", help="write the final state dict here (rank 0)")
    return p


if __name__ == "__main__":
    train(build_parser().parse_args())
