"""``python -m rnnkit.bench``: arguments in, report out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnnkit.bench import configs, report, runner

DEFAULT_JSON = Path("benchmarks/results/bench.json")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rnnkit.bench",
        description="Time rnnkit (native) against torch and the NumPy reference, "
        "after checking that their results agree.",
    )
    p.add_argument("--cells", help="comma-separated subset of rnn,lstm,gru (default: all)")
    p.add_argument(
        "--configs",
        help="comma-separated names (b1, b32, b64, long; quick: tiny1, tiny4) or sizes "
        "TxBxIxH / TxBxH (default: the full set, or the quick set with --quick)",
    )
    p.add_argument("--modes", help="comma-separated subset of inference,training (default: both)")
    p.add_argument(
        "--threads", default="1,all", help="thread counts, e.g. 1,all (default) or 1,2,4"
    )
    p.add_argument(
        "--repeats", type=int, help="timed repeats per implementation (default 7; quick 2)"
    )
    p.add_argument(
        "--numpy-repeats",
        type=int,
        help="repeats of the slow NumPy reference (default min(3, repeats))",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds of timed repeats per implementation and case; slower ones get fewer "
        "repeats, at least 3 (default 30)",
    )
    p.add_argument("--quick", action="store_true", help="tiny configs and 2 repeats (smoke run)")
    p.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"JSON output (default {DEFAULT_JSON})"
    )
    p.add_argument(
        "--png", type=Path, help="PNG chart of torch/rnnkit (default: the JSON path with .png)"
    )
    p.add_argument("--no-torch", action="store_true", help="do not time torch")
    p.add_argument(
        "--no-numpy", action="store_true", help="do not time the NumPy reference (still checked)"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run every thread count in this process (BLAS threads then set at run time only)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    p.add_argument(
        "--rnnkit-backend",
        choices=("native", "numpy"),
        default="native",
        help="backend of the implementation reported as rnnkit (numpy: to test the benchmark "
        "itself without the native core)",
    )
    return p


def options_from_args(args: argparse.Namespace) -> runner.Options:
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 7)
    if repeats < 1:
        raise ValueError(f"--repeats: must be >= 1, got {repeats}")
    if not args.budget > 0:
        raise ValueError(f"--budget: must be > 0 seconds, got {args.budget}")
    numpy_repeats = args.numpy_repeats if args.numpy_repeats is not None else min(3, repeats)
    if numpy_repeats < 1:
        raise ValueError(f"--numpy-repeats: must be >= 1, got {numpy_repeats}")
    return runner.Options(
        cells=configs.parse_names(args.cells, configs.CELLS, "--cells"),
        configs=configs.parse_configs(args.configs, args.quick),
        modes=configs.parse_names(args.modes, configs.MODES, "--modes"),
        threads=configs.parse_threads(args.threads),
        repeats=repeats,
        numpy_repeats=min(numpy_repeats, repeats),
        torch=not args.no_torch,
        numpy=not args.no_numpy,
        memory=not args.no_memory,
        in_process=args.in_process,
        quick=args.quick,
        min_sample_s=0.005 if args.quick else 0.05,
        budget_s=args.budget,
        settle_s=0.02 if args.quick else 0.25,
        matmul_n=256 if args.quick else 2048,
        seed=args.seed,
        rnnkit_backend=args.rnnkit_backend,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 when every case was checked and timed, else 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        opts = options_from_args(args)
    except ValueError as e:
        parser.error(str(e))
    result = runner.run(opts)
    print(report.format_report(result))
    report.write_json(result, args.json)
    print(f"JSON written to {args.json}")
    png = args.png if args.png is not None else args.json.with_suffix(".png")
    if report.write_png(result, png):
        print(f"PNG chart written to {png}")
    else:
        print("matplotlib is not installed: no PNG chart (pip install matplotlib to get one)")
    failed = [c for c in result["cases"] if c["status"] != "ok"]
    if failed:
        print(f"{len(failed)} case(s) not timed: see the table", file=sys.stderr)
    return 1 if failed else 0
