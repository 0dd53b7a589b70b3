"""The native backend (rnnkit._native over the C++ core rnnkit._core).

- against the NumPy reference over mode x dtype x layers x directions x lengths x bias x
  dropout masks, and over edge shapes (T=1, B=1, H=1, H not a multiple of the SIMD width):
  outputs, states and every gradient, float64 to 1e-10 and float32 to 1e-4 (relative to
  the largest entry);
- against torch in float64 (torch.nn modules; for "gru_reset_before", which torch lacks,
  an autograd loop of its equation);
- the same bits with 1 and 2 threads; the GIL released during compute;
- the cache: self-contained, reusable; the bindings' argument checks; the public modules
  on backend="native".
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rnnkit
import torch
from conftest import (
    MODES,
    VECTOR_ISAS,
    make_weights,
    needs_threads,
    param_names,
    team_forms,
    torch_module,
)
from rnnkit import _core, _native, reference
from rnnkit._cell_options import CellOptions
from rnnkit.activations import resolve_activation

pytestmark = pytest.mark.native

TOL = {np.float64: 1e-10, np.float32: 1e-4}


def make_problem(
    mode, T, B, n_in, H, L, D, *, bias=True, lengths=False, masks=False, dtype=np.float64, seed=0
):
    """Random inputs of the backend contract's stack_forward / stack_backward, as a dict.

    lengths: False (none), True (random order) or "sorted" (non-increasing: the core then
    runs each step's products on the active rows only)."""
    rng = np.random.default_rng(seed)
    states = (L * D, B, H)
    lens = None
    if lengths:
        lens = rng.integers(1, T + 1, size=B).astype(np.int64)
        lens[rng.integers(B)] = T  # the longest sequence spans the whole batch
        if lengths == "sorted":
            lens = np.sort(lens)[::-1].copy()
    drop = None
    if masks and L > 1:
        drop = [((rng.random((T, B, D * H)) > 0.3) / 0.7).astype(dtype) for _ in range(L - 1)]
    return {
        "mode": mode,
        "D": D,
        "x": rng.standard_normal((T, B, n_in)).astype(dtype),
        "h0": rng.standard_normal(states).astype(dtype),
        "c0": rng.standard_normal(states).astype(dtype) if mode == "lstm" else None,
        "weights": make_weights(mode, n_in, H, L, D, bias, dtype, rng),
        "lengths": lens,
        "masks": drop,
        "dout": rng.standard_normal((T, B, D * H)).astype(dtype),
        "dh_n": rng.standard_normal(states).astype(dtype),
        "dc_n": rng.standard_normal(states).astype(dtype) if mode == "lstm" else None,
    }


def train_forward(backend, p):
    """Training forward of problem p: (out, h_n, c_n, cache)."""
    return backend.stack_forward(
        p["mode"],
        p["x"],
        p["h0"],
        p["c0"],
        p["weights"],
        p["lengths"],
        p["masks"],
        True,
        num_directions=p["D"],
        **({"options": p["options"]} if p.get("options") is not None else {}),
    )


def run(backend, p):
    """Training forward then backward; returns a dict name -> array (or None)."""
    out, h_n, c_n, cache = train_forward(backend, p)
    dx, dh0, dc0, dweights = backend.stack_backward(
        p["mode"], cache, p["dout"], p["dh_n"], p["dc_n"]
    )
    result = {"out": out, "h_n": h_n, "c_n": c_n, "dx": dx, "dh0": dh0, "dc0": dc0}
    for i, grads in enumerate(dweights):
        for kind, g in zip(("dw_ih", "dw_hh", "db_ih", "db_hh", "dw_ph"), grads):
            result[f"{kind}[{i}]"] = g
    return result


def assert_close(got, want, tol, name):
    """Every entry within tol * max|want| (exact where want is all zero)."""
    if want is None:
        assert got is None, name
        return
    assert got.dtype == want.dtype and got.shape == want.shape, name
    np.testing.assert_allclose(
        got, want, rtol=tol, atol=tol * float(np.max(np.abs(want), initial=0)), err_msg=name
    )


def assert_results_close(got, want, tol):
    assert got.keys() == want.keys()
    for name in want:
        assert_close(got[name], want[name], tol, name)


def check_zero_past_lengths(result, lengths):
    """out and dx are exactly zero past each sequence's length (the contract)."""
    if lengths is None:
        return
    for b, n in enumerate(lengths):
        assert not result["out"][n:, b].any()
        assert not result["dx"][n:, b].any()


# ---------------------------------------------------------------------------------------
# Native vs the NumPy reference

GRID = [
    (mode, dtype, L, D, lengths, bias, masks)
    for mode in MODES
    for dtype in (np.float64, np.float32)
    for L in (1, 2, 3)
    for D in (1, 2)
    for lengths in (False, True)
    for bias in (True, False)
    for masks in (False, True)
    if not (masks and L == 1)  # one layer has no dropout between layers
]


# The cases with lengths again with the lengths sorted (after GRID, so that GRID's cases
# keep their seeds), on a batch large enough for finished rows to be left out.
SORTED_GRID = [case[:4] + ("sorted",) + case[5:] for case in GRID if case[4]]


def grid_id(case):
    mode, dtype, L, D, lengths, bias, masks = case
    flags = {False: "", True: "len", "sorted": "len-sorted"}[lengths]
    flags += ("" if bias else "-nobias") + ("-drop" if masks else "")
    return f"{mode}-{dtype.__name__}-L{L}D{D}{'-' if flags else ''}{flags}"


@pytest.mark.parametrize("case", GRID + SORTED_GRID, ids=grid_id)
def test_matches_reference(case):
    mode, dtype, L, D, lengths, bias, masks = case
    # Sorted lengths leave rows out of a step's products once 8 have finished: B = 12.
    p = make_problem(
        mode,
        4,
        12 if lengths == "sorted" else 3,
        6,
        5,
        L,
        D,
        bias=bias,
        lengths=lengths,
        masks=masks,
        dtype=dtype,
        seed=len(GRID) + (GRID + SORTED_GRID).index(case),
    )
    got = run(_native, p)
    assert_results_close(got, run(reference, p), TOL[dtype])
    check_zero_past_lengths(got, p["lengths"])


# (T, B, I, H): one step, one sequence, one unit, and H not a multiple of 8 or 16
EDGE_SHAPES = [
    (1, 1, 1, 1),
    (1, 3, 2, 5),
    (5, 1, 3, 13),
    (3, 4, 2, 33),
    (2, 2, 17, 16),
    (6, 5, 1, 1),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", EDGE_SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("mode", MODES)
def test_edge_shapes_match_reference(mode, shape, dtype):
    T, B, n_in, H = shape
    p = make_problem(
        mode, T, B, n_in, H, 2, 2, lengths=B > 1, masks=True, dtype=dtype, seed=sum(shape)
    )
    got = run(_native, p)
    assert_results_close(got, run(reference, p), TOL[dtype])
    check_zero_past_lengths(got, p["lengths"])


def test_inference_matches_training_and_keeps_nothing():
    p = make_problem("lstm", 5, 3, 4, 6, 2, 2, lengths=True, masks=True)
    args = (p["mode"], p["x"], p["h0"], p["c0"], p["weights"], p["lengths"], p["masks"])
    train = _native.stack_forward(*args, True, num_directions=2)
    infer = _native.stack_forward(*args, False, num_directions=2)
    assert infer[3] is None and isinstance(train[3], _core.StackCache)
    for a, b in zip(train[:3], infer[:3]):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="cache is None"):
        _native.stack_backward("lstm", None, p["dout"], p["dh_n"], p["dc_n"])


# ---------------------------------------------------------------------------------------
# Native vs torch, float64

TORCH_CONFIGS = [  # (T, B, I, H, L, D, bias, lengths)
    (1, 1, 1, 1, 1, 1, True, None),
    (5, 4, 3, 5, 2, 2, True, [5, 2, 1, 4]),
    (4, 3, 3, 13, 3, 1, False, [2, 4, 3]),
    (6, 2, 4, 7, 1, 2, True, None),
]


def torch_reference(p):
    """torch's results for problem p, by autograd: out, states and every gradient of
    sum(out*dout) + sum(h_n*dh_n) (+ sum(c_n*dc_n)), in the layout of ``run``."""
    mode, D = p["mode"], p["D"]
    x = torch.tensor(p["x"], requires_grad=True)
    h0 = torch.tensor(p["h0"], requires_grad=True)
    c0 = None if p["c0"] is None else torch.tensor(p["c0"], requires_grad=True)
    lengths = p["lengths"]
    if mode == "gru_reset_before":
        params = [
            tuple(None if a is None else torch.tensor(a, requires_grad=True) for a in w)
            for w in p["weights"]
        ]
        out, h_n = gru_reset_before_torch(x, h0, params, lengths, D)
        c_n = None
    else:
        module = torch_module(mode, p["weights"], D)
        inp = x
        if lengths is not None:
            inp = torch.nn.utils.rnn.pack_padded_sequence(
                x, torch.tensor(lengths), enforce_sorted=False
            )
        out, state = module(inp, h0 if c0 is None else (h0, c0))
        h_n, c_n = (state, None) if c0 is None else state
        if lengths is not None:
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
        L, bias = len(p["weights"]) // D, p["weights"][0][2] is not None
        params = [
            tuple(None if n is None else getattr(module, n) for n in names)
            for names in param_names(L, D, bias)
        ]
    loss = (out * torch.from_numpy(p["dout"])).sum() + (h_n * torch.from_numpy(p["dh_n"])).sum()
    if c_n is not None:
        loss = loss + (c_n * torch.from_numpy(p["dc_n"])).sum()
    loss.backward()
    result = {
        "out": out.detach().numpy(),
        "h_n": h_n.detach().numpy(),
        "c_n": None if c_n is None else c_n.detach().numpy(),
        "dx": x.grad.numpy(),
        "dh0": h0.grad.numpy(),
        "dc0": None if c0 is None else c0.grad.numpy(),
    }
    for i, entry in enumerate(params):
        for kind, t in zip(("dw_ih", "dw_hh", "db_ih", "db_hh"), entry):
            result[f"{kind}[{i}]"] = None if t is None else t.grad.numpy()
    return result


def gru_reset_before_torch(x, h0, params, lengths, D):
    """The reset-before GRU stack written step by step with torch ops (autograd gives the
    gradients): n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)."""
    T, B, _ = x.shape
    H = h0.shape[2]
    active = torch.ones(T, B, 1, dtype=torch.bool)
    if lengths is not None:
        active = (torch.arange(T)[:, None] < torch.tensor(lengths)[None, :])[..., None]
    layer_in, h_n = x, []
    for k in range(len(params) // D):
        outs = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh = params[k * D + d]
            h = h0[k * D + d]
            out = [None] * T
            for t in reversed(range(T)) if d == 1 else range(T):
                gx = layer_in[t] @ w_ih.T + (0 if b_ih is None else b_ih)
                ghrz = h @ w_hh[: 2 * H].T + (0 if b_hh is None else b_hh[: 2 * H])
                r = torch.sigmoid(gx[:, :H] + ghrz[:, :H])
                z = torch.sigmoid(gx[:, H : 2 * H] + ghrz[:, H:])
                n = torch.tanh(
                    gx[:, 2 * H :]
                    + (r * h) @ w_hh[2 * H :].T
                    + (0 if b_hh is None else b_hh[2 * H :])
                )
                h = torch.where(active[t], (1 - z) * n + z * h, h)
                out[t] = torch.where(active[t], h, torch.zeros_like(h))
            outs.append(torch.stack(out))
            h_n.append(h)
        layer_in = torch.cat(outs, dim=2)
    return layer_in, torch.stack(h_n)


@pytest.mark.parametrize("config", TORCH_CONFIGS, ids=lambda c: "T{}B{}I{}H{}L{}D{}".format(*c))
@pytest.mark.parametrize("mode", MODES)
def test_matches_torch_float64(mode, config):
    T, B, n_in, H, L, D, bias, lengths = config
    p = make_problem(mode, T, B, n_in, H, L, D, bias=bias, seed=7)
    p["lengths"] = None if lengths is None else np.array(lengths, dtype=np.int64)
    assert_results_close(run(_native, p), torch_reference(p), 1e-10)


# ---------------------------------------------------------------------------------------
# Threads and the GIL


# Sizes large enough that the per-step rows and the bias sums take the parallel path
# (at least 2**14 elements of work), and that the time loops run on a team of threads
# each owning a slice of hidden units (B x gate columns x H >= 2**17 multiply-adds per
# step, or W_hh of at least 192 KiB: team.h): (mode, T, B, H, dtype). The odd-T LSTM
# cases end with h in the second of its double buffers; H = 40 (float, 16-unit panels:
# slices of 32 and 8 units) and H = 72 (double, 8-unit panels: 40 and 32) give slices
# that are uneven or not panel multiples.
THREAD_CASES = [
    ("rnn_tanh", 2, 128, 128, np.float32),
    ("rnn_relu", 2, 128, 128, np.float64),
    ("rnn_tanh", 3, 128, 40, np.float32),  # uneven slices (32 + 8 units), odd T
    ("rnn_relu", 5, 96, 72, np.float64),
    ("lstm", 4, 64, 64, np.float32),
    ("lstm", 4, 64, 64, np.float64),
    ("lstm", 5, 48, 40, np.float32),
    ("lstm", 3, 40, 72, np.float64),
    ("gru", 4, 64, 96, np.float32),
    ("gru_reset_before", 4, 64, 96, np.float64),
    ("gru", 5, 128, 40, np.float32),
    ("gru_reset_before", 3, 96, 72, np.float64),
    # B = 1: a team because W_hh is large (>= 192 KiB), not the multiply-adds.
    ("lstm", 3, 1, 128, np.float32),
    ("gru", 4, 1, 136, np.float64),  # slices of 72 and 64 units
    ("rnn_tanh", 3, 1, 224, np.float32),
]


@needs_threads
@pytest.mark.parametrize("case", THREAD_CASES, ids=lambda c: f"{c[0]}-{c[4].__name__}")
def test_same_bits_for_1_and_2_threads(case, restore_threads):
    mode, T, B, H, dtype = case
    p = make_problem(mode, T, B, 8, H, 2, 2, lengths=True, masks=True, dtype=dtype, seed=3)
    assert_same_bits_at_1_and_2_threads(p)


@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=needs_threads)])
@pytest.mark.parametrize("mode", MODES)
def test_sorted_lengths_same_bits_as_unsorted(mode, threads, restore_threads):
    """Non-increasing lengths run each step's products on the active rows only; the same
    sequences in another order run them on every row. Each sequence's outputs, states and
    input/state gradients have the same bits either way (the weight gradients sum the rows
    in another order: close)."""
    _core.set_num_threads(threads)
    B = 24
    p = make_problem(mode, 9, B, 8, 40, 2, 2, lengths="sorted", masks=True, seed=5)
    p["lengths"][-4:] = 1  # the last steps run on a few rows only
    p["lengths"][0] = 8  # and step 8 on none
    order = np.random.default_rng(0).permutation(B)
    q = dict(p)
    if p["masks"] is not None:
        q["masks"] = [np.ascontiguousarray(m[:, order]) for m in p["masks"]]
    for key in ("x", "dout", "h0", "c0", "dh_n", "dc_n"):
        q[key] = None if p[key] is None else np.ascontiguousarray(p[key][:, order])
    q["lengths"] = p["lengths"][order]
    assert np.any(np.diff(q["lengths"]) > 0)  # the permuted lengths are not sorted
    sorted_run, permuted_run = run(_native, p), run(_native, q)
    for name in ("out", "h_n", "c_n", "dx", "dh0", "dc0"):
        if sorted_run[name] is None:
            continue
        assert sorted_run[name][:, order].tobytes() == permuted_run[name].tobytes(), name
    for name in sorted_run:
        if name.startswith("d") and "[" in name:
            assert_close(permuted_run[name], sorted_run[name], 1e-12, name)


def assert_same_bits_at_1_and_2_threads(p):
    """The native training forward and backward of p give the same bits on 1 and 2
    threads, a team of threads forming on 2 (sets the thread count: callers restore it)."""
    _core.set_num_threads(1)
    results = {1: run(_native, p)}
    _core.set_num_threads(2)
    with team_forms():
        results[2] = run(_native, p)
    for name, one in results[1].items():
        two = results[2][name]
        assert (one is None and two is None) or one.tobytes() == two.tobytes(), name


# Cell variants (rnnkit._cell_options) on the threaded cases of each kind: their
# per-step code splits units between threads as the usual cells' does.
VARIANT_THREAD_CASES = [
    ("lstm", 4, 64, 64, np.float32, ("HardSigmoid", "Softsign", "Tanh"), 0.8, True, True),
    ("lstm", 3, 40, 72, np.float64, ("Sigmoid", "Tanh", "Tanh"), None, True, False),
    ("gru", 5, 128, 40, np.float32, ("Softsign", "Elu"), 1.0, False, False),
    ("gru_reset_before", 3, 96, 72, np.float64, ("Sigmoid", "Softplus"), 0.7, False, False),
    ("rnn_tanh", 3, 128, 40, np.float32, ("Softsign",), 0.9, False, False),
]


@needs_threads
@pytest.mark.parametrize("case", VARIANT_THREAD_CASES, ids=lambda c: f"{c[0]}-{c[4].__name__}")
def test_cell_variants_same_bits_for_1_and_2_threads(case, restore_threads):
    mode, T, B, H, dtype, names, clip, peepholes, input_forget = case
    p = make_problem(mode, T, B, 8, H, 2, 2, lengths=True, masks=True, dtype=dtype, seed=5)
    acts = tuple(resolve_activation(n, "activations") for n in names)
    p["options"] = CellOptions(acts, clip, peepholes, input_forget)
    if peepholes:
        rng = np.random.default_rng(6)
        w_ph = [rng.uniform(-0.5, 0.5, 3 * H).astype(dtype) for _ in p["weights"]]
        p["weights"] = [(*w, None, ph) for w, ph in zip(p["weights"], w_ph)]  # (.., w_hr, w_ph)
    assert_same_bits_at_1_and_2_threads(p)


def per_vector_isa(compute):
    """{ISA name: compute()} for each vector ISA, forced in turn; back to automatic after."""
    try:
        results = {}
        for name in VECTOR_ISAS:
            _core._set_isa(name)
            results[name] = compute()
        return results
    finally:
        _core._set_isa("auto")


@pytest.mark.skipif(len(VECTOR_ISAS) < 2, reason="this CPU runs one vector ISA at most")
@pytest.mark.parametrize("case", THREAD_CASES, ids=lambda c: f"{c[0]}-{c[4].__name__}")
def test_same_bits_for_avx2_and_avx512(case, restore_threads):
    """The AVX-512 ISA changes the GEMM micro-tiles, which keep one FMA chain per element,
    and the activations and fused LSTM cell, which round every lane as the AVX2 code:
    training forward and backward give the same bits as with AVX2 (1 and 2 threads)."""
    mode, T, B, H, dtype = case
    p = make_problem(mode, T, B, 8, H, 2, 2, lengths=True, masks=True, dtype=dtype, seed=4)
    for threads in (1, 2):
        _core.set_num_threads(threads)
        results = per_vector_isa(lambda: run(_native, p))
        for key, a in results["avx2"].items():
            b = results["avx512"][key]
            assert (a is None and b is None) or a.tobytes() == b.tobytes(), (key, threads)


def lstm_outputs_and_grads(x: np.ndarray, H: int) -> list[bytes]:
    """A 2-layer LSTM's eval outputs, then its training outputs and gradients, with the
    parameters scaled by 0.1 (pre-activations near 0), 1 and 30 (deep in saturation)."""
    got = []
    for scale in (0.1, 1.0, 30.0):
        m = rnnkit.LSTM(x.shape[2], H, num_layers=2, dtype=x.dtype, seed=3)
        for p in m.parameters().values():
            p *= scale
        out, (h_n, c_n) = m.eval()(x)
        got += [out, h_n, c_n]
        out, (h_n, c_n) = m.train()(x)
        dx, (dh0, dc0) = m.backward(np.ones_like(out), (None, None))
        got += [out, h_n, c_n, dx, dh0, dc0, *m.grads.values()]
    return [a.tobytes() for a in got]


@pytest.mark.skipif(len(VECTOR_ISAS) < 2, reason="this CPU runs one vector ISA at most")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("H", [16, 37, 72])
def test_lstm_cell_same_bits_for_avx2_and_avx512(dtype, H, restore_threads):
    """The fused LSTM cell at inference and in training, with unit counts (and, at 2
    threads, slices) that leave tails of several lengths for 8- and 16-lane registers,
    pre-activations from tiny to saturating, NaN and inf inputs in some rows: the same
    bits with AVX2 and AVX-512."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 5, 9)).astype(dtype)
    x[2, 1, 3] = np.nan
    x[4, 3, 0] = np.inf
    x[1, 4, :] *= 1e4
    for threads in (1, 2):
        _core.set_num_threads(threads)
        results = per_vector_isa(lambda: lstm_outputs_and_grads(x, H))
        assert results["avx2"] == results["avx512"], threads


def test_gil_is_released_during_compute(restore_threads):
    """Two Python threads run long native forwards while the main thread keeps a
    heartbeat. Holding the GIL through the compute would freeze the heartbeat for the
    whole of each call, so heartbeats in the middle half of both calls (whose intervals
    must overlap) show it is released. No timing threshold: the workload is sized from
    a solo call so that each call lasts well over the heartbeat period."""
    _core.set_num_threads(1)

    def problem(T):
        return make_problem("lstm", T, 16, 32, 64, 1, 1, dtype=np.float32, seed=1)

    def forward(p):
        return _native.stack_forward(
            "lstm", p["x"], p["h0"], p["c0"], p["weights"], None, None, False, num_directions=1
        )

    T = 4
    while True:  # grow the sequence until one call takes at least 0.2 s
        start = time.perf_counter()
        forward(problem(T))
        if time.perf_counter() - start >= 0.2 or T >= 4096:
            break
        T *= 2
    p = problem(T)
    intervals = [None, None]
    ready = threading.Barrier(3)

    def worker(i):
        ready.wait()
        start = time.perf_counter()
        forward(p)
        intervals[i] = (start, time.perf_counter())

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    ready.wait()
    beats = []
    while any(w.is_alive() for w in workers):
        beats.append(time.perf_counter())
        time.sleep(0.001)
    for w in workers:
        w.join()
    (s0, e0), (s1, e1) = intervals
    assert max(s0, s1) < min(e0, e1), "the two forwards did not overlap in time"
    for s, e in intervals:
        quarter = (e - s) / 4
        assert any(s + quarter < b < e - quarter for b in beats), (
            "the main thread was frozen during a native call: GIL held?"
        )


# ---------------------------------------------------------------------------------------
# The cache


def test_cache_is_self_contained_and_reusable():
    """Changing the masks or lengths after the forward does not change the backward, and
    one cache serves several backward calls with the same bits. x, the weights and out
    (RNN, GRU) are referenced, not copied: modifying one in place makes the backward
    raise; the LSTM's cache does not reference out (its backward does not read it)."""
    for mode in ("gru", "rnn_tanh"):
        p = make_problem(mode, 5, 3, 4, 6, 2, 2, lengths=True, masks=True)
        want = run(reference, p)
        out, h_n, c_n, cache = train_forward(_native, p)
        assert cache.mode == mode and cache.dtype == "float64" and cache.nbytes > 0
        assert (cache.num_layers, cache.num_directions) == (2, 2)
        p["masks"][0][:] = 0.0
        p["lengths"][:] = 1
        first = _native.stack_backward(mode, cache, p["dout"], p["dh_n"], None)
        second = _native.stack_backward(mode, cache, p["dout"], p["dh_n"], None)
        assert_close(first[0], want["dx"], 1e-10, "dx")
        assert_close(first[3][2][1], want["dw_hh[2]"], 1e-10, "dw_hh[2]")
        for a, b in zip(first[:3], second[:3]):
            assert (a is None and b is None) or a.tobytes() == b.tobytes()
        for ga, gb in zip(first[3], second[3]):
            assert all(a.tobytes() == b.tobytes() for a, b in zip(ga, gb))
        changed = [("x", p["x"], (2, 1, 3)), ("out", out, (2, 1, 3))]
        changed += [("weight_hh_l1_reverse", p["weights"][3][1], (2, 4))]
        changed += [("bias_ih_l0", p["weights"][0][2], (5,))]
        for name, arr, at in changed:
            kept = arr[at]
            arr[at] = np.nextafter(kept, np.inf)  # the smallest change still counts
            with pytest.raises(RuntimeError, match=f"backward: {name} was modified in place"):
                _native.stack_backward(mode, cache, p["dout"], p["dh_n"], None)
            arr[at] = kept  # restored: the cache serves again, with the same bits
            third = _native.stack_backward(mode, cache, p["dout"], p["dh_n"], None)
            assert third[0].tobytes() == first[0].tobytes()


def test_buffer_checksum_sees_every_word():
    """The forward's checksum of x and out changes with any one changed element, even a
    sign flip in the last (partial) word, and with flips that cancel in a plain xor."""
    for dtype in (np.float32, np.float64):
        for n in (1, 7, 64, 131):
            x = np.random.default_rng(n).standard_normal((n, 1, 1)).astype(dtype)
            for where in {0, n // 2, n - 1}:
                y = x.copy()
                _, _, _, cache = _native.stack_forward(
                    "rnn_tanh", y, np.zeros((1, 1, 1), dtype), None,
                    [(np.ones((1, 1), dtype), np.ones((1, 1), dtype), None, None)],
                    None, None, True, num_directions=1,
                )  # fmt: skip
                y[where] = -y[where]
                if n > 1:
                    y[(where + 1) % n] = -y[(where + 1) % n]  # two sign flips
                with pytest.raises(RuntimeError, match="x was modified in place"):
                    _native.stack_backward(
                        "rnn_tanh", cache, np.ones((n, 1, 1), dtype), np.zeros((1, 1, 1), dtype),
                        None,
                    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# Argument checks of the bindings (called directly, bypassing the module's checks)


def forward_args(mode="lstm", dtype=np.float64):
    p = make_problem(mode, 3, 2, 4, 5, 2, 2, lengths=True, masks=True, dtype=dtype)
    return {
        "mode": mode,
        "x": p["x"],
        "h0": p["h0"],
        "c0": p["c0"],
        "weights": p["weights"],
        "lengths": p["lengths"],
        "dropout_masks": p["masks"],
        "training": True,
        "num_directions": 2,
    }


def _replace_weight(args, i, j, value):
    args["weights"] = [list(w) for w in args["weights"]]
    args["weights"][i][j] = value


FORWARD_ERRORS = [  # (change to valid arguments, exception, message pattern)
    (lambda a: a.update(mode="lstmx"), ValueError, "mode must be one of .*got 'lstmx'"),
    (lambda a: a.update(num_directions=3), ValueError, "num_directions must be 1 or 2, got 3"),
    (lambda a: a.update(x=[[[1.0]]]), TypeError, "x must be a numpy.ndarray, got list"),
    (
        lambda a: a.update(x=np.zeros((3, 2, 4), np.int64)),
        TypeError,
        "x must have dtype float32 or float64, got int64",
    ),
    (
        lambda a: a.update(x=np.zeros((3, 2))),
        ValueError,
        r"x must have shape \(T, B, I\), got \(3, 2\)",
    ),
    (lambda a: a.update(x=np.zeros((0, 2, 4))), ValueError, "T >= 1 and B >= 1"),
    (
        lambda a: a.update(x=np.zeros((4, 3, 2)).transpose(1, 2, 0)),
        ValueError,
        "x must be C-contiguous",
    ),
    (
        lambda a: a.update(h0=a["h0"].astype(np.float32)),
        TypeError,
        "h0 must have dtype float64, got float32",
    ),
    (
        lambda a: a.update(h0=a["h0"][:3]),
        ValueError,
        r"h0 must have shape \(L\*D, B, H\) = \(4, 2, 5\), got \(3, 2, 5\)",
    ),
    (lambda a: a.update(h0=None), TypeError, "h0 must be a numpy.ndarray, got NoneType"),
    (lambda a: a.update(c0=None), ValueError, "c0 is required for mode 'lstm'"),
    (
        lambda a: a.update(weights=a["weights"][:3]),
        ValueError,
        "weights must hold L\\*D entries.*got 3",
    ),
    (
        lambda a: a.update(weights=a["weights"][0]),
        TypeError,
        r"weights\[0\] must be a list or tuple, got ndarray",
    ),
    (lambda a: a.update(weights=5), TypeError, "weights must be a list or tuple, got int"),
    (
        lambda a: _replace_weight(a, 0, 1, np.zeros((20, 4))),
        ValueError,
        r"weights\[0\]\[1\] \(w_hh\) must have shape \(G\*H, H\) .*G = 4.*got \(20, 4\)",
    ),
    (
        lambda a: _replace_weight(a, 2, 0, np.zeros((20, 4))),
        ValueError,
        r"weights\[2\]\[0\] \(w_ih\) must have shape \(G\*H, D\*H\) = \(20, 10\), got \(20, 4\)",
    ),
    (
        lambda a: _replace_weight(a, 1, 3, None),
        ValueError,
        r"weights\[1\]\[3\] \(b_hh\) is None but weights\[0\] has biases",
    ),
    (
        lambda a: _replace_weight(a, 1, 2, np.zeros(20, np.float32)),
        TypeError,
        r"weights\[1\]\[2\] \(b_ih\) must have dtype float64, got float32",
    ),
    (
        lambda a: a.update(lengths=np.array([1, 4])),
        ValueError,
        r"lengths\[1\] must be in 1..T = 1..3, got 4",
    ),
    (lambda a: a.update(lengths=np.array([0, 1])), ValueError, r"lengths\[0\] must be in 1..T"),
    (
        lambda a: a.update(lengths=np.array([1, 2], np.int32)),
        TypeError,
        "lengths must have dtype int64, got int32",
    ),
    (
        lambda a: a.update(lengths=np.array([1, 2, 3])),
        ValueError,
        r"lengths must have shape \(B,\) = \(2,\), got \(3,\)",
    ),
    (
        lambda a: a.update(dropout_masks=[]),
        ValueError,
        "dropout_masks must hold L-1 = 1 arrays, got 0",
    ),
    (
        lambda a: a.update(dropout_masks=[np.ones((3, 2, 5))]),
        ValueError,
        r"dropout_masks\[0\] must have shape \(T, B, D\*H\) = \(3, 2, 10\), got \(3, 2, 5\)",
    ),
]


@pytest.mark.parametrize("change,error,match", FORWARD_ERRORS)
def test_forward_argument_errors(change, error, match):
    args = forward_args()
    change(args)
    with pytest.raises(error, match=match):
        _core.stack_forward(**args)


def test_forward_argument_errors_non_lstm():
    args = forward_args("gru")
    args["c0"] = args["h0"]
    with pytest.raises(ValueError, match="c0 must be None for mode 'gru'"):
        _core.stack_forward(**args)
    args = forward_args("gru")
    args["weights"] = [(w[0], w[1][:10], w[2], w[3]) for w in args["weights"]]
    with pytest.raises(ValueError, match=r"G = 3 for mode 'gru', got \(10, 5\)"):
        _core.stack_forward(**args)


def test_backward_argument_errors():
    args = forward_args()
    _, h_n, c_n, cache = _core.stack_forward(**args)
    dout = np.zeros((3, 2, 10))
    with pytest.raises(TypeError, match="cache must be the StackCache .*got dict"):
        _core.stack_backward("lstm", {}, dout, h_n, c_n)
    with pytest.raises(ValueError, match="mode 'gru' differs from the forward's mode 'lstm'"):
        _core.stack_backward("gru", cache, dout, h_n, c_n)
    with pytest.raises(ValueError, match=r"dout must have shape \(T, B, D\*H\) = \(3, 2, 10\)"):
        _core.stack_backward("lstm", cache, dout[:, :, :5], h_n, c_n)
    with pytest.raises(TypeError, match="dh_n must have dtype float64, got float32"):
        _core.stack_backward("lstm", cache, dout, h_n.astype(np.float32), c_n)
    with pytest.raises(ValueError, match="dc_n is required for mode 'lstm'"):
        _core.stack_backward("lstm", cache, dout, h_n, None)
    with pytest.raises(ValueError, match="dc_n must be C-contiguous"):
        _core.stack_backward("lstm", cache, dout, h_n, np.asfortranarray(c_n))
    dx, dh0, dc0, dweights = _core.stack_backward("lstm", cache, dout, h_n, c_n)  # still fine
    assert dx.shape == (3, 2, 4) and dc0.shape == (4, 2, 5) and len(dweights) == 4


def test_float32_and_float64_not_mixed():
    args = forward_args(dtype=np.float32)
    args["c0"] = args["c0"].astype(np.float64)
    with pytest.raises(TypeError, match="c0 must have dtype float32, got float64"):
        _core.stack_forward(**args)


# ---------------------------------------------------------------------------------------
# The public modules on the native backend


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: rnnkit.RNN(4, 6, nonlinearity="relu", **kw),
        lambda **kw: rnnkit.LSTM(4, 6, **kw),
        lambda **kw: rnnkit.GRU(4, 6, **kw),
        lambda **kw: rnnkit.GRU(4, 6, reset_after=False, **kw),
    ],
    ids=["rnn_relu", "lstm", "gru", "gru_reset_before"],
)
def test_module_native_matches_numpy(make):
    kwargs = dict(num_layers=2, bidirectional=True, dropout=0.3, dtype="float64", seed=5)
    native, numpy_ = make(backend="native", **kwargs), make(backend="numpy", **kwargs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 4))
    lengths = np.array([5, 2, 4])
    grad_out = rng.standard_normal((5, 3, 12))
    results = []
    for m in (native, numpy_):
        out, state = m(x, lengths=lengths)
        dx, dstate = m.backward(grad_out)
        results.append((out, state, dx, dstate, m.grads))
    (out_a, st_a, dx_a, ds_a, g_a), (out_b, st_b, dx_b, ds_b, g_b) = results
    assert_close(out_a, out_b, 1e-10, "out")
    assert_close(dx_a, dx_b, 1e-10, "dx")
    for a, b in zip(as_tuple(st_a) + as_tuple(ds_a), as_tuple(st_b) + as_tuple(ds_b)):
        assert_close(a, b, 1e-10, "state")
    assert g_a.keys() == g_b.keys()
    for name in g_a:
        assert_close(g_a[name], g_b[name], 1e-10, name)


def as_tuple(state):
    """(h,) for an RNN/GRU state, (h, c) for an LSTM's."""
    return state if isinstance(state, tuple) else (state,)
