"""Shared test helpers, defined once for every test file: the modes and their public
modules, small modules and random arrays, the thread-count and ISA fixtures, the check that
a thread team formed, random weight lists in the backend contract's layout and copying them
into (or out of) torch.nn.RNN / LSTM / GRU. Import them with
``from conftest import make_module, rand, MODES``; fixtures need no import."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import rnnkit
from rnnkit import _core

# ---------------------------------------------------------------------------------------
# Modes, cells and their modules

# Gates per mode (the stacked gate blocks of W_ih and W_hh), from the core's table of cell
# kinds, so every mode the core runs is tested.
GATES = {mode: facts["gates"] for mode, facts in _core.cell_kinds().items()}
MODES = tuple(GATES)
TORCH_MODES = ("rnn_tanh", "rnn_relu", "lstm", "gru")  # torch has no reset-before GRU
CELLS = ("rnn", "lstm", "gru")  # the three public classes, with their defaults
BACKENDS = ("native", "numpy")

# The public module running each mode or cell: (class, constructor arguments beyond the
# sizes). The arguments mean the same to the torch.nn class of a torch mode.
MODULES = {
    "rnn": (rnnkit.RNN, {}),
    "rnn_tanh": (rnnkit.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (rnnkit.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTM, {}),
    "gru": (rnnkit.GRU, {}),
    "gru_reset_before": (rnnkit.GRU, {"reset_after": False}),
}

# The small modules' sizes: T steps, B sequences, IN input features, H hidden units.
T, B, IN, H = 5, 3, 4, 6


def make_module(
    cell: str, backend: str = "native", *, input_size: int = IN, hidden_size: int = H, **kwargs
):
    """A module of ``cell`` (a key of MODULES) on ``backend``, input_size IN and hidden_size
    H, float64 and seed 0 unless told; other keyword arguments go to the constructor."""
    cls, extra = MODULES[cell]
    kwargs = {"dtype": "float64", "seed": 0, **extra, **kwargs}
    return cls(input_size, hidden_size, backend=backend, **kwargs)


def torch_class(mode: str):
    """The torch.nn class running ``mode`` (one of TORCH_MODES); its arguments are
    MODULES[mode][1]."""
    import torch

    classes = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    return torch.nn.RNN if mode.startswith("rnn_") else classes[mode]


def rand(shape, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Standard normal values of ``shape`` from a generator seeded with ``seed``."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def rss_bytes() -> int:
    """Resident memory of this process (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


# ---------------------------------------------------------------------------------------
# Threads and ISAs

# Marks a test comparing 1 and more threads: a build without threads runs every count on one.
needs_threads = pytest.mark.skipif(
    not _core.have_threads(),
    reason="built without threads: every thread count runs on one thread, nothing to compare",
)


@pytest.fixture
def restore_threads():
    """Restores the core's thread count the test found (the test may change it)."""
    before = _core.get_num_threads()
    yield
    _core.set_num_threads(before)


@contextlib.contextmanager
def team_forms():
    """Fails unless the block ran at least one time loop on a team of more than one thread
    (team.h): a multi-thread run whose shapes never form a team compares nothing."""
    before = _core._teams_formed()
    # On a loaded machine a worker may miss the pool's join window and the call would run
    # on fewer threads (same bits, but nothing compared): wait for full teams here.
    _core._set_wait_for_full_teams(True)
    try:
        yield
    finally:
        _core._set_wait_for_full_teams(False)
    assert _core._teams_formed() > before, (
        "no thread team formed: the shapes are too small for one, or the core no longer "
        "splits its time loops between threads"
    )


@contextlib.contextmanager
def on_threads(threads: int):
    """Runs the block on `threads` threads (callers restore the count: restore_threads);
    on more than one, checks that a thread team formed (team_forms)."""
    _core.set_num_threads(threads)
    if threads == 1:
        yield
        return
    with team_forms():
        yield


def unsorting_order(lengths: np.ndarray) -> np.ndarray:
    """A fixed permutation of a batch with sorted lengths that leaves them unsorted."""
    order = np.random.default_rng(0).permutation(len(lengths))
    assert np.any(np.diff(lengths[order]) > 0)
    return order


def assert_same_bits_in_order(want: dict, got: dict, order: np.ndarray) -> None:
    """got: the results of want's problem with the batch taken in `order` (every result's
    batch axis is axis 1). Each sequence's results have the same bits; the weight
    gradients ("grad ..."), which sum the rows in another order, are close."""
    assert want.keys() == got.keys()
    for name, a in want.items():
        if name.startswith("grad "):
            np.testing.assert_allclose(got[name], a, rtol=1e-5, atol=1e-5, err_msg=name)
        else:
            assert a[:, order].tobytes() == got[name].tobytes(), name


# The kernel ISAs this build and CPU run ("plain" first), and the vector ones ("avx2",
# "avx512"): tests comparing vector ISAs need two (on a CPU without AVX-512 there is
# nothing to compare).
AVAILABLE_ISAS = _core.cpu_info()["available_isas"]
VECTOR_ISAS = [name for name in AVAILABLE_ISAS if name != "plain"]


@pytest.fixture(params=AVAILABLE_ISAS)
def isa(request):
    """Runs the test once per available ISA, forced; back to automatic afterwards."""
    _core._set_isa(request.param)
    yield request.param
    _core._set_isa("auto")


# ---------------------------------------------------------------------------------------
# Weights in the backend contract's layout, and torch modules holding them


def make_weights(
    mode: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    num_directions: int,
    bias: bool,
    dtype,
    rng: np.random.Generator,
    scale: float = 0.5,
) -> list:
    """Random contract-layout weights: L*D tuples (w_ih (G*H, I_k), w_hh (G*H, H), b_ih, b_hh),
    entry k*D + d, biases (G*H,) or None; uniform in (-scale, scale)."""
    gh = GATES[mode] * hidden_size
    weights = []
    for k in range(num_layers):
        in_k = input_size if k == 0 else num_directions * hidden_size
        for _ in range(num_directions):
            shapes = [(gh, in_k), (gh, hidden_size)] + ([(gh,), (gh,)] if bias else [])
            arrays = [rng.uniform(-scale, scale, s).astype(dtype) for s in shapes]
            weights.append(tuple(arrays) if bias else (arrays[0], arrays[1], None, None))
    return weights


def param_names(num_layers: int, num_directions: int, bias: bool) -> list:
    """Torch parameter names per contract entry k*D + d, in (w_ih, w_hh, b_ih, b_hh) order
    (None for absent biases)."""
    names = []
    for k in range(num_layers):
        for d in range(num_directions):
            sfx = f"_l{k}" + ("_reverse" if d == 1 else "")
            kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            names.append(
                tuple(f"{kind}{sfx}" if bias or i < 2 else None for i, kind in enumerate(kinds))
            )
    return names


def torch_module(mode: str, weights: list, num_directions: int, dtype=None):
    """A torch.nn.RNN/LSTM/GRU (time-major, eval mode, no dropout) holding ``weights``.
    Torch has no reset-before GRU, so "gru_reset_before" raises ValueError."""
    import torch

    if mode == "gru_reset_before":
        raise ValueError("torch.nn.GRU has no reset_after=False variant")
    w_ih0, w_hh0, b_ih0, _ = weights[0]
    hidden = w_hh0.shape[1]
    kwargs = dict(
        input_size=w_ih0.shape[1],
        hidden_size=hidden,
        num_layers=len(weights) // num_directions,
        bias=b_ih0 is not None,
        bidirectional=num_directions == 2,
        dtype=dtype or torch.from_numpy(w_ih0).dtype,
    )
    module = torch_class(mode)(**MODULES[mode][1], **kwargs)
    names = param_names(kwargs["num_layers"], num_directions, kwargs["bias"])
    with torch.no_grad():
        for entry, entry_names in zip(weights, names):
            for array, name in zip(entry, entry_names):
                if name is not None:
                    getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(array)))
    return module.eval()


def lstm_by_kernels(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """One LSTM layer written out with the kernel test hooks (each product and sum rounded
    once, no fused multiply-add), x (T, B, I), h0 and c0 (B, H): out (T, B, H), h_T, c_T and
    the state a training forward keeps, per step ([i, f, g, o] (B, 4H), c_{t-1}, tanh(c_t),
    h_{t-1})."""
    T, B, n_in = x.shape
    H = w_hh.shape[1]
    act = _core._activation
    pre = np.zeros((T * B, 4 * H), dtype=x.dtype)
    _core._gemm("nt", x.reshape(T * B, n_in), w_ih, pre, False)
    pre = pre.reshape(T, B, 4 * H)
    bias = None if b_ih is None else b_ih + b_hh
    h, c = h0.copy(), c0.copy()
    out = np.empty((T, B, H), dtype=x.dtype)
    kept = []
    for t in range(T):
        a = pre[t].copy()
        _core._gemm("nt", h, w_hh, a, True)
        if bias is not None:
            a = a + bias
        gates = np.concatenate(
            [
                act("sigmoid", a[:, :H].copy()),
                act("sigmoid", a[:, H : 2 * H].copy()),
                act("tanh", a[:, 2 * H : 3 * H].copy()),
                act("sigmoid", a[:, 3 * H :].copy()),
            ],
            axis=1,
        )
        i, f, g, o = (gates[:, q * H : (q + 1) * H] for q in range(4))
        c_new = f * c + i * g
        tc = act("tanh", c_new)
        kept.append((gates, c, tc, h))
        h, c = o * tc, c_new
        out[t] = h
    return out, h, c, kept
