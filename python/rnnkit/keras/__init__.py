"""Load Keras models into rnnkit: ``rnnkit.keras.load(path) -> rnnkit.nn.Sequential``.

Reads Keras 3 ``.keras`` files and legacy full-model ``.h5`` files (Keras 2 or 3) with h5py
(``pip install 'rnnkit[keras]'``); Keras itself is not needed. See the README's "Keras
models" section for the layers and options it supports; anything else raises
NotImplementedError naming the layer and the option, and a damaged file raises ValueError.
"""

from __future__ import annotations

from pathlib import Path

from rnnkit import nn

__all__ = ["load"]


def load(path: str | Path, isolated: bool = True) -> nn.Sequential:
    """The Keras model saved at ``path`` as an ``rnnkit.nn.Sequential`` in eval mode.

    ``model(x)`` gives what Keras's ``model.predict(x)`` gives (float32): ``x`` is
    ``(batch, time, features)`` floats, or ``(batch, time)`` integer indices when the model
    starts with an Embedding. Call ``model.train()`` before fine-tuning it with
    ``rnnkit.optim``. Raises ImportError without h5py, NotImplementedError for a layer or
    option rnnkit does not support, ValueError for a damaged file or inconsistent weights.

    ``isolated``: read the file in a child process (about a second more), so that a
    damaged file that crashes the HDF5 library raises ValueError instead of ending this
    process; ``False`` reads it here, for files you trust.
    """
    from rnnkit.keras._files import import_h5py

    import_h5py()  # the ImportError naming the extra, before anything else
    if isolated:
        from rnnkit.keras._isolation import load_in_child

        return load_in_child(path)
    from rnnkit.keras._build import build
    from rnnkit.keras._files import SavedModel

    with SavedModel(path) as saved:
        return build(saved)
