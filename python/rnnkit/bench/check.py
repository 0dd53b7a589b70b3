"""The correctness check run before any timing: every implementation against a reference.

Error measure per array: max|got - ref| / max|ref| (a norm-wise relative error, so that
entries near zero do not dominate); an implementation passes when every array it shares
with the reference has the same shape and an error <= rtol, and it has every array the
reference has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_RTOL: float = 1e-4  # float32 over T steps and the parameter-gradient sums


@dataclass
class CheckResult:
    """``ok``; ``max_rel_err``: implementation -> worst error over its arrays;
    ``messages``: one line per disagreement, naming implementation, array and error."""

    ok: bool
    reference: str
    rtol: float
    max_rel_err: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "reference": self.reference,
            "rtol": self.rtol,
            "max_rel_err": self.max_rel_err,
            "messages": self.messages,
        }


def relative_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max|got - ref| / max|ref| in float64 (absolute error when ref is all zeros)."""
    got64 = np.asarray(got, dtype=np.float64)
    ref64 = np.asarray(ref, dtype=np.float64)
    diff = float(np.max(np.abs(got64 - ref64))) if ref64.size else 0.0
    scale = float(np.max(np.abs(ref64))) if ref64.size else 0.0
    if not np.isfinite(diff):
        return float("inf")
    return diff / scale if scale > 0.0 else diff


def check_agreement(results: dict, reference: str, rtol: float = DEFAULT_RTOL) -> CheckResult:
    """Compare ``results[name]`` (array name -> array) for every name against
    ``results[reference]``."""
    if reference not in results:
        raise ValueError(f"check_agreement: reference {reference!r} not in {sorted(results)}")
    ref = results[reference]
    check = CheckResult(ok=True, reference=reference, rtol=rtol)
    for name, got in results.items():
        if name == reference:
            continue
        worst = 0.0
        for key, ref_arr in ref.items():
            if key not in got:
                check.messages.append(f"{name}: missing {key!r} that {reference} has")
                worst = float("inf")
                continue
            got_arr = got[key]
            if np.shape(got_arr) != np.shape(ref_arr):
                check.messages.append(
                    f"{name}: {key} has shape {np.shape(got_arr)}, "
                    f"{reference} has {np.shape(ref_arr)}"
                )
                worst = float("inf")
                continue
            err = relative_error(got_arr, ref_arr)
            worst = max(worst, err)
            if not err <= rtol:
                check.messages.append(
                    f"{name} vs {reference}: {key} differs, relative error {err:.3g} > {rtol:g}"
                )
        check.max_rel_err[name] = worst
    check.ok = not check.messages
    return check
