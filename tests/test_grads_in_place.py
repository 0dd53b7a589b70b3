"""The backward adds parameter gradients into the caller's arrays in place.

Backend contract: ``stack_backward(..., grads)`` adds into ``grads`` (L*D tuples shaped like
the weights) and returns that list; without ``grads`` it returns fresh arrays. The native
RNN and GRU cells accumulate chunk by chunk straight into the arrays (no fresh arrays the
size of the weights): into zeros that is exactly the fresh result, into other values the
same sum up to rounding. Modules pass their ``grads``, so those arrays keep their identity
across backward calls, accumulate like torch's ``.grad`` and are cleared by ``zero_grad``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import rnnkit
import torch
from conftest import MODES, needs_threads, team_forms
from rnnkit import _core, _native, reference
from test_native import assert_close, make_problem, run, train_forward

pytestmark = pytest.mark.native

BACKENDS = {"native": _native, "numpy": reference}


def random_grads(p, seed=1):
    """Random arrays shaped like p's weights (None for absent biases), as the contract's
    list of tuples."""
    rng = np.random.default_rng(seed)
    return [
        tuple(None if w is None else rng.standard_normal(w.shape).astype(w.dtype) for w in entry)
        for entry in p["weights"]
    ]


def backward_into(backend, p, grads):
    """Training forward and backward of p adding into grads; returns the backward's result."""
    _, _, _, cache = train_forward(backend, p)
    return backend.stack_backward(p["mode"], cache, p["dout"], p["dh_n"], p["dc_n"], grads)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_grads_are_added_into_in_place(mode, backend_name):
    """The returned dweights are the given arrays, now holding old + fresh."""
    backend = BACKENDS[backend_name]
    p = make_problem(mode, 5, 3, 4, 6, 2, 2, lengths=True, masks=True)
    fresh = run(backend, p)
    grads = random_grads(p)
    old = [tuple(None if g is None else g.copy() for g in entry) for entry in grads]
    dx, _, _, dweights = backward_into(backend, p, grads)
    assert_close(dx, fresh["dx"], 1e-12, "dx")
    for i, (entry, returned, before) in enumerate(zip(grads, dweights, old)):
        for kind, g, r, b in zip(("dw_ih", "dw_hh", "db_ih", "db_hh"), entry, returned, before):
            assert r is g, f"{kind}[{i}] is not the given array"
            if g is not None:
                assert_close(g, b + fresh[f"{kind}[{i}]"], 1e-12, f"{kind}[{i}]")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES)
def test_native_accumulation_into_zeros_gives_the_fresh_bits(mode, dtype):
    """T*B = 640 rows: the RNN and GRU backward runs two chunks, adding the second."""
    p = make_problem(mode, 40, 16, 5, 7, 2, 2, lengths=True, masks=True, dtype=dtype)
    fresh = run(_native, p)
    grads = [tuple(None if w is None else np.zeros_like(w) for w in e) for e in p["weights"]]
    backward_into(_native, p, grads)
    for i, entry in enumerate(grads):
        for kind, g in zip(("dw_ih", "dw_hh", "db_ih", "db_hh"), entry):
            want = fresh[f"{kind}[{i}]"]
            assert (g is None and want is None) or g.tobytes() == want.tobytes(), f"{kind}[{i}]"


@needs_threads
@pytest.mark.parametrize("mode", ["rnn_tanh", "gru", "gru_reset_before", "lstm"])
def test_accumulation_has_the_same_bits_on_1_and_2_threads(mode, restore_threads):
    """Sizes where the bias sums and per-step rows take the parallel path and the time
    loops run on a team of threads."""
    p = make_problem(mode, 4, 64, 8, 96, 2, 2, lengths=True, masks=True, dtype=np.float32)
    results = []
    for threads in (1, 2):
        _core.set_num_threads(threads)
        grads = random_grads(p, seed=7)
        with team_forms() if threads > 1 else contextlib.nullcontext():
            backward_into(_native, p, grads)
        results.append(grads)
    for one, two in zip(*results):
        for a, b in zip(one, two):
            assert (a is None and b is None) or a.tobytes() == b.tobytes()


def test_native_refuses_grads_that_overlap_or_do_not_fit():
    p = make_problem("gru", 3, 2, 4, 5, 1, 1)
    _, _, _, cache = train_forward(_native, p)
    good = random_grads(p)
    w_ih, w_hh, b_ih, b_hh = good[0]

    def call(grads):
        return _native.stack_backward("gru", cache, p["dout"], p["dh_n"], None, grads)

    base = np.zeros(200)  # dw_ih (15, 4) and dw_hh (15, 5) views sharing 10 elements
    overlapping = (base[:60].reshape(15, 4), base[50:125].reshape(15, 5))
    with pytest.raises(ValueError, match=r"grads\[0\]\[1\] \(dw_hh\) overlaps grads\[0\]\[0\]"):
        call([(*overlapping, b_ih, b_hh)])
    with pytest.raises(ValueError, match=r"grads\[0\]\[3\] \(db_hh\) overlaps dout"):
        call([(w_ih, w_hh, b_ih, p["dout"].reshape(-1)[:15])])
    with pytest.raises(ValueError, match=r"grads\[0\]\[2\] \(db_ih\) overlaps x"):
        call([(w_ih, w_hh, p["x"].reshape(-1)[:15], b_hh)])
    with pytest.raises(ValueError, match=r"grads\[0\]\[1\] \(dw_hh\) overlaps weights\[0\]\[1\]"):
        call([(w_ih, p["weights"][0][1], b_ih, b_hh)])  # the cache references the weights
    assert not base.any()
    with pytest.raises(TypeError, match=r"grads\[0\]\[1\] \(dw_hh\) must have dtype float64"):
        call([(w_ih, w_hh.astype(np.float32), b_ih, b_hh)])
    with pytest.raises(ValueError, match=r"grads\[0\]\[0\] \(dw_ih\) must have shape"):
        call([(w_ih[:, :3].copy(), w_hh, b_ih, b_hh)])
    read_only = w_hh.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"grads\[0\]\[1\] \(dw_hh\) must be writeable"):
        call([(w_ih, read_only, b_ih, b_hh)])
    with pytest.raises(ValueError, match=r"grads\[0\]\[2\] \(db_ih\) is None"):
        call([(w_ih, w_hh, None, b_hh)])
    with pytest.raises(ValueError, match="grads must hold L\\*D = 1 entries, got 2"):
        call(good * 2)
    before = [a.copy() for a in good[0]]
    call(good)  # the refused calls wrote nothing, and the cache still serves
    fresh = run(_native, p)
    for kind, a, b in zip(("dw_ih", "dw_hh", "db_ih", "db_hh"), good[0], before):
        assert_close(a, b + fresh[f"{kind}[0]"], 1e-12, kind)


def test_reference_refuses_grads_that_do_not_fit():
    p = make_problem("lstm", 3, 2, 4, 5, 1, 1)
    _, _, _, cache = train_forward(reference, p)
    w_ih, w_hh, b_ih, b_hh = random_grads(p)[0]
    with pytest.raises(ValueError, match=r"grads\[0\]\[1\] must be \(20, 5\), got \(20, 4\)"):
        reference.stack_backward(
            "lstm", cache, p["dout"], p["dh_n"], p["dc_n"], [(w_ih, w_hh[:, :4], b_ih, b_hh)]
        )


def make_pair(cell: str, backend: str):
    """An rnnkit module (2 layers, bidirectional, float64) and a torch one with its weights."""
    cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell]
    tcls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    m = cls(4, 6, num_layers=2, bidirectional=True, dtype="float64", backend=backend, seed=2)
    t = tcls(4, 6, num_layers=2, bidirectional=True, dtype=torch.float64)
    t.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in m.state_dict().items()})
    return m, t


def step_both(m, t, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 3, 4))
    grad_out = rng.standard_normal((5, 3, 12))
    m(x)
    m.backward(grad_out)
    out, _ = t(torch.from_numpy(x))
    out.backward(torch.from_numpy(grad_out))


def assert_grads_match_torch(m, t):
    for name, p in t.named_parameters():
        assert_close(m.grads[name], p.grad.numpy(), 1e-10, name)


@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_module_grads_accumulate_like_torch_and_zero_grad_clears(cell, backend):
    m, t = make_pair(cell, backend)
    arrays = dict(m.grads)
    step_both(m, t, seed=0)
    step_both(m, t, seed=1)
    assert_grads_match_torch(m, t)  # the sum of both steps' gradients
    assert all(m.grads[k] is a for k, a in arrays.items())  # the same arrays, added into
    m.zero_grad()
    t.zero_grad(set_to_none=False)
    assert all(not g.any() for g in m.grads.values())
    step_both(m, t, seed=2)
    assert_grads_match_torch(m, t)


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_module_refuses_unusable_grads_and_keeps_the_forward(backend):
    """grads entries that backward cannot add into in place raise ValueError naming the
    parameter, before the forward's saved state is consumed."""
    m = rnnkit.GRU(4, 6, dtype="float64", backend=backend, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 3, 4))
    out, _ = m(x)
    grad_out = np.ones_like(out)
    kept = m.grads["weight_hh_l0"]
    for bad, match in [
        (kept.astype(np.float32), r"grads\['weight_hh_l0'\] must be a writeable C-contiguous"),
        (np.zeros((6, 18)).T, r"grads\['weight_hh_l0'\] must be .*got shape \(18, 6\)"),
        ([[0.0] * 6] * 18, r"grads\['weight_hh_l0'\] must be .*got list"),
    ]:
        m.grads["weight_hh_l0"] = bad
        with pytest.raises(ValueError, match=match):
            m.backward(grad_out)
    read_only = kept.copy()
    read_only.flags.writeable = False
    m.grads["weight_hh_l0"] = read_only
    with pytest.raises(ValueError, match="must be a writeable"):
        m.backward(grad_out)
    kept_ih, base = m.grads["weight_ih_l0"], np.zeros(200)
    m.grads["weight_ih_l0"] = base[:72].reshape(18, 4)  # shares 12 elements with the next
    m.grads["weight_hh_l0"] = base[60:168].reshape(18, 6)
    with pytest.raises(ValueError, match=r"weight_ih_l0'\] and grads\['weight_hh_l0'\] share"):
        m.backward(grad_out)
    m.grads["weight_ih_l0"], m.grads["weight_hh_l0"] = kept_ih, kept
    m.backward(grad_out)  # the forward was kept through the refusals
    assert kept.any()
    m(x)  # after a backward that checked other arrays, new ones are checked again
    m.grads["weight_ih_l0"] = base[:72].reshape(18, 4)
    m.grads["weight_hh_l0"] = base[60:168].reshape(18, 6)
    with pytest.raises(ValueError, match="share memory"):
        m.backward(grad_out)
