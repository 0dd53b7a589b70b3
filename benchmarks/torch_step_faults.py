"""Page faults of a torch training step, plain torch or patched onto rnnkit.torch, in one
process alone or both interleaved (the model of bench_torch_bridge.py, LSTM, padded, 1
thread).

Prints, per engine, the median CPU time of a step and the median number of minor page
faults per step (memory the step got fresh from the kernel and had to fault in). Used to
show why bench_torch_bridge.py runs each engine in a process of its own, and what the
memory pool's handling of glibc (cpp/src/memory_pool.cpp) changes:

    python benchmarks/torch_step_faults.py torch
    python benchmarks/torch_step_faults.py rnnkit
    python benchmarks/torch_step_faults.py torch,rnnkit
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

import torch

VOCAB, EMBED, HIDDEN, LAYERS, BATCH, STEPS = 1000, 64, 256, 2, 32, 50


def main() -> None:
    engines = sys.argv[1].split(",") if len(sys.argv) > 1 else ["torch", "rnnkit"]
    torch.set_num_threads(1)

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, EMBED)
            self.rnn = torch.nn.LSTM(EMBED, HIDDEN, num_layers=LAYERS, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, VOCAB)

        def forward(self, tokens):
            return self.head(self.rnn(self.emb(tokens))[0])

    models = {}
    for name in engines:
        torch.manual_seed(0)
        models[name] = Model()
        if name == "rnnkit":  # imported only where asked for: a torch process stays plain
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
            import rnnkit.torch as rt

            models[name] = rt.patch(models[name])
    opts = {name: torch.optim.Adam(m.parameters(), lr=1e-3) for name, m in models.items()}
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB, (BATCH, STEPS), generator=gen)
    labels = torch.randint(0, VOCAB, (BATCH, STEPS), generator=gen)

    def step(name: str) -> None:
        logits = models[name](tokens)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1))
        opts[name].zero_grad()
        loss.backward()
        opts[name].step()

    times = {name: [] for name in engines}
    faults = {name: [] for name in engines}
    for i in range(14):
        for name in engines if i % 2 == 0 else engines[::-1]:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.process_time()
            step(name)
            elapsed = time.process_time() - start
            if i >= 3:
                times[name].append(elapsed)
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    for name in engines:
        print(
            f"{name}: {1e3 * statistics.median(times[name]):.1f} ms per step (CPU), "
            f"{statistics.median(faults[name]):.0f} page faults per step"
        )


if __name__ == "__main__":
    main()
