"""The default floating-point dtype and dtype name handling.

deepgrad computes in float32 unless told otherwise, like PyTorch. Tests and gradient checks
switch to float64 with :func:`set_default_dtype`.
"""

from __future__ import annotations

import numpy as np

_DTYPES = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
    "uint8": np.uint8,
}

_default_dtype = np.dtype(np.float32)


def to_numpy_dtype(dtype) -> np.dtype:
    """Return the NumPy dtype for ``dtype`` given as a name, a NumPy dtype or a NumPy type.

    Raises:
        TypeError: if the dtype is not known.
    """
    if isinstance(dtype, str):
        name = dtype.removeprefix("deepgrad.")
        if name not in _DTYPES:
            raise TypeError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPES)}")
        return np.dtype(_DTYPES[name])
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"unknown dtype {dtype!r}") from exc


def set_default_dtype(dtype) -> None:
    """Set the dtype that new floating-point tensors get ("float32" or "float64")."""
    dt = to_numpy_dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"default dtype must be float32 or float64, got {dt}")
    global _default_dtype
    _default_dtype = dt


def get_default_dtype() -> np.dtype:
    """Return the dtype new floating-point tensors get (a NumPy dtype)."""
    return _default_dtype


float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
