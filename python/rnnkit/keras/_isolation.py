"""Reading a Keras file in a child process.

The HDF5 library can crash (a segmentation fault) on a damaged file instead of reporting an
error, which would end the Python process. ``load_in_child`` runs the whole load in a fresh
Python process that imports this same rnnkit; the model comes back pickled, and so do the
errors the load raises. A child that dies is reported as ValueError naming the file.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import rnnkit

_CHILD_CODE = "from rnnkit.keras._isolation import child_main; child_main()"
# What the child may raise back to the caller; anything else is a bug, reported as such.
_EXPECTED = (ValueError, NotImplementedError, OSError, ImportError)


def child_main() -> None:
    """In the child: load ``sys.argv[1]``; write ``pickle((ok, model or error))`` to the
    file ``sys.argv[2]`` (not stdout, which anything imported may print to)."""
    from rnnkit.keras._build import build
    from rnnkit.keras._files import SavedModel

    try:
        with SavedModel(sys.argv[1]) as saved:
            result: tuple[bool, Any] = (True, build(saved))
    except _EXPECTED as exc:
        result = (False, exc)
    Path(sys.argv[2]).write_bytes(pickle.dumps(result))


def load_in_child(path: str | Path) -> Any:
    """``build(SavedModel(path))`` computed in a child process (see the module docstring)."""
    package_root = str(Path(rnnkit.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root, *sys.path])
    with tempfile.TemporaryDirectory() as folder:
        result_file = Path(folder) / "result.pickle"
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD_CODE, os.fspath(path), str(result_file)],
            capture_output=True,
            env=env,
            check=False,
        )
        result = result_file.read_bytes() if proc.returncode == 0 else b""
    if proc.returncode < 0:
        raise ValueError(
            f"{path} is damaged: reading it crashed the HDF5 library (the reading process "
            f"ended by signal {-proc.returncode})"
        )
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"reading {path} failed in the child process:\n{tail}")
    ok, value = pickle.loads(result)  # written by child_main above, not read from the file
    if not ok:
        raise value
    return value
