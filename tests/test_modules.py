"""The public modules rnnkit.RNN / LSTM / GRU: parameters, layouts, state dicts, training
state, dropout and every argument check, held to torch.nn.RNN / LSTM / GRU in float64."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import rnnkit
import torch
from conftest import BACKENDS, IN, MODULES, TORCH_MODES, B, H, T, make_module, torch_class
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

pytestmark = pytest.mark.native

TOL = {"rtol": 1e-10, "atol": 1e-10}  # float64 vs torch float64: same equations, ~1e-15 apart


def make_pair(cell: str, backend: str, **config):
    """A float64 torch module with its own random weights and an rnnkit module that loaded
    its state dict unchanged."""
    torch_cls, extra = torch_class(cell), MODULES[cell][1]
    torch.manual_seed(1)
    tm = torch_cls(IN, H, dtype=torch.float64, **extra, **config)
    m = make_module(cell, backend, seed=123, **config)
    m.load_state_dict(tm.state_dict())
    return m, tm


def torch_run(tm, x, h0, c0, lengths, batch_first, g_out, g_h, g_c):
    """torch's out, h_n, c_n and grads of sum(out*g_out) + sum(h_n*g_h) + sum(c_n*g_c)
    w.r.t. x, h0, c0 and every parameter (lengths via pack_padded_sequence)."""
    tm.zero_grad()
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    c0t = torch.tensor(c0, requires_grad=True) if c0 is not None else None
    hx = (h0t, c0t) if c0t is not None else h0t
    if lengths is None:
        out, state = tm(xt, hx)
    else:
        packed = pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
        )
        out_p, state = tm(packed, hx)
        total = x.shape[1] if batch_first else x.shape[0]
        out, _ = pad_packed_sequence(out_p, batch_first=batch_first, total_length=total)
    h_n, c_n = state if isinstance(state, tuple) else (state, None)
    loss = (out * torch.tensor(g_out)).sum() + (h_n * torch.tensor(g_h)).sum()
    if c_n is not None:
        loss = loss + (c_n * torch.tensor(g_c)).sum()
    loss.backward()
    result = {"out": out, "h_n": h_n, "dx": xt.grad, "dh0": h0t.grad}
    if c_n is not None:
        result.update(c_n=c_n, dc0=c0t.grad)
    result = {k: v.detach().numpy() for k, v in result.items()}
    grads = {name: p.grad.numpy() for name, p in tm.named_parameters()}
    return result, grads


def check_against_torch(cell, backend, config, unbatched=False, lengths=None, give_h0=True):
    m, tm = make_pair(cell, backend, **config)
    bf = config.get("batch_first", False)
    LD = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    D = 2 if config.get("bidirectional") else 1
    rng = np.random.default_rng(7)
    x_shape = (T, IN) if unbatched else ((B, T, IN) if bf else (T, B, IN))
    s_shape = (LD, H) if unbatched else (LD, B, H)
    o_shape = x_shape[:-1] + (D * H,)
    x, h0, c0 = (
        rng.standard_normal(x_shape),
        rng.standard_normal(s_shape),
        rng.standard_normal(s_shape),
    )
    if not give_h0:
        h0, c0 = np.zeros(s_shape), np.zeros(s_shape)
    g_out, g_h, g_c = (
        rng.standard_normal(o_shape),
        rng.standard_normal(s_shape),
        rng.standard_normal(s_shape),
    )
    lstm = cell == "lstm"
    ref, ref_grads = torch_run(tm, x, h0, c0 if lstm else None, lengths, bf, g_out, g_h, g_c)

    if give_h0:
        hx = (h0, c0) if lstm else h0
    else:
        hx = (None, None) if lstm else None
    out, state = m(x, hx, lengths=lengths)
    dx, dstate = m.backward(g_out, (g_h, g_c) if lstm else g_h)
    h_n, c_n = state if lstm else (state, None)
    dh0, dc0 = dstate if lstm else (dstate, None)
    np.testing.assert_allclose(out, ref["out"], **TOL)
    np.testing.assert_allclose(h_n, ref["h_n"], **TOL)
    np.testing.assert_allclose(dx, ref["dx"], **TOL)
    if give_h0:
        np.testing.assert_allclose(dh0, ref["dh0"], **TOL)
    if lstm:
        np.testing.assert_allclose(c_n, ref["c_n"], **TOL)
        if give_h0:
            np.testing.assert_allclose(dc0, ref["dc0"], **TOL)
    assert list(m.grads) == list(ref_grads)
    for name, grad in ref_grads.items():
        np.testing.assert_allclose(m.grads[name], grad, **TOL, err_msg=name)


# ---------------------------------------------------------------------------------------
# Agreement with torch.
# ---------------------------------------------------------------------------------------

CONFIGS = [
    {},
    {"num_layers": 2, "bidirectional": True},
    {"num_layers": 2, "bias": False, "batch_first": True},
    {"num_layers": 3, "bidirectional": True, "batch_first": True},
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items())
)
@pytest.mark.parametrize("cell", TORCH_MODES)
def test_matches_torch(cell, config, backend):
    check_against_torch(cell, backend, config)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", TORCH_MODES)
def test_matches_torch_unbatched(cell, bidirectional, backend):
    check_against_torch(cell, backend, {"num_layers": 2, "bidirectional": bidirectional}, True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("cell", TORCH_MODES)
def test_matches_torch_with_lengths(cell, batch_first, backend):
    config = {"num_layers": 2, "bidirectional": True, "batch_first": batch_first}
    check_against_torch(cell, backend, config, lengths=np.array([3, T, 1]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", TORCH_MODES)
def test_matches_torch_default_state(cell, backend):
    check_against_torch(cell, backend, {"bidirectional": True}, give_h0=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", TORCH_MODES)
def test_float32_matches_torch_float32(cell, backend):
    torch_cls, extra = torch_class(cell), MODULES[cell][1]
    torch.manual_seed(2)
    tm = torch_cls(IN, H, num_layers=2, **extra)
    m = make_module(cell, backend, num_layers=2, dtype="float32")
    m.load_state_dict(tm.state_dict())
    x = np.random.default_rng(3).standard_normal((T, B, IN)).astype(np.float32)
    out, _ = m(x)
    with torch.no_grad():
        ref, _ = tm(torch.from_numpy(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------
# Parameters, initialisation, state dicts.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("cell", TORCH_MODES)
def test_parameter_names_and_shapes_match_torch(cell, num_layers, bidirectional, bias):
    config = {"num_layers": num_layers, "bidirectional": bidirectional, "bias": bias}
    torch_cls, extra = torch_class(cell), MODULES[cell][1]
    ref = torch_cls(IN, H, **extra, **config).state_dict()
    m = make_module(cell, "numpy", **config)
    assert [(k, v.shape) for k, v in m.parameters().items()] == [
        (k, tuple(v.shape)) for k, v in ref.items()
    ]
    assert list(m.state_dict()) == list(ref)
    assert list(m.grads) == list(ref)
    assert all(not g.any() for g in m.grads.values())


def test_gru_reset_before_has_torch_layout():
    m = rnnkit.GRU(IN, H, num_layers=2, reset_after=False, backend="numpy", seed=0)
    ref = torch.nn.GRU(IN, H, num_layers=2).state_dict()
    assert [(k, v.shape) for k, v in m.parameters().items()] == [
        (k, tuple(v.shape)) for k, v in ref.items()
    ]
    assert m.mode == "gru_reset_before" and not m.reset_after


@pytest.mark.parametrize("cell", TORCH_MODES)
def test_init_is_uniform_and_reproducible_from_seed(cell):
    a = make_module(cell, "numpy", num_layers=2, bidirectional=True, seed=42)
    b = make_module(cell, "numpy", num_layers=2, bidirectional=True, seed=42)
    c = make_module(cell, "numpy", num_layers=2, bidirectional=True, seed=43)
    f32 = make_module(cell, "numpy", num_layers=2, bidirectional=True, seed=42, dtype="float32")
    bound = 1 / np.sqrt(H)
    for name, p in a.parameters().items():
        np.testing.assert_array_equal(p, b.parameters()[name])
        assert not np.array_equal(p, c.parameters()[name])
        assert np.all(np.abs(p) <= bound)
        assert p.dtype == np.float64 and p.flags.c_contiguous
        # float32 draws the same numbers, rounded.
        np.testing.assert_array_equal(f32.parameters()[name], p.astype(np.float32))
    # The values spread over the interval (not, say, all zero).
    w = a.parameters()["weight_ih_l0"]
    assert w.min() < -0.5 * bound and w.max() > 0.5 * bound


def test_seed_none_gives_different_parameters():
    a, b = rnnkit.LSTM(IN, H, backend="numpy"), rnnkit.LSTM(IN, H, backend="numpy")
    assert a.seed is None
    assert not np.array_equal(a.parameters()["weight_hh_l0"], b.parameters()["weight_hh_l0"])


def test_parameters_are_live_and_state_dict_copies():
    m = make_module("rnn_tanh", "numpy")
    x = np.random.default_rng(0).standard_normal((T, B, IN))
    sd = m.state_dict()
    for p in m.parameters().values():
        p *= 0  # an optimiser updating in place
    for p in sd.values():
        assert p.any()  # the copies kept their values
    out, h_n = m.eval()(x)
    assert not out.any() and not h_n.any()  # tanh(0) everywhere: the edit was seen
    # The returned dict is a fresh mapping: replacing an entry does not touch the module.
    params = m.parameters()
    params["weight_ih_l0"] = np.ones((H, IN))
    assert not m.parameters()["weight_ih_l0"].any()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", TORCH_MODES)
def test_every_parameter_change_is_seen(cell, backend):
    """In-place edits of parameters() and load_state_dict both reach the backend, even one
    that caches packed weights between calls."""
    m = make_module(cell, backend, num_layers=2, bidirectional=True).eval()
    x = np.random.default_rng(0).standard_normal((T, B, IN))

    def expected():  # the reference on a fresh module holding the same parameters
        ref = make_module(cell, "numpy", num_layers=2, bidirectional=True, seed=99).eval()
        ref.load_state_dict(m.state_dict())
        return ref(x)[0]

    m(x)
    for p in m.parameters().values():
        p *= -0.5
    np.testing.assert_allclose(m(x)[0], expected(), rtol=1e-12, atol=1e-12)
    m.load_state_dict(
        make_module(cell, "numpy", num_layers=2, bidirectional=True, seed=5).state_dict()
    )
    np.testing.assert_allclose(m(x)[0], expected(), rtol=1e-12, atol=1e-12)
    m.parameters()["weight_hh_l1_reverse"][0, 0] += 1.0  # one element of one weight
    np.testing.assert_allclose(m(x)[0], expected(), rtol=1e-12, atol=1e-12)


def test_load_state_dict_copies_in_place_and_converts():
    m = make_module("lstm", "numpy", dtype="float32", num_layers=2)
    arrays = m.parameters()
    src = make_module("lstm", "numpy", dtype="float64", num_layers=2, seed=9).state_dict()
    version = m._version
    m.load_state_dict(src)
    assert m._version > version  # the native backend's repack signal
    for name, p in m.parameters().items():
        assert p is arrays[name] and p.dtype == np.float32
        np.testing.assert_array_equal(p, src[name].astype(np.float32))
    # Integer arrays are numeric: accepted and converted.
    ints = {k: np.ones(v.shape, dtype=np.int64) for k, v in src.items()}
    m.load_state_dict(ints)
    assert all((p == 1).all() for p in m.parameters().values())


def test_load_state_dict_strict_false():
    m = make_module("gru", "numpy")
    before = m.state_dict()
    new = np.full((3 * H, H), 0.25)
    m.load_state_dict({"weight_hh_l0": new, "not_a_param": np.zeros(2)}, strict=False)
    np.testing.assert_array_equal(m.parameters()["weight_hh_l0"], new)
    np.testing.assert_array_equal(m.parameters()["weight_ih_l0"], before["weight_ih_l0"])
    with pytest.raises(ValueError, match=r"weight_hh_l0.*\(2, 2\).*\(18, 6\)"):
        m.load_state_dict({"weight_hh_l0": np.zeros((2, 2))}, strict=False)


def test_load_state_dict_errors_change_nothing():
    m = make_module("lstm", "numpy", num_layers=2)
    before = m.state_dict()
    good = make_module("lstm", "numpy", num_layers=2, seed=5).state_dict()
    missing = {k: v for k, v in good.items() if k != "bias_hh_l1"}
    with pytest.raises(ValueError, match=r"missing keys \['bias_hh_l1'\]"):
        m.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['weight_hr_l0'\]"):
        m.load_state_dict({**good, "weight_hr_l0": np.zeros((H, H))})
    bad_shape = {**good, "weight_ih_l1": np.zeros((4 * H, IN))}
    with pytest.raises(ValueError, match=r"'weight_ih_l1'.*\(24, 4\).*\(24, 6\)"):
        m.load_state_dict(bad_shape)
    for bad in (np.array(["a"] * 4 * H), np.zeros(4 * H, dtype=bool), np.zeros(4 * H, complex)):
        with pytest.raises(TypeError, match="bias_ih_l0.*numeric"):
            m.load_state_dict({**good, "bias_ih_l0": bad})
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        m.load_state_dict([("weight_ih_l0", good["weight_ih_l0"])])
    for name, p in m.parameters().items():
        np.testing.assert_array_equal(p, before[name], err_msg=name)


# ---------------------------------------------------------------------------------------
# Shapes and input conversions.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["time_major", "batch_first", "unbatched"])
@pytest.mark.parametrize("cell", TORCH_MODES)
def test_shapes_of_every_layout(cell, layout, backend):
    L, D = 2, 2
    m = make_module(
        cell, backend, num_layers=L, bidirectional=True, batch_first=layout == "batch_first"
    )
    x_shape = {"time_major": (T, B, IN), "batch_first": (B, T, IN), "unbatched": (T, IN)}[layout]
    s_shape = (L * D, H) if layout == "unbatched" else (L * D, B, H)
    x = np.random.default_rng(0).standard_normal(x_shape)
    out, state = m(x)
    states = state if cell == "lstm" else (state,)
    assert out.shape == x_shape[:-1] + (D * H,)
    assert all(s.shape == s_shape for s in states)
    dx, dstate = m.backward(np.ones_like(out))
    dstates = dstate if cell == "lstm" else (dstate,)
    assert dx.shape == x_shape
    assert all(s.shape == s_shape for s in dstates)
    assert all(a.dtype == np.float64 for a in (out, dx, *states, *dstates))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lengths_zero_outputs_past_length(backend):
    m = make_module("lstm", backend, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((T, B, IN))
    lengths = [2, T, 4]
    out, _ = m.eval()(x, lengths=lengths)
    for b, n in enumerate(lengths):
        assert not out[n:, b].any() and np.all(out[:n, b] != 0)
    # Any integer array-like works, including a torch tensor and unsigned ints.
    out2, _ = m(x, lengths=torch.tensor(lengths))
    out3, _ = m(x, lengths=np.array(lengths, dtype=np.uint8))
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(out, out3)
    # Unbatched input takes a scalar or a (1,) length.
    one, _ = m(x[:, :1], lengths=[2])
    o1, _ = m(x[:, 0], lengths=2)
    o2, _ = m(x[:, 0], lengths=[2])
    np.testing.assert_array_equal(o1, one[:, 0])
    np.testing.assert_array_equal(o2, one[:, 0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_inputs_of_other_precision_and_odd_strides(backend):
    m = make_module("gru", backend, dtype="float64").eval()
    x = np.random.default_rng(0).standard_normal((T, B, IN))
    ref, _ = m(x)
    # float32 and float16 inputs are converted (float32 input is exactly representable).
    x32 = x.astype(np.float32)
    out32, _ = m(x32)
    ref32, _ = m(x32.astype(np.float64))
    np.testing.assert_array_equal(out32, ref32)
    out16, _ = m(x.astype(np.float16))
    assert out16.dtype == np.float64
    # Views: negative strides, Fortran order, a strided slice, read-only memory.
    rev = x[::-1]
    np.testing.assert_array_equal(m(rev)[0], m(rev.copy())[0])
    np.testing.assert_array_equal(m(np.asfortranarray(x))[0], ref)
    wide = np.zeros((T, B, 2 * IN))
    wide[:, :, ::2] = x
    np.testing.assert_array_equal(m(wide[:, :, ::2])[0], ref)
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(m(ro)[0], ref)
    # Nested lists are arrays too.
    np.testing.assert_array_equal(m(x.tolist())[0], ref)


# ---------------------------------------------------------------------------------------
# Training state, gradient accumulation, dropout.
# ---------------------------------------------------------------------------------------


def test_train_eval_flags():
    m = make_module("rnn_relu", "numpy")
    assert m.training
    assert m.eval() is m and not m.training
    assert m.train() is m and m.training
    assert m.train(False) is m and not m.training


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", TORCH_MODES)
def test_grads_accumulate_and_zero_grad_clears(cell, backend):
    m = make_module(cell, backend, num_layers=2)
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((T, B, IN)), rng.standard_normal((T, B, H))
    live = dict(m.grads)
    m(x)
    m.backward(g)
    once = {k: v.copy() for k, v in m.grads.items()}
    assert all(v.any() for v in once.values())
    m(x)
    m.backward(g)
    for name, grad in m.grads.items():
        # The second backward adds into the gradient inside its products' FMA chains (not
        # once + once after them): equal up to rounding, relative to the largest entry.
        want = 2 * once[name]
        atol = 1e-14 * float(np.max(np.abs(want)))
        np.testing.assert_allclose(grad, want, rtol=1e-14, atol=atol, err_msg=name)
        assert grad is live[name]
    m.zero_grad()
    assert all(not v.any() and v is live[v_name] for v_name, v in m.grads.items())


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_reproducible_from_seed_and_off_in_eval(backend):
    kwargs = {"num_layers": 3, "dropout": 0.5, "bidirectional": True, "seed": 11}
    a, b = make_module("lstm", backend, **kwargs), make_module("lstm", backend, **kwargs)
    plain = make_module("lstm", backend, **{**kwargs, "dropout": 0.0})
    x = np.random.default_rng(0).standard_normal((T, B, IN))
    a1, b1 = a(x)[0], b(x)[0]
    a2, b2 = a(x)[0], b(x)[0]
    np.testing.assert_array_equal(a1, b1)  # same seed, same masks
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)  # fresh masks on each call
    # Masks are drawn after the parameters: dropout does not change the init.
    for name, p in plain.parameters().items():
        np.testing.assert_array_equal(p, a.parameters()[name])
    ref = plain(x)[0]
    assert not np.allclose(a1, ref)  # dropout acts in training mode...
    np.testing.assert_array_equal(a.eval()(x)[0], ref)  # ...and not in eval mode
    np.testing.assert_array_equal(a(x)[0], ref)


def test_dropout_masks_are_inverted_and_between_layers_only():
    m = make_module("gru", "numpy", num_layers=3, dropout=0.25, bidirectional=True)
    masks = m._dropout_masks(50, 40)
    assert len(masks) == 2
    for mask in masks:
        assert mask.shape == (50, 40, 2 * H) and mask.dtype == np.float64
        assert set(np.unique(mask)) == {0.0, 1 / 0.75}
        assert abs((mask == 0).mean() - 0.25) < 0.03  # 24000 draws: sd of the mean ~0.003
    assert m.eval()._dropout_masks(T, B) is None
    assert make_module("gru", "numpy", num_layers=1, dropout=0.25)._dropout_masks(T, B) is None
    assert make_module("gru", "numpy", num_layers=2)._dropout_masks(T, B) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_with_dropout_matches_finite_differences(backend):
    """The gradient of a training forward with dropout, masks held fixed by replaying the
    module's generator (a white-box step: the masks are otherwise private)."""
    m = make_module("lstm", backend, num_layers=2, dropout=0.4, bidirectional=True, seed=3)
    rng = np.random.default_rng(1)
    x, g_out = rng.standard_normal((T, B, IN)), rng.standard_normal((T, B, 2 * H))
    g_h = rng.standard_normal((4, B, H))
    state = m._rng.bit_generator.state

    def loss(x_):
        m._rng.bit_generator.state = state
        out, (h_n, _) = m(x_)
        return np.sum(out * g_out) + np.sum(h_n * g_h)

    loss(x)
    dx, _ = m.backward(g_out, (g_h, None))
    v = rng.standard_normal(x.shape)
    eps = 1e-6
    numeric = (loss(x + eps * v) - loss(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(np.sum(dx * v), numeric, rtol=1e-7)
    w = m.parameters()["weight_ih_l1_reverse"]
    grad_w = m.grads["weight_ih_l1_reverse"].copy()
    dw = rng.standard_normal(w.shape)
    w0 = w.copy()
    w[...] = w0 + eps * dw
    plus = loss(x)
    w[...] = w0 - eps * dw
    minus = loss(x)
    w[...] = w0
    np.testing.assert_allclose(np.sum(grad_w * dw), (plus - minus) / (2 * eps), rtol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_needs_one_training_forward(backend):
    m = make_module("lstm", backend)
    x = np.random.default_rng(0).standard_normal((T, B, IN))
    g = np.ones((T, B, H))
    with pytest.raises(RuntimeError, match="backward needs.*no forward pass"):
        m.backward(g)
    m(x)
    m.backward(g)
    with pytest.raises(RuntimeError, match="backward was already called"):
        m.backward(g)
    m(x)
    m.eval()
    with pytest.raises(RuntimeError, match="eval mode"):
        m.backward(g)
    m(x)  # a forward in eval mode keeps nothing
    with pytest.raises(RuntimeError, match="eval mode"):
        m.backward(g)
    m.train()
    m(x)
    # A rejected gradient leaves the saved forward in place for a correct call.
    with pytest.raises(ValueError, match="grad_out"):
        m.backward(np.ones((T, B, H + 1)))
    m.backward(g)
    assert m._saved is None  # the cache is released
    # A forward that fails drops what an earlier one saved: backward cannot use stale state.
    m(x)
    with pytest.raises(ValueError, match="lengths"):
        m(x, lengths=[0, 1, 1])
    with pytest.raises(RuntimeError, match="did not complete"):
        m.backward(g)


# ---------------------------------------------------------------------------------------
# Argument checks: each message names the argument and the value.
# ---------------------------------------------------------------------------------------

BAD_CONSTRUCTOR_ARGS = [
    ({"input_size": 0}, ValueError, r"input_size must be a positive int \(>= 1\), got 0"),
    ({"input_size": -3}, ValueError, "input_size.*got -3"),
    ({"input_size": 2.0}, TypeError, r"input_size must be a positive int, got 2\.0"),
    ({"input_size": True}, TypeError, "input_size.*got True"),
    ({"hidden_size": "6"}, TypeError, "hidden_size.*got '6'"),
    ({"hidden_size": 0}, ValueError, "hidden_size.*got 0"),
    ({"num_layers": 0}, ValueError, "num_layers.*got 0"),
    ({"num_layers": 1.5}, TypeError, "num_layers.*got 1.5"),
    ({"bias": 1}, TypeError, "bias must be a bool, got 1"),
    ({"batch_first": "yes"}, TypeError, "batch_first must be a bool, got 'yes'"),
    ({"bidirectional": None}, TypeError, "bidirectional must be a bool, got None"),
    ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1.0"),
    ({"dropout": -0.1}, ValueError, "dropout.*got -0.1"),
    ({"dropout": float("nan")}, ValueError, "dropout.*got nan"),
    ({"dropout": "0.1"}, TypeError, "dropout.*got '0.1'"),
    ({"dropout": True}, TypeError, "dropout.*got True"),
    ({"dtype": "float16"}, ValueError, "dtype must be 'float32' or 'float64', got 'float16'"),
    ({"dtype": "int32"}, ValueError, "dtype.*got 'int32'"),
    ({"dtype": None}, ValueError, "dtype.*got None"),
    ({"backend": "cuda"}, ValueError, "backend must be one of 'native', 'numpy', got 'cuda'"),
    ({"seed": -1}, ValueError, "seed must be None or a non-negative int, got -1"),
    ({"seed": 1.5}, TypeError, "seed.*got 1.5"),
    ({"seed": True}, TypeError, "seed.*got True"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD_CONSTRUCTOR_ARGS, ids=lambda a: str(a))
@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_constructor_rejects(cls, kwargs, exc, match):
    args = {"input_size": IN, "hidden_size": H, "backend": "numpy", **kwargs}
    with pytest.raises(exc, match=match):
        cls(**args)


def test_constructor_accepts_numpy_ints_and_dtypes():
    m = rnnkit.LSTM(np.int64(3), np.int32(4), num_layers=np.uint8(2), dtype=np.float64, seed=0)
    assert (m.input_size, m.hidden_size, m.num_layers) == (3, 4, 2)
    assert m.dtype == np.float64 and m.backend == "native"
    assert rnnkit.GRU(3, 4, dtype=np.dtype("float32")).dtype == np.float32


def test_cell_specific_arguments():
    with pytest.raises(ValueError, match="nonlinearity must be one of 'tanh', 'relu'.*'sigmoid'"):
        rnnkit.RNN(IN, H, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="reset_after must be a bool, got 1"):
        rnnkit.GRU(IN, H, reset_after=1)
    assert rnnkit.RNN(IN, H, nonlinearity="relu").mode == "rnn_relu"


def test_absurd_sizes_are_refused_before_allocating():
    with pytest.raises(ValueError, match="parameters.*overflows"):
        rnnkit.LSTM(2**40, 2**40)
    with pytest.raises(MemoryError, match="parameters.*GiB"):
        rnnkit.LSTM(10**5, 10**5)
    # A zero-stride view of 10**10 steps x sequences costs no memory itself, but its output
    # would: refused before anything is copied.
    m = rnnkit.RNN(1, 1000, backend="numpy")
    x = np.broadcast_to(np.zeros((1, 1, 1), np.float32), (10**5, 10**5, 1))
    with pytest.raises(MemoryError, match="forward pass's buffers"):
        m(x)


def test_repr_and_properties():
    m = rnnkit.LSTM(4, 6, num_layers=2, bidirectional=True, dtype="float64", backend="numpy")
    assert repr(m) == (
        "LSTM(4, 6, num_layers=2, bidirectional=True, dtype='float64', backend='numpy')"
    )
    g = rnnkit.GRU(3, 5, reset_after=False, bias=False, dropout=0.5, batch_first=True)
    assert repr(g) == (
        "GRU(3, 5, bias=False, batch_first=True, dropout=0.5, reset_after=False, "
        "dtype='float32', backend='native')"
    )
    assert repr(rnnkit.RNN(2, 3, nonlinearity="relu")).startswith("RNN(2, 3, nonlinearity='relu'")
    assert (g.bias, g.batch_first, g.dropout, g.bidirectional, g.num_directions) == (
        False,
        True,
        0.5,
        False,
        1,
    )
    g.backend = "numpy"
    assert g.backend == "numpy"
    with pytest.raises(ValueError, match="backend.*'gpu'"):
        g.backend = "gpu"


def test_native_backend_is_the_default(monkeypatch):
    m = rnnkit.GRU(IN, H, seed=0)
    assert m.backend == "native"
    x = np.zeros((T, B, IN), np.float32)
    out, h_n = m(x)
    assert out.shape == (T, B, H) and h_n.shape == (1, B, H)
    # Where the native wrapper cannot be imported, the module says so and names the way out.
    monkeypatch.setitem(sys.modules, "rnnkit._native", None)
    monkeypatch.delattr(rnnkit, "_native", raising=False)
    with pytest.raises(RuntimeError, match="backend='native' is not built yet.*backend='numpy'"):
        m(x)


BAD_X = [
    (np.zeros((T, B, IN), np.int64), TypeError, "x must be a real floating-point.*int64"),
    (np.zeros((T, B, IN), bool), TypeError, "x must be.*bool"),
    (np.zeros((T, B, IN), np.complex128), TypeError, "x must be.*complex128"),
    (np.zeros((T, B, IN), object), TypeError, "x must be.*object"),
    (np.full((T, B, IN), "a"), TypeError, "x must be.*<U1"),
    (None, TypeError, "x must be a floating-point array, got None"),
    ([[1.0, 2.0], [3.0]], TypeError, "x must be a floating-point array, got list"),
    (
        np.zeros(IN),
        ValueError,
        r"x must be 3-D \(T, B, I\) or unbatched 2-D .*got shape \(4,\)",
    ),
    (np.zeros((1, T, B, IN)), ValueError, r"x must be 3-D.*\(1, 5, 3, 4\)"),
    (np.zeros((T, B, IN + 1)), ValueError, r"input_size=4.*\(5, 3, 5\)"),
    (np.zeros((0, B, IN)), ValueError, r"at least one time step and one sequence.*\(0, 3, 4\)"),
    (np.zeros((T, 0, IN)), ValueError, r"at least one.*\(5, 0, 4\)"),
    (np.zeros((0, IN)), ValueError, r"at least one.*\(0, 4\)"),
]


@pytest.mark.parametrize("x,exc,match", BAD_X, ids=lambda a: str(getattr(a, "shape", a))[:30])
def test_forward_rejects_x(x, exc, match):
    with pytest.raises(exc, match=match):
        make_module("rnn_tanh", "numpy")(x)


def test_forward_rejects_states():
    lstm, gru = (
        make_module("lstm", "numpy", num_layers=2),
        make_module("gru", "numpy", num_layers=2),
    )
    x = np.zeros((T, B, IN))
    h = np.zeros((2, B, H))
    with pytest.raises(TypeError, match=r"hx for LSTM must be a tuple \(h0, c0\).*ndarray"):
        lstm(x, h)
    with pytest.raises(ValueError, match="hx for LSTM must be a tuple.*length 3"):
        lstm(x, (h, h, h))
    with pytest.raises(TypeError, match="hx for GRU must be an array h0 or None, not a tuple"):
        gru(x, (h, h))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 3, 6\).*got \(1, 3, 6\)"):
        gru(x, h[:1])
    with pytest.raises(ValueError, match=r"c0 must have shape \(2, 3, 6\).*got \(2, 6\)"):
        lstm(x, (h, h[:, 0]))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 6\).*got \(2, 3, 6\)"):
        gru(x[:, 0], h)  # unbatched x takes unbatched states, like torch
    with pytest.raises(TypeError, match="h0 must be a real floating-point.*int64"):
        gru(x, h.astype(np.int64))
    with pytest.raises(TypeError, match="c0 must be.*complex"):
        lstm(x, (None, h.astype(complex)))


BAD_LENGTHS = [
    ([3.0, 2.0, 1.0], TypeError, "lengths must be integers, got dtype float64"),
    ([True, True, True], TypeError, "lengths must be integers, got dtype bool"),
    ([3, 2], ValueError, r"lengths must have shape \(3,\).*got \(2,\)"),
    ([[3, 2, 1]], ValueError, r"lengths must have shape \(3,\).*got \(1, 3\)"),
    ([3, 0, 1], ValueError, r"lengths must be in 1\.\.5.*lengths\[1\] = 0"),
    ([3, 2, 6], ValueError, r"lengths must be in 1\.\.5.*lengths\[2\] = 6"),
    ([-1, 2, 2], ValueError, r"lengths\[0\] = -1"),
    (np.array([3, 2, 2**64 - 1], np.uint64), ValueError, r"lengths\[2\] = 18446744073709551615"),
    ("abc", TypeError, "lengths must be integers"),
]


@pytest.mark.parametrize("lengths,exc,match", BAD_LENGTHS, ids=lambda a: str(a)[:30])
def test_forward_rejects_lengths(lengths, exc, match):
    with pytest.raises(exc, match=match):
        make_module("gru", "numpy")(np.zeros((T, B, IN)), lengths=lengths)


def test_backward_rejects_gradients():
    lstm, rnn = make_module("lstm", "numpy"), make_module("rnn_tanh", "numpy", batch_first=True)
    x = np.zeros((T, B, IN))
    g = np.zeros((T, B, H))
    h = np.zeros((1, B, H))
    cases = [
        (lstm, x, (g, h), TypeError, r"grad_state for LSTM must be a tuple \(grad_h_n, grad_c_n\)"),
        (lstm, x, (g, (h,)), ValueError, "grad_state for LSTM.*length 1"),
        (lstm, x, (g, (h[0], None)), ValueError, r"grad_h_n must have shape \(1, 3, 6\)"),
        (lstm, x, (g, (None, h.astype(int))), TypeError, "grad_c_n must be.*int64"),
        (lstm, x, (g.astype(np.int32),), TypeError, "grad_out must be.*int32"),
        (rnn, x, (g, (h, h)), TypeError, "grad_state for RNN must be an array grad_h_n"),
        # rnn is batch_first: its out and grad_out are (B, T, H), not (T, B, H).
        (rnn, x.transpose(1, 0, 2), (g,), ValueError, r"grad_out must have shape \(3, 5, 6\)"),
    ]
    for module, x_in, args, exc, match in cases:
        module(x_in)
        with pytest.raises(exc, match=match):
            module.backward(*args)


def test_backward_accepts_unbatched_and_batch_first_gradients():
    m = make_module("gru", "numpy", batch_first=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, IN))
    g = rng.standard_normal((B, T, H))
    m(x)
    dx_bf, dh_bf = m.backward(g)
    tm = make_module("gru", "numpy")
    tm(x.transpose(1, 0, 2))
    dx_tm, dh_tm = tm.backward(g.transpose(1, 0, 2))
    np.testing.assert_array_equal(dx_bf, dx_tm.transpose(1, 0, 2))
    np.testing.assert_array_equal(dh_bf, dh_tm)
    m(x[0])
    dx_u, dh_u = m.backward(g[0], dh_tm[:, 0] * 0)
    tm(x[:1].transpose(1, 0, 2))
    dx_1, dh_1 = tm.backward(g[:1].transpose(1, 0, 2))
    np.testing.assert_array_equal(dx_u, dx_1[:, 0])
    np.testing.assert_array_equal(dh_u, dh_1[:, 0])
