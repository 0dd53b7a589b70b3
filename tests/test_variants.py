"""The cell variants (activations, clip, peepholes, input_forget, reverse) through the
public modules: the native core equals the NumPy reference on random combinations, the
defaults change nothing, the options survive copies and state dicts, bad arguments raise
naming the argument, and onnxruntime's LSTM/GRU/RNN give the same results (the semantics
are ONNX's). The reference's gradients are checked in tests/test_variants_grad.py.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import rnnkit
from conftest import (
    assert_same_bits_in_order,
    needs_threads,
    on_threads,
    unsorting_order,
)
from rnnkit import Activation
from rnnkit.activations import ACTIVATION_NAMES

TOL = {"float64": 1e-10, "float32": 2e-4}

# Every activation with parameters away from its defaults where it takes any.
ACTIVATIONS = [
    "Sigmoid",
    "Tanh",
    "Relu",
    ("HardSigmoid", 0.3, 0.4),
    ("LeakyRelu", 0.05),
    ("ThresholdedRelu", 0.3),
    ("ScaledTanh", 0.9, 1.2),
    ("Affine", 0.6, -0.1),
    ("Elu", 0.7),
    "Softsign",
    "Softplus",
]
GATE_ACTIVATIONS = ["Sigmoid", ("HardSigmoid", 0.3, 0.4), "Softsign", ("ScaledTanh", 0.5, 1.2)]
COUNTS = {"RNN": 1, "GRU": 2, "LSTM": 3}


def random_config(seed: int) -> dict:
    """A random module configuration with cell variants (cell, constructor arguments)."""
    rng = np.random.default_rng(seed)
    cell = ["RNN", "GRU", "LSTM"][seed % 3]
    kwargs: dict = {
        "num_layers": int(rng.integers(1, 4)),
        "bias": bool(rng.random() < 0.8),
        "dtype": ["float32", "float64"][int(rng.integers(2))],
        "dropout": 0.3 if rng.random() < 0.3 else 0.0,
    }
    if rng.random() < 0.8:
        picks = rng.integers(len(ACTIVATIONS), size=COUNTS[cell])
        kwargs["activations"] = [ACTIVATIONS[i] for i in picks]
        if cell != "RNN":  # gates in a bounded range, else the states may overflow
            kwargs["activations"][0] = GATE_ACTIVATIONS[int(rng.integers(len(GATE_ACTIVATIONS)))]
    if rng.random() < 0.5:
        kwargs["clip"] = float(rng.uniform(0.3, 2.0))
    if rng.random() < 0.4:
        kwargs["reverse"] = True
    elif rng.random() < 0.4:
        kwargs["bidirectional"] = True
    if cell == "LSTM":
        kwargs["peepholes"] = bool(rng.random() < 0.5)
        kwargs["input_forget"] = bool(rng.random() < 0.4)
    if cell == "GRU":
        kwargs["reset_after"] = bool(rng.random() < 0.5)
    return {"cell": cell, "kwargs": kwargs, "lengths": bool(rng.random() < 0.6), "seed": seed}


# Non-increasing lengths of 12 sequences (a PackedSequence's order): from step 2 on at
# least 8 rows have finished, so the core leaves them out of each step's products.
SORTED_LENGTHS = np.array([7, 6, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1])


def run_module(config: dict, backend: str, order: np.ndarray | None = None) -> dict:
    """Training forward and backward of config's module on ``backend``: every result.
    config["lengths"]: False, True (4 sequences, unsorted) or "sorted" (SORTED_LENGTHS);
    config["H"]: hidden size (default 6). order: a permutation of the batch: every input's
    rows are taken in that order."""
    cell, kwargs, H = config["cell"], config["kwargs"], config.get("H", 6)
    m = getattr(rnnkit, cell)(5, H, backend=backend, seed=config["seed"], **kwargs)
    rng = np.random.default_rng(config["seed"] + 1000)
    T, B = 7, 4
    if config["lengths"] == "sorted":
        B = len(SORTED_LENGTHS)
    D = 2 if kwargs.get("bidirectional") else 1
    x = rng.standard_normal((T, B, 5))
    lengths = np.array([7, 3, 5, 1]) if config["lengths"] else None
    if config["lengths"] == "sorted":
        lengths = SORTED_LENGTHS
    states = (kwargs["num_layers"] * D, B, H)
    hx = rng.standard_normal(states)
    if cell == "LSTM":
        hx = (hx, rng.standard_normal(states))
    grad_out = rng.standard_normal((T, B, D * H))
    grad_state = (
        (rng.standard_normal(states), rng.standard_normal(states))
        if cell == "LSTM"
        else rng.standard_normal(states)
    )
    if order is not None:  # every array's batch axis is axis 1
        x, grad_out = x[:, order], grad_out[:, order]
        lengths = None if lengths is None else lengths[order]
        if cell == "LSTM":
            hx = (hx[0][:, order], hx[1][:, order])
            grad_state = (grad_state[0][:, order], grad_state[1][:, order])
        else:
            hx, grad_state = hx[:, order], grad_state[:, order]
    out, state = m(x, hx, lengths=lengths)
    assert out.shape == grad_out.shape
    dx, dstate = m.backward(grad_out, grad_state)
    flat = lambda s: s if isinstance(s, tuple) else (s,)  # noqa: E731
    result = {"out": out, "dx": dx}
    for i, (a, b) in enumerate(zip(flat(state), flat(dstate))):
        result[f"state{i}"], result[f"dstate{i}"] = a, b
    result.update({f"grad {k}": v.copy() for k, v in m.grads.items()})
    return result


def assert_native_equals_reference(config: dict) -> None:
    native, numpy = run_module(config, "native"), run_module(config, "numpy")
    tol = TOL[config["kwargs"]["dtype"]]
    assert native.keys() == numpy.keys()
    for name, want in numpy.items():
        got = native[name]
        scale = float(np.max(np.abs(want), initial=0.0))
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=name)


@pytest.mark.native
@pytest.mark.parametrize("seed", range(60))
def test_native_equals_reference_on_random_combinations(seed):
    assert_native_equals_reference(random_config(seed))


@pytest.mark.native
@pytest.mark.parametrize("seed", range(30))
def test_native_equals_reference_with_sorted_lengths(seed):
    """Sorted lengths: the core runs each step's products on the active rows only; the
    finished rows' pre-activations are never computed and must never be read (the variant
    cells keep theirs per row for the backward)."""
    assert_native_equals_reference({**random_config(seed), "lengths": "sorted"})


# Every cell kind with options, large enough for a thread team at 2 threads.
LARGE_VARIANTS = [
    ("RNN", dict(activations=["Softsign"], clip=1.5)),
    ("GRU", dict(activations=[("HardSigmoid", 0.3, 0.4), "Softsign"], clip=1.5)),
    ("GRU", dict(activations=["Sigmoid", ("Elu", 0.7)], reset_after=False, reverse=True)),
    ("LSTM", dict(activations=["Softsign", "Tanh", "Softsign"], peepholes=True, clip=1.5)),
    ("LSTM", dict(input_forget=True, peepholes=True, reverse=True)),
]


def large_config(cell: str, options: dict) -> dict:
    kwargs = dict(num_layers=2, dtype="float32", **options)
    if not options.get("reverse"):
        kwargs["bidirectional"] = True
    return {"cell": cell, "kwargs": kwargs, "lengths": "sorted", "seed": 3, "H": 160}


def variant_id(case) -> str:
    cell, options = case
    return "-".join([cell, *sorted(options)])


@pytest.mark.native
@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=needs_threads)])
@pytest.mark.parametrize("case", LARGE_VARIANTS, ids=variant_id)
def test_sorted_lengths_equal_the_reference_at_1_and_2_threads(case, threads, restore_threads):
    with on_threads(threads):
        assert_native_equals_reference(large_config(*case))


@pytest.mark.native
@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=needs_threads)])
@pytest.mark.parametrize("case", LARGE_VARIANTS, ids=variant_id)
def test_sorted_lengths_same_bits_as_an_unsorted_batch(case, threads, restore_threads):
    """The same sequences in another order (lengths no longer sorted: every step runs on
    all rows) give each sequence's outputs, states and input and state gradients with the
    same bits."""
    config = large_config(*case)
    order = unsorting_order(SORTED_LENGTHS)
    with on_threads(threads):
        want = run_module(config, "native")
        got = run_module(config, "native", order)
    assert_same_bits_in_order(want, got, order)


@pytest.mark.native
@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize(
    "cell,defaults",
    [
        ("RNN", dict(activations=["tanh"], clip=None, reverse=False)),
        (
            "LSTM",
            dict(activations=["Sigmoid", "Tanh", "Tanh"], peepholes=False, input_forget=False),
        ),
        ("GRU", dict(activations=[Activation("sigmoid"), ("tanh",)[0]])),
    ],
)
def test_explicit_defaults_give_the_same_bits(cell, defaults, backend):
    plain = getattr(rnnkit, cell)(4, 5, num_layers=2, backend=backend, seed=7)
    explicit = getattr(rnnkit, cell)(4, 5, num_layers=2, backend=backend, seed=7, **defaults)
    x = np.random.default_rng(0).standard_normal((6, 3, 4)).astype(np.float32)
    results = []
    for m in (plain, explicit):
        out, _ = m(x)
        dx, _ = m.backward(np.ones_like(out), (None, None) if cell == "LSTM" else None)
        results.append([out, dx, *m.grads.values()])
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()
    assert repr(plain) == repr(explicit)


def test_relu_activation_selects_the_relu_rnn():
    m = rnnkit.RNN(3, 4, activations=["RELU"])
    assert m.nonlinearity == "relu" and m.mode == "rnn_relu"
    assert m.activations == (Activation("Relu"),)
    assert rnnkit.RNN(3, 4, nonlinearity="relu", activations=["relu"]).mode == "rnn_relu"


def test_activations_are_complete_and_keras_names_map():
    m = rnnkit.LSTM(3, 4, activations=["hard_sigmoid", "linear", ("HardSigmoid", 0.2)])
    assert m.activations == (
        Activation("HardSigmoid", 1 / 6, 0.5),
        Activation("Affine", 1.0, 0.0),
        Activation("HardSigmoid", 0.2, 0.5),
    )
    assert rnnkit.GRU(3, 4).activations == (Activation("Sigmoid"), Activation("Tanh"))
    assert rnnkit.RNN(3, 4).activations == (Activation("Tanh"),)
    names = {
        a.name for a in (rnnkit.activations.resolve_activation(n, "a") for n in ACTIVATION_NAMES)
    }
    assert names == set(ACTIVATION_NAMES)


@pytest.mark.parametrize(
    "cell,kwargs,error,match",
    [
        (
            "LSTM",
            dict(activations=["Sigmoid", "Tanh", "Swish"]),
            ValueError,
            r"activations\[2\].*'Swish'",
        ),
        ("LSTM", dict(activations=["Sigmoid", "Tanh"]), ValueError, "activations must hold 3"),
        (
            "GRU",
            dict(activations=["Sigmoid", "Tanh", "Tanh"]),
            ValueError,
            "activations must hold 2",
        ),
        ("RNN", dict(activations="tanh"), TypeError, "activations must be a sequence"),
        ("RNN", dict(activations=[3]), TypeError, r"activations\[0\]"),
        ("RNN", dict(activations=[("Tanh", 0.5)]), ValueError, "Tanh takes no alpha"),
        ("RNN", dict(activations=[("Elu", float("nan"))]), ValueError, "alpha must be finite"),
        ("RNN", dict(nonlinearity="relu", activations=["tanh"]), ValueError, "contradicts"),
        ("RNN", dict(clip=0.0), ValueError, "clip must be a positive finite"),
        ("LSTM", dict(clip=-1), ValueError, "clip must be a positive finite"),
        ("GRU", dict(clip=float("nan")), ValueError, "clip must be a positive finite"),
        ("GRU", dict(clip=float("inf")), ValueError, "clip must be a positive finite"),
        ("GRU", dict(clip="1"), TypeError, "clip must be"),
        ("GRU", dict(peepholes=True), TypeError, "'peepholes': only rnnkit.LSTM"),
        ("RNN", dict(input_forget=True), TypeError, "'input_forget': only rnnkit.LSTM"),
        ("LSTM", dict(peepholes=1), TypeError, "peepholes must be a bool"),
        ("LSTM", dict(reverse=True, bidirectional=True), ValueError, "reverse=True"),
        ("GRU", dict(reverse="yes"), TypeError, "reverse must be a bool"),
    ],
)
def test_bad_arguments_raise_naming_them(cell, kwargs, error, match):
    with pytest.raises(error, match=match):
        getattr(rnnkit, cell)(3, 4, **kwargs)


@pytest.mark.native
@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_options_survive_copies_state_dicts_and_repr(backend, tmp_path):
    kwargs = dict(
        activations=["Softsign", ("Elu", 0.5), "Tanh"],
        clip=2.0,
        peepholes=True,
        input_forget=True,
        reverse=True,
    )
    m = rnnkit.LSTM(3, 4, num_layers=2, backend=backend, seed=1, **kwargs)
    assert list(m.parameters()) == [
        f"{kind}_l{k}"
        for k in range(2)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ph")
    ]
    assert m.parameters()["weight_ph_l1"].shape == (12,)
    text = repr(m)
    for part in ("clip=2.0", "peepholes=True", "input_forget=True", "reverse=True", "Softsign"):
        assert part in text
    x = np.random.default_rng(2).standard_normal((5, 2, 3)).astype(np.float32)
    m.eval()
    want, _ = m(x)
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert repr(other) == text and other.activations == m.activations
        assert other(x)[0].tobytes() == want.tobytes()
    fresh = rnnkit.LSTM(3, 4, num_layers=2, backend=backend, seed=9, **kwargs).eval()
    fresh.load_state_dict(m.state_dict())
    assert fresh(x)[0].tobytes() == want.tobytes()
    rnnkit.save_checkpoint(tmp_path / "ck", {"lstm": m})
    loaded = rnnkit.LSTM(3, 4, num_layers=2, backend=backend, seed=5, **kwargs).eval()
    rnnkit.load_checkpoint(tmp_path / "ck", {"lstm": loaded})
    assert loaded(x)[0].tobytes() == want.tobytes()


@pytest.mark.native
@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_peepholes_modified_before_backward_raise(backend):
    m = rnnkit.LSTM(3, 4, backend=backend, peepholes=True, seed=0)
    out, _ = m(np.ones((2, 1, 3), np.float32))
    m.parameters()["weight_ph_l0"][0] += 1
    with pytest.raises(RuntimeError, match="weight_ph_l0 was modified in place"):
        m.backward(np.ones_like(out), (None, None))


@pytest.mark.native
@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_reverse_is_the_reverse_half_of_a_bidirectional_layer(backend):
    """reverse=True runs what a bidirectional layer's second direction runs: with its
    parameters loaded, the outputs are that direction's columns, in the input's order."""
    bi = rnnkit.GRU(3, 4, bidirectional=True, backend=backend, seed=0, clip=1.0)
    rev = rnnkit.GRU(3, 4, reverse=True, backend=backend, seed=1, clip=1.0)
    rev.load_state_dict(
        {k[: -len("_reverse")]: v for k, v in bi.state_dict().items() if k.endswith("_reverse")}
    )
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32)
    lengths = np.array([6, 3])
    out_bi, h_bi = bi(x, lengths=lengths)
    out_rev, h_rev = rev(x, lengths=lengths)
    np.testing.assert_array_equal(out_rev, out_bi[..., 4:])
    np.testing.assert_array_equal(h_rev[0], h_bi[1])
    with pytest.raises(ValueError, match="reverse=True cannot run step by step"):
        rev.step(x[0])


@pytest.mark.native
@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_step_with_options_equals_the_call(backend):
    m = rnnkit.LSTM(
        3,
        4,
        num_layers=2,
        backend=backend,
        seed=0,
        peepholes=True,
        clip=0.5,
        activations=["HardSigmoid", "Softsign", "Tanh"],
    ).eval()
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    want, _ = m(x)
    state = None
    for t in range(4):
        out_t, state = m.step(x[t], state)
        assert out_t.tobytes() == want[t].tobytes()


@pytest.mark.native
@pytest.mark.parametrize(
    "make",
    [
        lambda b: rnnkit.GRU(3, 4, backend=b, seed=0, activations=["HardSigmoid", "Softsign"]),
        lambda b: rnnkit.RNN(3, 4, backend=b, seed=0, clip=0.5),
        lambda b: rnnkit.LSTM(3, 4, num_layers=2, backend=b, seed=0, input_forget=True),
        lambda b: rnnkit.LSTM(3, 4, num_layers=2, backend=b, seed=0, proj_size=2),
        lambda b: rnnkit.LSTM(3, 4, backend=b, seed=0, peepholes=True),
    ],
)
def test_eval_steps_on_packed_weights_keep_the_options(make):
    """Once an eval call has packed the weights, T=1 calls and steps (which take a lean
    entry for the plain cells) still run the cell variants and projections."""
    m, ref = make("native").eval(), make("numpy").eval()
    x = np.random.default_rng(1).standard_normal((3, 2, 3)).astype(np.float32)
    m(x)  # packs the weights
    for t in range(3):
        want, _ = ref(x[t : t + 1])
        got, _ = m(x[t : t + 1])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        step_out, _ = m.step(x[t])
        np.testing.assert_allclose(step_out, want[0], rtol=1e-5, atol=1e-6)


def _core_problem(mode: str, peepholes: bool = False):
    """Arguments of rnnkit._core.stack_forward for one layer, one direction."""
    rng = np.random.default_rng(0)
    G = {"lstm": 4, "gru": 3, "rnn_tanh": 1}[mode]
    weights = [tuple(rng.standard_normal(s) for s in [(G * 3, 2), (G * 3, 3), (G * 3,), (G * 3,)])]
    if peepholes:
        weights = [(*weights[0], None, rng.standard_normal(9))]  # (.., w_hr, w_ph)
    x = rng.standard_normal((4, 2, 2))
    h0 = np.zeros((1, 2, 3))
    c0 = np.zeros((1, 2, 3)) if mode == "lstm" else None
    return x, h0, c0, weights


@pytest.mark.native
@pytest.mark.parametrize(
    "mode,options,peepholes,match",
    [
        ("lstm", ([("Swish", 0, 0)] * 3, 0.0, False, False, False), False, "unknown activation"),
        ("gru", ([("Tanh", 0, 0)] * 3, 0.0, False, False, False), False, "takes 2 activations"),
        ("gru", ([("Sigmoid", 0, 0), ("Tanh", 0, 0)], 0.0, True, False, False), False, "LSTM's"),
        ("lstm", ([("Sigmoid", 0, 0), ("Tanh", 0, 0)] * 2, -1.0, False, False, False), False, "3"),
        ("rnn_tanh", ([("Tanh", 0, 0)], -1.0, False, False, False), False, "clip"),
        ("rnn_tanh", ([("Tanh", 0, 0)], float("nan"), False, False, False), False, "clip"),
        (
            "lstm",
            ([("Sigmoid", 0, 0), ("Tanh", 0, 0), ("Tanh", 0, 0)], 0.0, True, False, False),
            False,
            "w_ph",
        ),
        (
            "lstm",
            ([("Sigmoid", 0, 0), ("Tanh", 0, 0), ("Tanh", 0, 0)], 0.0, False, False, False),
            True,
            "w_ph",
        ),
        ("lstm", None, True, "w_ph"),
    ],
)
def test_core_refuses_inconsistent_options(mode, options, peepholes, match):
    """The bindings keep the core safe from options that do not fit the call."""
    x, h0, c0, weights = _core_problem(mode, peepholes)
    with pytest.raises(ValueError, match=match):
        rnnkit._core.stack_forward(mode, x, h0, c0, weights, None, None, False, 1, None, options)


@pytest.mark.native
def test_core_refuses_reverse_with_two_directions():
    x, _, _, weights = _core_problem("rnn_tanh")
    with pytest.raises(ValueError, match="reverse needs num_directions = 1"):
        rnnkit._core.stack_forward(
            "rnn_tanh",
            x,
            np.zeros((2, 2, 3)),
            None,
            weights * 2,
            None,
            None,
            False,
            2,
            None,
            ([("Tanh", 0.0, 0.0)], 0.0, False, False, True),
        )
