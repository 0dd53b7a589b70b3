"""Arguments torch users bring along get errors that name rnnkit's public class and say what
to do: torch-only constructor arguments (device; proj_size except on LSTM), unknown keywords, and a
PackedSequence passed as x. GRU's reset_after and RNN's nonlinearity keep their positions.
"""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit
import torch

IN, H = 3, 4
CLASSES = [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU]


@pytest.mark.parametrize("cls", CLASSES)
def test_torch_only_constructor_arguments(cls):
    name = cls.__name__
    if cls is rnnkit.LSTM:
        assert cls(IN, H, proj_size=2).proj_size == 2  # LSTM has projections, as torch's
    else:
        with pytest.raises(TypeError, match=rf"rnnkit\.{name} .*'proj_size'.*only LSTM"):
            cls(IN, H, proj_size=2)
    with pytest.raises(TypeError, match=rf"rnnkit\.{name} .*'device'.*on the CPU on NumPy"):
        cls(IN, H, device="cuda")


@pytest.mark.parametrize("cls", CLASSES)
def test_unknown_keyword_names_the_class_and_the_arguments_it_takes(cls):
    with pytest.raises(TypeError, match=rf"rnnkit\.{cls.__name__} got an unexpected keyword") as e:
        cls(IN, H, hidden=3)
    message = str(e.value)
    assert "'hidden'" in message and "input_size, hidden_size, num_layers" in message
    own = {"RNN": "nonlinearity", "GRU": "reset_after"}.get(cls.__name__)
    if own:
        assert own in message


def test_subclasses_are_named_by_their_public_base():
    class MyLSTM(rnnkit.LSTM):
        pass

    with pytest.raises(TypeError, match=r"rnnkit\.LSTM got an unexpected keyword"):
        MyLSTM(IN, H, device="cpu")


def test_positional_arguments_keep_their_places():
    rnn = rnnkit.RNN(IN, H, 2, "relu", False)
    assert rnn.num_layers == 2 and rnn.nonlinearity == "relu" and not rnn.bias
    gru = rnnkit.GRU(IN, H, 1, True, False, 0.0, False, "float64", "numpy", 3, False)
    assert not gru.reset_after and gru.dtype == np.float64 and gru.seed == 3
    assert gru.backend == "numpy"
    with pytest.raises(TypeError, match="multiple values for argument 'reset_after'"):
        rnnkit.GRU(IN, H, 1, True, False, 0.0, False, "float32", "native", None, False,
                   reset_after=True)  # fmt: skip
    with pytest.raises(TypeError, match="positional arguments"):
        rnnkit.GRU(IN, H, 1, True, False, 0.0, False, "float32", "native", None, False, 1)
    with pytest.raises(TypeError, match="reset_after must be a bool, got 1"):
        rnnkit.GRU(IN, H, 1, True, False, 0.0, False, "float32", "native", None, 1)


@pytest.mark.parametrize("cls", CLASSES)
def test_packed_sequence_is_refused_with_the_way_out(cls):
    m = cls(IN, H, seed=0)
    padded = torch.randn(5, 2, IN)
    packed = torch.nn.utils.rnn.pack_padded_sequence(padded, [5, 3])
    with pytest.raises(TypeError, match=rf"rnnkit\.{cls.__name__} does not take a Packed"):
        m(packed)
    with pytest.raises(TypeError, match="pass the padded array .*lengths= instead"):
        m(packed)
    # The way out works: the padded array and its lengths.
    out, _ = m(padded.numpy(), lengths=np.array([5, 3]))
    assert out.shape == (5, 2, H)
    assert np.all(out[3:, 1] == 0)


def test_packed_sequence_is_recognised_without_torch():
    """Recognised by its class name, so that rnnkit never imports torch for it."""

    class PackedSequence(tuple):
        pass

    with pytest.raises(TypeError, match="does not take a PackedSequence"):
        rnnkit.LSTM(IN, H)(PackedSequence((np.zeros((4, IN)), np.array([2, 2]))))
