"""LSTM projections (proj_size P, torch's h_t = (o_t * tanh(c_t)) W_hr^T): rnnkit.LSTM on
both backends against torch.nn.LSTM(proj_size=P) over random configurations (outputs, final
states, every gradient), the native core against the reference (the same values, the same
bits at every thread count), the reference's gradients against central differences, step(),
the in-place checks of W_hr and the errors for bad proj_size and state shapes."""

from __future__ import annotations

import copy as copy_module
import pickle

import numpy as np
import pytest
import rnnkit
import torch
from conftest import needs_threads, team_forms
from rnnkit import _native, reference

pytestmark = pytest.mark.native

TOLERANCE = {"float64": 1e-9, "float32": 2e-4}


def random_config(index: int) -> dict:
    rng = np.random.default_rng(2000 + index)
    H = int(rng.integers(2, 10))
    return {
        "num_layers": int(rng.integers(1, 4)),
        "bidirectional": bool(rng.integers(2)),
        "batch_first": bool(rng.integers(2)),
        "bias": bool(rng.integers(2)),
        "dtype": ["float64", "float32"][int(rng.integers(2))],
        "lengths": bool(rng.integers(2)),
        "with_state": bool(rng.integers(2)),
        "T": int(rng.integers(1, 8)),
        "B": int(rng.integers(1, 5)),
        "I": int(rng.integers(1, 6)),
        "H": H,
        "P": int(rng.integers(1, H)),
        "seed": index,
    }


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    scale = max(float(np.abs(want).max()), 1e-30) if want.size else 1.0
    return float(np.abs(got - want).max()) / scale if want.size else 0.0


def torch_results(ref: torch.nn.LSTM, x, h0, c0, lengths, grads, batch_first: bool):
    """torch's outputs, final states and gradients (x, h0, c0, then every parameter) for
    the loss sum(out * grads[0]) + sum(h_n * grads[1]) + sum(c_n * grads[2])."""
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    states = [torch.from_numpy(s.copy()).requires_grad_(True) for s in (h0, c0)]
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.from_numpy(lengths), batch_first=batch_first, enforce_sorted=False
        )
    out, (h_n, c_n) = ref(inp, tuple(states))
    if lengths is not None:
        total = x.shape[1 if batch_first else 0]
        out = torch.nn.utils.rnn.pad_packed_sequence(
            out, batch_first=batch_first, total_length=total
        )[0]
    loss = sum((o * torch.from_numpy(g)).sum() for o, g in zip((out, h_n, c_n), grads))
    loss.backward()
    outputs = [t.detach().numpy() for t in (out, h_n, c_n)]
    gradients = [xt.grad.numpy(), *[s.grad.numpy() for s in states]]
    gradients += [p.grad.numpy() for p in ref.parameters()]
    return outputs, gradients


def rnnkit_results(m: rnnkit.LSTM, x, h0, c0, lengths, grads):
    """The same as torch_results from an rnnkit.LSTM (parameters in torch's order)."""
    m.zero_grad()
    out, (h_n, c_n) = m(x.copy(), (h0, c0), lengths=lengths)
    dx, (dh0, dc0) = m.backward(grads[0], (grads[1], grads[2]))
    return [out, h_n, c_n], [dx, dh0, dc0, *m.grads.values()]


def shared_arguments(c: dict) -> dict:
    """The constructor arguments torch.nn.LSTM and rnnkit.LSTM share, of configuration c."""
    names = ("num_layers", "bias", "batch_first", "bidirectional")
    return {"proj_size": c["P"], **{name: c[name] for name in names}}


def case(c: dict):
    """torch's module and the inputs of configuration c: x, h0, c0 (zeros without state),
    lengths or None, and the loss weights of out, h_n and c_n."""
    torch.manual_seed(c["seed"])
    ref = torch.nn.LSTM(c["I"], c["H"], **shared_arguments(c), dtype=getattr(torch, c["dtype"]))
    rng = np.random.default_rng(c["seed"])
    T, B, D = c["T"], c["B"], 2 if c["bidirectional"] else 1
    LD = c["num_layers"] * D
    dt = np.dtype(c["dtype"])
    x = rng.standard_normal((B, T, c["I"]) if c["batch_first"] else (T, B, c["I"])).astype(dt)
    h0 = rng.standard_normal((LD, B, c["P"])).astype(dt)
    c0 = rng.standard_normal((LD, B, c["H"])).astype(dt)
    if not c["with_state"]:
        h0, c0 = np.zeros_like(h0), np.zeros_like(c0)
    lengths = None
    if c["lengths"]:
        lengths = rng.integers(1, T + 1, B)
        lengths[rng.integers(B)] = T
    out_shape = (B, T, D * c["P"]) if c["batch_first"] else (T, B, D * c["P"])
    grads = [rng.standard_normal(s).astype(dt) for s in (out_shape, h0.shape, c0.shape)]
    return ref, x, h0, c0, lengths, grads


@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("index", range(24))
def test_random_configuration_matches_torch(index, backend):
    c = random_config(index)
    ref, x, h0, c0, lengths, grads = case(c)
    m = rnnkit.LSTM(c["I"], c["H"], **shared_arguments(c), dtype=c["dtype"], backend=backend)
    m.load_state_dict(ref.state_dict())
    assert list(m.state_dict()) == list(ref.state_dict())
    want_out, want_grads = torch_results(ref, x, h0, c0, lengths, grads, c["batch_first"])
    got_out, got_grads = rnnkit_results(m, x, h0, c0, lengths, grads)
    tol = TOLERANCE[c["dtype"]]
    for i, (g, w) in enumerate(zip(got_out, want_out)):
        assert relative_error(g, w) <= tol, f"{c} output {i}"
    for i, (g, w) in enumerate(zip(got_grads, want_grads)):
        assert relative_error(g, w) <= tol, f"{c} gradient {i}"


def stack_inputs(seed: int, T=6, B=4, I=5, H=7, P=3, L=2, D=2, bias=True, dtype=np.float64):  # noqa: E741
    """Random inputs of the backends' stack_forward with a projection (5-tuple entries),
    lengths and dropout masks."""
    rng = np.random.default_rng(seed)

    def r(*shape):
        return (0.5 * rng.standard_normal(shape)).astype(dtype)

    weights = []
    for k in range(L):
        for _ in range(D):
            in_k = I if k == 0 else D * P
            b = (r(4 * H), r(4 * H)) if bias else (None, None)
            weights.append((r(4 * H, in_k), r(4 * H, P), *b, r(P, H)))
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = T
    masks = [(rng.random((T, B, D * P)) > 0.3).astype(dtype) / dtype(0.7) for _ in range(L - 1)]
    return r(T, B, I), r(L * D, B, P), r(L * D, B, H), weights, lengths, masks


def run_stack(backend, inputs, grads, num_directions=2):
    """Forward (training) and backward of a backend: every output and gradient, flat."""
    x, h0, c0, weights, lengths, masks = inputs
    out, h_n, c_n, cache = backend.stack_forward(
        "lstm", x, h0, c0, weights, lengths, masks, True, num_directions=num_directions
    )
    dx, dh0, dc0, dweights = backend.stack_backward("lstm", cache, *grads(out, h_n, c_n))
    return [out, h_n, c_n, dx, dh0, dc0] + [g for entry in dweights for g in entry if g is not None]


def loss_weights(seed):
    rng = np.random.default_rng(seed)
    return lambda *arrays: [rng.standard_normal(a.shape).astype(a.dtype) for a in arrays]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_native_equals_reference(dtype, bias, isa):
    inputs = stack_inputs(1, bias=bias, dtype=dtype)
    got = run_stack(_native, inputs, loss_weights(2))
    want = run_stack(reference, inputs, loss_weights(2))
    assert len(got) == len(want) == 6 + 4 * (5 if bias else 3)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == dtype
        assert relative_error(g, w) <= tol, f"array {i}"


@needs_threads
def test_native_bits_do_not_depend_on_threads(restore_threads):
    """Large enough for a thread team (checked): each thread computes its columns of the
    projection, yet every output and gradient has the bits of one thread."""
    inputs = stack_inputs(3, T=5, B=24, I=16, H=160, P=48, dtype=np.float32)
    rnnkit.set_num_threads(1)
    results = [run_stack(_native, inputs, loss_weights(4))]
    for threads in (2, 3):
        rnnkit.set_num_threads(threads)
        with team_forms():
            results.append(run_stack(_native, inputs, loss_weights(4)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_reference_gradients_match_central_differences():
    """float64 reference: d(loss)/d(each input and weight, W_hr included) against central
    differences of the forward, on a small stack with lengths and dropout masks."""
    x, h0, c0, weights, lengths, masks = stack_inputs(5, T=4, B=3, I=3, H=4, P=2)
    rng = np.random.default_rng(6)

    def forward_outputs(x, h0, c0, weights):
        out, h_n, c_n, _ = reference.stack_forward(
            "lstm", x, h0, c0, weights, lengths, masks, False, num_directions=2
        )
        return out, h_n, c_n

    g = [rng.standard_normal(a.shape) for a in forward_outputs(x, h0, c0, weights)]

    def loss(x, h0, c0, weights):
        return sum(float((a * b).sum()) for a, b in zip(forward_outputs(x, h0, c0, weights), g))

    out, h_n, c_n, cache = reference.stack_forward(
        "lstm", x, h0, c0, weights, lengths, masks, True, num_directions=2
    )
    dx, dh0, dc0, dweights = reference.stack_backward("lstm", cache, *g)
    # (array to perturb, its analytic gradient)
    checks = [(x, dx), (h0, dh0), (c0, dc0)]
    checks += [(w, dw) for entry, dentry in zip(weights, dweights) for w, dw in zip(entry, dentry)]
    assert len(checks) == 3 + 4 * 5
    eps = 1e-6
    for arr, grad in checks:
        flat = arr.reshape(-1)
        for j in np.random.default_rng(7).choice(flat.size, min(flat.size, 6), replace=False):
            keep = flat[j]
            flat[j] = keep + eps
            up = loss(x, h0, c0, weights)
            flat[j] = keep - eps
            down = loss(x, h0, c0, weights)
            flat[j] = keep
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - grad.reshape(-1)[j]) <= 1e-6 * max(1.0, abs(numeric))


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_step_equals_the_sequence_call(backend):
    m = rnnkit.LSTM(3, 6, num_layers=2, proj_size=4, dtype="float64", seed=1, backend=backend)
    m.eval()
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    h0 = np.random.default_rng(1).standard_normal((2, 2, 4))
    c0 = np.random.default_rng(2).standard_normal((2, 2, 6))
    out, (h_n, c_n) = m(x, (h0, c0))
    state = (h0, c0)
    for t in range(5):
        out_t, state = m.step(x[t], state)
        np.testing.assert_array_equal(out_t, out[t])
        assert out_t.shape == (2, 4)
    np.testing.assert_array_equal(state[0], h_n)
    np.testing.assert_array_equal(state[1], c_n)
    unbatched, (h1, c1) = m.step(x[0, 0])
    assert unbatched.shape == (4,) and h1.shape == (2, 4) and c1.shape == (2, 6)


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_weight_hr_changed_before_backward_raises(backend):
    m = rnnkit.LSTM(3, 5, proj_size=2, num_layers=2, dtype="float64", backend=backend)
    out, _ = m(np.ones((4, 2, 3)))
    m.parameters()["weight_hr_l1"][0, 0] += 1e-3
    with pytest.raises(RuntimeError, match="weight_hr_l1 was modified in place"):
        m.backward(np.ones_like(out))


def test_shapes_names_and_repr():
    m = rnnkit.LSTM(3, 5, num_layers=2, bidirectional=True, bias=False, proj_size=2)
    ref = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, bias=False, proj_size=2)
    assert {k: v.shape for k, v in m.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ref.state_dict().items()
    }
    assert m.proj_size == 2 and rnnkit.LSTM(3, 5).proj_size == 0
    assert repr(m) == (
        "LSTM(3, 5, num_layers=2, bias=False, bidirectional=True, proj_size=2, "
        "dtype='float32', backend='native')"
    )
    out, (h_n, c_n) = m(np.zeros((4, 3)))  # unbatched
    assert out.shape == (4, 4) and h_n.shape == (4, 2) and c_n.shape == (4, 5)


@pytest.mark.parametrize(
    "value, error, message",
    [
        (-1, ValueError, r"proj_size must be >= 0, got -1"),
        (5, ValueError, r"proj_size must be smaller than hidden_size=5 .*got 5"),
        (9, ValueError, r"proj_size must be smaller than hidden_size=5 .*got 9"),
        (2.0, TypeError, r"proj_size must be an int >= 0, got float"),
        (True, TypeError, r"proj_size must be an int >= 0, got bool"),
        ("2", TypeError, r"proj_size must be an int >= 0, got str"),
    ],
)
def test_bad_proj_size_raises(value, error, message):
    with pytest.raises(error, match=message):
        rnnkit.LSTM(3, 5, proj_size=value)


@pytest.mark.parametrize("cls", [rnnkit.GRU, rnnkit.RNN])
def test_proj_size_on_other_cells_raises(cls):
    with pytest.raises(TypeError, match=rf"rnnkit\.{cls.__name__} .*'proj_size'.*only LSTM"):
        cls(3, 5, proj_size=2)


def test_bad_state_shapes_name_proj_size():
    m = rnnkit.LSTM(3, 5, num_layers=2, proj_size=2)
    x = np.zeros((4, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 2, 2\) .*proj_size\), got"):
        m(x, (np.zeros((2, 2, 5)), None))
    with pytest.raises(ValueError, match=r"c0 must have shape \(2, 2, 5\) .*hidden_size\), got"):
        m(x, (None, np.zeros((2, 2, 2))))
    out, _ = m(x)
    with pytest.raises(ValueError, match=r"grad_out must have shape \(4, 2, 2\)"):
        m.backward(np.zeros((4, 2, 5)))
    m(x)
    with pytest.raises(ValueError, match=r"grad_h_n must have shape \(2, 2, 2\)"):
        m.backward(out, (np.zeros((2, 2, 5)), None))


def test_core_refuses_inconsistent_projection_weights():
    x, h0, c0, weights, lengths, masks = stack_inputs(8, L=1, D=1)
    w_ih, w_hh, b_ih, b_hh, w_hr = weights[0]

    def call(mode="lstm", entry=weights[0], h=h0, c=c0):
        return _native.stack_forward(mode, x, h, c, [entry], None, None, False, num_directions=1)

    with pytest.raises(
        ValueError, match=r"weights\[0\] must be a tuple \(w_ih, w_hh, b_ih, b_hh\)"
    ):
        call("gru", (w_ih[:21], w_hh[:21], b_ih[:21], b_hh[:21], w_hr))
    with pytest.raises(ValueError, match=r"\(4\*H, P\) and \(P, H\) with 1 <= P < H, got"):
        call(entry=(w_ih, w_hh, b_ih, b_hh, w_hr[:, :3]))
    square = np.zeros((7, 7))
    with pytest.raises(ValueError, match=r"1 <= P < H"):
        call(entry=(w_ih, np.zeros((28, 7)), b_ih, b_hh, square))
    with pytest.raises(ValueError, match=r"h0 must have shape \(L\*D, B, P\) = \(1, 4, 3\)"):
        call(h=c0)
    with pytest.raises(ValueError, match=r"c0 must have shape \(L\*D, B, H\) = \(1, 4, 7\)"):
        call(c=h0)


def test_copies_keep_the_projection():
    m = rnnkit.LSTM(3, 5, proj_size=2, dtype="float64", seed=4)
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    for copy in (copy_module.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert copy.proj_size == 2
        np.testing.assert_array_equal(copy(x)[0], m(x)[0])
        out, _ = copy(x)
        assert copy.backward(np.ones_like(out))[1][0].shape == (1, 2, 2)
