"""Which array module (NumPy, or later CuPy) computes on an array.

Ops call :func:`array_module` on their inputs instead of naming ``np`` directly, so that a
CuPy array stays on its device. Only NumPy is supported today.
"""

from __future__ import annotations

import numpy as np


def array_module(*arrays):
    """Return the array module (``numpy``-compatible) that owns ``arrays``.

    NOTE: a CuPy path will check ``type(a).__module__`` here; nothing else needs to change.
    """
    return np
