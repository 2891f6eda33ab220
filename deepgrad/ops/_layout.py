"""Memory order of arrays: one place for the helpers that keep it consistent.

conv2d returns NCHW arrays that are *views* of memory in another axis order (H, C, W, N; see
:mod:`deepgrad.ops._im2col`). NumPy gives the same values whatever the memory order, but not
the same speed: an elementwise op between two arrays laid out in different orders runs ~15x
slower than between two of the same order (it cannot stream both through memory). So the
ops that allocate an array of a known shape (padding, scatters, pooling buffers) allocate it
in the order of their input, and the reductions of batch norm read memory in its own order.
"""

from __future__ import annotations

from deepgrad._backend import array_module


def memory_order(a) -> list[int]:
    """The axes of ``a`` from slowest to fastest varying in memory (ties keep axis order)."""
    return sorted(range(a.ndim), key=lambda ax: -abs(a.strides[ax]))


def alloc_in_order(xp, order, shape, dtype, fill=None):
    """An array of ``shape`` whose axes are laid out in memory in ``order`` (slowest first),
    filled with ``fill`` (uninitialised when None)."""
    mshape = tuple(shape[a] for a in order)
    buf = xp.empty(mshape, dtype=dtype) if fill is None else xp.full(mshape, fill, dtype=dtype)
    return buf.transpose([order.index(a) for a in range(len(order))])


def alloc_like(like, shape, fill=None, dtype=None):
    """An array of ``shape`` laid out in memory in the axis order of ``like`` (same ndim),
    filled with ``fill`` (uninitialised when None)."""
    return alloc_in_order(array_module(like), memory_order(like), shape,
                          like.dtype if dtype is None else dtype, fill)


def is_dense(a) -> bool:
    """True when ``a`` is a permutation of contiguous memory (no gaps, as a transposed
    C-contiguous array), e.g. conv2d's NCHW views of HCWN memory; False for a strided slice."""
    return a.transpose(memory_order(a)).flags.c_contiguous


def in_layout_of(a, like):
    """``a`` itself when it is dense (:func:`is_dense`) in ``like``'s memory order, else a
    dense copy of it in that order."""
    if a.ndim != like.ndim or (memory_order(a) == memory_order(like) and is_dense(a)):
        return a
    out = alloc_like(like, a.shape, dtype=a.dtype)
    out[...] = a
    return out


def channel_matrix(a):
    """(N, C, *) array -> a 3-D (P, C, Q) *view* of its memory, such that each channel's
    values are ``v[:, c, :]`` (per-channel reductions read memory in order); a copy in NCHW
    order when ``a`` is no permutation of contiguous memory."""
    order = memory_order(a)
    v = a.transpose(order)
    if not v.flags.c_contiguous:  # NOTE: then it does not share the axis order of a dense a
        return array_module(a).ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)
    k = order.index(1)
    p = q = 1
    for s in v.shape[:k]:
        p *= s
    for s in v.shape[k + 1:]:
        q *= s
    return v.reshape(p, a.shape[1], q)


#: Rows of a multiple of this many bytes get a cache line of padding (padded_row_length).
PAD_ROWS_OF_BYTES = 512


def padded_row_length(n: int, itemsize: int) -> int:
    """Elements per row for a buffer that holds ``n`` values a row and is read (or written)
    a piece of every row at a time: ``n``, plus one cache line when a row is a multiple of
    PAD_ROWS_OF_BYTES bytes.

    NOTE: rows of a power-of-two length put the pieces at one offset of all rows into a few
    cache sets, where they evict each other (and worse in memory backed by huge pages, which
    NumPy requests for large arrays). An odd number of cache lines a row spreads them.
    Measured: a convolution GEMM reading the K rows of its width columns, 7.2 -> 4.9 ms for
    ResNet-20's 16-channel layer (W3 -3.1%, and less run-to-run variation); the LSTM
    backward's per-step writes and GEMM on a chunk of dZ (W4 -1.2%).
    """
    return n + 64 // itemsize if (n * itemsize) % PAD_ROWS_OF_BYTES == 0 else n
