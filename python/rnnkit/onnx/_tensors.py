"""ONNX tensors to NumPy arrays, with every size checked before anything is allocated.

A model file may declare any dims; ``onnx.numpy_helper.to_array`` trusts them. Here a
tensor's element count must match the data it carries, so a damaged or hostile file raises
ValueError instead of allocating what its header claims.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper, numpy_helper

# The element types a weight or a constant expression over it may have.
SUPPORTED_TYPES = (
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.FLOAT16,
    TensorProto.INT8,
    TensorProto.INT16,
    TensorProto.INT32,
    TensorProto.INT64,
    TensorProto.UINT8,
    TensorProto.UINT16,
    TensorProto.UINT32,
    TensorProto.UINT64,
    TensorProto.BOOL,
)

# For tensors without raw_data: the repeated field holding their values.
_VALUE_FIELDS = {
    TensorProto.FLOAT: "float_data",
    TensorProto.DOUBLE: "double_data",
    TensorProto.INT64: "int64_data",
    TensorProto.UINT32: "uint64_data",
    TensorProto.UINT64: "uint64_data",
}


def type_name(elem_type: int) -> str:
    """ONNX's name of an element type ("FLOAT", ...), or its number if unknown."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return str(elem_type)


def numpy_dtype(elem_type: int, where: str) -> np.dtype:
    """The NumPy dtype of ONNX element type ``elem_type``; ValueError for unsupported ones."""
    if elem_type not in SUPPORTED_TYPES:
        raise ValueError(
            f"{where}: element type {type_name(elem_type)} is not supported (numeric "
            f"tensors only: FLOAT, DOUBLE, FLOAT16 and the integer and BOOL types)"
        )
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def tensor_to_array(tensor: TensorProto, where: str) -> np.ndarray:
    """The values of ``tensor`` as a NumPy array; ``where`` names it in errors."""
    dtype = numpy_dtype(tensor.data_type, where)
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise ValueError(f"{where}: negative dimension in its shape {dims}")
    count = math.prod(dims)
    if tensor.data_location == TensorProto.EXTERNAL:
        raise ValueError(
            f"{where}: its data is stored in an external file; load the model from its path "
            f"(onnx.load reads external data next to the file) and pass the ModelProto"
        )
    if tensor.raw_data:
        have = len(tensor.raw_data)
        if have != count * dtype.itemsize:
            raise ValueError(
                f"{where}: shape {dims} of {type_name(tensor.data_type)} needs "
                f"{count * dtype.itemsize} bytes, the tensor holds {have}"
            )
    else:
        field = _VALUE_FIELDS.get(tensor.data_type, "int32_data")
        have = len(getattr(tensor, field))
        if have != count:
            raise ValueError(f"{where}: shape {dims} needs {count} values, the tensor holds {have}")
    return numpy_helper.to_array(tensor)
