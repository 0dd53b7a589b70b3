"""Longer run of the property in tests/test_fuzz.py: random configurations, inputs and
faults on both backends; every call must agree with the NumPy reference or raise the
error its fault calls for.

    PYTHONPATH=python python benchmarks/fuzz.py --examples 20000 [--seed 1]

Unlike the test (fixed examples, so CI is repeatable) this explores new examples on each
seed. Prints how many examples ran and how they ended; on a failure Hypothesis prints the
shrunk failing case and the script exits non-zero.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import test_fuzz  # noqa: E402  (the property and its strategy live with the tests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="examples to run")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random)")
    args = parser.parse_args()

    outcomes: collections.Counter[str] = collections.Counter()
    faults: collections.Counter[str] = collections.Counter()

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(test_fuzz.cases())
    def prop(case: test_fuzz.Case) -> None:
        outcome = test_fuzz.check(case)
        outcomes[outcome] += 1
        faults[case.fault or "none"] += 1

    if args.seed is not None:
        prop = seed(args.seed)(prop)
    start = time.perf_counter()
    failed = False
    try:
        prop()
    except Exception as exc:  # Hypothesis has printed the shrunk failing example
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        failed = True
    seconds = time.perf_counter() - start
    total = sum(outcomes.values())
    print(f"examples run: {total} in {seconds:.1f} s (seed {args.seed})")
    print("outcomes:", dict(sorted(outcomes.items())))
    print("faults injected:", dict(sorted(faults.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
