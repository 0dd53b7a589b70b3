"""Presenting a result: a markdown table, the JSON file and (with matplotlib) a PNG chart."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from rnnkit.bench import peers, timing

MIB = 1024.0 * 1024.0


def _fmt(value, spec: str, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value, spec)


def _memory_index(result: dict) -> dict:
    """(cell, config name, library) -> peak step bytes."""
    return {
        (m["cell"], m["config"]["name"], m["library"]): m.get("peak_step_bytes")
        for m in result["memory"]
    }


# A 1-minute load average of at least this before the run means that, on average, another
# process was running: it takes cores from the timed calls.
BUSY_LOAD: float = 1.0


def _load_lines(meta: dict) -> list[str]:
    load = meta.get("load_average") or {}
    before, after = load.get("before"), load.get("after")
    if before is None:
        return []
    text = f"1-minute load average {before:.1f} before the run, {_fmt(after, '.1f')} after"
    if before < BUSY_LOAD:
        return [f"- machine load: {text}"]
    return [
        f"- WARNING, busy machine: {text}, on {meta['cores']} cores; other processes took "
        "cores from the timed calls, so the times (most of all at more than one thread) are "
        "not those of an idle machine"
    ]


def _teams_note(thread_counts: dict) -> str:
    """Where rnnkit's large teams ran when torch was timed in the same process."""
    on_torch = thread_counts.get("rnnkit_on_torch_threads")
    if on_torch is None:
        return ""
    return "; rnnkit's teams on " + ("torch's OpenMP threads" if on_torch else "its own pool")


def header_lines(result: dict) -> list[str]:
    meta = result["meta"]
    lines = [
        f"- rnnkit {meta['rnnkit']} (OpenMP: {'yes' if meta['rnnkit_openmp'] else 'no'}), "
        f"numpy {meta['numpy']} ({meta['numpy_blas']}), torch {meta['torch'] or 'not installed'}, "
        f"Python {meta['python']}",
        f"- CPU: {meta['cpu']} ({meta['cores']} cores available; "
        f"{', '.join(meta['cpu_flags']) or 'no SIMD flags read'})",
        f"- threads: {', '.join(str(t) for t in meta['threads'])}",
    ]
    if meta.get("peers"):
        lines.append(
            "- inference peers (ONNX model of the same weights, checked on the eval output): "
            + ", ".join(f"{k} {v or 'not installed'}" for k, v in meta["peers"].items())
        )
    for p in result["peaks"]:
        blas_threads = p["thread_counts"]["blas"]
        lines.append(
            f"- practical peak at {p['threads']} thread(s): numpy float32 matmul {p['n']}^3 "
            f"= {p['gflops']:.1f} GFLOP/s, the better of the run's start and end (BLAS threads: "
            f"{'unknown' if blas_threads is None else blas_threads}"
            + _teams_note(p["thread_counts"])
            + ")"
            + (" UNRELIABLE: slower than at fewer threads" if p.get("starved") else "")
        )
    lines += _load_lines(meta)
    lines.append(f"- FLOPs: {meta['flop_formula']}")
    lines.append(f"- check before timing: {meta['check']}")
    lines.append(
        "- times: median of interleaved repeats after warm-up (min, IQR and every repeat in "
        "the JSON that --json writes); at "
        "more than one thread a pause between implementations lets the previous one's thread "
        "pool stop spinning"
    )
    if result["memory"]:
        lines.append(
            "- memory: peak resident memory one training step adds (VmHWM after the step minus "
            "VmRSS before it; fresh process per library and case, after a warm-up step; "
            "precision a few hundred KiB)"
        )
    return lines


def _ratio_cell(case: dict) -> str:
    """torch/rnnkit, or the same in parentheses with the reason it is not a result."""
    text = _fmt(case["ratio_torch_over_rnnkit"], ".2f")
    if case.get("ratio_unreliable"):
        return f"({text}) unreliable: {case['ratio_unreliable']}"
    return text


def unreliable_note(result: dict) -> list[str]:
    """The footnote explaining 'unreliable' (nothing when no row is marked)."""
    if not any(
        c.get("ratio_unreliable") or c.get("peer_ratio_unreliable") for c in result["cases"]
    ):
        return []
    return [
        "",
        "unreliable: the machine changed during that row's measurement, so its torch/rnnkit "
        "(or peer/rnnkit) is not a result. 'repeats spread': rnnkit's or torch's (or the "
        "peer's) slowest repeat took more "
        f"than {timing.UNRELIABLE_SPREAD:g}x its fastest. 'did not get cores': NumPy's matmul "
        "ran slower at that thread count than at fewer threads. Rerun on an idle machine.",
    ]


def peer_names(cases: list) -> list[str]:
    """The peers timed in any of ``cases``, in peers.PEER_PACKAGES's order."""
    timed = {n for c in cases for n in c.get("ratio_peers_over_rnnkit") or {}}
    return [n for n in peers.PEER_PACKAGES if n in timed]


def _peer_cells(case: dict, name: str) -> list[str]:
    """ms, peer/rnnkit (in parentheses when unreliable) and % of matmul of one peer."""
    ratio = (case.get("ratio_peers_over_rnnkit") or {}).get(name)
    if ratio is None:
        return ["-", "-", "-"]
    ratio_text = _fmt(ratio, ".2f")
    why = (case.get("peer_ratio_unreliable") or {}).get(name)
    fraction = (case.get("peer_peak_fraction") or {}).get(name)
    return [
        _fmt(case["times"][name]["median_s"] * 1e3, ".3f"),
        f"({ratio_text}) unreliable: {why}" if why else ratio_text,
        _fmt(None if fraction is None else 100.0 * fraction, ".1f"),
    ]


def table_lines(result: dict) -> list[str]:
    """Markdown table: one row per cell x config x mode x threads; with peers, three
    columns per peer (ms, peer / rnnkit, % of matmul) before the memory columns."""
    mem = _memory_index(result)
    names = peer_names(result["cases"])
    cols = [
        "cell",
        "T",
        "B",
        "I",
        "H",
        "mode",
        "thr",
        "rnnkit ms",
        "torch ms",
        "numpy ms",
        "torch/rnnkit",
        "rnnkit GFLOP/s",
        "% of matmul",
        "torch % of matmul",
    ]
    for n in names:
        short = peers.SHORT_NAMES[n]
        cols += [f"{short} ms", f"{short} / rnnkit", f"{short} % of matmul"]
    cols += ["rnnkit MiB", "torch MiB"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for c in result["cases"]:
        cfg = c["config"]
        row = [c["cell"], cfg["T"], cfg["B"], cfg["I"], cfg["H"], c["mode"], c["threads"]]
        if c["status"] != "ok":
            row += [f"**{c['status']}**: {c['message']}"] + [""] * (len(cols) - len(row) - 1)
        else:
            t = c["times"]
            ms = {
                k: t[k]["median_s"] * 1e3 if k in t else None for k in ("rnnkit", "torch", "numpy")
            }
            training = c["mode"] == "training"
            mem_r = mem.get((c["cell"], cfg["name"], "rnnkit")) if training else None
            mem_t = mem.get((c["cell"], cfg["name"], "torch")) if training else None
            row += [
                _fmt(ms["rnnkit"], ".3f"),
                _fmt(ms["torch"], ".3f"),
                _fmt(ms["numpy"], ".3f"),
                _ratio_cell(c),
                _fmt(c["gflops"]["rnnkit"], ".3g"),
                _fmt(100.0 * c["peak_fraction"], ".1f"),
                _fmt(
                    None if c["torch_peak_fraction"] is None else 100.0 * c["torch_peak_fraction"],
                    ".1f",
                ),
            ]
            for n in names:
                row += _peer_cells(c, n)
            row += [
                _fmt(None if mem_r is None else mem_r / MIB, ".2f"),
                _fmt(None if mem_t is None else mem_t / MIB, ".2f"),
            ]
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return lines


def per_call_lines(result: dict) -> list[str]:
    """The per-call table: microseconds per eval call at T=1, B=1, one row per cell, H and
    thread count (nothing when the run had no per-call cases)."""
    cases = result.get("per_call") or []
    if not cases:
        return []
    names = ["rnnkit", "torch", *peer_names(cases)]
    short = {"rnnkit": "rnnkit", "torch": "torch", **peers.SHORT_NAMES}
    cols = ["cell", "H", "thr", *(f"{short[n]} µs" for n in names)]
    lines = [
        "",
        "Per call: one eval-mode forward at T=1, B=1, I=H (median µs per call)",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    for c in cases:
        row = [c["cell"], c["config"]["H"], c["threads"]]
        if c["status"] != "ok":
            row += [f"**{c['status']}**: {c['message']}"] + [""] * (len(names) - 1)
        else:
            t = c["times"]
            row += [_fmt(t[n]["median_s"] * 1e6 if n in t else None, ".1f") for n in names]
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return lines


def mixed_lines(result: dict) -> list[str]:
    """The mixed loop's table (nothing when the run had none)."""
    res = result.get("mixed")
    if not res:
        return []
    lines = [
        "",
        f"Mixed loop: {res['description']} (ms per iteration, fresh processes)",
        "",
        "| setting | environment | median ms | p90 ms | iterations |",
        "|---|---|---|---|---|",
    ]
    for name, s in res["settings"].items():
        env = " ".join(f"{k}={v}" for k, v in s["env"].items()) or "no thread variable"
        lines.append(
            f"| {name} | {env} | {s['median_ms']:.3f} | {s['p90_ms']:.3f} | "
            f"{s['iterations']} in {s['children']} process(es) |"
        )
    return lines


def format_report(result: dict) -> str:
    lines = header_lines(result) + [""] + table_lines(result) + unreliable_note(result)
    lines += per_call_lines(result) + mixed_lines(result)
    return "\n".join(lines) + "\n"


def _finite(obj):
    """JSON has no Infinity/NaN: non-finite floats become None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(result), indent=1, allow_nan=False) + "\n")


def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def write_png(result: dict, path: Path) -> bool:
    """A bar chart of torch/rnnkit per case; False (and nothing written) without matplotlib."""
    if not have_matplotlib():
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from matplotlib.patches import Patch

    ok = [c for c in result["cases"] if c["status"] == "ok" and c["ratio_torch_over_rnnkit"]]
    labels = [
        f"{c['cell']} T{c['config']['T']} B{c['config']['B']} H{c['config']['H']}\n"
        f"{c['mode']} {c['threads']}t"
        for c in ok
    ]
    ratios = [c["ratio_torch_over_rnnkit"] for c in ok]
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.22 * len(ok) + 2.0)), 5.0))
    colors = ["tab:blue" if c["mode"] == "inference" else "tab:orange" for c in ok]
    bars = ax.bar(range(len(ok)), ratios, color=colors)
    for bar, c in zip(bars, ok):
        if c.get("ratio_unreliable"):  # see unreliable_note
            bar.set_alpha(0.35)
            bar.set_hatch("xx")
    ax.set_yscale("log")  # ratios: 2x faster and 2x slower are the same distance from 1
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.axhline(1.0, color="black", linewidth=0.8)
    handles = [
        Patch(color="tab:blue", label="inference"),
        Patch(color="tab:orange", label="training"),
        Patch(facecolor="white", edgecolor="gray", hatch="xx", label="unreliable"),
    ]
    ax.legend(handles=handles, fontsize=8)
    ax.set_xticks(range(len(ok)))
    ax.set_xticklabels(labels, rotation=90, fontsize=6)
    ax.set_ylabel("torch time / rnnkit time (higher: rnnkit faster)")
    meta = result["meta"]
    ax.set_title(f"rnnkit {meta['rnnkit']} vs torch {meta['torch']} on {meta['cpu']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
