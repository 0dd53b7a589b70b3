"""Kernel layer of the C++ core (GEMM, sigmoid/tanh) through the test hooks on rnnkit._core.

Every compiled ISA this CPU can run ("plain"; "avx2" on x86-64 with AVX2/FMA; "avx512"
with AVX-512F too) is held to NumPy, and to the determinism the kernels promise: the bits
of an element do not depend on the tile or edge path that computed it, the thread count,
B being prepacked, or (for activations) the element's position in the array; "avx2" and
"avx512" give the same bits.
"""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit
from conftest import AVAILABLE_ISAS, VECTOR_ISAS, needs_threads
from rnnkit import _core

pytestmark = pytest.mark.native

INFO = _core.cpu_info()
DTYPES = [np.float32, np.float64]

# (M, N, K): empty, single, tiny, around the 6-row / 16- or 8-column tiles, the KC=512
# reduction blocks, and the per-step RNN shapes scaled down.
SHAPES = [
    (0, 5, 3),
    (4, 0, 3),
    (3, 5, 0),
    (1, 1, 1),
    (7, 7, 7),
    (1, 7, 1),
    (6, 16, 8),
    (5, 17, 530),
    (13, 33, 9),
    (1, 97, 65),
    (2, 50, 3),
    (3, 40, 31),
    (37, 70, 260),
    (32, 64, 48),
]


def strided(rng: np.random.Generator, rows: int, cols: int, dtype, pad: int = 3) -> np.ndarray:
    """A (rows, cols) view of a wider array: leading dimension cols + pad."""
    big = rng.uniform(-1, 1, size=(rows, cols + pad)).astype(dtype)
    return big[:, :cols]


def operands(rng, kind: str, M: int, N: int, K: int, dtype):
    """A, B in kind's storage (nt: A (M,K), B (N,K); nn: A (M,K), B (K,N); tn: A (K,M), B (K,N))
    and op(A) (M,K), op(B) (K,N) as views."""
    A = strided(rng, K, M, dtype) if kind == "tn" else strided(rng, M, K, dtype)
    B = strided(rng, N, K, dtype, pad=5) if kind == "nt" else strided(rng, K, N, dtype, pad=5)
    opA = A.T if kind == "tn" else A
    opB = B.T if kind == "nt" else B
    return A, B, opA, opB


def run_gemm(kind, A, B, C0, accumulate):
    C = C0.copy()
    _core._gemm(kind, A, B, C, accumulate)
    return C


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["nt", "nn", "tn"])
def test_gemm_matches_numpy(isa, dtype, kind):
    rng = np.random.default_rng(0)
    eps = np.finfo(dtype).eps
    for M, N, K in SHAPES:
        A, B, opA, opB = operands(rng, kind, M, N, K, dtype)
        C0 = strided(rng, M, N, dtype, pad=2)
        for accumulate in (False, True):
            C = run_gemm(kind, A, B, C0, accumulate)
            ref = opA.astype(np.float64) @ opB.astype(np.float64)
            size = np.abs(opA).astype(np.float64) @ np.abs(opB).astype(np.float64)
            if accumulate:
                ref = ref + C0
                size = size + np.abs(C0)
            # A K-term dot product in precision eps is within (K+2)*eps*sum|a*b| (+|C0|);
            # doubled to cover the float64 reference's own rounding.
            bound = 2 * (K + 2) * eps * size + np.finfo(dtype).tiny
            assert C.shape == (M, N)
            assert np.all(np.abs(C - ref) <= bound), (isa, kind, M, N, K, accumulate)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["nt", "nn", "tn", "packed_nt", "packed_nn"])
def test_gemm_plain_is_the_sequential_loop(dtype, kind):
    """ISA plain: s = 0; s = s + round(a_k b_k) for k ascending; C = [C +] s, exactly, for
    every entry point (the packed ones over a column range that splits panels)."""
    _core._set_isa("plain")
    try:
        rng = np.random.default_rng(1)
        M, N, K = 9, 41, 40
        storage = kind.removeprefix("packed_")
        A, B, opA, opB = operands(rng, storage, M, N, K, dtype)
        C0 = rng.uniform(-1, 1, size=(M, N)).astype(dtype)
        s = np.zeros((M, N), dtype)
        for k in range(K):
            s = s + opA[:, k : k + 1] * opB[k : k + 1, :]
        if kind.startswith("packed_"):
            n0, n1 = 3, 37
            for accumulate, want in ((False, s), (True, C0 + s)):
                C = C0.copy()
                _core._gemm_packed(storage, A, B, C, accumulate, n0, n1)
                assert np.array_equal(C[:, n0:n1], want[:, n0:n1])
                assert np.array_equal(C[:, :n0], C0[:, :n0])
                assert np.array_equal(C[:, n1:], C0[:, n1:])
        else:
            assert np.array_equal(run_gemm(kind, A, B, C0, False), s)
            assert np.array_equal(run_gemm(kind, A, B, C0, True), C0 + s)
    finally:
        _core._set_isa("auto")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["nt", "nn", "tn"])
def test_gemm_bits_independent_of_tile(isa, dtype, kind):
    """Each element equals, bit for bit, the same element computed alone (1x1 product, the
    edge path) or in a single row or column: no dependence on tile shape or edges."""
    rng = np.random.default_rng(2)
    M, N, K = 37, 70, 600  # row blocks of 6 and 5, partial column panels, 2 KC blocks
    A, B, opA, opB = operands(rng, kind, M, N, K, dtype)
    C0 = rng.uniform(-1, 1, size=(M, N)).astype(dtype)
    full = run_gemm(kind, A, B, C0, True)

    def sub(rows, cols):
        a = opA[rows, :]
        b = opB[:, cols]
        a_st = np.ascontiguousarray(a.T) if kind == "tn" else a
        b_st = np.ascontiguousarray(b.T) if kind == "nt" else b
        return run_gemm(kind, a_st, b_st, C0[rows, cols], True)

    for i in (0, 5, 17, 36):
        assert np.array_equal(sub(slice(i, i + 1), slice(None)), full[i : i + 1])
    for j in (0, 15, 16, 69):
        assert np.array_equal(sub(slice(None), slice(j, j + 1)), full[:, j : j + 1])
    for i, j in ((3, 9), (36, 69)):
        assert np.array_equal(sub(slice(i, i + 1), slice(j, j + 1)), full[i : i + 1, j : j + 1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["nt", "nn", "tn"])
def test_gemm_every_tile_shape(isa, dtype, kind):
    """M = 1..8 rows run every micro-tile shape (mr = 1..6 rows, each over up to
    max_panels(mr) panels: M = 3 and 7 the 3-row tile over 2 panels): the product matches
    NumPy, and every row equals, bit for bit, the same row computed alone and the packed
    path's."""
    rng = np.random.default_rng(5)
    N, K = 6 * 16 + 5, 40  # six full float panels and an edge
    for M in range(1, 9):
        A, B, opA, opB = operands(rng, kind, M, N, K, dtype)
        C0 = rng.uniform(-1, 1, size=(M, N)).astype(dtype)
        full = run_gemm(kind, A, B, C0, True)
        want = C0.astype(np.float64) + opA.astype(np.float64) @ opB.astype(np.float64)
        tol = 8 * K * np.finfo(dtype).eps * (1 + np.abs(want).max())
        assert np.abs(full - want).max() <= tol, M
        if kind != "tn":  # the per-step path, B packed once
            packed = C0.copy()
            _core._gemm_packed(kind, A, B, packed, True)
            assert np.array_equal(packed, full), M
        for i in range(M):
            a = opA[i : i + 1]
            a_st = np.ascontiguousarray(a.T) if kind == "tn" else a
            assert np.array_equal(run_gemm(kind, a_st, B, C0[i : i + 1], True), full[i : i + 1]), (
                M,
                i,
            )


@pytest.mark.skipif(len(VECTOR_ISAS) < 2, reason="this CPU runs one vector ISA at most")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["nt", "nn", "tn"])
def test_gemm_avx2_and_avx512_same_bits(dtype, kind):
    """The AVX2 and AVX-512 micro-tiles run one FMA chain per element: every shape (each
    tile shape of both, edges, several reduction blocks, the packed per-step path and
    column slices of it) gives the same bits on both."""
    rng = np.random.default_rng(6)
    shapes = [(M, 6 * 16 + 5, 40) for M in range(1, 9)] + [
        (37, 70, 600),
        (64, 520, 96),
        (32, 1024, 256),
        (200, 300, 530),
    ]
    try:
        for M, N, K in shapes:
            A, B, _, _ = operands(rng, kind, M, N, K, dtype)
            C0 = rng.uniform(-1, 1, size=(M, N)).astype(dtype)
            results = {}
            for name in VECTOR_ISAS:
                _core._set_isa(name)
                got = [run_gemm(kind, A, B, C0, acc) for acc in (False, True)]
                if kind != "tn":
                    C = C0.copy()
                    _core._gemm_packed(kind, A, B, C, True, N // 3, N - 7)
                    got.append(C)
                results[name] = got
            for a, b in zip(results["avx2"], results["avx512"]):
                assert np.array_equal(a, b), (M, N, K)
    finally:
        _core._set_isa("auto")


@needs_threads
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["nt", "nn", "tn"])
def test_gemm_bits_independent_of_threads(isa, restore_threads, dtype, kind):
    rng = np.random.default_rng(3)
    # Over the one-off products' threshold (2**21 multiply-adds, gemm_threads.cpp), so split
    # between threads: by rows, by columns (nt prefers those, nn and tn rows) or both (4).
    for M, N, K in [(96, 200, 160), (300, 40, 200), (20, 700, 200), (1, 2000, 300)]:
        assert max(M, 4) * N * K > 2**21
        A, B, _, _ = operands(rng, kind, M, N, K, dtype)
        C0 = rng.uniform(-1, 1, size=(M, N)).astype(dtype)
        results = []
        for t in (1, 2, 3, 4):
            _core.set_num_threads(t)
            results.append(run_gemm(kind, A, B, C0, True))
        for t, result in zip((2, 3, 4), results[1:]):
            assert np.array_equal(results[0], result), (M, N, K, t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["nt", "nn"])
def test_gemm_packed_same_bits_as_unpacked(isa, restore_threads, dtype, kind):
    rng = np.random.default_rng(4)
    for M, N, K in [
        (1, 40, 17),
        (5, 100, 600),
        (32, 64, 128),
        (7, 3, 2),
        (64, 520, 96),
        (1, 2000, 300),
    ]:
        A, B, _, _ = operands(rng, kind, M, N, K, dtype)
        C0 = rng.uniform(-1, 1, size=(M, N)).astype(dtype)
        for accumulate in (False, True):
            ref = run_gemm(kind, A, B, C0, accumulate)
            for t in (1, 2):
                _core.set_num_threads(t)
                C = C0.copy()
                _core._gemm_packed(kind, A, B, C, accumulate)
                assert np.array_equal(C, ref), (M, N, K, accumulate, t)
            # Column slices cutting panels anywhere: same bits, other columns untouched.
            lo, hi = N // 3, N // 3 + (N + 1) // 2
            C = C0.copy()
            _core._gemm_packed(kind, A, B, C, accumulate, lo, hi)
            assert np.array_equal(C[:, lo:hi], ref[:, lo:hi])
            assert np.array_equal(C[:, :lo], C0[:, :lo])
            assert np.array_equal(C[:, hi:], C0[:, hi:])


def test_gemm_hook_rejects_bad_input():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="kind"):
        _core._gemm("xx", a, a, np.zeros((3, 3), np.float32), False)
    with pytest.raises(ValueError, match=r"C must be \(3, 5\)"):
        _core._gemm("nn", a, np.zeros((4, 5), np.float32), np.zeros((3, 4), np.float32), False)
    with pytest.raises(TypeError, match="share one dtype"):
        _core._gemm("nt", a, a.astype(np.float64), np.zeros((3, 3), np.float32), False)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core._gemm("nt", a.astype(np.int32), a, np.zeros((3, 3), np.float32), False)
    with pytest.raises(ValueError, match="contiguous rows"):
        _core._gemm("nt", np.zeros((4, 3), np.float32).T, a, np.zeros((3, 3), np.float32), False)


def test_isa_selection():
    assert INFO["isa"] in INFO["compiled_isas"]
    assert rnnkit.cpu_info() == INFO
    assert INFO["best_isa"] in INFO["compiled_isas"]
    assert INFO["compiled_isas"][0] == "plain"
    assert all(isinstance(INFO[f], bool) for f in ("avx2", "fma", "avx512f", "openmp"))
    assert INFO["available_isas"][0] == "plain"
    assert set(AVAILABLE_ISAS) <= set(INFO["compiled_isas"])
    assert INFO["best_isa"] == AVAILABLE_ISAS[-1]
    if "avx2" in AVAILABLE_ISAS:
        assert INFO["avx2"] and INFO["fma"]
    if "avx512" in AVAILABLE_ISAS:
        assert INFO["avx2"] and INFO["fma"] and INFO["avx512f"]
    with pytest.raises(ValueError, match="unknown ISA"):
        _core._set_isa("sse9")
    for name in ("avx2", "avx512"):
        if name not in AVAILABLE_ISAS:
            with pytest.raises(ValueError, match="not available"):
                _core._set_isa(name)
    try:
        for name in AVAILABLE_ISAS:
            _core._set_isa(name)
            assert _core._isa_name() == name
            assert _core.cpu_info()["isa"] == name
            assert rnnkit.cpu_info()["isa"] == name
    finally:
        _core._set_isa("auto")
    assert _core._isa_name() == INFO["best_isa"]


def sample_inputs(dtype) -> np.ndarray:
    rng = np.random.default_rng(5)
    xs = [
        rng.uniform(-30, 30, 5000),
        rng.normal(0, 1, 5000),
        np.linspace(-2, 2, 4001),
        10.0 ** rng.uniform(-40, 1, 1000) * rng.choice([-1, 1], 1000),
    ]
    return np.concatenate(xs).astype(dtype)


def sigmoid_ref(x: np.ndarray) -> np.ndarray:
    """Sigmoid in float64 without overflow: exp of -|x| only."""
    x = x.astype(np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


@pytest.mark.parametrize("which", ["sigmoid", "tanh"])
def test_activation_float64_accuracy(isa, which):
    x = sample_inputs(np.float64)
    y = _core._activation(which, x)
    ref = sigmoid_ref(x) if which == "sigmoid" else np.tanh(x)
    # Both sides carry a few ulp (2.2e-16); the rnnkit float64 results rely on this.
    assert np.all(np.abs(y - ref) <= 1e-15 * np.abs(ref)), which


@pytest.mark.parametrize("which", ["sigmoid", "tanh"])
def test_activation_float32_accuracy(isa, which):
    x = sample_inputs(np.float32)
    y = _core._activation(which, x)
    ref = sigmoid_ref(x) if which == "sigmoid" else np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    err = np.abs(y.astype(np.float64) - ref) / ulp
    # activations.h: within 3 ulp (docs/performance.md records the worst error found).
    assert err.max() <= 3.0, (which, float(err.max()), float(x[np.argmax(err)]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_special_values(isa, dtype):
    inf, nan = np.inf, np.nan
    x = np.array([1e4, -1e4, inf, -inf, 0.0, -0.0, nan, 1e-30, 20.0, -20.0], dtype)
    t = _core._activation("tanh", x)
    s = _core._activation("sigmoid", x)
    assert list(t[:4]) == [1, -1, 1, -1]
    assert t[4] == 0 and not np.signbit(t[4]) and t[5] == 0 and np.signbit(t[5])
    assert np.isnan(t[6]) and np.isnan(s[6])
    assert t[7] == dtype(1e-30)
    assert list(s[:6]) == [1, 0, 1, 0, 0.5, 0.5]
    assert np.all(np.isfinite(np.delete(t, 6))) and np.all(np.isfinite(np.delete(s, 6)))
    assert s[9] > 0 and s[8] < 1 or dtype == np.float32  # float32 sigmoid(20) rounds to 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", ["sigmoid", "tanh"])
def test_activation_bits_independent_of_position(isa, dtype, which):
    x = sample_inputs(dtype)[:64]
    full = _core._activation(which, x)
    for start in range(9):
        for stop in (start, start + 1, start + 7, start + 13, 64):
            part = _core._activation(which, x[start:stop].copy())
            assert np.array_equal(part, full[start:stop]), (start, stop)
    shaped = _core._activation(which, x.reshape(8, 8))
    assert shaped.shape == (8, 8) and np.array_equal(shaped.ravel(), full)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", ["sigmoid", "tanh"])
def test_activation_bits_independent_of_neighbours(isa, dtype, which):
    # A vector of moderate inputs takes a fast path; one huge or NaN lane sends its whole
    # vector down the general path. Either way every other lane gets the same bits.
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(256) * 3).astype(dtype)
    alone = _core._activation(which, x)
    for wild in (np.nan, np.inf, -1e4, 70.0, -11.0):
        mixed = x.copy()
        mixed[5::8] = wild  # one lane of every 8 (a float32 vector; two double vectors)
        y = _core._activation(which, mixed)
        keep = np.ones(x.size, bool)
        keep[5::8] = False
        assert np.array_equal(y[keep], alone[keep]), (which, wild)


def wild_inputs(dtype) -> np.ndarray:
    """Random inputs of every scale, then the values each path treats apart: NaN, +-inf,
    +-0, subnormals, huge values, and both sides of the thresholds where the code changes
    formula or clamps (0.55, 10 / 20 for the tanh clamp, 64 / 640 for the sigmoid fast
    path, the exp underflow at -104 / -746)."""
    rng = np.random.default_rng(11)
    tiny = np.finfo(dtype).smallest_subnormal
    special = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, tiny, -tiny, 1e4, -1e4, 3e38]
    for edge in (0.55, 10.0, 20.0, 40.0, 64.0, 104.0, 640.0, 746.0):
        special += [edge, -edge, np.nextafter(edge, 0), -np.nextafter(edge, 0)]
    x = np.concatenate([sample_inputs(dtype), np.array(special, dtype=np.float64)])
    return rng.permutation(x.astype(dtype))


@pytest.mark.skipif(len(VECTOR_ISAS) < 2, reason="this CPU runs one vector ISA at most")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", ["sigmoid", "tanh"])
def test_activation_avx2_and_avx512_same_bits(dtype, which):
    """The AVX-512 activations run the AVX2 code's operations on wider registers: every
    element (NaN payloads included) gets the same bits, for every length (the tails of 8
    and 16 floats, 4 and 8 doubles) and start, and with wild lanes among tame ones."""
    x = wild_inputs(dtype)
    pieces = [x] + [x[s : s + n].copy() for s in (0, 3, 13) for n in range(0, 40)]
    try:
        results = {}
        for name in VECTOR_ISAS:
            _core._set_isa(name)
            results[name] = [_core._activation(which, p).tobytes() for p in pieces]
        assert results["avx2"] == results["avx512"]
    finally:
        _core._set_isa("auto")
    # Same on the tame vectors only: the fast paths of both widths agree too.
    tame = np.clip(np.nan_to_num(x), -9, 9).astype(dtype)
    try:
        got = {}
        for name in VECTOR_ISAS:
            _core._set_isa(name)
            got[name] = _core._activation(which, tame).tobytes()
        assert got["avx2"] == got["avx512"]
    finally:
        _core._set_isa("auto")


def test_activation_hook_rejects_bad_input():
    with pytest.raises(TypeError, match="float32 or float64"):
        _core._activation("tanh", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core._activation("tanh", np.zeros((4, 4))[:, 1])
    with pytest.raises(ValueError, match="'sigmoid' or 'tanh'"):
        _core._activation("relu", np.zeros(3))


def test_bench_hooks_run():
    r = _core._bench_gemm("packed", 4, 40, 8, "float64", 1)
    assert r["median_s"] > 0 and r["flops"] == 2 * 4 * 40 * 8
    peak = _core._fma_peak_gflops(0.01)
    assert peak > 0 if VECTOR_ISAS else peak == 0
