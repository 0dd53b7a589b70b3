"""The native backend keeps the weights packed between calls (rnnkit._packed): every way a
parameter can change is seen by the next call, never silently ignored. Each test compares
the cached module with a fresh module holding the same parameters (which packs anew)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import rnnkit
from rnnkit import _native

CLASSES = [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN]


def make(cls, **kw):
    kw = {"num_layers": 2, "dtype": "float64", "seed": 3, **kw}
    return cls(4, 6, **kw)


X = np.random.default_rng(0).standard_normal((5, 2, 4))


def fresh_result(m, x=X):
    """What m's call gives when nothing is cached: a new module with m's parameters."""
    ref = type(m)(4, 6, num_layers=m.num_layers, dtype=m.dtype, seed=99)
    ref.load_state_dict(m.state_dict())
    ref.train(m.training)
    return ref(x)[0]


def check(m, x=X):
    np.testing.assert_array_equal(m(x)[0], fresh_result(m, x))


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.__imul__(1.5),
        lambda p: p.__setitem__((0, 0), 2.0),
        lambda p: p[1:].__setitem__(Ellipsis, 0.25),  # through a view
        lambda p: p.T.__setitem__((0, 1), -1.0),  # through a transposed view
        lambda p: np.copyto(p, 0.1),
        lambda p: np.add(p, 1.0, out=p),
        lambda p: np.add.at(p, (0, 0), 1.0),
        lambda p: p.fill(0.3),
        lambda p: p.reshape(-1).__setitem__(3, 7.0),
        lambda p: np.putmask(p, p > 0, 0.0),
        lambda p: p.sort(axis=1),
    ],
)
def test_writes_in_place_are_seen_in_eval(cls, write):
    m = make(cls).eval()
    m(X)  # packs
    write(m.parameters()["weight_hh_l1"])
    check(m)
    write(m.parameters()["weight_ih_l0"])
    check(m)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_view_made_before_packing_is_seen(cls):
    m = make(cls).eval()
    view = m.parameters()["weight_hh_l0"][2:]
    m(X)
    view *= 3.0
    check(m)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "make_opt",
    [
        lambda m: rnnkit.optim.SGD(m, lr=0.1),
        lambda m: rnnkit.optim.SGD(m, lr=0.1, momentum=0.9, nesterov=True),
        lambda m: rnnkit.optim.Adam(m, lr=0.01),
    ],
)
def test_optimiser_steps_are_seen(cls, make_opt):
    m = make(cls)
    opt = make_opt(m)
    for _ in range(3):
        out, _ = m(X)
        m.backward(np.ones_like(out))
        opt.step()
        m.eval()
        check(m)
        m.train()
        check(m)  # training calls see them too


@pytest.mark.parametrize("cls", CLASSES)
def test_load_state_dict_is_seen(cls):
    m = make(cls).eval()
    m(X)
    m.load_state_dict(make(cls, seed=7).state_dict())
    np.testing.assert_array_equal(m(X)[0], make(cls, seed=7).eval()(X)[0])


def test_replacing_an_array_in_the_parameters_dict_changes_nothing():
    """parameters() returns a new dict of the live arrays: replacing an entry of it does
    not touch the module (assign into the array, or use load_state_dict)."""
    m = make(rnnkit.LSTM).eval()
    before = m(X)[0]
    params = m.parameters()
    params["weight_hh_l0"] = np.zeros((24, 6))
    np.testing.assert_array_equal(m(X)[0], before)
    assert m.parameters()["weight_hh_l0"] is not params["weight_hh_l0"]


def test_retyping_or_reshaping_a_parameter_raises():
    m = make(rnnkit.GRU).eval()
    m(X)
    m.parameters()["weight_hh_l0"].shape = (6, 18)
    with pytest.raises(ValueError, match="'weight_hh_l0' was changed in place to shape"):
        m(X)


@pytest.mark.parametrize("cls", CLASSES)
def test_backend_switch(cls):
    m = make(cls).eval()
    m(X)
    m.backend = "numpy"
    m.parameters()["bias_ih_l0"][:] = 0.5
    numpy_out = m(X)[0]
    m.backend = "native"
    np.testing.assert_allclose(m(X)[0], numpy_out, rtol=1e-12, atol=1e-12)
    check(m)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes(dtype):
    m = make(rnnkit.LSTM, dtype=dtype).eval()
    m(X)
    m.parameters()["weight_ih_l1"][0] += 1
    assert m(X)[0].dtype == dtype
    check(m)


def test_writes_numpy_cannot_see_need_mark_parameters_changed():
    """A plain-ndarray view (np.asarray) bypasses the write counter: the eval call still
    uses the old packed weights until mark_parameters_changed() (the documented hole);
    training calls check the checksums and see it at once."""
    m = make(rnnkit.LSTM).eval()
    before = m(X)[0]
    np.asarray(m.parameters()["weight_hh_l0"])[0, 0] += 1.0
    np.testing.assert_array_equal(m(X)[0], before)
    m.mark_parameters_changed()
    check(m)
    np.asarray(m.parameters()["weight_hh_l0"])[0, 0] += 1.0
    m.train()
    check(m)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_track_their_own_writes(how):
    m = make(rnnkit.GRU).eval()
    m(X)
    c = copy.deepcopy(m) if how == "deepcopy" else pickle.loads(pickle.dumps(m))
    c(X)
    c.parameters()["weight_hh_l0"] *= 2.0
    check(c)
    np.testing.assert_array_equal(m(X)[0], fresh_result(m))  # the original is unchanged


def test_training_still_refuses_a_weight_changed_before_backward():
    m = make(rnnkit.LSTM)
    out, _ = m(X)
    m.parameters()["weight_hh_l0"][0, 0] += 1e-3
    with pytest.raises(RuntimeError, match="weight_hh_l0 was modified in place"):
        m.backward(np.ones_like(out))


def test_packed_stack_checks_its_weights():
    """stack_forward refuses packed weights of another shape, dtype or object type."""
    m = make(rnnkit.LSTM)
    weights = m._weights()
    other = rnnkit.LSTM(4, 5, num_layers=2, dtype="float64")._weights()
    x, h0 = np.zeros((1, 1, 4)), np.zeros((2, 1, 6))

    def call(packed, x=x, h0=h0, weights=weights):
        return _native.stack_forward(
            "lstm", x, h0, h0, weights, None, None, False, num_directions=1, packed=packed
        )

    with pytest.raises(ValueError, match="was not packed from weights of this mode"):
        call(_native.pack_weights("lstm", other, 1))
    with pytest.raises(TypeError, match="packed must be a PackedStack or None, got int"):
        call(3)
    f32 = [tuple(w.astype(np.float32) for w in e) for e in weights]
    with pytest.raises(ValueError, match="was not packed"):
        call(
            _native.pack_weights("lstm", weights, 1),
            x.astype(np.float32),
            h0.astype(np.float32),
            f32,
        )
    np.testing.assert_array_equal(call(_native.pack_weights("lstm", weights, 1))[0], call(None)[0])


# -- an LSTM with a projection: W_hr is packed with the other weights -----------------------


def make_projected(**kw):
    return rnnkit.LSTM(4, 6, num_layers=2, proj_size=3, dtype="float64", seed=3, **kw)


def check_projected(m, x=X):
    """m's call against a fresh projected module holding m's parameters."""
    ref = rnnkit.LSTM(4, 6, num_layers=2, proj_size=3, dtype="float64", seed=99)
    ref.load_state_dict(m.state_dict())
    ref.train(m.training)
    np.testing.assert_array_equal(m(x)[0], ref(x)[0])


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.__imul__(1.5),
        lambda p: p[1:].__setitem__(Ellipsis, 0.25),
        lambda p: np.copyto(p, 0.1),
        lambda p: p.fill(0.3),
    ],
)
def test_writes_into_weight_hr_are_seen_in_eval(write):
    m = make_projected().eval()
    m(X)  # packs
    before = m(X)[0]
    write(m.parameters()["weight_hr_l0"])
    check_projected(m)
    assert not np.array_equal(m(X)[0], before)
    write(m.parameters()["weight_hr_l1"])
    check_projected(m)


def test_weight_hr_optimiser_steps_and_unseen_writes():
    m = make_projected()
    opt = rnnkit.optim.SGD(m, lr=0.1)
    out, _ = m(X)
    m.backward(np.ones_like(out))
    assert np.abs(m.grads["weight_hr_l1"]).max() > 0
    opt.step()
    m.eval()
    check_projected(m)
    before = m(X)[0]
    np.asarray(m.parameters()["weight_hr_l0"])[0, 0] += 1.0  # bypasses the write counter
    np.testing.assert_array_equal(m(X)[0], before)
    m.mark_parameters_changed()
    check_projected(m)
    np.asarray(m.parameters()["weight_hr_l0"])[0, 0] += 1.0
    m.train()  # training checksums W_hr with the others and repacks
    check_projected(m)


def test_packed_stack_checks_its_projection():
    """Packed weights with and without a projection, or of another P, are not exchangeable."""
    m = make_projected()
    weights = m._weights()
    x, h0, c0 = np.zeros((1, 1, 4)), np.zeros((2, 1, 3)), np.zeros((2, 1, 6))
    other = rnnkit.LSTM(4, 6, num_layers=2, proj_size=2, dtype="float64")._weights()
    plain = rnnkit.LSTM(4, 3, num_layers=2, dtype="float64")._weights()

    def call(packed):
        return _native.stack_forward(
            "lstm", x, h0, c0, weights, None, None, False, num_directions=1, packed=packed
        )

    for wrong in (other, plain):
        with pytest.raises(ValueError, match="was not packed from weights of this mode"):
            call(_native.pack_weights("lstm", wrong, 1))
    np.testing.assert_array_equal(call(_native.pack_weights("lstm", weights, 1))[0], call(None)[0])
