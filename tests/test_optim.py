"""rnnkit.optim (SGD, Adam), gradient clipping and checkpoints, vs torch."""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit
import torch
import torch.nn.functional as F
from rnnkit import nn, optim
from rnnkit.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.clip import clip_grad_norm, clip_grad_value

pytestmark = pytest.mark.native

SHAPES = {"a": (4, 3), "b": (5,), "c": (2, 2, 2)}


def make_problem(dtype, seed=0):
    """Random parameters as (params, grads) dicts plus matching torch Parameters."""
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    grads = {k: np.zeros(s, dtype) for k, s in SHAPES.items()}
    tparams = [torch.nn.Parameter(torch.from_numpy(params[k].copy())) for k in SHAPES]
    return params, grads, tparams


def run_both(make_opt, make_topt, dtype, steps=6):
    """Apply the same random gradient sequence to both; return the parameter pairs."""
    params, grads, tparams = make_problem(dtype)
    opt = make_opt((params, grads))
    topt = make_topt(tparams)
    rng = np.random.default_rng(1)
    live = {k: v for k, v in params.items()}
    for _ in range(steps):
        for (k, s), tp in zip(SHAPES.items(), tparams):
            g = rng.standard_normal(s).astype(dtype)
            grads[k][...] = g
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for k in SHAPES:
        assert params[k] is live[k]  # updated in place
    return [(params[k], tp.detach().numpy()) for k, tp in zip(SHAPES, tparams)]


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    dict(lr=0.02, momentum=0.5, dampening=0.3, weight_decay=0.1),
]


@pytest.mark.parametrize("cfg", SGD_CONFIGS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
def test_sgd_matches_torch(cfg, dtype, tol):
    pairs = run_both(lambda p: optim.SGD(p, **cfg), lambda tp: torch.optim.SGD(tp, **cfg), dtype)
    for mine, ref in pairs:
        assert mine.dtype == dtype
        np.testing.assert_allclose(mine, ref, rtol=tol, atol=tol)


ADAM_CONFIGS = [
    dict(lr=1e-3),
    dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
]


@pytest.mark.parametrize("cfg", ADAM_CONFIGS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_adam_matches_torch(cfg, dtype, tol):
    pairs = run_both(
        lambda p: optim.Adam(p, **cfg), lambda tp: torch.optim.Adam(tp, **cfg), dtype, steps=8
    )
    for mine, ref in pairs:
        np.testing.assert_allclose(mine, ref, rtol=tol, atol=tol)


def test_optimizer_over_modules_updates_live_arrays_and_zero_grad():
    emb = nn.Embedding(5, 3, seed=0)
    head = nn.Linear(3, 2, seed=1)
    opt = optim.Adam([emb, head], lr=0.1)
    w = head.parameters()["weight"]
    table_before = emb.parameters()["weight"].copy()
    y = head(emb(np.array([0, 1, 1])))  # (3, 2)
    emb.backward(head.backward(np.ones_like(y)))
    opt.step()
    assert head.parameters()["weight"] is w
    table = emb.parameters()["weight"]
    # Adam's first step moves every entry with a nonzero gradient by lr (sign of the grad)
    np.testing.assert_allclose(np.abs(table[:2] - table_before[:2]), 0.1, rtol=1e-4)
    np.testing.assert_array_equal(table[2:], table_before[2:])  # rows never looked up
    opt.zero_grad()
    for m in (emb, head):
        for g in m.grads.values():
            np.testing.assert_array_equal(g, 0.0)


def test_optimizer_state_dict_resumes_exactly():
    def fresh():
        params, grads, _ = make_problem(np.float64)
        return params, grads

    rng = np.random.default_rng(2)
    seq = [{k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(5)]

    for cls, kw in [(optim.Adam, dict(lr=0.01)), (optim.SGD, dict(lr=0.1, momentum=0.9))]:
        p1, g1 = fresh()
        o1 = cls((p1, g1), **kw)
        for step in seq:
            for k in SHAPES:
                g1[k][...] = step[k]
            o1.step()
        p2, g2 = fresh()
        o2 = cls((p2, g2), **kw)
        for i, step in enumerate(seq):
            if i == 3:  # restart from a saved state, as a resumed run would
                saved, saved_params = o2.state_dict(), {k: v.copy() for k, v in p2.items()}
                p2, g2 = saved_params, {k: np.zeros(s) for k, s in SHAPES.items()}
                o2 = cls((p2, g2), lr=123.0)
                o2.load_state_dict(saved)
                assert o2.lr == kw["lr"]
            for k in SHAPES:
                g2[k][...] = step[k]
            o2.step()
        for k in SHAPES:
            np.testing.assert_array_equal(p1[k], p2[k])


def test_optimizer_bad_arguments():
    params, grads, _ = make_problem(np.float32)
    with pytest.raises(ValueError, match="lr must be >= 0, got -1"):
        optim.SGD((params, grads), lr=-1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        optim.SGD((params, grads), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas\[1\] must lie in \[0, 1\), got 1.0"):
        optim.Adam((params, grads), betas=(0.9, 1.0))
    with pytest.raises(TypeError, match=r"params\[1\] must be a module"):
        optim.Adam([(params, grads), "lstm"])
    with pytest.raises(ValueError, match="empty list"):
        optim.Adam([])
    bad = dict(grads, a=np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"gradient 'a' has shape \(3, 4\), expected \(4, 3\)"):
        optim.SGD((params, bad), lr=0.1).step()
    with pytest.raises(ValueError, match="optimizer state is for 'SGD'"):
        optim.Adam((params, grads)).load_state_dict(optim.SGD((params, grads), lr=1).state_dict())


# ---------------------------------------------------------------- clipping


def torch_grads(grads):
    tps = []
    for g in grads.values():
        tp = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64))
        tp.grad = torch.from_numpy(g.copy())
        tps.append(tp)
    return tps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    params, grads, _ = make_problem(np.float64)
    rng = np.random.default_rng(3)
    for g in grads.values():
        g[...] = rng.standard_normal(g.shape)
    tps = torch_grads(grads)
    total = clip_grad_norm((params, grads), max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, ttotal.item(), rtol=1e-13)
    for g, tp in zip(grads.values(), tps):
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-13, atol=1e-15)
    after = clip_grad_norm((params, grads), 1e9, norm_type=norm_type)
    assert after <= max(max_norm, total) * (1 + 1e-12)


def test_clip_grad_norm_over_modules_float32():
    head = nn.Linear(6, 4, seed=0)
    emb = nn.Embedding(5, 6, seed=1)
    y = head(emb(np.arange(5)))
    emb.backward(head.backward(100 * np.ones_like(y)))
    every = [*emb.grads.values(), *head.grads.values()]
    expected = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in every))
    total = clip_grad_norm([emb, head], 1.0)
    assert total > 1.0
    np.testing.assert_allclose(total, expected, rtol=1e-12)
    after = clip_grad_norm([emb, head], float("inf"))
    np.testing.assert_allclose(after, 1.0, rtol=1e-5)
    with pytest.raises(FloatingPointError, match="not finite"):
        head.grads["bias"][0] = np.nan
        clip_grad_norm(head, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm(head, -1.0)


def test_clip_grad_value_matches_torch():
    params, grads, _ = make_problem(np.float64)
    for g in grads.values():
        g[...] = np.linspace(-3, 3, g.size).reshape(g.shape)
    tps = torch_grads(grads)
    clip_grad_value((params, grads), 0.7)
    torch.nn.utils.clip_grad_value_(tps, 0.7)
    for g, tp in zip(grads.values(), tps):
        np.testing.assert_array_equal(g, tp.grad.numpy())


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path):
    emb, head = nn.Embedding(6, 3, seed=0), nn.Linear(3, 2, seed=1)
    opt = optim.Adam([emb, head], lr=0.01)
    y = head(emb(np.array([1, 2])))
    emb.backward(head.backward(np.ones_like(y)))
    opt.step()
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, {"emb": emb, "head": head}, opt, extra={"vocab": np.array(list("abc"))})
    assert path.exists() and not list(tmp_path.glob("*.tmp"))

    emb2, head2 = nn.Embedding(6, 3, seed=7), nn.Linear(3, 2, seed=8)
    opt2 = optim.Adam([emb2, head2], lr=0.5)
    extra = load_checkpoint(path, {"emb": emb2, "head": head2}, opt2)
    assert extra["vocab"].tolist() == ["a", "b", "c"]
    for a, b in ((emb, emb2), (head, head2)):
        for k, v in a.parameters().items():
            np.testing.assert_array_equal(v, b.parameters()[k])
    assert opt2.lr == 0.01
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, opt2.state_dict()[k])

    with pytest.raises(ValueError, match=r"missing \['lstm'\]"):
        load_checkpoint(path, {"emb": emb2, "head": head2, "lstm": nn.Linear(1, 1)})
    with pytest.raises(ValueError, match=r"unexpected \['head'\]"):
        load_checkpoint(path, {"emb": emb2})
    with pytest.raises(ValueError, match=r"'weight' has shape \(2, 3\), expected \(3, 3\)"):
        load_checkpoint(path, {"emb": emb2, "head": nn.Linear(3, 3)})
    with pytest.raises(ValueError, match="module names must be non-empty strings without"):
        save_checkpoint(path, {"a.b": emb})


# ---------------------------------------------------------------- end to end


def test_training_an_lstm_model_matches_torch_across_a_checkpoint(tmp_path):
    """Embedding -> LSTM -> Linear, cross-entropy with ignore_index, clipping and Adam: four
    steps in rnnkit (native backend, resumed from a checkpoint after two) equal torch's."""
    V, E, H, C, T, B = 7, 5, 6, 3, 4, 3

    def make():
        mods = {
            "emb": nn.Embedding(V, E, padding_idx=0, dtype="float64", seed=0),
            "lstm": rnnkit.LSTM(E, H, num_layers=2, dtype="float64", seed=1),
            "head": nn.Linear(H, C, dtype="float64", seed=2),
        }
        return mods, optim.Adam(list(mods.values()), lr=0.05, weight_decay=0.01)

    mods, opt = make()
    temb = torch.nn.Embedding(V, E, padding_idx=0, dtype=torch.float64)
    tlstm = torch.nn.LSTM(E, H, num_layers=2, dtype=torch.float64)
    thead = torch.nn.Linear(H, C, dtype=torch.float64)
    for tm, name in ((temb, "emb"), (tlstm, "lstm"), (thead, "head")):
        tm.load_state_dict({k: torch.from_numpy(v) for k, v in mods[name].state_dict().items()})
    tparams = [*temb.parameters(), *tlstm.parameters(), *thead.parameters()]
    topt = torch.optim.Adam(tparams, lr=0.05, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for step in range(4):
        if step == 2:  # resume from a checkpoint into fresh objects
            rnnkit.checkpoint.save(tmp_path / "ckpt.npz", mods, opt)  # short aliases
            mods, opt = make()
            rnnkit.checkpoint.load(tmp_path / "ckpt.npz", mods, opt)
        emb, lstm, head = mods["emb"], mods["lstm"], mods["head"]
        tokens = rng.integers(0, V, size=(T, B))
        targets = rng.integers(0, C, size=(T, B))
        targets[0, 0] = -100
        opt.zero_grad()
        out, _ = lstm(emb(tokens))
        loss = loss_fn(head(out), targets)
        dx, _ = lstm.backward(head.backward(loss_fn.backward()), None)
        emb.backward(dx)
        norm = clip_grad_norm(list(mods.values()), 0.5)
        opt.step()

        topt.zero_grad()
        tout, _ = tlstm(temb(torch.from_numpy(tokens)))
        tloss = F.cross_entropy(thead(tout).reshape(-1, C), torch.from_numpy(targets).reshape(-1))
        tloss.backward()
        tnorm = torch.nn.utils.clip_grad_norm_(tparams, 0.5)
        topt.step()
        np.testing.assert_allclose(loss, tloss.item(), rtol=1e-12)
        np.testing.assert_allclose(norm, tnorm.item(), rtol=1e-10)
    for tm, name in ((temb, "emb"), (tlstm, "lstm"), (thead, "head")):
        for k, v in tm.state_dict().items():
            np.testing.assert_allclose(mods[name].parameters()[k], v.numpy(), rtol=1e-9, atol=1e-12)
