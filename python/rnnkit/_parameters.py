"""The parameters of an L-layer, D-direction recurrent stack: PyTorch's names, shapes and
order, the names in the backends' layout (one tuple per layer and direction), and the
checks of the memory they need and of the gradient arrays a backward adds into."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit._cells import BIAS_KINDS, WEIGHT_KINDS, parameter_name
from rnnkit._validation import check_nbytes

# The LSTM's peephole weights (p_i, p_f, p_o), (3H,) per layer and direction.
PEEPHOLE_KIND = "weight_ph"

# Bytes Python spends per parameter array besides its data (the ndarray object, its name,
# the dict slots); measured about 540 for a parameter and its gradient together.
_ARRAY_OVERHEAD = 256

# The kind of an LSTM's projection weight W_hr (P, H), PyTorch's name, the last parameter of
# each layer and direction when proj_size > 0 (before the peepholes).
PROJECTION_KIND = "weight_hr"

# Names of (w_ih, w_hh, b_ih, b_hh) of one layer and direction, the biases None without
# bias; an LSTM may add (w_hr) or (w_hr | None, w_ph): item 4 the projection, item 5 the
# peepholes.
EntryNames = tuple["str | None", ...]


def check_parameter_memory(
    gates: int,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    directions: int,
    bias: bool,
    itemsize: int,
    proj_size: int = 0,
) -> None:
    """Refuse a stack whose parameters and gradients cannot fit in memory.

    Checked in closed form before anything is built: with num_layers = 2**40 even the dict
    of parameter shapes would exhaust memory. Parameters and their gradients live side by
    side (twice the parameter bytes), and each of those arrays costs Python about
    _ARRAY_OVERHEAD bytes besides its data (what counts for tiny huge stacks).
    """
    G, H, D, L = gates, hidden_size, directions, num_layers
    R = proj_size or H  # width of h: the projection's, else H
    per_cell = 2 if bias else 0  # (G*H, in_k) + (G*H, R) [+ 2 x (G*H,)] [+ (P, H)] elements
    n_params = D * G * H * (input_size + R + per_cell) + (L - 1) * D * G * H * (
        D * R + R + per_cell
    )
    n_params += L * D * proj_size * H
    n_arrays = L * D * ((4 if bias else 2) + (1 if proj_size else 0))
    check_nbytes(
        "the parameters and their gradients",
        2 * n_params,
        itemsize,
        extra_bytes=2 * n_arrays * _ARRAY_OVERHEAD,
    )


def entry_names(
    num_layers: int,
    directions: int,
    bias: bool,
    projection: bool = False,
    peepholes: bool = False,
) -> list[EntryNames]:
    """Names of (w_ih, w_hh, b_ih, b_hh) per entry k*D + d of the backends' weight list,
    with w_hr's fifth when ``projection`` (an LSTM with proj_size > 0), and with
    ``peepholes`` w_hr's (or None) fifth and w_ph's (``weight_ph_l{k}``) sixth."""
    names: list[EntryNames] = []
    for k in range(num_layers):
        for d in range(directions):
            w_ih, w_hh = (parameter_name(kind, k, d) for kind in WEIGHT_KINDS)
            b_ih, b_hh = (parameter_name(kind, k, d) if bias else None for kind in BIAS_KINDS)
            entry: EntryNames = (w_ih, w_hh, b_ih, b_hh)
            hr = parameter_name(PROJECTION_KIND, k, d) if projection else None
            if peepholes:
                entry += (hr, parameter_name(PEEPHOLE_KIND, k, d))
            elif projection:
                entry += (hr,)
            names.append(entry)
    return names


def parameter_shapes(
    gates: int,
    input_size: int,
    hidden_size: int,
    directions: int,
    names: list[EntryNames],
    proj_size: int = 0,
) -> dict[str, tuple[int, ...]]:
    """PyTorch's names and shapes, in PyTorch's order (layer, direction, ih/hh, w/b, hr),
    of the stack whose entries are ``names`` (from :func:`entry_names`): layer 0 reads the
    input, each later layer the D*R features of the one below, R = proj_size when > 0
    (then h is R wide: W_hh (G*H, R), W_hr (R, H)), else H; peepholes (3H,) last."""
    G, H = gates, hidden_size
    R = proj_size or H
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (w_ih, w_hh, b_ih, b_hh, *extra) in enumerate(names):
        in_k = input_size if i < directions else directions * R
        shapes[w_ih] = (G * H, in_k)
        shapes[w_hh] = (G * H, R)
        if b_ih is not None and b_hh is not None:
            shapes[b_ih] = (G * H,)
            shapes[b_hh] = (G * H,)
        if extra and extra[0] is not None:  # w_hr
            shapes[extra[0]] = (R, H)
        if len(extra) > 1:  # w_ph
            shapes[extra[1]] = (3 * H,)
    return shapes


def check_grads(
    grads: dict[str, Any], shapes: dict[str, tuple[int, ...]], dtype: np.dtype
) -> tuple[np.ndarray, ...]:
    """The gradient arrays in ``shapes``' order, each checked to still be a writeable
    C-contiguous array of its parameter's shape and ``dtype`` (backward adds into them in
    place, and users may replace entries of ``grads``)."""
    for name, shape in shapes.items():
        arr = grads.get(name)
        ok = (
            isinstance(arr, np.ndarray)
            and arr.shape == shape
            and arr.dtype == dtype
            and arr.flags.c_contiguous
            and arr.flags.writeable
        )
        if not ok:
            what = (
                f"shape {arr.shape}, dtype {arr.dtype}"
                if isinstance(arr, np.ndarray)
                else type(arr).__name__
            )
            raise ValueError(
                f"grads[{name!r}] must be a writeable C-contiguous {shape} {dtype} "
                f"array (backward adds into it in place), got {what}; "
                f"set values with g[...] = ... or call zero_grad()"
            )
    return tuple(grads[name] for name in shapes)


def check_grads_do_not_overlap(grads: dict[str, np.ndarray], names: Any) -> None:
    """ValueError naming two entries of ``grads`` (among ``names``) that share memory: the
    backward writes each while it reads the others."""
    # Byte ranges sorted by start: contiguous arrays overlap iff neighbours do.
    spans = sorted(
        (grads[name].__array_interface__["data"][0], grads[name].nbytes, name) for name in names
    )
    for (start, size, name), (next_start, _, next_name) in zip(spans, spans[1:]):
        if size > 0 and next_start < start + size:
            raise ValueError(
                f"grads[{name!r}] and grads[{next_name!r}] share memory; each must be its "
                f"own array (backward adds into each in place)"
            )


class Parameter(np.ndarray):
    """A recurrent module's parameter array: a NumPy array that counts writes into it.

    The native backend keeps packed copies of the weights between calls; an eval-mode call
    reuses them while the module's write counter (``_stamp``, one list shared by all the
    module's parameters and every view of them) is unchanged. Every NumPy path that writes
    through this array or a view of it bumps the counter *after* the write: item and slice
    assignment, ufuncs with ``out`` (``p *= 2``, ``p -= lr * g``, ``np.add(.., out=p)``,
    ``np.add.at``), ``np.copyto`` / ``place`` / ``putmask`` / ``put`` /
    ``put_along_axis`` / ``fill_diagonal``, and the methods ``fill``, ``put``, ``sort``,
    ``partition``, ``setfield``, ``byteswap(inplace=True)``.

    Not seen (the memory is written without this class knowing): writes through a plain
    ndarray view (``np.asarray(p)``, ``p.view(np.ndarray)``), ``p.flat[...] = ...``, the
    buffer protocol (``memoryview``, ``torch.from_numpy``, ctypes) and C extensions. After
    such a write call ``module.mark_parameters_changed()``. Training-mode calls do not
    depend on the counter: they checksum the weights anyway (for the backward's in-place
    check) and repack when the checksums differ.
    """

    _stamp: list[int]

    def __array_finalize__(self, obj: Any) -> None:
        # A view shares its parent's counter (writes reach the parent's memory); a copy or
        # a new array starts its own.
        if isinstance(obj, Parameter) and self.base is not None:
            self._stamp = obj._stamp
        else:
            self._stamp = [0]

    def _touch(self) -> None:
        self._stamp[0] += 1

    def __setitem__(self, key: Any, value: Any) -> None:
        try:
            super().__setitem__(key, value)
        finally:
            self._touch()

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        written = [o for o in (out or ()) if isinstance(o, Parameter)]
        if method == "at" and isinstance(inputs[0], Parameter):
            written.append(inputs[0])
        # Computed on plain views, so that results are plain arrays, not Parameters.
        args = tuple(_plain(a) for a in inputs)
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        try:
            result = getattr(ufunc, method)(*args, **kwargs)
        finally:
            for p in written:
                p._touch()
        if out is not None and method != "at":
            return out[0] if len(out) == 1 else out  # `p *= 2` keeps p itself
        return result

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        try:
            return super().__array_function__(func, types, args, kwargs)
        finally:
            if func in _WRITING_FUNCTIONS and isinstance(args[0], Parameter):
                args[0]._touch()
            outs = kwargs.get("out")
            for o in outs if isinstance(outs, tuple) else (outs,):
                if isinstance(o, Parameter):
                    o._touch()

    def byteswap(self, inplace: bool = False) -> Any:
        try:
            return super().byteswap(inplace)
        finally:
            if inplace:
                self._touch()


def _plain(a: Any) -> Any:
    """A Parameter as a plain ndarray view of the same memory; anything else unchanged."""
    return a.view(np.ndarray) if isinstance(a, Parameter) else a


def _counting_writes(name: str) -> Any:
    """ndarray's in-place method ``name``, bumping the write counter after it."""
    method = getattr(np.ndarray, name)

    def counted(self: Parameter, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self._touch()

    counted.__name__, counted.__doc__ = name, method.__doc__
    return counted


# ndarray methods that write into the array itself.
for _name in ("fill", "put", "sort", "partition", "setfield"):
    setattr(Parameter, _name, _counting_writes(_name))

# NumPy functions that write into their first argument.
_WRITING_FUNCTIONS = frozenset(
    {np.copyto, np.place, np.putmask, np.put, np.put_along_axis, np.fill_diagonal}
)


def as_parameter(value: np.ndarray, stamp: list[int]) -> Parameter:
    """A C-contiguous copy of ``value`` as a Parameter counting its writes in ``stamp``
    (the module's counter)."""
    p = np.ndarray.__new__(Parameter, value.shape, value.dtype)  # owns its memory
    np.copyto(p.view(np.ndarray), value)
    p._stamp = stamp
    return p
