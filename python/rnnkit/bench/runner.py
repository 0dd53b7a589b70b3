"""Running the benchmark: one worker per thread count, each in a fresh subprocess.

A worker (``run_thread_count``) sets rnnkit's, torch's and NumPy's BLAS thread counts,
measures the practical peak (NumPy matmul), then for each cell and config: builds the
implementations with the same weights, checks their results against the NumPy reference,
and times each mode with the implementations interleaved (the inference peers of
``peers.py``, when asked for, in inference only). ``run`` starts one worker per
thread count as ``python -m rnnkit.bench._child worker SPEC OUT N`` with the thread environment
variables set before anything is imported (this is what fixes the BLAS and OpenMP pools
robustly, and keeps torch's thread pool of one count out of the next), or calls it in
this process with ``in_process`` (tests, debugging).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rnnkit.bench import blas, check, configs, impls, memory, mixed, peers, timing


@dataclass
class Options:
    """Everything one benchmark run needs (built by the CLI from its arguments)."""

    cells: list
    configs: list  # of configs.Config
    modes: list
    threads: list
    repeats: int = 7
    numpy_repeats: int = 3  # the NumPy reference is slow: it takes part in fewer rounds
    torch: bool = True
    numpy: bool = True
    memory: bool = True
    in_process: bool = False
    quick: bool = False
    min_sample_s: float = 0.05
    budget_s: float = 30.0  # per implementation and case: slow ones get fewer repeats
    settle_s: float = 0.25  # pause between implementations at > 1 thread (timing.py)
    matmul_n: int = 2048
    rtol: float = check.DEFAULT_RTOL
    seed: int = 0
    rnnkit_backend: str = "native"  # "numpy" only to exercise the benchmark itself
    peers: list = field(default_factory=list)  # inference peers asked for (peers.py)
    per_call: list = field(default_factory=list)  # hidden sizes of the T=1 B=1 table
    mixed: bool = False
    mixed_iterations: int = 200  # per child process
    mixed_rounds: int = 3  # child processes per setting


def subprocess_env(threads: int) -> dict:
    """The environment of a worker: thread counts fixed, this rnnkit importable."""
    import rnnkit

    env = dict(os.environ)
    for var in blas.THREAD_ENV_VARS:
        env[var] = str(threads)
    package_root = str(Path(rnnkit.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _set_threads(n: int, use_torch: bool) -> dict:
    """Set every library's thread count; returns what each reports afterwards."""
    import rnnkit
    from rnnkit import _core

    rnnkit.set_num_threads(n)
    counts = {"rnnkit": rnnkit.get_num_threads(), "blas": blas.set_blas_threads(n), "torch": None}
    if use_torch:
        import torch

        torch.set_num_threads(n)
        counts["torch"] = torch.get_num_threads()
        # rnnkit stays on its own pool (rnnkit.torch, which would move its large teams
        # onto torch's threads, is not imported): the pause between implementations already
        # lets torch's workers stop spinning, and a training call's backward runs on the
        # pool, which torch's workers, spinning after the forward's region, would slow.
        counts["rnnkit_on_torch_threads"] = _core._openmp_runtime_in_use()
    return counts


def _timed_names(spec: dict) -> list[str]:
    names = ["rnnkit"]
    if spec["torch"]:
        names.append("torch")
    if spec["numpy"]:
        names.append("numpy")
    return names


def _peer_fields(times: dict) -> dict:
    """Each timed peer's time over rnnkit's (higher: rnnkit faster), and why that ratio is
    not a result when rnnkit's or the peer's repeats spread too far (see timing.py)."""
    ratios, unreliable = {}, {}
    for name in (n for n in times if n in peers.PEER_PACKAGES):
        ratios[name] = times[name]["median_s"] / times["rnnkit"]["median_s"]
        widest = max(times[n]["spread"] for n in ("rnnkit", name))
        if widest > timing.UNRELIABLE_SPREAD:
            unreliable[name] = f"repeats spread {widest:.1f}x"
    return {"ratio_peers_over_rnnkit": ratios, "peer_ratio_unreliable": unreliable}


def _case_record(cell, config, mode, threads, times) -> dict:
    """Derived numbers of one timed case: GFLOP/s and ratios (``peak_fraction``, rnnkit's
    GFLOP/s over NumPy's matmul GFLOP/s at the same thread count, and
    ``torch_peak_fraction``, torch's, are set once the peak is known, at the end of the
    worker). torch's fraction bounds what any implementation doing the same products can
    gain on it: torch/rnnkit <= 1 / torch_peak_fraction at 100% of the matmul."""
    flops = configs.case_flops(cell, config, mode)
    med = {name: t["median_s"] for name, t in times.items()}
    unreliable = None  # why torch/rnnkit is not a result, if it is not
    if "torch" in times:
        widest = max(times[name]["spread"] for name in ("rnnkit", "torch"))
        if widest > timing.UNRELIABLE_SPREAD:
            unreliable = f"repeats spread {widest:.1f}x"
    gflops = {name: flops / s / 1e9 for name, s in med.items()}
    return {
        "cell": cell,
        "config": config.as_dict(),
        "mode": mode,
        "threads": threads,
        "status": "ok",
        "message": None,
        "flops": flops,
        "times": times,
        "gflops": gflops,
        "ratio_torch_over_rnnkit": med["torch"] / med["rnnkit"] if "torch" in med else None,
        "ratio_unreliable": unreliable,
        "ratio_numpy_over_rnnkit": med["numpy"] / med["rnnkit"] if "numpy" in med else None,
        "peak_fraction": None,
        "torch_peak_fraction": None,
        **_peer_fields(times),
        "peer_peak_fraction": {},
    }


def _ratio_note(rec: dict) -> str:
    """The progress line's torch/rnnkit, marked when it cannot be trusted."""
    ratio = rec["ratio_torch_over_rnnkit"]
    if ratio is None:
        return ""
    if rec["ratio_unreliable"]:
        return f"  torch/rnnkit {ratio:5.2f}x UNRELIABLE ({rec['ratio_unreliable']})"
    return f"  torch/rnnkit {ratio:5.2f}x"


def mark_starved_thread_counts(per_threads: list) -> None:
    """On an idle machine NumPy's matmul is no slower at more threads; where it was slower
    than at the fewest threads, those threads did not get a core each (other processes had
    them), and every torch/rnnkit at that count is marked unreliable. In place."""
    fewest = min(per_threads, key=lambda r: r["threads"])
    for r in per_threads:
        starved = (
            r["threads"] > fewest["threads"] and r["peak"]["gflops"] < fewest["peak"]["gflops"]
        )
        r["peak"]["starved"] = starved
        if not starved:
            continue
        for c in r["cases"]:
            if c["status"] == "ok" and c["ratio_torch_over_rnnkit"] is not None:
                c["ratio_unreliable"] = (
                    f"{r['threads']} threads did not get {r['threads']} cores: the matmul ran "
                    f"slower than at {fewest['threads']}"
                )


def _failed_record(cell, config, mode, threads, status, message) -> dict:
    return {
        "cell": cell,
        "config": config.as_dict(),
        "mode": mode,
        "threads": threads,
        "status": status,
        "message": message,
    }


def _check(built: dict, peer_impls: dict, rtol: float) -> check.CheckResult:
    """Every implementation against the NumPy reference; the peers (inference only) on the
    eval-mode output alone."""
    results = {name: impl.results() for name, impl in built.items()}
    result = check.check_agreement(results, "numpy", rtol)
    if peer_impls:
        ref = {"eval_out": results["numpy"]["eval_out"]}
        peer_results = {name: impl.results() for name, impl in peer_impls.items()}
        on_eval = check.check_agreement({"numpy": ref, **peer_results}, "numpy", rtol)
        result.max_rel_err.update(on_eval.max_rel_err)
        result.messages += on_eval.messages
        result.ok = not result.messages
    return result


def _run_cell_config(spec: dict, cell: str, config, threads: int) -> list:
    """Check, then time every mode of one cell and config; one record per mode. The peers
    take part in inference only."""
    timed = _timed_names(spec)
    names = list(dict.fromkeys([*timed, "numpy"]))
    built = impls.build(names, cell, config, spec["seed"], spec["rnnkit_backend"])
    peer_impls = {}
    if spec["peers"] and "inference" in spec["modes"]:
        state_dict = impls.reference_weights(cell, config, spec["seed"])
        peer_impls = peers.build_peers(
            spec["peers"], cell, config, state_dict, built["numpy"].x, threads
        )
    result = _check(built, peer_impls, spec["rtol"])
    if not result.ok:
        msg = f"results disagree, config aborted: {'; '.join(result.messages)}"
        _log(f"  CHECK FAILED {cell} {config.label()} threads={threads}: {msg}")
        return [
            {
                **_failed_record(cell, config, m, threads, "check_failed", msg),
                "check": result.as_dict(),
            }
            for m in spec["modes"]
        ]
    records = []
    for mode in spec["modes"]:
        for impl in built.values():
            impl.set_mode(mode)
        calls = {name: built[name].call for name in timed}
        if mode == "inference":
            calls.update({name: impl.call for name, impl in peer_impls.items()})
        times = timing.time_interleaved(
            calls,
            repeats=spec["repeats"],
            repeat_caps={"numpy": spec["numpy_repeats"]},
            min_sample_s=spec["min_sample_s"],
            budget_s=spec["budget_s"],
            settle_s=spec["settle_s"] if threads > 1 else 0.0,
        )
        rec = _case_record(cell, config, mode, threads, times)
        rec["check"] = result.as_dict()
        records.append(rec)
        _log(
            f"  {cell:4s} {config.label():28s} {mode:9s} threads={threads}: rnnkit "
            f"{times['rnnkit']['median_s'] * 1e3:9.3f} ms  {rec['gflops']['rnnkit']:7.1f} GFLOP/s"
            + _ratio_note(rec)
            + "".join(
                f"  {peers.SHORT_NAMES[n]}/rnnkit {r:5.2f}x"
                for n, r in rec["ratio_peers_over_rnnkit"].items()
            )
        )
    return records


def _run_per_call(spec: dict, threads: int) -> list:
    """The per-call cases: one eval-mode call at T=1, B=1, I=H for each cell and hidden
    size in spec["per_call"], checked and timed as the other cases."""
    inference = {**spec, "modes": ["inference"]}
    records = []
    for cell in ("lstm", "gru", "rnn"):
        for H in spec["per_call"]:
            config = configs.Config(f"call{H}", 1, 1, H, H)
            records += _run_cell_config(inference, cell, config, threads)
    return records


def _set_peak_fractions(cases: list, peak: dict) -> None:
    """Each implementation's GFLOP/s over the practical peak, in place."""
    for c in cases:
        if c["status"] != "ok":
            continue
        c["peak_fraction"] = c["gflops"]["rnnkit"] / peak["gflops"]
        if "torch" in c["gflops"]:
            c["torch_peak_fraction"] = c["gflops"]["torch"] / peak["gflops"]
        c["peer_peak_fraction"] = {
            n: c["gflops"][n] / peak["gflops"] for n in c["ratio_peers_over_rnnkit"]
        }


def run_thread_count(spec: dict, threads: int) -> dict:
    """The worker: every case at one thread count (see the module docstring)."""
    import rnnkit

    previous = {"rnnkit": rnnkit.get_num_threads(), "blas": blas.get_blas_threads()}
    if spec["torch"]:
        import torch

        previous["torch"] = torch.get_num_threads()
    counts = _set_threads(threads, spec["torch"])
    try:
        first = blas.matmul_gflops(spec["matmul_n"])
        _log(
            f"threads={threads}: numpy matmul {spec['matmul_n']}^3 float32 "
            f"{first['gflops']:.1f} GFLOP/s (BLAS threads {counts['blas']})"
        )
        cases = []
        for cell in spec["cells"]:
            for cdict in spec["configs"]:
                config = configs.Config(**cdict)
                try:
                    cases += _run_cell_config(spec, cell, config, threads)
                except Exception as e:  # report and go on with the other configs
                    msg = f"{type(e).__name__}: {e}"
                    _log(f"  ERROR {cell} {config.label()} threads={threads}: {msg}")
                    _log(traceback.format_exc())
                    cases += [
                        _failed_record(cell, config, m, threads, "error", msg)
                        for m in spec["modes"]
                    ]
        # Measured again at the end; the better of the two is the practical peak (a
        # transient load on a shared machine lowers one of them, never raises it).
        last = blas.matmul_gflops(spec["matmul_n"])
        peak = max(first, last, key=lambda p: p["gflops"])
        peak = {**peak, "gflops_first": first["gflops"], "gflops_last": last["gflops"]}
        per_call = _run_per_call(spec, threads) if spec["per_call"] else []
        _set_peak_fractions(cases + per_call, peak)
    finally:
        if spec.get("in_process"):
            rnnkit.set_num_threads(previous["rnnkit"])
            if previous["blas"] is not None:
                blas.set_blas_threads(previous["blas"])
            if "torch" in previous:
                torch.set_num_threads(previous["torch"])
    out = {"threads": threads, "thread_counts": counts, "peak": peak, "cases": cases}
    return {**out, "per_call": per_call}


def _run_worker_subprocess(spec: dict, threads: int) -> dict:
    import subprocess

    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "out.json")
        spec_path.write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "rnnkit.bench._child", "worker", str(spec_path), str(out_path)]
        cmd.append(str(threads))
        proc = subprocess.run(cmd, env=subprocess_env(threads))
        if proc.returncode != 0 or not out_path.exists():
            raise RuntimeError(
                f"benchmark worker for threads={threads} failed (exit {proc.returncode})"
            )
        return json.loads(out_path.read_text())


def _memory_note(res: dict) -> str:
    """One measurement of memory.measure as the progress line shows it."""
    if res.get("peak_step_bytes") is None:
        return f"not measured ({res.get('error')})"
    mib = 1024.0 * 1024.0
    return (
        f"a training step adds {res['peak_step_bytes'] / mib:.2f} MiB at its peak "
        f"(resident before it: {res['rss_before_bytes'] / mib:.1f} MiB)"
    )


def _memory_records(opts: Options) -> list:
    threads = max(opts.threads)
    libraries = ["rnnkit"] + (["torch"] if opts.torch else [])
    records = []
    for cell in opts.cells:
        for config in opts.configs:
            for lib in libraries:
                res = memory.measure(lib, cell, config, threads, opts.seed, opts.rnnkit_backend)
                records.append(
                    {
                        "cell": cell,
                        "config": config.as_dict(),
                        "library": lib,
                        "threads": threads,
                        **res,
                    }
                )
                _log(f"  memory {lib:6s} {cell:4s} {config.label()}: {_memory_note(res)}")
    return records


def _ordered(cases: list, opts: Options) -> list:
    """Cases by cell, config, mode, then threads (rows of different thread counts adjacent)."""
    names = [c.name for c in opts.configs]

    def key(c):
        return (
            opts.cells.index(c["cell"]),
            names.index(c["config"]["name"]),
            opts.modes.index(c["mode"]),
            opts.threads.index(c["threads"]),
        )

    return sorted(cases, key=key)


def run(opts: Options) -> dict:
    """The whole benchmark; returns the JSON-ready result (meta, peaks, cases, memory)."""
    from rnnkit.bench import machine

    if opts.torch and not impls.torch_available():
        _log("torch is not installed: timing rnnkit and the NumPy reference only")
        opts.torch = False
    for name in list(opts.peers):
        missing = peers.missing_packages(name)
        if missing:
            _log(f"{name} skipped: package {', '.join(missing)} not installed")
            opts.peers.remove(name)
    spec = asdict(opts)
    spec["configs"] = [c.as_dict() for c in opts.configs]
    load_before = machine.load_average()
    per_threads = []
    for n in opts.threads:
        if opts.in_process:
            per_threads.append(run_thread_count(spec, n))
        else:
            per_threads.append(_run_worker_subprocess(spec, n))
    mark_starved_thread_counts(per_threads)
    want_memory = opts.memory and "training" in opts.modes
    meta = machine.describe()
    meta.update(
        {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "threads": opts.threads,
            "options": spec,
            "flop_formula": configs.FLOP_FORMULA,
            "memory_method": (memory.__doc__ or "").strip().split("\n\n")[1].replace("\n", " "),
            "check": f"max|x - ref| / max|ref| <= {opts.rtol:g} against the NumPy reference",
            "load_average": {"before": load_before, "after": machine.load_average()},
        }
    )
    if opts.peers:
        meta["peers"] = peers.versions()
    result = {
        "meta": meta,
        "peaks": [
            {"threads": r["threads"], "thread_counts": r["thread_counts"], **r["peak"]}
            for r in per_threads
        ],
        "cases": _ordered([c for r in per_threads for c in r["cases"]], opts),
        "memory": _memory_records(opts) if want_memory else [],
    }
    if opts.per_call:
        result["per_call"] = [c for r in per_threads for c in r["per_call"]]
    if opts.mixed:
        _log("mixed loop: child processes, default thread settings and every pool pinned to 1")
        result["mixed"] = mixed.measure(opts.mixed_iterations, opts.mixed_rounds, opts.seed)
    return result
