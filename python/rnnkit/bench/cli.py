"""``python -m rnnkit.bench``: arguments in, report out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rnnkit.bench import configs, peers, report, runner

# Hidden sizes of the per-call table (--per-call).
PER_CALL_SIZES: tuple[int, ...] = (64, 256)
PER_CALL_QUICK: tuple[int, ...] = (8, 16)


class _OneLineErrors(argparse.ArgumentParser):
    """argparse whose errors are one line (the usage is what --help prints)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineErrors(
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
        "--json",
        type=Path,
        help="write every measurement (per-repeat times included) to this JSON file "
        "(default: no file)",
    )
    p.add_argument(
        "--png", type=Path, help="write a chart of torch/rnnkit to this PNG file (matplotlib)"
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
    p.add_argument(
        "--peers",
        nargs="?",
        const=",".join(peers.PEER_PACKAGES),
        help="also time inference peers on an ONNX model of the same weights, checked "
        "against the reference first: a comma-separated subset of onnxruntime,openvino "
        "(default: both); a peer whose package is missing is skipped with a note. Inference "
        "only; thread count: the run's (onnxruntime intra-op threads, inter-op 1; OpenVINO "
        "INFERENCE_NUM_THREADS). Needs the bench extra (pip install rnnkit[bench])",
    )
    p.add_argument(
        "--per-call",
        action="store_true",
        help="add a per-call table: one eval call at T=1, B=1, I=H for LSTM, GRU and RNN at "
        "H=64 and 256 (quick: 8 and 16), microseconds per call for every implementation",
    )
    p.add_argument(
        "--mixed",
        action="store_true",
        help="add the mixed loop: rnnkit.LSTM(64, 64) training steps on x (12, 32, 64) plus "
        "one NumPy (384, 64) @ (64, 256) per iteration, median and p90 ms with default "
        "thread settings vs OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1, fresh processes "
        "alternated (3 of 200 iterations per setting; quick: 1 of 5)",
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
    if args.seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {args.seed}")
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
        peers=[]
        if args.peers is None
        else configs.parse_names(args.peers, tuple(peers.PEER_PACKAGES), "--peers"),
        per_call=list(PER_CALL_QUICK if args.quick else PER_CALL_SIZES) if args.per_call else [],
        mixed=args.mixed,
        mixed_iterations=5 if args.quick else 200,
        mixed_rounds=1 if args.quick else 3,
    )


def check_output_path(option: str, path: Path | None) -> None:
    """Fail now, not after the run, when ``path`` cannot be written: its folder is created
    if missing, the path itself must not be a folder."""
    if path is None:
        return
    if path.is_dir():
        raise ValueError(f"{option}: {path} is a folder, expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{option}: cannot create the folder of {path}: {e.strerror}") from e
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"{option}: the folder of {path} is not writable")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 when every case was checked and timed, else 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        opts = options_from_args(args)
        check_output_path("--json", args.json)
        check_output_path("--png", args.png)
        if args.png is not None and not report.have_matplotlib():
            raise ValueError("--png needs matplotlib (pip install matplotlib)")
    except ValueError as e:
        parser.error(str(e))
    try:
        result = runner.run(opts)
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    print(report.format_report(result))
    if args.json is not None:
        report.write_json(result, args.json)
        print(f"JSON written to {args.json}")
    if args.png is not None:
        report.write_png(result, args.png)
        print(f"PNG chart written to {args.png}")
    failed = [c for c in result["cases"] if c["status"] != "ok"]
    if failed:
        print(f"{len(failed)} case(s) not timed: see the table", file=sys.stderr)
    return 1 if failed else 0
