"""The cell variants' gradients (activations, clip, peepholes, input_forget, reverse)
against central finite differences, in float64, through the public modules.

For a random linear functional  loss = sum(out*A) + sum(h_n*Bh) (+ sum(c_n*C))  the
gradients of backward (x, the initial states, every parameter incl. weight_ph) are compared
with central differences along a random unit direction per array. The NumPy reference
is checked here; tests/test_variants.py holds the native core to it.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import rnnkit

EPS = 1e-6
RTOL = 2e-6
ATOL = 1e-8

# Activations whose derivative is smooth where the random pre-activations fall (kinks are
# met with probability 0); each also runs with clip.
SMOOTH = ["Sigmoid", "Tanh", "Softsign", "Softplus", ("ScaledTanh", 0.7, 1.3), ("Affine", 0.5, 0.1)]
KINKED = [
    "Relu",
    ("LeakyRelu", 0.1),
    ("ThresholdedRelu", 0.2),
    ("HardSigmoid", 0.3, 0.4),
    ("Elu", 0.8),
]

# (cell, options)
CASES = [
    ("LSTM", dict(peepholes=True)),
    ("LSTM", dict(input_forget=True)),
    ("LSTM", dict(peepholes=True, input_forget=True, clip=0.8)),
    ("LSTM", dict(activations=["Softsign", "Elu", ("ScaledTanh", 0.9, 1.1)])),
    ("LSTM", dict(activations=[("HardSigmoid", 0.3, 0.4), "Softplus", "Relu"], clip=1.5)),
    ("LSTM", dict(reverse=True, peepholes=True)),
    ("GRU", dict(activations=["Softsign", ("LeakyRelu", 0.1)], clip=0.9)),
    ("GRU", dict(activations=[("HardSigmoid", 0.2, 0.5), ("ThresholdedRelu", 0.2)], reverse=True)),
    ("GRU", dict(activations=["Sigmoid", ("Affine", 0.5, 0.1)], reset_after=False, clip=0.7)),
    ("GRU", dict(activations=["Softplus", "Elu"], reset_after=False, reverse=True)),
    ("RNN", dict(activations=["Softsign"], clip=0.6)),
    ("RNN", dict(activations=[("ScaledTanh", 0.8, 1.2)], reverse=True)),
    ("RNN", dict(activations=[("Elu", 0.8)])),
    ("RNN", dict(activations=[("LeakyRelu", 0.1)], clip=1.2)),
]


def _loss_and_grads(module, x, h0, coef, lengths):
    out, state = module(x, h0, lengths=lengths)
    states = state if isinstance(state, tuple) else (state,)
    loss = np.sum(out * coef[0]) + sum(np.sum(s * c) for s, c in zip(states, coef[1:]))
    return loss, out, state


# Every case at 1 and 2 layers, and bidirectional where it has no reverse (the two raise:
# test_variants.py).
GRAD_CASES = [
    (cell, options, layers, bidirectional)
    for cell, options in CASES
    for layers, bidirectional in [(1, False), (2, False), (2, True)]
    if not (bidirectional and options.get("reverse"))
]


@pytest.mark.parametrize("cell,options,layers,bidirectional", GRAD_CASES)
def test_reference_gradients_match_central_differences(cell, options, layers, bidirectional):
    T, B, n_in, H = 4, 3, 3, 4
    rng = np.random.default_rng(zlib.crc32(f"{cell}{options}{layers}{bidirectional}".encode()))
    m = getattr(rnnkit, cell)(
        n_in,
        H,
        num_layers=layers,
        bidirectional=bidirectional,
        dtype="float64",
        backend="numpy",
        seed=1,
        **options,
    )
    D = 2 if bidirectional else 1
    x = rng.standard_normal((T, B, n_in))
    states = (layers * D, B, H)
    h0 = rng.standard_normal(states)
    hx = (h0, rng.standard_normal(states)) if cell == "LSTM" else h0
    lengths = np.array([4, 2, 3])
    n_states = 2 if cell == "LSTM" else 1
    coef = [rng.standard_normal((T, B, D * H))] + [
        rng.standard_normal(states) for _ in range(n_states)
    ]
    _loss_and_grads(m, x, hx, coef, lengths)
    dx, _ = m.backward(coef[0], tuple(coef[1:]) if cell == "LSTM" else coef[1])
    analytic = {"x": dx, **{n: g.copy() for n, g in m.grads.items()}}
    inputs = {"x": x}
    params = m.parameters()
    m.eval()

    def loss():
        return _loss_and_grads(m, inputs["x"], hx, coef, lengths)[0]

    for name, arr in [("x", x), *params.items()]:
        v = rng.standard_normal(arr.shape)
        v /= np.linalg.norm(v)
        saved = arr.copy()
        arr[...] = saved + EPS * v
        up = loss()
        arr[...] = saved - EPS * v
        down = loss()
        arr[...] = saved
        numeric = (up - down) / (2 * EPS)
        assert np.isclose(np.sum(analytic[name] * v), numeric, rtol=RTOL, atol=ATOL), name
    if options.get("input_forget"):
        for name, g in m.grads.items():
            if name.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
                assert not np.any(g[H : 2 * H]), f"{name}: f rows must get no gradient"
