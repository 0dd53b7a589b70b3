"""LSTM projections (proj_size) combined with the cell variants (activations, clip,
peepholes, input_forget, reverse): the native core equals the NumPy reference (values, and
the same bits at every thread count), the reference's float64 gradients match central
differences, explicit default options still equal torch.nn.LSTM(proj_size=P), and the
parameters (weight_hr before weight_ph), the weight cache, the in-place checks and the
core's weights entries (.., w_hr | None, w_ph | None) keep both features apart."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import rnnkit
import torch
from conftest import (
    assert_same_bits_in_order,
    needs_threads,
    on_threads,
    team_forms,
    unsorting_order,
)
from rnnkit import _core

pytestmark = pytest.mark.native

TOL = {"float64": 1e-10, "float32": 2e-4}
GATE_ACTIVATIONS = ["Sigmoid", ("HardSigmoid", 0.3, 0.4), "Softsign", ("ScaledTanh", 0.5, 1.2)]
OTHER_ACTIVATIONS = ["Tanh", "Softsign", ("Affine", 0.6, -0.1), ("Elu", 0.7), "Relu"]


def random_config(seed: int) -> dict:
    """A random LSTM with a projection and cell variants: constructor arguments, sizes."""
    rng = np.random.default_rng(3000 + seed)
    H = int(rng.integers(2, 9))
    kwargs: dict = {
        "proj_size": int(rng.integers(1, H)),
        "num_layers": int(rng.integers(1, 4)),
        "bias": bool(rng.random() < 0.8),
        "dtype": ["float32", "float64"][int(rng.integers(2))],
        "dropout": 0.3 if rng.random() < 0.3 else 0.0,
        "peepholes": bool(rng.random() < 0.7),
        "input_forget": bool(rng.random() < 0.3),
        "activations": [
            GATE_ACTIVATIONS[int(rng.integers(len(GATE_ACTIVATIONS)))],
            OTHER_ACTIVATIONS[int(rng.integers(len(OTHER_ACTIVATIONS)))],
            OTHER_ACTIVATIONS[int(rng.integers(len(OTHER_ACTIVATIONS)))],
        ],
    }
    if rng.random() < 0.6:
        kwargs["clip"] = float(rng.uniform(0.3, 2.0))
    if rng.random() < 0.3:
        kwargs["reverse"] = True
    elif rng.random() < 0.5:
        kwargs["bidirectional"] = True
    return {"H": H, "kwargs": kwargs, "lengths": bool(rng.random() < 0.6), "seed": seed}


# Non-increasing lengths of 12 sequences (a PackedSequence's order): from step 2 on at
# least 8 rows have finished, so the core leaves them out of each step's products.
SORTED_LENGTHS = np.array([6, 5, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1])


def run_module(config: dict, backend: str, order: np.ndarray | None = None) -> dict:
    """Training forward and backward of config's LSTM on ``backend``: every result.
    config["lengths"]: False, True (4 sequences, unsorted) or "sorted" (SORTED_LENGTHS).
    order: a permutation of the batch: every input's rows are taken in that order."""
    H, kwargs = config["H"], config["kwargs"]
    m = rnnkit.LSTM(5, H, backend=backend, seed=config["seed"], **kwargs)
    rng = np.random.default_rng(config["seed"] + 1000)
    T, B, P = 6, 4, kwargs["proj_size"]
    if config["lengths"] == "sorted":
        B = len(SORTED_LENGTHS)
    LD = kwargs["num_layers"] * (2 if kwargs.get("bidirectional") else 1)
    x = rng.standard_normal((T, B, 5))
    lengths = np.array([6, 2, 4, 1]) if config["lengths"] else None
    if config["lengths"] == "sorted":
        lengths = SORTED_LENGTHS
    hx = (rng.standard_normal((LD, B, P)), rng.standard_normal((LD, B, H)))
    grad_out = rng.standard_normal((T, B, P * (2 if kwargs.get("bidirectional") else 1)))
    grad_state = (rng.standard_normal((LD, B, P)), rng.standard_normal((LD, B, H)))
    if order is not None:  # every array's batch axis is axis 1
        x, grad_out = x[:, order], grad_out[:, order]
        hx = tuple(a[:, order] for a in hx)
        grad_state = tuple(a[:, order] for a in grad_state)
        lengths = None if lengths is None else lengths[order]
    out, (h_n, c_n) = m(x, hx, lengths=lengths)
    assert out.shape == grad_out.shape
    assert h_n.shape == (LD, B, P) and c_n.shape == (LD, B, H)
    dx, (dh0, dc0) = m.backward(grad_out, grad_state)
    result = {"out": out, "h_n": h_n, "c_n": c_n, "dx": dx, "dh0": dh0, "dc0": dc0}
    result.update({f"grad {k}": v.copy() for k, v in m.grads.items()})
    return result


def assert_native_equals_reference(config: dict) -> None:
    native, numpy = run_module(config, "native"), run_module(config, "numpy")
    tol = TOL[config["kwargs"]["dtype"]]
    assert native.keys() == numpy.keys()
    if config["kwargs"]["peepholes"]:
        assert "grad weight_ph_l0" in native and "grad weight_hr_l0" in native
    for name, want in numpy.items():
        got = native[name]
        scale = float(np.max(np.abs(want), initial=0.0))
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=name)


@pytest.mark.parametrize("seed", range(24))
def test_native_equals_reference_with_projection_and_variants(seed):
    assert_native_equals_reference(random_config(seed))


@pytest.mark.parametrize("seed", range(16))
def test_native_equals_reference_with_sorted_lengths(seed):
    """Sorted lengths: the core runs each step's products (the recurrent GEMM, the input
    projection, h_t = m_t W_hr^T, dm_t, dX, dW_ih, dW_hh, dW_hr) on the active rows only;
    the finished rows' gates are never computed and must never be read."""
    assert_native_equals_reference({**random_config(seed), "lengths": "sorted"})


def large_config(lengths: bool | str) -> dict:
    """A projected LSTM with peepholes, clip and other activations, large enough for a
    thread team."""
    return {
        "H": 160,
        "kwargs": dict(
            proj_size=48,
            num_layers=2,
            bidirectional=True,
            dtype="float32",
            peepholes=True,
            clip=1.5,
            activations=[("HardSigmoid", 0.3, 0.4), "Softsign", "Tanh"],
        ),
        "lengths": lengths,
        "seed": 7,
    }


@needs_threads
@pytest.mark.parametrize("lengths", [True, "sorted"])
def test_native_bits_do_not_depend_on_threads(lengths, restore_threads):
    """large_config: the same bits on 1, 2 and 3 threads (a team forms: checked)."""
    config = large_config(lengths)
    rnnkit.set_num_threads(1)
    want = run_module(config, "native")
    for threads in (2, 3):
        rnnkit.set_num_threads(threads)
        with team_forms():
            got = run_module(config, "native")
        for name, a in want.items():
            assert a.tobytes() == got[name].tobytes(), (name, threads)


@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=needs_threads)])
def test_sorted_lengths_equal_the_reference_at_1_and_2_threads(threads, restore_threads):
    with on_threads(threads):
        assert_native_equals_reference(large_config("sorted"))


@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=needs_threads)])
def test_sorted_lengths_same_bits_as_an_unsorted_batch(threads, restore_threads):
    """The same sequences in another order (lengths no longer sorted: every step runs on
    all rows) give each sequence's outputs, states and input and state gradients with the
    same bits."""
    config = large_config("sorted")
    config["kwargs"] = {**config["kwargs"], "dropout": 0.0}  # masks are drawn per row
    order = unsorting_order(SORTED_LENGTHS)
    with on_threads(threads):
        want = run_module(config, "native")
        got = run_module(config, "native", order)
    assert_same_bits_in_order(want, got, order)


GRAD_CASES = [
    dict(peepholes=True, clip=0.8, activations=["Softsign", "Tanh", ("ScaledTanh", 0.9, 1.1)]),
    dict(peepholes=True, input_forget=True, activations=["Sigmoid", "Softplus", "Tanh"]),
    dict(peepholes=True, reverse=True, clip=1.2),
    dict(peepholes=True, bidirectional=True, num_layers=2, activations=["Sigmoid", "Elu", "Tanh"]),
]


@pytest.mark.parametrize("options", GRAD_CASES, ids=lambda o: "-".join(sorted(o)))
def test_reference_gradients_match_central_differences(options):
    """float64 reference, loss = sum(out*A) + sum(h_n*Bh) + sum(c_n*C): the gradient of x
    and of every parameter (weight_hr and weight_ph included) along a random direction
    against central differences of the eval-mode forward."""
    T, B, n_in, H, P = 4, 3, 3, 4, 2
    rng = np.random.default_rng(zlib.crc32(repr(sorted(options.items())).encode()))
    m = rnnkit.LSTM(n_in, H, proj_size=P, dtype="float64", backend="numpy", seed=1, **options)
    D = 2 if options.get("bidirectional") else 1
    LD = options.get("num_layers", 1) * D
    x = rng.standard_normal((T, B, n_in))
    hx = (rng.standard_normal((LD, B, P)), rng.standard_normal((LD, B, H)))
    lengths = np.array([4, 2, 3])
    coef = [rng.standard_normal(s) for s in [(T, B, D * P), (LD, B, P), (LD, B, H)]]

    def loss(x):
        out, (h_n, c_n) = m(x, hx, lengths=lengths)
        return float(np.sum(out * coef[0]) + np.sum(h_n * coef[1]) + np.sum(c_n * coef[2]))

    loss(x)
    dx, _ = m.backward(coef[0], (coef[1], coef[2]))
    analytic = {"x": dx, **{n: g.copy() for n, g in m.grads.items()}}
    assert {"weight_hr_l0", "weight_ph_l0"} <= analytic.keys()
    m.eval()
    eps = 1e-6
    for name, arr in [("x", x), *m.parameters().items()]:
        v = rng.standard_normal(arr.shape)
        v /= np.linalg.norm(v)
        saved = arr.copy()
        arr[...] = saved + eps * v
        up = loss(x)
        arr[...] = saved - eps * v
        down = loss(x)
        arr[...] = saved
        numeric = (up - down) / (2 * eps)
        assert np.isclose(np.sum(analytic[name] * v), numeric, rtol=2e-6, atol=1e-8), name


DEFAULT_OPTIONS = dict(
    activations=["Sigmoid", "Tanh", "Tanh"], clip=None, peepholes=False, input_forget=False
)


@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_explicit_default_options_equal_torch(backend, bidirectional):
    """proj_size with every option given at its default is torch's projected LSTM, and on
    the native backend the same bits as without the options."""
    n_in, H, P, T, B, L = 3, 6, 4, 5, 3, 2
    torch.manual_seed(0)
    ref = torch.nn.LSTM(n_in, H, num_layers=L, bidirectional=bidirectional, proj_size=P)
    ref = ref.double()
    kwargs = dict(num_layers=L, bidirectional=bidirectional, proj_size=P, dtype="float64")
    m = rnnkit.LSTM(n_in, H, backend=backend, **kwargs, **DEFAULT_OPTIONS)
    plain = rnnkit.LSTM(n_in, H, backend=backend, **kwargs)
    m.load_state_dict(ref.state_dict())
    plain.load_state_dict(ref.state_dict())
    assert list(m.state_dict()) == list(ref.state_dict())
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, n_in))
    out, (h_n, c_n) = m(x)
    xt = torch.from_numpy(x).requires_grad_(True)
    want_out, (want_h, want_c) = ref(xt)
    for got, want in ((out, want_out), (h_n, want_h), (c_n, want_c)):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-12)
    (want_out.sum() + want_h.sum() + want_c.sum()).backward()
    dx, _ = m.backward(np.ones_like(out), (np.ones_like(h_n), np.ones_like(c_n)))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(m.grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-12)
    if backend == "native":
        plain_out, (plain_h, plain_c) = plain(x)
        for a, b in ((out, plain_out), (h_n, plain_h), (c_n, plain_c)):
            assert a.tobytes() == b.tobytes()


def test_parameters_names_order_and_repr():
    m = rnnkit.LSTM(3, 5, proj_size=2, peepholes=True, clip=1.0, num_layers=2, seed=0)
    names = list(m.parameters())
    assert names[:6] == [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
        "weight_hr_l0",
        "weight_ph_l0",
    ]
    assert m.parameters()["weight_hh_l1"].shape == (20, 2)
    assert m.parameters()["weight_ih_l1"].shape == (20, 2)
    assert m.parameters()["weight_hr_l1"].shape == (2, 5)
    assert m.parameters()["weight_ph_l1"].shape == (15,)
    text = repr(m)
    assert "proj_size=2" in text and "peepholes=True" in text and "clip=1.0" in text
    other = rnnkit.LSTM(3, 5, proj_size=2, peepholes=True, clip=1.0, num_layers=2, seed=9)
    other.load_state_dict(m.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    assert other(x)[0].tobytes() == m(x)[0].tobytes()


@pytest.mark.parametrize("name", ["weight_hr_l0", "weight_ph_l0"])
def test_eval_calls_see_writes_into_projection_and_peepholes(name):
    """The native backend's packed weights are rebuilt after a write into either."""
    m = rnnkit.LSTM(3, 5, proj_size=2, peepholes=True, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    before, _ = m(x)
    m.parameters()[name][0] += 0.5
    after, _ = m(x)
    fresh = rnnkit.LSTM(3, 5, proj_size=2, peepholes=True, seed=1).eval()
    fresh.load_state_dict(m.state_dict())
    assert after.tobytes() == fresh(x)[0].tobytes()
    assert after.tobytes() != before.tobytes()


@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("name", ["weight_hr_l0", "weight_ph_l0"])
def test_writes_before_backward_raise_naming_the_parameter(backend, name):
    m = rnnkit.LSTM(3, 5, proj_size=2, peepholes=True, backend=backend, seed=0)
    out, _ = m(np.ones((2, 1, 3), np.float32))
    m.parameters()[name][0] += 1
    with pytest.raises(RuntimeError, match=f"{name} was modified in place"):
        m.backward(np.ones_like(out), (None, None))


def _core_call(entries, options, D=1):
    """_core.stack_forward (training) of one-layer LSTM entries with H = 3, B = 2, I = 2."""
    rng = np.random.default_rng(0)
    P = entries[0][4].shape[0] if len(entries[0]) > 4 and entries[0][4] is not None else 3
    x = rng.standard_normal((4, 2, 2))
    return _core.stack_forward(
        "lstm", x, np.zeros((D, 2, P)), np.zeros((D, 2, 3)), entries, None, None, True, D,
        None, options,
    )  # fmt: skip


def _entry(rng, P=0, peepholes=False):
    """An LSTM weights entry (H = 3, I = 2): (w_ih, w_hh, b_ih, b_hh[, w_hr | None[, w_ph]])."""
    R = P or 3
    entry = tuple(rng.standard_normal(s) for s in [(12, 2), (12, R), (12,), (12,)])
    w_hr = rng.standard_normal((P, 3)) if P else None
    if peepholes:
        return (*entry, w_hr, rng.standard_normal(9))
    return (*entry, w_hr) if P else entry


PEEPHOLE_OPTIONS = ([("Sigmoid", 0, 0), ("Tanh", 0, 0), ("Tanh", 0, 0)], 0.0, True, False, False)


@pytest.mark.parametrize("P", [0, 2])
def test_core_entries_put_projection_fifth_and_peepholes_sixth(P):
    rng = np.random.default_rng(1)
    out, h_n, c_n, cache = _core_call([_entry(rng, P, peepholes=True)], PEEPHOLE_OPTIONS)
    R = P or 3
    assert out.shape == (4, 2, R) and h_n.shape == (1, 2, R) and c_n.shape == (1, 2, 3)
    dout = np.ones_like(out)
    _, _, _, grads = _core.stack_backward("lstm", cache, dout, np.zeros_like(h_n), c_n * 0)
    (dw_ih, dw_hh, db_ih, db_hh, dw_hr, dw_ph) = grads[0]
    assert dw_hh.shape == (12, R) and dw_ph.shape == (9,) and np.any(dw_ph != 0)
    assert (dw_hr is None) == (P == 0)
    if P:
        assert dw_hr.shape == (P, 3)
    # The same arrays added into: the grads entry has the same structure.
    again = [tuple(None if g is None else np.zeros_like(g) for g in grads[0])]
    _core.stack_backward("lstm", cache, dout, np.zeros_like(h_n), c_n * 0, again)
    for a, b in zip(again[0], grads[0]):
        assert (a is None and b is None) or a.tobytes() == b.tobytes()


def test_core_refuses_entries_that_disagree_on_the_projection():
    rng = np.random.default_rng(2)
    with_hr = _entry(rng, 2, peepholes=True)
    without = (*with_hr[:4], None, with_hr[5])
    with pytest.raises(ValueError, match=r"weights\[1\]\[4\] \(w_hr\) is None but weights\[0\]"):
        _core_call([with_hr, without], PEEPHOLE_OPTIONS, D=2)
    with pytest.raises(ValueError, match=r"w_ph as a sixth item"):
        _core_call([with_hr[:5]], PEEPHOLE_OPTIONS)
