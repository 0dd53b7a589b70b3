"""What the bridge saves around the core: the weight gradients written by the core into
torch-owned memory, with the same bits as the core's own fresh arrays."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnkit.torch as rt  # noqa: E402
from rnnkit import _core, _native  # noqa: E402

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _core_problem(dtype, bias):
    """A 2-layer LSTM's weights and a training forward's cache, straight on the core."""
    rng = np.random.default_rng(3)
    T, B, n_in, H, L = 6, 3, 5, 4, 2
    shapes = [[(4 * H, n_in if k == 0 else H), (4 * H, H), (4 * H,), (4 * H,)] for k in range(L)]
    weights = [
        tuple(
            rng.standard_normal(s).astype(dtype) if j < 2 or bias else None
            for j, s in enumerate(cell)
        )
        for cell in shapes
    ]
    x = rng.standard_normal((T, B, n_in)).astype(dtype)
    h0 = rng.standard_normal((L, B, H)).astype(dtype)
    cache = _native.stack_forward("lstm", x, h0, h0, weights, None, None, True, num_directions=1)[3]
    dout = rng.standard_normal((T, B, H)).astype(dtype)
    return weights, cache, dout, h0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_written_into_given_arrays_equal_fresh_ones(dtype, bias):
    weights, cache, dout, h0 = _core_problem(dtype, bias)
    fresh = _core.stack_backward("lstm", cache, dout, h0, h0)
    # NaN-filled: writing over them must not read what they held.
    given = [
        tuple(None if w is None else np.full_like(w, np.nan) for w in cell) for cell in weights
    ]
    written = _core.stack_backward("lstm", cache, dout, h0, h0, given, add_into_grads=False)
    for a, b in zip(fresh[:3], written[:3]):
        assert a.tobytes() == b.tobytes()
    for cell_fresh, cell_given, cell_returned in zip(fresh[3], given, written[3]):
        for f, g, r in zip(cell_fresh, cell_given, cell_returned):
            assert (f is None) == (g is None) == (r is None)
            if f is not None:
                assert r is g
                assert f.tobytes() == g.tobytes()
    # The default still adds into the given arrays (the sums may round differently).
    again = _core.stack_backward("lstm", cache, dout, h0, h0, given)
    for cell_fresh, cell_given in zip(fresh[3], again[3]):
        for f, g in zip(cell_fresh, cell_given):
            if f is not None:
                np.testing.assert_allclose(g, f + f, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bridge_weight_gradients_are_the_cores_bits_in_torch_memory(dtype):
    torch.manual_seed(0)
    lstm = rt.LSTM(5, 4, num_layers=2, dtype=dtype)
    x = torch.randn(6, 3, 5, dtype=dtype)
    dout = torch.randn(6, 3, 4, dtype=dtype)
    out = lstm(x)[0]
    out.backward(dout)
    zeros = np.zeros((2, 3, 4), dtype=x.numpy().dtype)
    weights = [tuple(getattr(lstm, f"{n}_l{k}").detach().numpy() for n in NAMES) for k in range(2)]
    cache = _native.stack_forward(
        "lstm", x.numpy(), zeros, zeros, weights, None, None, True, num_directions=1
    )[3]
    expected = _native.stack_backward("lstm", cache, dout.numpy(), zeros, zeros)[3]
    for k in range(2):
        for n, e in zip(NAMES, expected[k]):
            grad = getattr(lstm, f"{n}_l{k}").grad
            assert grad.numpy().tobytes() == e.tobytes()
            assert grad.is_contiguous() and grad.dtype == dtype
