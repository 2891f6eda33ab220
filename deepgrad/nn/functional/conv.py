"""Convolution and pooling, stateless (``F.conv2d``, ``F.max_pool2d``, ...).

The primitives and their argument checks live in :mod:`deepgrad.ops.conv` and
:mod:`deepgrad.ops.pool`; the signatures are PyTorch's.
"""

from deepgrad.ops.conv import conv2d
from deepgrad.ops.pool import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool2d,
)

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "conv2d", "max_pool2d"]
