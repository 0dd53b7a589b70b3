"""Run rnnkit's benchmark: ``python benchmarks/run_bench.py [options]`` (same as
``python -m rnnkit.bench``; ``--help`` lists the options)."""

import sys
from pathlib import Path

try:
    import rnnkit.bench
except ImportError:  # running from a checkout without installing: use python/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
    import rnnkit.bench

if __name__ == "__main__":
    sys.exit(rnnkit.bench.main())
