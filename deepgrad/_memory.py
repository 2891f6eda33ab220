"""Keep freed memory for reuse (glibc), so that a training step does not page-fault.

A training step allocates and frees the same large arrays every time: activations, the
convolution's width columns (tens of MB each), gradients. glibc's malloc returns blocks above
its mmap threshold (dynamic, at most 32 MB) to the kernel when they are freed, and trims the
top of the heap once enough is free; the next step's arrays then come back as fresh pages that
the kernel zero-fills on first touch. On ResNet-20 (batch 128, two threads) that was ~100 ms of
a ~500 ms step (measured with ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``).

:func:`keep_freed_memory` sets three ``mallopt`` parameters, as those environment variables
would: blocks up to 32 MB come from the heap (the largest threshold glibc accepts), blocks
above it too (no ``mmap`` at all: a (128, 64, 32, 32) float32 activation is 33.5 MB, and
batch norm on it faulted ~1070 pages in every step: 40 -> 29 ms measured), and the heap is
never trimmed, so freed memory stays with the process for the next step (its peak use is
kept, not returned to the OS). It runs when deepgrad is imported, on glibc only;
``DEEPGRAD_KEEP_FREED_MEMORY=0`` turns it off, and an explicit ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_MAX_`` is respected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 2**31 - 1

applied: bool = False


def keep_freed_memory() -> bool:
    """Set glibc's mmap threshold, mmap maximum and trim threshold (see the module
    docstring); True if applied."""
    global applied
    if os.environ.get("DEEPGRAD_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if any(v in os.environ for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                     "MALLOC_MMAP_MAX_")):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (macOS, musl): leave the allocator alone
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(_M_MMAP_MAX, 0))
    return applied
