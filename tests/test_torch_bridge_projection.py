"""rnnkit.torch.LSTM with proj_size > 0 runs on the core: random configurations (Tensor and
PackedSequence input) against torch.nn.LSTM(proj_size), the custom operators with W_hr in
their weight list (opcheck), the saved cache, and a compiled model."""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit.torch as rt
import torch
from rnnkit.torch import _ops
from test_torch_bridge import assert_close, pair, run_both

pytestmark = pytest.mark.native


@pytest.mark.parametrize("index", range(16))
def test_random_projected_configuration_matches_torch(index):
    rng = np.random.default_rng(3000 + index)
    H = int(rng.integers(2, 9))
    P = int(rng.integers(1, H))
    L, D = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    T, B, I = int(rng.integers(1, 8)), int(rng.integers(1, 5)), int(rng.integers(1, 6))  # noqa: E741
    batch_first = bool(rng.integers(2))
    dtype = [torch.float64, torch.float32][index % 2]
    kwargs = {
        "num_layers": L,
        "bidirectional": D == 2,
        "batch_first": batch_first,
        "bias": bool(rng.integers(2)),
        "dtype": dtype,
        "proj_size": P,
    }
    ref, ours = pair("lstm", I, H, seed=index, **kwargs)
    gen = torch.Generator().manual_seed(index)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=gen, dtype=dtype)
    lengths = None
    if index % 4 >= 2:  # PackedSequence input
        lengths = torch.randint(1, T + 1, (B,), generator=gen)
        lengths[0] = T
    state = []
    if rng.integers(2):
        state = [torch.randn(L * D, B, n, generator=gen, dtype=dtype) for n in (P, H)]
    assert rt.runs_natively(ours, x)
    (want_out, want_grads), (got_out, got_grads) = run_both(
        ref, ours, x, lengths, state, batch_first, index
    )
    assert len(want_grads) == 1 + len(state) + L * D * (5 if kwargs["bias"] else 3)
    for i, (g, w) in enumerate(zip(got_out, want_out)):
        assert_close(g, w, dtype, f"{kwargs} output {i}")
    for i, (g, w) in enumerate(zip(got_grads, want_grads)):
        assert_close(g, w, dtype, f"{kwargs} gradient {i}")


def test_state_shape_errors_are_torch_errors():
    ref, ours = pair("lstm", 3, 5, proj_size=2, num_layers=2)
    x = torch.randn(4, 2, 3)
    for hx in [(torch.zeros(2, 2, 5), torch.zeros(2, 2, 5)), (torch.zeros(2, 2, 2),) * 2]:
        with pytest.raises(RuntimeError) as want:
            ref(x, hx)
        with pytest.raises(RuntimeError) as got:
            ours(x, hx)
        assert str(got.value) == str(want.value)


def projected_operator_args(bias: bool):
    """Arguments of rnnkit::stack_forward for a 2-layer bidirectional LSTM with P = 3."""
    gen = torch.Generator().manual_seed(0)
    T, B, I, H, P = 4, 3, 5, 6, 3  # noqa: E741

    def r(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)

    weights = []  # torch's flat order per layer and direction: w_ih, w_hh[, b_ih, b_hh], w_hr
    for layer in range(2):
        for _direction in range(2):
            weights += [r(4 * H, I if layer == 0 else 2 * P), r(4 * H, P)]
            weights += [r(4 * H), r(4 * H)] if bias else []
            weights.append(r(P, H))
    masks = [torch.bernoulli(torch.full((T, B, 2 * P), 0.5, dtype=torch.float64)) * 2]
    lengths = torch.tensor([4, 1, 3])
    return ("lstm", r(T, B, I), r(4, B, P), r(4, B, H), weights, lengths, masks, 2, bias, True)


@pytest.mark.parametrize("bias", [True, False])
def test_opcheck_with_projection(bias):
    args = projected_operator_args(bias)
    torch.library.opcheck(torch.ops.rnnkit.stack_forward.default, args)
    out, h_n, c_n, handle = torch.ops.rnnkit.stack_forward(*args)
    assert out.shape == (4, 3, 6) and h_n.shape == (4, 3, 3) and c_n.shape == (4, 3, 6)
    mode, x, h0, c0, weights, lengths, masks = args[:7]
    backward_args = (
        mode,
        handle,
        x.detach(),
        h0.detach(),
        c0.detach(),
        [w.detach() for w in weights],
        lengths,
        masks,
        2,
        bias,
        torch.randn_like(out),
        torch.randn_like(h_n),
        torch.randn_like(c_n),
    )
    torch.library.opcheck(torch.ops.rnnkit.stack_backward.default, backward_args)
    dweights = torch.ops.rnnkit.stack_backward(*backward_args)[3]
    assert [g.shape for g in dweights] == [w.shape for w in weights]


def test_compiled_projected_model_fullgraph_matches_eager():
    torch.manual_seed(0)
    ref, ours = pair("lstm", 4, 6, num_layers=2, proj_size=3, batch_first=True)
    compiled = torch.compile(ours, fullgraph=True)
    x = torch.randn(2, 5, 4, requires_grad=True)
    before = _ops.recomputed_forwards
    out, (h_n, c_n) = compiled(x)
    (out.sum() + h_n.pow(2).sum() + c_n.sum()).backward()
    assert _ops.recomputed_forwards == before  # the compiled backward found its cache
    got_grad = x.grad.clone()
    x.grad = None
    want_out, (want_h_n, want_c_n) = ref(x)
    (want_out.sum() + want_h_n.pow(2).sum() + want_c_n.sum()).backward()
    for got, want in [(out, want_out), (h_n, want_h_n), (c_n, want_c_n), (got_grad, x.grad)]:
        torch.testing.assert_close(got, want, rtol=2e-4, atol=1e-6)
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=2e-4, atol=1e-6)
