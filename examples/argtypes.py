"""Command-line checks shared by the example scripts: a bad argument or input file ends the
script with one line, ``<script>: error: ...`` and exit status 2, instead of a traceback.

Only *expected* mistakes are turned into such lines (a number out of range, a missing or
unreadable file, a checkpoint that does not fit); anything else still raises normally.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line (the usage is what --help prints)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def int_at_least(low: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


def float_in(low: float, high: float = math.inf, low_ok: bool = False) -> Callable[[str], float]:
    """argparse type: a number above ``low`` (or equal to it with ``low_ok``), below ``high``."""
    if high == math.inf:
        expected = f"a number {'>=' if low_ok else '>'} {low:g}"
    else:
        expected = f"a number in {'[' if low_ok else '('}{low:g}, {high:g})"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan  # fails both comparisons below
        if not ((value >= low if low_ok else value > low) and value < high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def check_writable(parser: argparse.ArgumentParser, option: str, path: str) -> None:
    """Before any work: ``path`` is a file name in an existing, writable folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        parser.error(f"{option} {path}: is a folder, expected a file name")
    if not os.path.isdir(folder):
        parser.error(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        parser.error(f"{option} {path}: the folder {folder} is not writable")


def file_problem(e: OSError | UnicodeDecodeError) -> str:
    """What went wrong reading a file, in a few words."""
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text (byte {e.start})"
    return e.strerror or str(e)


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """The examples' ``--backend``: native (the C++ core, default) or numpy (the reference)."""
    parser.add_argument(
        "--backend",
        choices=["native", "numpy"],
        default="native",
        help="native: the C++ core; numpy: the NumPy reference",
    )
