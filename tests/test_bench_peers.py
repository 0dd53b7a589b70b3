"""The benchmark's inference peers (onnxruntime, OpenVINO), per-call table and mixed loop:
the ONNX model of rnnkit's weights against rnnkit itself, the peer columns of the table,
and tiny --quick runs of --peers, --per-call and --mixed. No timing assertions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rnnkit
from rnnkit.bench import cli, mixed, peers, report

CLASSES = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}
SHAPES = [(1, False), (1, True), (2, False), (2, True)]  # (num_layers, bidirectional)


def _module_and_input(cell: str, num_layers: int, bidirectional: bool):
    m = CLASSES[cell](5, 7, num_layers=num_layers, bidirectional=bidirectional, seed=11)
    m.eval()
    x = np.random.default_rng(2).standard_normal((6, 3, 5)).astype(np.float32)
    return m, x


def _rel_err(got, ref) -> float:
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


@pytest.mark.parametrize("cell", sorted(CLASSES))
@pytest.mark.parametrize("num_layers, bidirectional", SHAPES)
def test_onnx_model_equals_rnnkit_in_onnxruntime(cell, num_layers, bidirectional):
    pytest.importorskip("onnx", reason="the ONNX model needs the onnx package")
    pytest.importorskip("onnxruntime", reason="running the ONNX model needs onnxruntime")
    m, x = _module_and_input(cell, num_layers, bidirectional)
    model = peers.onnx_model(cell, m.state_dict(), 5, 7, num_layers, bidirectional)
    got = peers.onnxruntime_session(model, 1).run(["out"], {"x": x})[0]
    ref = m(x)[0]
    assert got.shape == ref.shape == (6, 3, 7 * (2 if bidirectional else 1))
    assert _rel_err(got, ref) < 1e-5


@pytest.mark.parametrize("cell", sorted(CLASSES))
def test_onnx_model_equals_rnnkit_in_openvino(cell):
    pytest.importorskip("onnx", reason="the ONNX model needs the onnx package")
    pytest.importorskip("openvino", reason="running the ONNX model needs openvino")
    for num_layers, bidirectional in SHAPES:
        m, x = _module_and_input(cell, num_layers, bidirectional)
        model = peers.onnx_model(cell, m.state_dict(), 5, 7, num_layers, bidirectional)
        compiled = peers.openvino_compiled(model, 1)
        got = compiled.create_infer_request().infer({"x": x})[compiled.output(0)]
        assert _rel_err(np.asarray(got), m(x)[0]) < 1e-5, (num_layers, bidirectional)


def test_onnx_model_without_bias():
    pytest.importorskip("onnxruntime", reason="running the ONNX model needs onnxruntime")
    m = rnnkit.GRU(4, 3, bias=False, seed=1)
    m.eval()
    x = np.random.default_rng(0).standard_normal((5, 2, 4)).astype(np.float32)
    got = peers.onnxruntime_session(peers.onnx_model("gru", m.state_dict(), 4, 3), 1).run(
        ["out"], {"x": x}
    )[0]
    assert _rel_err(got, m(x)[0]) < 1e-5


# --- the table's peer columns, on synthetic timings -------------------------------------


def _times(ms: float, spread: float = 1.1) -> dict:
    return {"median_s": ms / 1e3, "spread": spread}


def _synthetic_case(mode: str, peer_ms: dict) -> dict:
    times = {
        "rnnkit": _times(2.0),
        "torch": _times(3.0),
        **{n: _times(v) for n, v in peer_ms.items()},
    }
    times.get("openvino", {})["spread"] = 2.5  # a disturbed peer: its ratio is unreliable
    return {
        "cell": "lstm",
        "config": {"name": "b32", "T": 100, "B": 32, "I": 256, "H": 256},
        "mode": mode,
        "threads": 1,
        "status": "ok",
        "times": times,
        "gflops": {"rnnkit": 50.0},
        "ratio_torch_over_rnnkit": 1.5,
        "ratio_unreliable": None,
        "peak_fraction": 0.5,
        "torch_peak_fraction": 0.33,
        "ratio_peers_over_rnnkit": {n: v / 2.0 for n, v in peer_ms.items()},
        "peer_ratio_unreliable": {"openvino": "repeats spread 2.5x"} if peer_ms else {},
        "peer_peak_fraction": {n: 0.1 * v for n, v in peer_ms.items()},
    }


def test_table_has_peer_columns_for_inference_rows():
    result = {
        "memory": [],
        "cases": [
            _synthetic_case("inference", {"onnxruntime": 3.0, "openvino": 5.0}),
            _synthetic_case("training", {}),
        ],
    }
    header, _, inference, training = report.table_lines(result)
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[cols.index("torch % of matmul") + 1 :] == [
        "ort ms",
        "ort / rnnkit",
        "ort % of matmul",
        "ov ms",
        "ov / rnnkit",
        "ov % of matmul",
        "rnnkit MiB",
        "torch MiB",
    ]
    cells = [c.strip() for c in inference.strip("|").split("|")]
    assert len(cells) == len(cols)
    ort = cols.index("ort ms")
    assert cells[ort : ort + 6] == [
        "3.000",
        "1.50",
        "30.0",
        "5.000",
        "(2.50) unreliable: repeats spread 2.5x",
        "50.0",
    ]
    assert [c.strip() for c in training.strip("|").split("|")][ort : ort + 6] == ["-"] * 6
    assert "peer/rnnkit" in "\n".join(report.unreliable_note(result))


def test_table_without_peers_keeps_its_columns():
    result = {"memory": [], "cases": [_synthetic_case("inference", {})]}
    header = report.table_lines(result)[0]
    assert "ort" not in header and "ov " not in header
    assert header.endswith("| torch % of matmul | rnnkit MiB | torch MiB |")


def test_per_call_and_mixed_tables_from_synthetic_results():
    case = _synthetic_case("inference", {"onnxruntime": 0.004})
    case["config"] = {"name": "call64", "T": 1, "B": 1, "I": 64, "H": 64}
    settings = {
        name: {"env": env, "median_ms": 1.25, "p90_ms": 2.5, "iterations": 20, "children": 2}
        for name, env in mixed.SETTINGS.items()
    }
    result = {"per_call": [case], "mixed": {"description": "loop", "settings": settings}}
    lines = report.per_call_lines(result) + report.mixed_lines(result)
    assert "| cell | H | thr | rnnkit µs | torch µs | ort µs |" in lines
    assert "| lstm | 64 | 1 | 2000.0 | 3000.0 | 4.0 |" in lines
    assert "| default | no thread variable | 1.250 | 2.500 | 20 in 2 process(es) |" in lines
    assert any(
        line.startswith("| pinned | OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 |") for line in lines
    )
    assert report.per_call_lines({}) == [] and report.mixed_lines({}) == []


# --- tiny --quick runs ------------------------------------------------------------------


def _run(tmp_path, *extra):
    out = tmp_path / "bench.json"
    args = ["--quick", "--in-process", "--no-memory", "--threads", "1", "--cells", "rnn"]
    args += ["--configs", "tiny1", "--no-numpy", "--json", str(out), *extra]
    rc = cli.main(args)
    return rc, json.loads(out.read_text())


def test_quick_run_with_peers_per_call_and_mixed(tmp_path, capsys):
    rc, res = _run(tmp_path, "--peers", "--per-call", "--mixed")
    assert rc == 0, res["cases"]
    installed = [n for n in peers.PEER_PACKAGES if not peers.missing_packages(n)]
    inference, training = res["cases"]
    assert sorted(inference["times"]) == sorted(["rnnkit", "torch", *installed])
    assert sorted(inference["ratio_peers_over_rnnkit"]) == sorted(installed)
    assert set(inference["peer_peak_fraction"]) == set(installed)
    assert sorted(training["times"]) == ["rnnkit", "torch"]
    for name in installed:
        med = inference["times"][name]["median_s"] / inference["times"]["rnnkit"]["median_s"]
        assert inference["ratio_peers_over_rnnkit"][name] == pytest.approx(med)
        assert inference["check"]["max_rel_err"][name] <= 1e-4
    # per call: LSTM, GRU, RNN at the quick hidden sizes, T=1, B=1, I=H, inference only
    got = [
        (c["cell"], c["config"]["T"], c["config"]["B"], c["config"]["H"]) for c in res["per_call"]
    ]
    assert got == [(cell, 1, 1, H) for cell in ("lstm", "gru", "rnn") for H in cli.PER_CALL_QUICK]
    assert all(c["mode"] == "inference" and c["status"] == "ok" for c in res["per_call"])
    assert all(
        sorted(c["times"]) == sorted(["rnnkit", "torch", *installed]) for c in res["per_call"]
    )
    settings = res["mixed"]["settings"]
    assert list(settings) == ["default", "pinned"]
    assert settings["pinned"]["env"] == {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    for s in settings.values():
        assert s["iterations"] == 5 and s["children"] == 1
        assert 0 < s["median_ms"] <= s["p90_ms"]
    printed = capsys.readouterr().out
    assert "Per call: one eval-mode forward at T=1, B=1" in printed and "Mixed loop:" in printed


def test_missing_peer_is_skipped_with_a_note(tmp_path, monkeypatch, capsys):
    real = peers.missing_packages
    monkeypatch.setattr(
        peers, "missing_packages", lambda n: ["openvino"] if n == "openvino" else real(n)
    )
    rc, res = _run(tmp_path, "--peers", "--modes", "inference")
    assert rc == 0
    assert "openvino skipped: package openvino not installed" in capsys.readouterr().err
    assert "openvino" not in res["cases"][0]["times"]
    assert "per_call" not in res and "mixed" not in res


def test_a_peer_that_disagrees_aborts_its_config(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the peer under test is onnxruntime")

    def wrong(self):
        return {"eval_out": np.array(self.forward(self.x)) * 1.01}

    monkeypatch.setattr(peers.OnnxRuntimeImpl, "results", wrong)
    rc, res = _run(tmp_path, "--peers", "onnxruntime", "--modes", "inference")
    assert rc == 1
    (case,) = res["cases"]
    assert case["status"] == "check_failed" and "times" not in case
    assert "onnxruntime vs numpy: eval_out differs" in case["message"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--peers", "tensorflow"], "--peers: got 'tensorflow', expected a comma-separated"),
        (["--per-call=64"], "argument --per-call: ignored explicit argument '64'"),
        (["--mixed", "3"], "unrecognized arguments: 3"),
    ],
)
def test_bad_peer_arguments_are_one_line_errors(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m rnnkit.bench: error: ") and expected in line


def test_help_documents_the_peer_options():
    text = cli.build_parser().format_help()
    for option in ("--peers", "--per-call", "--mixed"):
        assert option in text
