"""The base class of every rnnkit module: the recurrent networks and the ``nn`` layers.

It owns what they share: the parameters under PyTorch's names with their accumulated
gradients, ``state_dict`` / ``load_state_dict``, ``zero_grad``, training and eval mode,
what a training forward saves for ``backward``, the rule for using one module from several
threads, what a copy keeps, and ``repr``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnkit._validation import as_state_value, check_bool

_NOT_RUN_YET = "no forward pass has been run yet"
_COPIED = "this module is a copy, and a copy keeps no forward state (run forward on the copy)"


class Module(abc.ABC):
    """Parameters, gradients, modes and saved forward state of one module.

    ``parameters()`` returns the live arrays by name (an optimiser updates them in place);
    ``grads`` holds arrays of the same names and shapes that ``backward`` adds into, until
    ``zero_grad()``. A training-mode ``forward`` saves what the next ``backward`` needs;
    ``backward`` consumes it.

    Threads: several threads may run eval-mode forwards of one module at once. A
    training-mode forward or a backward needs the module to itself: started while another
    thread is inside a forward or backward of the same module, it raises RuntimeError
    (train one module per thread; a forward and its backward should come from one thread).

    Copies (``copy.deepcopy``, ``pickle``) keep the parameters, the gradients, the mode,
    the configuration and the random generator's state (a copy draws the same dropout masks
    next as the original would); they drop what a training forward saved, so ``backward``
    on a copy raises RuntimeError until the copy runs a forward of its own.
    """

    # How backward says there is nothing to backpropagate through; {cls} and {reason} are
    # filled in. The recurrent modules word it their own way.
    _NO_SAVED_MESSAGE = (
        "{cls}.backward needs a forward pass in training mode first: {reason} "
        "(call .train() before forward; each forward supports one backward)"
    )
    # How load_state_dict words a value of the wrong shape; {cls}, {name}, {got} and
    # {expected} are filled in. The nn layers word it their own way.
    _SHAPE_MISMATCH_MESSAGE = (
        "{cls}.load_state_dict: state_dict[{name!r}] has shape {got}, "
        "but the parameter has shape {expected}"
    )
    # Attributes a copy does not take from the original, with the value the copy gets.
    _NOT_COPIED: dict[str, Any] = {
        "_saved": None,
        "_no_saved_reason": _COPIED,
        "_users": 0,
        "_exclusive": False,
    }

    def __init__(self, dtype: np.dtype | None) -> None:
        self._dtype = dtype
        self.training = True
        self._params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        # Bumped whenever the module rewrites its parameters (load_state_dict).
        self._version = 0
        # What the last training-mode forward saved for backward (None when there is none),
        # and why there is none, for backward's error message.
        self._saved: Any = None
        self._no_saved_reason = _NOT_RUN_YET
        # Calls now inside forward/backward, and whether one needs the module to itself.
        self._use_lock = threading.Lock()
        self._users = 0
        self._exclusive = False

    @property
    def dtype(self) -> np.dtype | None:
        """The dtype of the parameters and of every array computed (float32 or float64);
        None for a module without parameters that computes in its input's dtype."""
        return self._dtype

    # -- parameters -----------------------------------------------------------------------

    def _add_parameter(self, name: str, value: Any) -> None:
        self._params[name] = np.ascontiguousarray(value, dtype=self._dtype)
        self.grads[name] = np.zeros_like(self._params[name])

    def parameters(self) -> dict[str, np.ndarray]:
        """Ordered dict name -> the live parameter array (edits in place are used)."""
        return dict(self._params)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Ordered dict name -> a copy of each parameter."""
        return {name: p.copy() for name, p in self._params.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Copy parameters in place from NumPy arrays or torch tensors.

        Values are converted to the module's dtype; the arrays stay the same objects, so
        optimisers holding them keep working. With ``strict`` every name must be present
        and no other name may be; with ``strict=False`` unknown names are ignored and
        missing ones keep their value. Shapes are always checked. Nothing is changed
        unless every given value is valid.
        """
        cls = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}"
            )
        strict = check_bool("strict", strict)
        unexpected = [k for k in state_dict if k not in self._params]
        missing = [k for k in self._params if k not in state_dict]
        if strict and (unexpected or missing):
            raise ValueError(
                f"{cls}.load_state_dict(strict=True): missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        staged: list[tuple[np.ndarray, np.ndarray]] = []
        for name, target in self._params.items():
            if name not in state_dict:
                continue
            arr = as_state_value(f"state_dict[{name!r}]", state_dict[name])
            if arr.shape != target.shape:
                raise ValueError(
                    self._SHAPE_MISMATCH_MESSAGE.format(
                        cls=cls, name=name, got=arr.shape, expected=target.shape
                    )
                )
            staged.append((target, arr))
        for target, arr in staged:
            np.copyto(target, arr, casting="unsafe")  # converts dtype; all values checked
        self._version += 1

    def zero_grad(self) -> None:
        """Set every accumulated parameter gradient to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    # -- mode and saved forward state -----------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout on, forward keeps what backward needs); returns self.

        Switching to eval mode drops what a training forward saved.
        """
        self.training = check_bool("mode", mode)
        if not self.training:
            self._drop_saved("the module was switched to eval mode after the forward pass")
        return self

    def eval(self) -> Module:
        """Evaluation mode (no dropout, nothing kept for backward); returns self."""
        return self.train(False)

    def _drop_saved(self, reason: str) -> None:
        self._saved = None
        self._no_saved_reason = reason

    def _saved_or_raise(self) -> Any:
        """What the last training forward saved; RuntimeError saying why there is none."""
        saved = self._saved
        if saved is None:
            raise RuntimeError(
                self._NO_SAVED_MESSAGE.format(cls=type(self).__name__, reason=self._no_saved_reason)
            )
        return saved

    # -- threads --------------------------------------------------------------------------

    def _enter(self, exclusive: bool) -> None:
        """Register a call entering forward or backward; ``exclusive`` for a training
        forward or a backward (they change the saved state). Pair with ``_leave``."""
        with self._use_lock:
            if self._exclusive or (exclusive and self._users):
                raise RuntimeError(
                    f"{type(self).__name__} is being used by another thread: a training-mode "
                    f"forward or a backward needs the module to itself while another thread "
                    f"is inside its forward or backward (use one module per thread for "
                    f"training; eval-mode forwards may share one)"
                )
            self._users += 1
            self._exclusive = exclusive

    def _leave(self) -> None:
        with self._use_lock:
            self._users -= 1
            self._exclusive = False

    # -- copies ---------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_use_lock"]  # a lock cannot be copied; each copy gets its own
        state.update(self._NOT_COPIED)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._use_lock = threading.Lock()

    # -- calling and printing -------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    @abc.abstractmethod
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Each module's forward pass."""

    def extra_repr(self) -> str:
        """The constructor arguments shown by ``repr``."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
