"""rnnkit.torch against torch.nn: outputs, final states and every gradient on random
configurations (Tensor and PackedSequence input), dropout, the custom operators (opcheck),
torch.compile, patch(), threads, the fallbacks and bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnkit  # noqa: E402
import rnnkit.torch as rt  # noqa: E402
from rnnkit.torch import _ops  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

pytestmark = pytest.mark.native

CELLS = {
    "lstm": (torch.nn.LSTM, rt.LSTM),
    "gru": (torch.nn.GRU, rt.GRU),
    "rnn": (torch.nn.RNN, rt.RNN),
}
TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-4}


def pair(cell: str, input_size: int, hidden: int, seed: int = 0, **kwargs):
    """(torch's module, rnnkit.torch's module) with the same parameters."""
    torch_cls, our_cls = CELLS[cell]
    torch.manual_seed(seed)
    ref = torch_cls(input_size, hidden, **kwargs)
    ours = our_cls(input_size, hidden, **kwargs)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def assert_close(got: torch.Tensor, want: torch.Tensor, dtype, what: str) -> None:
    """Relative to the largest magnitude of ``want``."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    scale = max(want.abs().max().item(), 1e-30)
    err = (got - want).abs().max().item() / scale if want.numel() else 0.0
    assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g}"


def random_config(index: int) -> dict:
    rng = np.random.default_rng(1000 + index)
    return {
        "cell": ["lstm", "gru", "rnn"][index % 3],
        "num_layers": int(rng.integers(1, 4)),
        "bidirectional": bool(rng.integers(2)),
        "batch_first": bool(rng.integers(2)),
        "bias": bool(rng.integers(2)),
        "dtype": [torch.float64, torch.float32][int(rng.integers(2))],
        "packed": bool(index % 2),
        "with_state": bool(rng.integers(2)),
        "nonlinearity": ["tanh", "relu"][int(rng.integers(2))],
        "T": int(rng.integers(1, 9)),
        "B": int(rng.integers(1, 6)),
        "I": int(rng.integers(1, 7)),
        "H": int(rng.integers(1, 9)),
        "seed": index,
    }


def run_both(ref, ours, x, lengths, state, batch_first: bool, seed: int):
    """Forward and backward of a random weighted sum of every output on both modules;
    returns each one's (outputs, gradients) as lists of tensors."""
    results = []
    for module in (ref, ours):
        module.zero_grad()
        xi = x.detach().clone().requires_grad_(True)
        si = [s.detach().clone().requires_grad_(True) for s in state]
        inp = xi
        if lengths is not None:
            inp = pack_padded_sequence(xi, lengths, batch_first=batch_first, enforce_sorted=False)
        hx = None if not si else (tuple(si) if isinstance(ref, torch.nn.LSTM) else si[0])
        out, finals = module(inp, hx)
        if lengths is not None:
            out = pad_packed_sequence(
                out, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0]
            )[0]
        finals = list(finals) if isinstance(finals, tuple) else [finals]
        outputs = [out, *finals]
        gen = torch.Generator().manual_seed(seed)
        loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outputs)
        loss.backward()
        grads = [xi.grad, *[s.grad for s in si], *[p.grad for p in module.parameters()]]
        results.append(([o.detach() for o in outputs], grads))
    return results


@pytest.mark.parametrize("index", range(36))
def test_random_configuration_matches_torch(index):
    c = random_config(index)
    kwargs = {
        "num_layers": c["num_layers"],
        "bidirectional": c["bidirectional"],
        "batch_first": c["batch_first"],
        "bias": c["bias"],
        "dtype": c["dtype"],
    }
    if c["cell"] == "rnn":
        kwargs["nonlinearity"] = c["nonlinearity"]
    ref, ours = pair(c["cell"], c["I"], c["H"], seed=c["seed"], **kwargs)
    gen = torch.Generator().manual_seed(c["seed"])
    T, B = c["T"], c["B"]
    shape = (B, T, c["I"]) if c["batch_first"] else (T, B, c["I"])
    x = torch.randn(shape, generator=gen, dtype=c["dtype"])
    lengths = None
    if c["packed"]:
        lengths = torch.randint(1, T + 1, (B,), generator=gen)
        lengths[int(torch.randint(0, B, (1,), generator=gen))] = T
    D = 2 if c["bidirectional"] else 1
    n_states = 2 if c["cell"] == "lstm" else 1
    state = []
    if c["with_state"]:
        state = [
            torch.randn(c["num_layers"] * D, B, c["H"], generator=gen, dtype=c["dtype"])
            for _ in range(n_states)
        ]
    assert rt.runs_natively(ours, x)
    (want_out, want_grads), (got_out, got_grads) = run_both(
        ref, ours, x, lengths, state, c["batch_first"], c["seed"]
    )
    for i, (g, w) in enumerate(zip(got_out, want_out)):
        assert_close(g, w, c["dtype"], f"{c} output {i}")
    for i, (g, w) in enumerate(zip(got_grads, want_grads)):
        assert_close(g, w, c["dtype"], f"{c} gradient {i}")


def test_packed_output_keeps_torch_structure():
    ref, ours = pair("lstm", 3, 4, bidirectional=True)
    x = torch.randn(6, 4, 3)
    packed = pack_padded_sequence(x, torch.tensor([2, 6, 1, 4]), enforce_sorted=False)
    (want, (wh, _)), (got, (gh, _)) = ref(packed), ours(packed)
    assert type(got) is type(want)
    for name in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        assert torch.equal(getattr(got, name), getattr(want, name))
    torch.testing.assert_close(got.data, want.data, rtol=2e-4, atol=1e-6)
    torch.testing.assert_close(gh, wh, rtol=2e-4, atol=1e-6)
    sorted_packed = pack_padded_sequence(x, torch.tensor([6, 4, 2, 1]))  # enforce_sorted
    torch.testing.assert_close(
        ours(sorted_packed)[0].data, ref(sorted_packed)[0].data, rtol=2e-4, atol=1e-6
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_packed_sequences_of_equal_length_match_torch(cell):
    # Every sequence T long: the packed rows are the padded rows (the bridge copies nothing).
    ref, ours = pair(cell, 3, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(4, 3, 3, dtype=torch.float64)
    lengths = torch.full((3,), 4)
    (want_out, want_grads), (got_out, got_grads) = run_both(ref, ours, x, lengths, [], False, 7)
    for i, (g, w) in enumerate(zip(got_out, want_out)):
        assert_close(g, w, torch.float64, f"{cell} output {i}")
    for i, (g, w) in enumerate(zip(got_grads, want_grads)):
        assert_close(g, w, torch.float64, f"{cell} gradient {i}")


def test_unbatched_input_and_state():
    for cell in CELLS:
        ref, ours = pair(cell, 3, 5, num_layers=2, dtype=torch.float64)
        x = torch.randn(7, 3, dtype=torch.float64)
        h = torch.randn(2, 5, dtype=torch.float64)
        hx = (h, h * 0.5) if cell == "lstm" else h
        want, got = ref(x, hx), ours(x, hx)
        torch.testing.assert_close(got[0], want[0], rtol=1e-9, atol=1e-12)
        assert got[0].shape == (7, 5)


def test_strided_and_zero_stride_inputs_match_contiguous():
    ref, ours = pair("gru", 4, 5, dtype=torch.float64)
    base = torch.randn(5, 6, 8, dtype=torch.float64)
    inputs = {
        "transposed": torch.randn(3, 6, 4, dtype=torch.float64).transpose(0, 1),
        "sliced": base[:, ::2, ::2],
        "zero-stride": torch.randn(1, 1, 4, dtype=torch.float64).expand(6, 3, 4),
        "requires_grad": torch.randn(6, 3, 4, dtype=torch.float64, requires_grad=True),
    }
    for name, x in inputs.items():
        h0 = torch.randn(1, 1, 5, dtype=torch.float64).expand(1, x.shape[1], 5)
        torch.testing.assert_close(ours(x, h0)[0], ref(x, h0)[0], rtol=1e-9, atol=1e-12, msg=name)


def test_dropout_uses_torch_generator_and_torch_semantics():
    p, L, T, B, I, H = 0.4, 3, 5, 3, 4, 6  # noqa: E741
    ours = rt.LSTM(I, H, num_layers=L, dropout=p, bidirectional=True, dtype=torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64)
    torch.manual_seed(7)
    first = ours(x)[0]
    torch.manual_seed(7)
    torch.testing.assert_close(ours(x)[0], first, rtol=0, atol=0)
    # The same masks by hand, applied between torch's single-layer LSTMs.
    torch.manual_seed(7)
    masks = [
        torch.bernoulli(torch.full((T, B, 2 * H), 1 - p, dtype=torch.float64)) / (1 - p)
        for _ in range(L - 1)
    ]
    h = x
    for k in range(L):
        layer = torch.nn.LSTM(I if k == 0 else 2 * H, H, bidirectional=True, dtype=torch.float64)
        layer.load_state_dict(
            {n.replace(f"_l{k}", "_l0"): v for n, v in ours.state_dict().items() if f"_l{k}" in n}
        )
        h = layer(h)[0]
        h = h * masks[k] if k < L - 1 else h
    torch.testing.assert_close(first, h, rtol=1e-9, atol=1e-12)
    ours.eval()
    ref = torch.nn.LSTM(I, H, num_layers=L, dropout=p, bidirectional=True, dtype=torch.float64)
    ref.load_state_dict(ours.state_dict())
    ref.eval()
    torch.testing.assert_close(ours(x)[0], ref(x)[0], rtol=1e-9, atol=1e-12)


def test_opcheck_every_operator():
    gen = torch.Generator().manual_seed(0)
    T, B, I, H = 4, 3, 5, 6  # noqa: E741
    for mode, gates in (("lstm", 4), ("gru", 3), ("rnn_relu", 1)):

        def r(*shape):
            return torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)

        weights = []  # 2 layers x 2 directions
        for layer in range(2):
            for _direction in range(2):
                inputs = I if layer == 0 else 2 * H
                weights += [r(gates * H, inputs), r(gates * H, H), r(gates * H), r(gates * H)]
        h0, c0 = r(4, B, H), (r(4, B, H) if mode == "lstm" else None)
        x = r(T, B, I)
        masks = [torch.bernoulli(torch.full((T, B, 2 * H), 0.5, dtype=torch.float64)) * 2]
        args = (mode, x, h0, c0, weights, torch.tensor([4, 1, 3]), masks, 2, True, True)
        torch.library.opcheck(torch.ops.rnnkit.stack_forward.default, args)
        out, h_n, c_n, handle = torch.ops.rnnkit.stack_forward(*args)
        plain = [None if t is None else t.detach() for t in (x, h0, c0)]
        backward_args = (
            mode,
            handle,
            *plain,
            [w.detach() for w in weights],
            args[5],
            masks,
            2,
            True,
            torch.randn_like(out),
            torch.randn_like(h_n),
            torch.randn_like(c_n) if mode == "lstm" else None,
        )
        torch.library.opcheck(torch.ops.rnnkit.stack_backward.default, backward_args)


def test_backward_uses_the_saved_cache_and_recomputes_only_without_it():
    ref, ours = pair("lstm", 3, 4, num_layers=2, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    before = _ops.recomputed_forwards
    ours(x)[0].sum().backward()
    assert _ops.recomputed_forwards == before
    weights = [getattr(ours, n).detach() for n in ours._flat_weights_names]
    h0 = torch.zeros(2, 2, 4, dtype=torch.float64)
    out, h_n, c_n, handle = torch.ops.rnnkit.stack_forward(
        "lstm", x, h0, h0, weights, None, [], 1, True, True
    )
    args = (
        "lstm",
        handle,
        x,
        h0,
        h0,
        weights,
        None,
        [],
        1,
        True,
        torch.ones_like(out),
        torch.zeros_like(h_n),
        torch.zeros_like(c_n),
    )
    with_cache = torch.ops.rnnkit.stack_backward(*args)
    assert _ops.recomputed_forwards == before
    # Equal values in other memory (as a compiled backward that recomputes x passes).
    equal_x = torch.ops.rnnkit.stack_backward(*(args[:2] + (x.clone(),) + args[3:]))
    assert _ops.recomputed_forwards == before
    copied = torch.ops.rnnkit.stack_backward(*(args[:1] + (handle.clone(),) + args[2:]))
    assert _ops.recomputed_forwards == before + 1
    changed_x = torch.ops.rnnkit.stack_backward(*(args[:2] + (x + 1,) + args[3:]))
    assert _ops.recomputed_forwards == before + 2
    flat = [*with_cache[:3], *with_cache[3]]
    for other in (equal_x, copied):
        for a, b in zip(flat, [*other[:3], *other[3]]):
            assert torch.equal(a, b)
    assert not torch.equal(changed_x[0], with_cache[0])


def test_compiled_model_fullgraph_trains_like_eager():
    torch.manual_seed(0)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(12, 6)
            self.rnn = rt.GRU(6, 8, num_layers=2, batch_first=True)
            self.head = torch.nn.Linear(8, 12)

        def forward(self, tokens):
            return self.head(self.rnn(self.emb(tokens))[0])

    model = Model()
    eager = Model()
    eager.load_state_dict(model.state_dict())
    compiled = torch.compile(model, fullgraph=True)
    tokens = torch.randint(0, 12, (4, 9))
    targets = torch.randint(0, 12, (4, 9))
    opts = [torch.optim.Adam(m.parameters(), lr=0.05) for m in (model, eager)]
    before = _ops.recomputed_forwards
    losses = []
    for _ in range(6):
        step = []
        for m, opt in zip((compiled, eager), opts):
            loss = torch.nn.functional.cross_entropy(m(tokens).reshape(-1, 12), targets.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step.append(loss.item())
        losses.append(step)
    assert _ops.recomputed_forwards == before  # the compiled backward found its cache
    assert losses[-1][0] < losses[0][0] - 0.3
    np.testing.assert_allclose([a for a, _ in losses], [b for _, b in losses], rtol=1e-4)
    assert torch._dynamo.config.allow_rnn is False  # torch's own modules unaffected


def test_compiled_packed_sequence_fullgraph():
    ref, ours = pair("lstm", 4, 6, bidirectional=True)

    def run(module, packed):
        out, (h_n, _) = module(packed)
        return out.data, h_n

    compiled = torch.compile(run, fullgraph=True)
    x = torch.randn(7, 3, 4, requires_grad=True)
    packed = pack_padded_sequence(x, torch.tensor([3, 7, 5]), enforce_sorted=False)
    before = _ops.recomputed_forwards
    out, h_n = compiled(ours, packed)
    (out.sum() + h_n.sum()).backward()
    got_grad = x.grad.clone()
    x.grad = None
    packed = pack_padded_sequence(x, torch.tensor([3, 7, 5]), enforce_sorted=False)
    want_out, want_h_n = run(ref, packed)
    (want_out.sum() + want_h_n.sum()).backward()
    torch.testing.assert_close(out, want_out, rtol=2e-4, atol=1e-6)
    torch.testing.assert_close(h_n, want_h_n, rtol=2e-4, atol=1e-6)
    torch.testing.assert_close(got_grad, x.grad, rtol=2e-4, atol=1e-6)
    assert _ops.recomputed_forwards == before


def test_compiled_sorted_packed_sequence_of_equal_lengths():
    # Sorted input without a permutation: B is read from batch_sizes, a data-dependent size
    # in a compiled graph, and every sequence is T long (the eager path copies nothing).
    ref, ours = pair("gru", 3, 4)
    compiled = torch.compile(lambda p: ours(p)[0].data, fullgraph=True)
    packed = pack_padded_sequence(torch.randn(5, 3, 3), torch.tensor([5, 5, 5]))
    torch.testing.assert_close(compiled(packed), ref(packed)[0].data, rtol=2e-4, atol=1e-6)


def test_patch_keeps_parameters_optimizer_and_results():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    model.add_module("lstm", torch.nn.LSTM(3, 5, num_layers=2))
    reference = torch.nn.LSTM(3, 5, num_layers=2)
    reference.load_state_dict(model.lstm.state_dict())
    params = list(model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert rt.patch(model) is model
    assert type(model.lstm) is rt.LSTM and type(model[0]) is torch.nn.Linear
    assert all(a is b for a, b in zip(params, model.parameters()))
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(model.lstm(x)[0], reference(x)[0], rtol=2e-4, atol=1e-6)
    before = model.lstm.weight_hh_l1.detach().clone()
    model.lstm(x)[0].sum().backward()
    opt.step()
    assert not torch.equal(before, model.lstm.weight_hh_l1)
    single = rt.patch(torch.nn.GRU(2, 3))
    assert type(single) is rt.GRU
    with pytest.raises(TypeError, match="torch.nn.Module"):
        rt.patch("model")


def test_state_dicts_load_both_ways():
    ref, ours = pair("gru", 3, 4, num_layers=2, bidirectional=True, bias=False)
    back = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True, bias=False)
    back.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(back.parameters(), ref.parameters()))


def test_fallbacks_compute_torch_results():
    ref, ours = pair("lstm", 3, 4, proj_size=2)
    x = torch.randn(5, 2, 3)
    assert rt.runs_natively(ours, x)  # projections run on the core
    xh = x.to(torch.bfloat16)
    ref, ours = ref.to(torch.bfloat16), ours.to(torch.bfloat16)
    assert not rt.runs_natively(ours, xh)
    torch.testing.assert_close(ours(xh)[0], ref(xh)[0], rtol=0, atol=0)
    for dtype in (torch.bfloat16, torch.float16):
        ref, ours = pair("gru", 3, 4, dtype=dtype)
        xd = x.to(dtype)
        assert not rt.runs_natively(ours, xd)
        torch.testing.assert_close(ours(xd)[0], ref(xd)[0], rtol=0, atol=0)
    ref, ours = pair("rnn", 3, 4)
    assert not rt.runs_natively(ours, torch.empty(5, 2, 3, device="meta"))
    assert rt.runs_natively(ours, x)


def test_double_backward_raises_a_clear_error():
    ours = rt.RNN(2, 3, dtype=torch.float64)
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    (dx,) = torch.autograd.grad(ours(x)[0].pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        dx.sum().backward()


def test_threads_follow_torch_until_rnnkit_is_set():
    state = dict(_ops._thread_state)
    saved = (torch.get_num_threads(), rnnkit.get_num_threads())
    try:
        _ops._thread_state.update(written=rnnkit.get_num_threads(), user_set=False)
        torch.set_num_threads(1)
        module = rt.GRU(2, 3)
        module(torch.randn(3, 1, 2))
        assert rnnkit.get_num_threads() == 1
        rnnkit.set_num_threads(2)
        module(torch.randn(3, 1, 2))
        assert rnnkit.get_num_threads() == 2 and _ops._thread_state["user_set"]
    finally:
        _ops._thread_state.update(state)
        torch.set_num_threads(saved[0])
        rnnkit.set_num_threads(saved[1])


@pytest.mark.parametrize("cell", list(CELLS))
def test_bad_input_raises_torch_errors(cell):
    ref, ours = pair(cell, 3, 4, num_layers=2)
    good_state = torch.zeros(2, 2, 4)
    hx_bad = torch.zeros(2, 5, 4)
    cases = {
        "input size": (torch.randn(5, 2, 7), None),
        "h0 shape": (torch.randn(5, 2, 3), (hx_bad, good_state) if cell == "lstm" else hx_bad),
        "dtype": (torch.randn(5, 2, 3, dtype=torch.float64), None),
        "state dtype": (
            torch.randn(5, 2, 3),
            (good_state.double(), good_state) if cell == "lstm" else good_state.double(),
        ),
        "4-D input": (torch.randn(1, 5, 2, 3), None),
        "2-D state": (
            torch.randn(5, 2, 3),
            (good_state[0], good_state[0]) if cell == "lstm" else good_state[0],
        ),
    }
    for name, (x, hx) in cases.items():
        with pytest.raises((RuntimeError, ValueError)) as want:
            ref(x, hx)
        with pytest.raises(type(want.value)) as got:
            ours(x, hx)
        assert str(got.value) == str(want.value), name


def test_bad_packed_sequence_is_rejected():
    from torch.nn.utils.rnn import PackedSequence

    ours = rt.LSTM(3, 4)
    cases = [
        (torch.randn(6, 3), torch.tensor([3, 2, 2])),  # rows sum to 7, data has 6
        (torch.randn(6, 3), torch.tensor([2, 3, 1])),  # increasing
        (torch.randn(6, 3), torch.tensor([3, 3, 0])),  # a zero batch: a length 0
    ]
    for data, batch_sizes in cases:
        with pytest.raises(ValueError, match="batch_sizes"):
            ours(PackedSequence(data, batch_sizes))


def test_import_rnnkit_does_not_import_torch():
    code = "import sys, rnnkit; assert 'torch' not in sys.modules, 'torch imported'"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
