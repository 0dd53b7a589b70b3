"""The NumPy reference against torch.nn.RNN / LSTM / GRU (random weights copied in):
outputs, final states and every gradient, in float64 to 1e-10 and in float32 to 1e-5.

Torch's GRU is reset_after only; "gru_reset_before" is checked here against a direct
per-sample loop of its equation, and its gradients by finite differences
(test_reference_fd.py). Dropout cannot be matched bitwise with torch; it is covered by
finite differences too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TORCH_MODES, make_weights, param_names, torch_module
from rnnkit.reference import MODES, gate_count, stack_backward, stack_forward

# (T, B, I, H, L, D, bias, lengths)
CONFIGS = [
    (1, 1, 1, 1, 1, 1, True, None),
    (4, 3, 2, 1, 1, 1, True, None),
    (1, 4, 3, 2, 2, 2, True, [1, 1, 1, 1]),
    (5, 1, 3, 4, 1, 2, True, [3]),
    (6, 4, 3, 5, 3, 1, True, None),
    (5, 4, 2, 3, 3, 2, True, [5, 2, 1, 4]),
    (4, 3, 3, 2, 2, 2, False, [2, 4, 3]),
    (3, 2, 2, 3, 1, 1, False, None),
]


def torch_forward_backward(mode, x, h0, c0, weights, lengths, num_directions, gout, gh, gc):
    """Torch's out, h_n, c_n and the gradients of sum(out*gout) + sum(h_n*gh) + sum(c_n*gc)
    w.r.t. x, h0, c0 and every parameter (None for absent ones), as NumPy arrays."""
    module = torch_module(mode, weights, num_directions)
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    c0t = None if c0 is None else torch.tensor(c0, requires_grad=True)
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), enforce_sorted=False
        )
    if c0t is None:
        out, h_n = module(inp, h0t)
        c_n = None
    else:
        out, (h_n, c_n) = module(inp, (h0t, c0t))
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
    loss = (out * torch.from_numpy(gout)).sum() + (h_n * torch.from_numpy(gh)).sum()
    if c_n is not None:
        loss = loss + (c_n * torch.from_numpy(gc)).sum()
    loss.backward()
    num_layers = len(weights) // num_directions
    bias = weights[0][2] is not None
    dweights = [
        tuple(None if n is None else getattr(module, n).grad.numpy() for n in names)
        for names in param_names(num_layers, num_directions, bias)
    ]
    numpy = [t if t is None else t.detach().numpy() for t in (out, h_n, c_n)]
    grads = [None if t is None else t.grad.numpy() for t in (xt, h0t, c0t)]
    return (*numpy, *grads, dweights)


def random_problem(mode, config, dtype, seed):
    steps, batch, inp, hidden, layers, dirs, bias, lengths = config
    rng = np.random.default_rng(seed)
    weights = make_weights(mode, inp, hidden, layers, dirs, bias, dtype, rng)
    states = (layers * dirs, batch, hidden)
    x = rng.standard_normal((steps, batch, inp)).astype(dtype)
    h0 = rng.standard_normal(states).astype(dtype)
    c0 = rng.standard_normal(states).astype(dtype) if mode == "lstm" else None
    gout = rng.standard_normal((steps, batch, dirs * hidden)).astype(dtype)
    gh = rng.standard_normal(states).astype(dtype)
    gc = rng.standard_normal(states).astype(dtype) if mode == "lstm" else None
    lengths = None if lengths is None else np.array(lengths, dtype=np.int64)
    return x, h0, c0, weights, lengths, gout, gh, gc


def check_against_torch(mode, config, dtype, seed, rtol, atol):
    x, h0, c0, weights, lengths, gout, gh, gc = random_problem(mode, config, dtype, seed)
    dirs = config[5]
    out, h_n, c_n, cache = stack_forward(
        mode, x, h0, c0, weights, lengths, None, True, num_directions=dirs
    )
    dx, dh0, dc0, dweights = stack_backward(mode, cache, gout, gh, gc)
    expected = torch_forward_backward(mode, x, h0, c0, weights, lengths, dirs, gout, gh, gc)
    got = (out, h_n, c_n, dx, dh0, dc0)
    for name, a, b in zip(("out", "h_n", "c_n", "dx", "dh0", "dc0"), got, expected[:6]):
        if b is None:
            assert a is None, name
            continue
        assert a.dtype == dtype, name
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)
    bias = config[6]
    names = param_names(config[4], dirs, bias)
    for entry, ref, entry_names in zip(dweights, expected[6], names):
        for a, b, name in zip(entry, ref, entry_names):
            if name is None:
                assert a is None and b is None
                continue
            assert a.dtype == dtype, name
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)
    if lengths is not None:  # exactly zero past each sequence's length
        past = np.arange(x.shape[0])[:, None] >= lengths[None, :]
        assert np.all(out[past] == 0) and np.all(dx[past] == 0)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "T{}B{}I{}H{}L{}D{}b{}len{}".format(*c))
@pytest.mark.parametrize("mode", TORCH_MODES)
def test_matches_torch_float64(mode, config):
    check_against_torch(mode, config, np.float64, seed=1, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", TORCH_MODES)
def test_matches_torch_float32(mode):
    # float32 through and through: results and gradients keep the dtype; rounding only.
    config = (5, 4, 3, 6, 2, 2, True, [5, 1, 3, 4])
    check_against_torch(mode, config, np.float32, seed=2, rtol=1e-4, atol=1e-5)


def test_mode_table():
    assert MODES == ("rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_before")
    assert [gate_count(m) for m in MODES] == [1, 1, 4, 3, 3]
    with pytest.raises(ValueError, match="mode"):
        gate_count("transformer")


def test_eval_mode_keeps_no_cache():
    x, h0, c0, weights, lengths, *_ = random_problem("lstm", CONFIGS[5], np.float64, 3)
    result = stack_forward("lstm", x, h0, c0, weights, lengths, None, False, num_directions=2)
    trained = stack_forward("lstm", x, h0, c0, weights, lengths, None, True, num_directions=2)
    assert result[3] is None
    for a, b in zip(result[:3], trained[:3]):
        np.testing.assert_array_equal(a, b)


def test_backward_rejects_wrong_cache_or_mode():
    x, h0, c0, weights, lengths, gout, gh, gc = random_problem("gru", CONFIGS[1], np.float64, 4)
    *_, cache = stack_forward("gru", x, h0, c0, weights, lengths, None, True, num_directions=1)
    with pytest.raises(ValueError, match="mode"):
        stack_backward("gru_reset_before", cache, gout, gh, None)
    with pytest.raises(TypeError, match="cache"):
        stack_backward("gru", None, gout, gh, None)


# --- gru_reset_before: a direct per-sample loop of its equation, independent of the cells ---


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def naive_gru_reset_before(x, h0, weights, lengths, dirs):
    """out (T, B, D*H) and h_n by looping over layers, directions, samples and steps."""
    steps, batch, _ = x.shape
    hidden = h0.shape[2]
    lengths = [steps] * batch if lengths is None else list(lengths)
    layer_in = x
    h_n = np.zeros_like(h0)
    for k in range(len(weights) // dirs):
        out = np.zeros((steps, batch, dirs * hidden))
        for d in range(dirs):
            w_ih, w_hh, b_ih, b_hh = weights[k * dirs + d]
            b_ih = np.zeros(3 * hidden) if b_ih is None else b_ih
            b_hh = np.zeros(3 * hidden) if b_hh is None else b_hh
            w_ir, w_iz, w_in = w_ih[:hidden], w_ih[hidden : 2 * hidden], w_ih[2 * hidden :]
            w_hr, w_hz, w_hn = w_hh[:hidden], w_hh[hidden : 2 * hidden], w_hh[2 * hidden :]
            b_ir, b_iz, b_in = b_ih[:hidden], b_ih[hidden : 2 * hidden], b_ih[2 * hidden :]
            b_hr, b_hz, b_hn = b_hh[:hidden], b_hh[hidden : 2 * hidden], b_hh[2 * hidden :]
            for b in range(batch):
                h = h0[k * dirs + d, b]
                order = range(lengths[b]) if d == 0 else range(lengths[b] - 1, -1, -1)
                for t in order:
                    xt = layer_in[t, b]
                    r = _sig(w_ir @ xt + b_ir + w_hr @ h + b_hr)
                    z = _sig(w_iz @ xt + b_iz + w_hz @ h + b_hz)
                    n = np.tanh(w_in @ xt + b_in + w_hn @ (r * h) + b_hn)
                    h = (1 - z) * n + z * h
                    out[t, b, d * hidden : (d + 1) * hidden] = h
                h_n[k * dirs + d, b] = h
        layer_in = out
    return layer_in, h_n


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "T{}B{}I{}H{}L{}D{}b{}len{}".format(*c))
def test_gru_reset_before_matches_direct_loop(config):
    x, h0, _, weights, lengths, *_ = random_problem("gru_reset_before", config, np.float64, 5)
    out, h_n, c_n, _ = stack_forward(
        "gru_reset_before", x, h0, None, weights, lengths, None, False, num_directions=config[5]
    )
    want_out, want_h_n = naive_gru_reset_before(x, h0, weights, lengths, config[5])
    assert c_n is None
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_n, want_h_n, rtol=1e-12, atol=1e-12)


def test_gru_reset_before_differs_from_reset_after():
    # Guards against the two GRU modes silently sharing one equation.
    x, h0, _, weights, lengths, *_ = random_problem("gru", CONFIGS[4], np.float64, 6)
    a = stack_forward("gru", x, h0, None, weights, lengths, None, False, num_directions=1)
    b = stack_forward(
        "gru_reset_before", x, h0, None, weights, lengths, None, False, num_directions=1
    )
    assert np.abs(a[0] - b[0]).max() > 1e-3
