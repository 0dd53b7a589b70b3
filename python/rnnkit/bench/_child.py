"""Entry point of the benchmark's subprocesses (never imported by the package itself):

    python -m rnnkit.bench._child worker SPEC_JSON OUT_JSON THREADS
    python -m rnnkit.bench._child memory LIBRARY CELL T B I H THREADS SEED RNNKIT_BACKEND
    python -m rnnkit.bench._child mixed ITERATIONS SEED

``worker`` runs every case at one thread count (runner.run_thread_count) and writes its
JSON to OUT_JSON; ``memory`` prints the JSON of one peak-memory measurement
(memory.measure_here); ``mixed`` prints the JSON of the mixed loop's iteration times
(mixed.loop_here). The thread environment variables are set by the parent.
"""

import json
import sys
from pathlib import Path


def _worker(argv: list) -> None:
    from rnnkit.bench.runner import run_thread_count

    spec = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(json.dumps(run_thread_count(spec, int(argv[2]))))


def _memory(argv: list) -> None:
    from rnnkit.bench.configs import Config
    from rnnkit.bench.memory import measure_here

    library, cell = argv[0], argv[1]
    T, B, I, H, threads, seed = (int(a) for a in argv[2:8])  # noqa: E741
    config = Config("memory", T, B, I, H)
    print(json.dumps(measure_here(library, cell, config, threads, seed, argv[8])))


def _mixed(argv: list) -> None:
    from rnnkit.bench.mixed import loop_here

    print(json.dumps({"times_s": loop_here(int(argv[0]), int(argv[1]))}))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "worker":
        _worker(sys.argv[2:])
    elif len(sys.argv) == 11 and sys.argv[1] == "memory":
        _memory(sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "mixed":
        _mixed(sys.argv[2:])
    else:
        sys.exit(__doc__)
