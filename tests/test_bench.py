"""The benchmark (rnnkit.bench): configuration parsing, the FLOP formula, the result check,
interleaved timing order, peak memory, and a --quick run's JSON. No timing assertions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rnnkit.bench import check, cli, configs, impls, memory, timing
from rnnkit.bench.configs import Config

pytestmark = pytest.mark.native

# The implementation timed as "rnnkit" in these tests (see test_default_backend_subprocess
# for the native one through the default, subprocess path).
BACKEND = "numpy"


# --- the FLOP formula, by hand ---------------------------------------------------------


def test_forward_flops_hand_computed():
    # LSTM, G=4: 2*T*B*G*H*(I+H) = 2*2*3*4*5*(4+5) = 2160
    assert configs.forward_flops("lstm", T=2, B=3, I=4, H=5) == 2160
    # GRU, G=3, one step, one unit: 2*1*1*3*1*(1+1) = 12
    assert configs.forward_flops("gru", T=1, B=1, I=1, H=1) == 12
    # RNN, 2 layers, bidirectional: layer 0 = 2 dirs * 2*2*3*1*5*(4+5) = 1080,
    # layer 1 takes 2*H = 10 inputs: 2 dirs * 2*2*3*1*5*(10+5) = 1800
    assert configs.forward_flops("rnn", 2, 3, 4, 5, num_layers=2, bidirectional=True) == 2880
    cfg = Config("c", 2, 3, 4, 5)
    assert configs.case_flops("lstm", cfg, "inference") == 2160
    assert configs.case_flops("lstm", cfg, "training") == 3 * 2160
    with pytest.raises(ValueError, match="mode"):
        configs.case_flops("lstm", cfg, "train")
    with pytest.raises(ValueError, match="cell"):
        configs.forward_flops("transformer", 1, 1, 1, 1)


# --- parsing ---------------------------------------------------------------------------


def test_parse_configs_threads_names():
    cs = configs.parse_configs("b32,10x2x3x4,7x1x8", quick=False)
    assert [(c.T, c.B, c.I, c.H) for c in cs] == [(100, 32, 256, 256), (10, 2, 3, 4), (7, 1, 8, 8)]
    assert len(configs.parse_configs(None, quick=False)) == 4
    assert configs.parse_configs(None, quick=True) == list(configs.QUICK_CONFIGS.values())
    with pytest.raises(ValueError, match="--configs: '10x0x3' "):
        configs.parse_configs("10x0x3", quick=False)
    assert configs.parse_threads("1,all,1") == list(dict.fromkeys([1, configs.available_cores()]))
    with pytest.raises(ValueError, match="--threads: got '0'"):
        configs.parse_threads("0")
    assert configs.parse_names("gru,rnn", configs.CELLS, "--cells") == ["gru", "rnn"]
    with pytest.raises(ValueError, match="--cells"):
        configs.parse_names("lstm,cnn", configs.CELLS, "--cells")


# --- the result check ------------------------------------------------------------------


def _fake_results(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "out": rng.standard_normal((4, 2, 3)),
        "grad_weight_hh_l0": rng.standard_normal((12, 3)),
    }


def test_check_accepts_agreeing_results():
    ref = _fake_results()
    close = {k: v * (1 + 1e-6) for k, v in ref.items()}
    res = check.check_agreement({"numpy": ref, "rnnkit": close, "torch": ref}, "numpy", 1e-4)
    assert res.ok and not res.messages
    assert 0.0 < res.max_rel_err["rnnkit"] <= 1e-6 * 1.01
    assert res.max_rel_err["torch"] == 0.0


def test_check_catches_a_wrong_implementation():
    ref = _fake_results()
    wrong = {k: v.copy() for k, v in ref.items()}
    scale = np.max(np.abs(ref["grad_weight_hh_l0"]))
    wrong["grad_weight_hh_l0"][3, 1] += 1e-3 * scale  # relative error 1e-3 > 1e-4
    res = check.check_agreement({"numpy": ref, "rnnkit": ref, "torch": wrong}, "numpy", 1e-4)
    assert not res.ok
    assert res.max_rel_err["rnnkit"] == 0.0
    assert res.max_rel_err["torch"] == pytest.approx(1e-3, rel=1e-9)
    assert len(res.messages) == 1 and "torch" in res.messages[0]
    assert "grad_weight_hh_l0" in res.messages[0]


def test_check_catches_shape_missing_and_nan():
    ref = _fake_results()
    shaped = {**ref, "out": ref["out"][:, :1]}
    missing = {"out": ref["out"]}
    nan = {**ref, "out": np.where(np.arange(24).reshape(4, 2, 3) == 5, np.nan, ref["out"])}
    res = check.check_agreement({"numpy": ref, "a": shaped, "b": missing, "c": nan}, "numpy", 1e-4)
    assert not res.ok
    text = "\n".join(res.messages)
    assert "a: out has shape (4, 1, 3)" in text
    assert "b: missing 'grad_weight_hh_l0'" in text
    assert "c vs numpy: out differs" in text
    with pytest.raises(ValueError, match="reference 'torch'"):
        check.check_agreement({"numpy": ref}, "torch")


# --- timing order ----------------------------------------------------------------------


def test_time_interleaved_alternates_and_caps(monkeypatch):
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    # min_sample_s=0 makes each sample a single call, so the order is visible.
    out = timing.time_interleaved(calls, repeats=3, repeat_caps={"c": 1}, warmup=2, min_sample_s=0)
    assert order[:6] == ["a", "a", "b", "b", "c", "c"]  # warm-up, 2 calls each
    assert order[6:] == ["a", "b", "c", "a", "b", "a", "b"]
    assert [out[n]["repeats"] for n in "abc"] == [3, 3, 1]
    for s in out.values():
        assert s["min_s"] <= s["median_s"] and s["iqr_s"] >= 0.0 and s["number"] == 1
    # At more than one thread the runner pauses before every warm-up and sample.
    order.clear()
    pause = lambda seconds: order.append(f"pause {seconds}")  # noqa: E731
    monkeypatch.setattr(timing, "_settle", pause)
    timing.time_interleaved(calls, repeats=1, warmup=1, min_sample_s=0, settle_s=0.25)
    # warm-ups a, b, c, then one round a, b, c: each after a pause
    assert order == [x for name in "abcabc" for x in ("pause 0.25", name)]
    # A zero budget leaves each implementation the minimum number of repeats.
    out = timing.time_interleaved(calls, repeats=5, warmup=1, min_sample_s=0, budget_s=0.0)
    assert [out[n]["repeats"] for n in "abc"] == [timing.MIN_REPEATS] * 3


# --- peak memory -----------------------------------------------------------------------


@pytest.mark.parametrize("library", ["rnnkit", "torch"])
def test_memory_measure_in_subprocess(library):
    if library == "torch":
        pytest.importorskip("torch")
    cfg = Config("m", 100, 32, 128, 128)
    res = memory.measure(library, "lstm", cfg, threads=1, rnnkit_backend=BACKEND, timeout=120)
    assert res["error"] is None, res
    # A training step holds at least the (T, B, H) outputs or the state kept for backward
    # (1.6 MB here); 512 KiB of slack for the kernel's lazily synchronised RSS counters.
    assert isinstance(res["peak_step_bytes"], int)
    assert res["peak_step_bytes"] >= cfg.T * cfg.B * cfg.H * 4 - 512 * 1024
    assert res["rss_before_bytes"] > 0


# --- a whole --quick run ---------------------------------------------------------------


def _quick(tmp_path, *extra):
    out = tmp_path / "bench.json"
    args = [
        "--quick",
        "--in-process",
        "--no-memory",
        "--json",
        str(out),
        "--png",
        str(tmp_path / "b.png"),
    ]
    rc = cli.main([*args, "--rnnkit-backend", BACKEND, *extra])
    return rc, json.loads(out.read_text())


def test_quick_run_json_structure(tmp_path, capsys):
    rc, res = _quick(tmp_path, "--threads", "1")
    assert rc == 0
    assert set(res) == {"meta", "peaks", "cases", "memory"}
    meta = res["meta"]
    for key in ("rnnkit", "numpy", "torch", "cpu", "threads", "flop_formula", "memory_method"):
        assert key in meta
    assert meta["threads"] == [1]
    (peak,) = res["peaks"]
    assert peak["threads"] == 1 and peak["gflops"] > 0 and peak["n"] == 256
    names = ["rnnkit", "numpy"] + (["torch"] if meta["torch"] else [])
    assert len(res["cases"]) == 3 * 2 * 2  # cells x quick configs x modes
    for c in res["cases"]:
        assert c["status"] == "ok", c
        cfg = Config(**c["config"])
        assert c["flops"] == configs.case_flops(c["cell"], cfg, c["mode"])
        assert sorted(c["times"]) == sorted(names)
        for t in c["times"].values():
            assert 0 < t["min_s"] <= t["median_s"] and t["iqr_s"] >= 0
            assert len(t["samples_s"]) == t["repeats"] >= 1
        med = {k: v["median_s"] for k, v in c["times"].items()}
        assert c["gflops"]["rnnkit"] == pytest.approx(c["flops"] / med["rnnkit"] / 1e9)
        assert c["peak_fraction"] == pytest.approx(c["gflops"]["rnnkit"] / peak["gflops"])
        if "torch" in c["gflops"]:
            assert c["torch_peak_fraction"] == pytest.approx(c["gflops"]["torch"] / peak["gflops"])
        if meta["torch"]:
            assert c["ratio_torch_over_rnnkit"] == pytest.approx(med["torch"] / med["rnnkit"])
        assert c["check"]["ok"] and c["check"]["reference"] == "numpy"
    assert res["memory"] == []
    printed = capsys.readouterr().out
    assert "| cell | T | B |" in printed and printed.count("| lstm |") == 4
    assert meta["cpu"] in printed


def test_quick_run_aborts_a_config_whose_results_disagree(tmp_path, monkeypatch):
    """A deliberately wrong implementation: its check fails, its config is not timed."""
    real = impls.BUILDERS["rnnkit"]

    class Wrong:
        def __init__(self, impl):
            self.impl = impl

        def set_mode(self, mode):
            self.impl.set_mode(mode)

        def call(self):
            self.impl.call()

        def results(self):
            res = self.impl.results()
            res["grad_weight_hh_l0"] = res["grad_weight_hh_l0"] * 1.01
            return res

    monkeypatch.setitem(impls.BUILDERS, "rnnkit", lambda *a, **k: Wrong(real(*a, **k)))
    rc, res = _quick(
        tmp_path, "--threads", "1", "--cells", "gru", "--configs", "tiny4", "--no-torch"
    )
    assert rc == 1
    assert [c["status"] for c in res["cases"]] == ["check_failed", "check_failed"]
    msg = res["cases"][0]["message"]
    assert "rnnkit vs numpy: grad_weight_hh_l0 differs" in msg
    assert "times" not in res["cases"][0]


def test_default_backend_subprocess(tmp_path):
    """The default path: native rnnkit, one worker subprocess per thread count, memory."""
    out = tmp_path / "bench.json"
    args = ["--quick", "--cells", "rnn", "--configs", "tiny1", "--threads", "1", "--no-numpy"]
    rc = cli.main([*args, "--json", str(out)])
    res = json.loads(out.read_text())
    assert rc == 0, res["cases"]
    assert [c["mode"] for c in res["cases"]] == ["inference", "training"]
    assert "numpy" not in res["cases"][0]["times"]
    assert res["peaks"][0]["thread_counts"]["rnnkit"] == 1
    assert {m["library"] for m in res["memory"]} == {"rnnkit"} | (
        {"torch"} if res["meta"]["torch"] else set()
    )
