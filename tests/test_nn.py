"""rnnkit.nn (Embedding, Linear, cross-entropy) vs central differences and vs torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rnnkit import nn


def central_diff(f, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d arr by central differences, perturbing ``arr`` in place (float64)."""
    grad = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def to_torch_state(layer) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in layer.state_dict().items()}


# ---------------------------------------------------------------- Embedding


def test_embedding_init_like_torch():
    emb = nn.Embedding(7, 5, padding_idx=-2, seed=0)
    assert emb.padding_idx == 5
    w = emb.parameters()["weight"]
    assert w.shape == (7, 5) and w.dtype == np.float32
    np.testing.assert_array_equal(w[5], 0.0)
    np.testing.assert_array_equal(
        w, nn.Embedding(7, 5, padding_idx=5, seed=0).parameters()["weight"]
    )
    # N(0, 1) like torch: moments of a bigger table (20000 draws: std error of the mean 0.007)
    big = nn.Embedding(400, 50, seed=1, dtype="float64").parameters()["weight"]
    assert abs(big.mean()) < 0.03 and abs(big.std() - 1.0) < 0.03


def test_embedding_matches_torch_forward_backward():
    rng = np.random.default_rng(0)
    emb = nn.Embedding(9, 4, padding_idx=0, dtype="float64", seed=3)
    temb = torch.nn.Embedding(9, 4, padding_idx=0, dtype=torch.float64)
    temb.load_state_dict(to_torch_state(emb))
    idx = rng.integers(0, 9, size=(6, 3))
    idx[0, 0] = idx[1, 1] = 0  # padding entries
    idx[2, :] = 4  # a repeated index: its gradients must add up
    out = emb(idx)
    tout = temb(torch.from_numpy(idx))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    g = rng.standard_normal(out.shape)
    assert emb.backward(g) is None
    tout.backward(torch.from_numpy(g))
    np.testing.assert_allclose(
        emb.grads["weight"], temb.weight.grad.numpy(), rtol=1e-14, atol=1e-14
    )
    np.testing.assert_array_equal(emb.grads["weight"][0], 0.0)


@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 2)])
def test_embedding_grad_central_differences(shape):
    rng = np.random.default_rng(1)
    emb = nn.Embedding(6, 3, dtype="float64", seed=0)
    idx = rng.integers(0, 6, size=shape)
    r = rng.standard_normal(shape + (3,))
    emb(idx)
    emb.backward(r)
    w = emb.parameters()["weight"]
    num = central_diff(lambda: float((w[idx] * r).sum()), w)
    np.testing.assert_allclose(emb.grads["weight"], num, rtol=1e-7, atol=1e-9)


def test_embedding_grads_accumulate_and_zero():
    emb = nn.Embedding(4, 2, padding_idx=3, dtype="float64", seed=0)
    idx = np.array([0, 1, 1, 3])
    for _ in range(2):
        emb(idx)
        emb.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(emb.grads["weight"], [[2, 2], [4, 4], [0, 0], [0, 0]])
    emb.zero_grad()
    np.testing.assert_array_equal(emb.grads["weight"], 0.0)


def test_embedding_bad_input():
    emb = nn.Embedding(5, 2)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\], got values in \[0, 5\]"):
        emb(np.array([0, 5]))
    with pytest.raises(ValueError, match="indices must lie in"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match="indices must be an integer array, got dtype float64"):
        emb(np.array([1.0]))
    with pytest.raises(TypeError, match="indices must be an integer array, got dtype bool"):
        emb(np.array([True]))
    emb(np.array([[1, 2]]))
    with pytest.raises(ValueError, match=r"grad_out must have shape \(1, 2, 2\), got \(2, 2\)"):
        emb.backward(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="padding_idx must lie in"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="num_embeddings must be >= 1, got 0"):
        nn.Embedding(0, 2)
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        nn.Embedding(3, 2, dtype="float16")


# ---------------------------------------------------------------- Linear


def test_linear_init_bounds_and_seed():
    lin = nn.Linear(16, 300, seed=5)
    p = lin.parameters()
    assert p["weight"].shape == (300, 16) and p["bias"].shape == (300,)
    assert p["weight"].dtype == np.float32
    bound = 1 / np.sqrt(16)
    for v in p.values():
        assert np.all(np.abs(v) <= bound) and np.abs(v).max() > 0.9 * bound
    np.testing.assert_array_equal(p["weight"], nn.Linear(16, 300, seed=5).parameters()["weight"])
    assert list(nn.Linear(3, 2, bias=False).parameters()) == ["weight"]


@pytest.mark.parametrize("lead", [(), (4,), (3, 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(lead, bias):
    rng = np.random.default_rng(2)
    lin = nn.Linear(5, 3, bias=bias, dtype="float64", seed=1)
    tl = torch.nn.Linear(5, 3, bias=bias, dtype=torch.float64)
    tl.load_state_dict(to_torch_state(lin))
    x = rng.standard_normal(lead + (5,))
    g = rng.standard_normal(lead + (3,))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tl(tx)
    ty.backward(torch.from_numpy(g))
    y = lin(x)
    dx = lin.backward(g)
    tol = dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(lin.grads["weight"], tl.weight.grad.numpy(), **tol)
    if bias:
        np.testing.assert_allclose(lin.grads["bias"], tl.bias.grad.numpy(), **tol)


def test_linear_float32_and_torch_state_dict():
    rng = np.random.default_rng(3)
    tl = torch.nn.Linear(8, 6)
    lin = nn.Linear(8, 6, seed=2)
    lin.load_state_dict(tl.state_dict())  # torch tensors load unchanged
    x = rng.standard_normal((4, 8))  # float64 input is converted to the layer's float32
    y = lin(x)
    assert y.dtype == np.float32
    ty = tl(torch.from_numpy(x.astype(np.float32))).detach().numpy()
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-6)


def test_linear_central_differences():
    rng = np.random.default_rng(4)
    lin = nn.Linear(4, 3, dtype="float64", seed=0)
    x = rng.standard_normal((2, 3, 4))
    r = rng.standard_normal((2, 3, 3))
    lin(x)
    dx = lin.backward(r)
    lin.eval()  # the probes below must not overwrite anything

    def loss() -> float:
        return float((lin(x) * r).sum())

    for name, p in lin.parameters().items():
        np.testing.assert_allclose(lin.grads[name], central_diff(loss, p), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dx, central_diff(loss, x), rtol=1e-7, atol=1e-9)


def test_linear_bad_input_and_modes():
    lin = nn.Linear(4, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\), got \(3, 5\)"):
        lin(np.zeros((3, 5), np.float32))
    with pytest.raises(TypeError, match="x must be a floating-point array, got dtype int64"):
        lin(np.zeros((3, 4), np.int64))
    with pytest.raises(TypeError, match="got dtype complex128"):
        lin(np.zeros((3, 4), complex))
    with pytest.raises(RuntimeError, match="needs a forward pass in training mode"):
        lin.backward(np.zeros((3, 2), np.float32))
    lin.eval()
    lin(np.zeros((3, 4), np.float32))
    with pytest.raises(RuntimeError, match="needs a forward pass in training mode"):
        lin.backward(np.zeros((3, 2), np.float32))
    lin.train()
    lin(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"grad_out must have shape \(3, 2\), got \(2, 3\)"):
        lin.backward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"'weight' has shape \(4, 2\), expected \(2, 4\)"):
        lin.load_state_dict({"weight": np.zeros((4, 2)), "bias": np.zeros(2)})
    with pytest.raises(ValueError, match=r"missing keys \['bias'\]"):
        lin.load_state_dict({"weight": np.zeros((2, 4))})


def test_parameters_are_live_and_state_dict_copies():
    lin = nn.Linear(3, 2, seed=0)
    p = lin.parameters()["weight"]
    assert p is lin.parameters()["weight"]
    sd = lin.state_dict()
    sd["weight"] += 1
    assert not np.array_equal(sd["weight"], p)
    lin.load_state_dict(sd)
    assert lin.parameters()["weight"] is p  # loaded in place: optimisers keep their arrays
    np.testing.assert_array_equal(p, sd["weight"])


# ---------------------------------------------------------------- cross-entropy


def test_cross_entropy_matches_torch_with_ignore_index():
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((7, 3, 6)) * 3  # (T, B, C)
    targets = rng.integers(0, 6, size=(7, 3))
    targets[1, :] = -100
    targets[4, 2] = -100
    ce = nn.CrossEntropyLoss()
    loss = ce(logits, targets)
    dlogits = ce.backward()
    tz = torch.from_numpy(logits).requires_grad_(True)
    tloss = F.cross_entropy(tz.reshape(-1, 6), torch.from_numpy(targets).reshape(-1))
    tloss.backward()
    np.testing.assert_allclose(loss, tloss.item(), rtol=1e-13)
    np.testing.assert_allclose(dlogits, tz.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_cross_entropy_custom_ignore_index_sum_and_mask():
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((10, 4))
    targets = rng.integers(0, 4, size=10)
    targets[[2, 7]] = 0
    t = torch.from_numpy(targets)
    tz = torch.from_numpy(logits)
    ref = F.cross_entropy(tz, t, ignore_index=0).item()
    np.testing.assert_allclose(
        nn.CrossEntropyLoss(ignore_index=0)(logits, targets), ref, rtol=1e-13
    )
    # a mask that drops the same entries gives the same loss and gradient
    mask = targets != 0
    a, b = nn.CrossEntropyLoss(ignore_index=None), nn.CrossEntropyLoss(ignore_index=0)
    np.testing.assert_allclose(a(logits, targets, mask=mask), ref, rtol=1e-13)
    b(logits, targets)
    np.testing.assert_allclose(a.backward(2.0), 2.0 * b.backward(), rtol=1e-13)
    ref_sum = F.cross_entropy(tz, t, reduction="sum").item()
    np.testing.assert_allclose(
        nn.CrossEntropyLoss(reduction="sum")(logits, targets), ref_sum, rtol=1e-13
    )


def test_cross_entropy_central_differences():
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((3, 4, 5))
    targets = rng.integers(0, 5, size=(3, 4))
    mask = rng.random((3, 4)) > 0.3
    ce = nn.CrossEntropyLoss()
    ce(logits, targets, mask=mask)
    d = ce.backward()
    num = central_diff(lambda: nn.cross_entropy(logits, targets, mask=mask), logits)
    np.testing.assert_allclose(d, num, rtol=1e-7, atol=1e-10)


def test_cross_entropy_stable_and_edge_cases():
    ce = nn.CrossEntropyLoss()
    huge = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], np.float32)
    loss = ce(huge, np.array([0, 0]))
    np.testing.assert_allclose(loss, 1e4, rtol=1e-6)  # (0 + 2e4) / 2
    d = ce.backward()
    assert np.all(np.isfinite(d)) and d.dtype == np.float32
    ce = nn.CrossEntropyLoss()
    assert np.isnan(ce(np.zeros((2, 3)), np.array([-100, -100])))  # as torch: nothing counted
    np.testing.assert_array_equal(ce.backward(), 0.0)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\].*got values in \[0, 3\]"):
        ce(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"targets must have shape \(2,\), got \(3,\)"):
        ce(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="targets must be an integer array"):
        ce(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="logits must be a floating-point array"):
        ce(np.zeros((2, 3), int), np.array([0, 1]))
    with pytest.raises(TypeError, match="mask must be a bool array"):
        ce(np.zeros((2, 3)), np.array([0, 1]), mask=np.array([1, 0]))
    with pytest.raises(RuntimeError, match="needs a forward pass"):
        nn.CrossEntropyLoss().backward()


def test_log_softmax_matches_torch():
    x = np.random.default_rng(8).standard_normal((4, 9)) * 50
    np.testing.assert_allclose(
        nn.log_softmax(x),
        torch.log_softmax(torch.from_numpy(x), -1).numpy(),
        rtol=1e-13,
        atol=1e-12,
    )
    np.testing.assert_allclose(nn.softmax(x).sum(-1), 1.0, rtol=1e-13)
