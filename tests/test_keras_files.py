"""rnnkit.keras.load on files written here with h5py (no Keras needed): a Keras 2 legacy
file against an independent NumPy LSTM, the Keras 2 hard_sigmoid, and damaged or
inconsistent files, which must raise ValueError naming the layer and the problem."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="rnnkit.keras reads Keras files with h5py")

import rnnkit.keras  # noqa: E402

pytestmark = pytest.mark.native

N_IN, H, UNITS, T, B = 3, 4, 2, 5, 3


def lstm_config(name="lstm", **options):
    config = {
        "name": name,
        "units": H,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "return_sequences": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
    }
    config.update(options)
    return {"class_name": "LSTM", "config": config}


def model_config(lstm=None, extra_layers=()):
    layers = [
        {
            "class_name": "InputLayer",
            "config": {"batch_shape": [None, T, N_IN], "dtype": "float32"},
        },
        lstm or lstm_config(),
        {
            "class_name": "Dense",
            "config": {"name": "dense", "units": UNITS, "activation": "linear"},
        },
        *extra_layers,
    ]
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def weights(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "kernel": rng.standard_normal((N_IN, 4 * H)).astype("float32"),
        "recurrent_kernel": rng.standard_normal((H, 4 * H)).astype("float32"),
        "bias": rng.standard_normal(4 * H).astype("float32"),
        "dense_kernel": rng.standard_normal((H, UNITS)).astype("float32"),
        "dense_bias": rng.standard_normal(UNITS).astype("float32"),
    }


def write_keras(path, config, w, drop=(), replace=None):
    """A Keras 3 .keras zip; ``drop`` leaves weight datasets out, ``replace`` swaps some."""
    arrays = {
        "layers/lstm/cell/vars/0": w["kernel"],
        "layers/lstm/cell/vars/1": w["recurrent_kernel"],
        "layers/lstm/cell/vars/2": w["bias"],
        "layers/dense/vars/0": w["dense_kernel"],
        "layers/dense/vars/1": w["dense_bias"],
    }
    arrays.update(replace or {})
    h5_path = path.with_suffix(".weights.h5")
    with h5py.File(h5_path, "w") as f:
        for key, value in arrays.items():
            if key not in drop:
                f[key] = value
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.write(h5_path, "model.weights.h5")
    return path


def write_legacy(path, config, w, version="2.15.0"):
    """A Keras 2 style full-model .h5: weight_names ending in ':0', as Keras 2 wrote them."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = version
        root = f.create_group("model_weights")
        for layer, names in (
            (
                "lstm",
                [
                    ("lstm/lstm_cell/kernel:0", "kernel"),
                    ("lstm/lstm_cell/recurrent_kernel:0", "recurrent_kernel"),
                    ("lstm/lstm_cell/bias:0", "bias"),
                ],
            ),
            ("dense", [("dense/kernel:0", "dense_kernel"), ("dense/bias:0", "dense_bias")]),
        ):
            group = root.create_group(layer)
            group.attrs["weight_names"] = [n.encode() for n, _ in names]
            for n, key in names:
                group[n] = w[key]
    return path


def numpy_lstm(x, w, recurrent_activation):
    """Keras's LSTM equations, written out here: gates [i, f, c, o] in the kernel's columns."""
    h = np.zeros((x.shape[0], H))
    c = np.zeros((x.shape[0], H))
    for t in range(x.shape[1]):
        z = x[:, t] @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"]
        i, f, g, o = (z[:, k * H : (k + 1) * H] for k in range(4))
        c = recurrent_activation(f) * c + recurrent_activation(i) * np.tanh(g)
        h = recurrent_activation(o) * np.tanh(c)
    return h @ w["dense_kernel"] + w["dense_bias"]


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.fixture
def x():
    return np.random.default_rng(1).standard_normal((B, T, N_IN)).astype("float32")


@pytest.mark.parametrize("fmt, isolated", [("keras", True), ("legacy", False)])
def test_handwritten_files_equal_numpy_lstm(tmp_path, x, fmt, isolated):
    w = weights()
    write = write_keras if fmt == "keras" else write_legacy
    path = write(tmp_path / f"m.{fmt}", model_config(), w)
    model = rnnkit.keras.load(path, isolated=isolated)
    np.testing.assert_allclose(model(x), numpy_lstm(x, w, sigmoid), atol=1e-5)


def test_hard_sigmoid_follows_the_files_keras_version(tmp_path, x):
    w = weights()
    config = model_config(lstm_config(recurrent_activation="hard_sigmoid"))
    k2 = write_legacy(tmp_path / "k2.h5", config, w, version="2.15.0")
    k3 = write_legacy(tmp_path / "k3.h5", config, w, version="3.15.1")
    keras2, keras3 = (rnnkit.keras.load(p, isolated=False) for p in (k2, k3))
    np.testing.assert_allclose(
        keras2(x), numpy_lstm(x, w, lambda z: np.clip(0.2 * z + 0.5, 0, 1)), atol=1e-5
    )
    np.testing.assert_allclose(
        keras3(x), numpy_lstm(x, w, lambda z: np.clip(z + 3, 0, 6) / 6), atol=1e-5
    )


def load_error(path, kind=ValueError, isolated=False):
    """The message of the error loading ``path`` raises (in this process unless
    ``isolated``: the errors are the same, a child process costs about a second)."""
    with pytest.raises(kind) as info:
        rnnkit.keras.load(path, isolated=isolated)
    return str(info.value)


def test_missing_weight(tmp_path):
    path = write_keras(
        tmp_path / "m.keras", model_config(), weights(), drop=["layers/lstm/cell/vars/2"]
    )
    assert "layer 'lstm' (LSTM): expected 3 weight arrays, found 2" in load_error(path)


def test_weight_of_the_wrong_shape(tmp_path):
    bad = {"layers/lstm/cell/vars/1": np.zeros((H + 1, 4 * H), "float32")}
    path = write_keras(tmp_path / "m.keras", model_config(), weights(), replace=bad)
    message = load_error(path)
    assert (
        "layer 'lstm' (LSTM): weight recurrent_kernel has shape (5, 16), expected (4, 16)"
        in message
    )


def test_weight_of_the_wrong_dtype(tmp_path):
    bad = {"layers/dense/vars/0": np.zeros((H, UNITS), "int32")}
    path = write_keras(tmp_path / "m.keras", model_config(), weights(), replace=bad)
    assert "layer 'dense' (Dense): weight layers/dense/vars/0 has dtype int32" in load_error(path)


def test_units_that_disagree_with_the_weights(tmp_path):
    # An absurd size in the config is checked against the stored arrays before anything
    # of that size is allocated.
    path = write_keras(tmp_path / "m.keras", model_config(lstm_config(units=10**12)), weights())
    assert (
        "layer 'lstm' (LSTM): weight kernel has shape (3, 16), expected (3, 4000000000000)"
        in load_error(path)
    )


def test_truncated_files(tmp_path):
    good_zip = write_keras(tmp_path / "m.keras", model_config(), weights()).read_bytes()
    good_h5 = write_legacy(tmp_path / "m.h5", model_config(), weights()).read_bytes()
    for name, data in (("z.keras", good_zip), ("h.h5", good_h5)):
        for cut in (len(data) // 3, len(data) - 40):
            path = tmp_path / name
            path.write_bytes(data[:cut])
            message = load_error(path, isolated=True)
            assert "damaged or truncated" in message or "cannot be read" in message, message


def test_corrupted_bytes_raise_value_error(tmp_path):
    # Changed bytes across a compressed .keras and a legacy .h5: every load either works
    # (a byte nothing reads) or raises ValueError; none crashes or raises anything else.
    write_keras(tmp_path / "plain.keras", model_config(), weights())
    with zipfile.ZipFile(tmp_path / "plain.keras") as src:
        with zipfile.ZipFile(tmp_path / "z.keras", "w", zipfile.ZIP_DEFLATED) as dst:
            for name in src.namelist():
                dst.writestr(name, src.read(name))
    write_legacy(tmp_path / "h.h5", model_config(), weights())
    rng = np.random.default_rng(0)
    failures = 0
    for name in ("z.keras", "h.h5"):
        data = (tmp_path / name).read_bytes()
        for _ in range(6):
            bad = bytearray(data)
            at = rng.integers(0, len(bad), size=4)
            bad[at[0] : at[0] + 1] = bytes([bad[at[0]] ^ 0xFF])
            for i in at[1:]:
                bad[i] = int(rng.integers(0, 256))
            path = tmp_path / f"bad_{name}"
            path.write_bytes(bytes(bad))
            try:
                rnnkit.keras.load(path)  # in a child process: HDF5 may crash on such bytes
            except ValueError:
                failures += 1
    assert failures > 0


def test_a_file_that_crashes_the_hdf5_library_raises(tmp_path):
    # A legacy .h5 with a few bytes changed, on which HDF5 1.14 (h5py 3.16) dies with a
    # segmentation fault reading the model_config attribute: read in a child process, it
    # is reported as a damaged file.
    damaged = Path(__file__).parent / "data" / "keras_damaged.h5"
    message = load_error(damaged, isolated=True)
    assert str(damaged) in message and "damaged" in message


def test_not_a_model_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert "neither a .keras zip nor an HDF5 file" in load_error(path)
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f["x"] = np.zeros(3)
    assert "holds weights only" in load_error(tmp_path / "w.h5")


@pytest.mark.parametrize(
    "shape, expected", [((3, 2**40), "too large"), ((3, 2**20), "stores only 0 bytes")]
)
def test_declared_sizes_are_checked_before_reading(tmp_path, shape, expected):
    # A kernel that declares far more than the file stores (no data written).
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_dataset("layers/lstm/cell/vars/0", shape=shape, dtype="float32")
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as z:
        z.writestr("config.json", json.dumps(model_config()))
        z.write(tmp_path / "w.h5", "model.weights.h5")
    assert expected in load_error(tmp_path / "m.keras")


@pytest.mark.parametrize(
    "lstm, expected",
    [
        (lstm_config(stateful=True), "layer 'lstm' (LSTM): option stateful=True is not supported"),
        (lstm_config(return_state=True), "option return_state=True is not supported"),
        (
            lstm_config(activation="gelu"),
            "layer 'lstm' (LSTM): option activation='gelu' is not supported",
        ),
        (lstm_config(new_option=1), "layer 'lstm' (LSTM): option 'new_option' is not supported"),
        (
            {"class_name": "Conv1D", "config": {"name": "conv"}},
            "layer 'conv' (Conv1D) is not supported",
        ),
    ],
)
def test_unsupported_layers_and_options(tmp_path, lstm, expected):
    path = write_keras(tmp_path / "m.keras", model_config(lstm), weights())
    assert expected in load_error(path, NotImplementedError)


def test_keras2_functional_chain(tmp_path, x):
    # Keras 2's functional config: "Model", inbound_nodes as [[[name, node, tensor, kwargs]]].
    def called_on(name):
        return [[[name, 0, 0, {}]]]

    layers = [
        {
            "class_name": "InputLayer",
            "name": "input_1",
            "config": {"name": "input_1", "batch_input_shape": [None, T, N_IN]},
            "inbound_nodes": [],
        },
        {**lstm_config(), "name": "lstm", "inbound_nodes": called_on("input_1")},
        {
            **model_config()["config"]["layers"][2],
            "name": "dense",
            "inbound_nodes": called_on("lstm"),
        },
    ]
    ends = {"input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}
    config = {"class_name": "Model", "config": {"name": "model", "layers": layers, **ends}}
    w = weights(3)
    model = rnnkit.keras.load(write_legacy(tmp_path / "f.h5", config, w), isolated=False)
    np.testing.assert_allclose(model(x), numpy_lstm(x, w, sigmoid), atol=1e-5)


@pytest.mark.parametrize(
    "config, expected",
    [
        (model_config(lstm_config(return_sequences="yes")), "option return_sequences must be"),
        (model_config(lstm_config(units="4")), "option units must be a positive int"),
        ({"class_name": "Sequential", "config": 2.5}, "has no list of layers"),
        (
            {
                "class_name": "Functional",
                "config": {"layers": [{"class_name": "LSTM", "config": {}, "inbound_nodes": 7}]},
            },
            "the model config is malformed",
        ),
    ],
)
def test_malformed_configs(tmp_path, config, expected):
    # Fields of the wrong JSON type, found by mutating saved configs at random.
    assert expected in load_error(write_keras(tmp_path / "m.keras", config, weights()))


def test_branching_functional_model_raises(tmp_path):
    def tensor(name):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}}

    def node(*names):
        return [
            {
                "args": [[tensor(n) for n in names]] if len(names) > 1 else [tensor(names[0])],
                "kwargs": {},
            }
        ]

    layers = [
        {
            "class_name": "InputLayer",
            "name": "in",
            "config": {"name": "in", "batch_shape": [None, T, N_IN]},
            "inbound_nodes": [],
        },
        {**lstm_config("a"), "name": "a", "inbound_nodes": node("in")},
        {**lstm_config("b"), "name": "b", "inbound_nodes": node("in")},
        {
            "class_name": "Add",
            "name": "add",
            "config": {"name": "add"},
            "inbound_nodes": node("a", "b"),
        },
    ]
    config = {
        "class_name": "Functional",
        "config": {
            "layers": layers,
            "input_layers": [["in", 0, 0]],
            "output_layers": [["add", 0, 0]],
        },
    }
    path = write_keras(tmp_path / "m.keras", config, weights())
    assert "layer 'add' (Add) is called 1 time(s) on 2 input(s)" in load_error(
        path, NotImplementedError
    )


def test_import_rnnkit_does_not_import_h5py_and_says_which_extra():
    code = (
        "import sys, rnnkit, rnnkit.keras; assert 'h5py' not in sys.modules; "
        "sys.modules['h5py'] = None\n"
        "try:\n    rnnkit.keras.load('x.keras')\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'rnnkit[keras]'" in out.stdout
