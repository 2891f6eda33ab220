"""2-D pooling: ``max_pool2d``, ``avg_pool2d``, ``adaptive_avg_pool2d``, ``adaptive_max_pool2d``.

Windows are strided views of the (implicitly padded) input; the kernels loop over the KH*KW
window positions, each step one vectorised operation over the whole batch (no loop over
batch or pixels). Windows that tile the input (kernel == stride, no padding) skip the padded
copy and are written back through a (N, C, OH, KH, OW, KW) view. Output sizes follow PyTorch
exactly:

    OH = floor_or_ceil((H + 2p - d (k - 1) - 1) / s) + 1,
    and with ceil_mode the last window must start inside the input or the left padding:
    if (OH - 1) s >= H + p then OH -= 1.

Gradients (all pooling maps are linear in x once the argmax is fixed, so each backward is
again a primitive whose own backward is known; pooling is differentiable to any order):

* max:  y = gather(x, argmax)           dL/dx = scatter_add(g, argmax)   (and vice versa)
* avg:  y = sum over window / divisor   dL/dx[i] = sum over windows w containing i of
                                                   g[w] / divisor[w]        (and vice versa)
* adaptive avg: y = A x B^T along (H, W) with row-stochastic A (OH, H), B (OW, W):
                dL/dx = A^T g B.
"""

from __future__ import annotations

import numbers

import numpy as np

from deepgrad._backend import array_module
from deepgrad.autograd.function import Function
from deepgrad.ops._layout import alloc_in_order, alloc_like, in_layout_of, memory_order
from deepgrad.ops.shape import squeeze, unsqueeze
from deepgrad.tensor import Tensor


# ---------------------------------------------------------------------- geometry
class _Geom:
    """Per-axis pooling geometry: kernel k, stride s, padding p, dilation d, output size o."""

    __slots__ = ("k", "s", "p", "d", "o")

    def __init__(self, k, s, p, d, o):
        self.k, self.s, self.p, self.d, self.o = k, s, p, d, o

    def span(self, axis: int) -> int:
        """Padded length that every window fits in (right padding may exceed p in ceil mode)."""
        return (self.o[axis] - 1) * self.s[axis] + self.d[axis] * (self.k[axis] - 1) + 1

    def window(self, a, i: int, j: int):
        """The strided view of padded ``a`` at kernel position (i, j): shape (N, C, OH, OW)."""
        (sh, sw), (dh, dw), (oh, ow) = self.s, self.d, self.o
        return a[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]

    def key(self):
        return (self.k, self.s, self.p, self.d, self.o)


def pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output length (see the module docstring)."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pair(v, name: str, fn: str, minimum: int) -> tuple[int, int]:
    vals = (v, v) if isinstance(v, numbers.Integral) else tuple(v) if isinstance(
        v, (tuple, list)) else None
    if (vals is None or len(vals) != 2 or isinstance(v, bool)
            or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool)
                       for e in vals)):
        raise ValueError(f"{fn}: {name} must be an int or a pair of ints, got {v!r}")
    if min(vals) < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {v!r}")
    return int(vals[0]), int(vals[1])


def _geometry(fn, x, kernel_size, stride, padding, dilation, ceil_mode, max_pool) -> _Geom:
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                         f"{x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a floating-point input, got dtype {x.dtype}")
    k = _pair(kernel_size, "kernel_size", fn, 1)
    # PARITY: stride None (or an empty list) means stride = kernel_size, as in torch.
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _pair(stride, "stride", fn, 1)
    p = _pair(padding, "padding", fn, 0)
    d = _pair(dilation, "dilation", fn, 1)
    for a in (0, 1):
        eff = d[a] * (k[a] - 1) + 1
        if p[a] > k[a] // 2 or (max_pool and p[a] > eff // 2):
            raise ValueError(f"{fn}: padding should be at most half of the kernel size, got "
                             f"padding={padding}, kernel_size={kernel_size}"
                             + (f" and dilation={dilation}" if max_pool else ""))
    h, w = x.shape[-2:]
    o = (pool_out_size(h, k[0], s[0], p[0], d[0], ceil_mode),
         pool_out_size(w, k[1], s[1], p[1], d[1], ceil_mode))
    if min(o) < 1:
        raise ValueError(f"{fn}: input of spatial size ({h} x {w}) is too small for the "
                         f"(dilated, padded) window: output size would be {o[0]} x {o[1]}")
    return _Geom(k, s, p, d, o)


def _padded(x, geom: _Geom, fill):
    """``x`` padded by p on the top/left and up to the window span on the bottom/right."""
    n, c, h, w = x.shape
    (ph, pw) = geom.p
    hp, wp = max(geom.span(0), h + ph), max(geom.span(1), w + pw)
    if hp == h and wp == w and ph == pw == 0:
        return x
    out = alloc_like(x, (n, c, hp, wp), fill)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _crop(a, geom: _Geom, hw):
    (ph, pw), (h, w) = geom.p, hw
    return a[:, :, ph:ph + h, pw:pw + w]


# ---------------------------------------------------------------------- max pooling
def _pos_dtype(xp, geom: _Geom):
    """Kernel positions fit in uint8 for kernels up to 15x15 (255 is the 'no match' mark)."""
    return xp.uint8 if geom.k[0] * geom.k[1] < 255 else xp.int32


def _max_pool_forward(x, geom: _Geom):
    """Window maxima and the kernel position (i * KW + j) of each maximum.

    PARITY: as torch's kernel, a later element wins only if strictly greater or NaN, so ties
    keep the first maximum, NaN propagates (the last NaN wins), and a window of -inf (or
    smaller) values points at its first in-bounds element, never at padding. Implemented as a
    running np.maximum, then the smallest position whose value equals the maximum.
    """
    xp = array_module(x)
    (kh, kw), (ph, pw) = geom.k, geom.p
    xpad = _padded(x, geom, -xp.inf)
    wins = [geom.window(xpad, i, j) for i in range(kh) for j in range(kw)]
    best = alloc_like(x, x.shape[:2] + geom.o, 0)
    xp.copyto(best, wins[0])
    for v in wins[1:]:
        xp.maximum(best, v, out=best)
    # pos = min over k of (k if window k holds the max else BIG): integer ops only (a masked
    # copy per position is ~4x slower).
    pdt = _pos_dtype(xp, geom)
    big = pdt(xp.iinfo(pdt).max)
    pos = alloc_like(x, best.shape, big, dtype=pdt)
    ne = xp.empty_like(best, dtype=bool)  # *_like: same memory order as x (and best)
    cand = xp.empty_like(pos)
    for k, v in enumerate(wins):
        xp.not_equal(v, best, out=ne)
        xp.multiply(ne, big, out=cand)
        xp.bitwise_or(cand, pdt(k), out=cand)  # big has every bit set: k if equal, else big
        xp.minimum(pos, cand, out=pos)
    nan = best != best
    if nan.any():
        for k, v in enumerate(wins):
            xp.copyto(pos, k, where=v != v)
    if ph or pw:
        lowest = best == -xp.inf
        if lowest.any():
            i0 = xp.maximum(-(-(ph - xp.arange(geom.o[0]) * geom.s[0]) // geom.d[0]), 0)
            j0 = xp.maximum(-(-(pw - xp.arange(geom.o[1]) * geom.s[1]) // geom.d[1]), 0)
            xp.copyto(pos, (i0[:, None] * kw + j0[None, :]).astype(pos.dtype), where=lowest)
    return best, pos


def _flat_indices(xp, pos, geom: _Geom, w: int):
    """Kernel positions -> int64 flat indices into the input's H*W plane (torch's indices)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = geom.key()
    k = xp.arange(kh * kw)
    offset = (k // kw) * dh * w + (k % kw) * dw
    base = (xp.arange(oh) * sh - ph)[:, None] * w + (xp.arange(ow) * sw - pw)[None, :]
    return offset.astype(xp.int64)[pos] + base


def _max_pool_scatter(g, pos, geom: _Geom, in_shape):
    """dL/dx: each output gradient goes to its window's argmax (summed where windows share it)."""
    xp = array_module(g)
    kw = geom.k[1]
    # NOTE: pos is laid out like the forward input; the gradient is built in that order.
    g = in_layout_of(g, pos)
    finite = bool(xp.isfinite(g).all())
    mask = xp.empty_like(g, dtype=bool)  # *_like: keep g's memory order
    part = xp.empty_like(g)

    def routed(k):  # g where the max of the window sits at position k, else 0
        xp.equal(pos, k, out=mask)
        if finite:  # NOTE: a multiply is ~2x faster than where(), but inf * 0 would be nan
            return xp.multiply(g, mask, out=part)
        return xp.where(mask, g, 0)

    if _tiles(geom, in_shape[2:]):
        out = alloc_like(pos, in_shape, 0, dtype=g.dtype)
        tiles = _tile_view(xp, out, geom)
        for k in range(geom.k[0] * kw):
            tiles[:, :, :, k // kw, :, k % kw] = routed(k)
        return out
    n, c, h, w = in_shape
    buf = alloc_like(pos, (n, c, max(geom.span(0), h + geom.p[0]),
                           max(geom.span(1), w + geom.p[1])), 0, dtype=g.dtype)
    for k in range(geom.k[0] * kw):
        geom.window(buf, k // kw, k % kw)[...] += routed(k)
    return _crop(buf, geom, (h, w))


def _max_pool_gather(u, pos, geom: _Geom):
    """The adjoint of :func:`_max_pool_scatter`: u at each window's argmax."""
    xp = array_module(u)
    upad = _padded(u, geom, 0)
    kw = geom.k[1]
    out = alloc_like(u, u.shape[:2] + geom.o, 0)
    for k in range(geom.k[0] * kw):
        v = geom.window(upad, k // kw, k % kw)
        xp.copyto(out, v, where=pos == k)
    return out


class MaxPool2dFn(Function):
    """y = max over each window; saves the argmax kernel positions for backward."""

    def forward(self, x, geom):
        out, pos = _max_pool_forward(x, geom)
        self.saved = pos
        return out

    def backward(self, g):
        x, geom = self.inputs
        pos = self.saved if self.saved is not None else _max_pool_forward(x.data, geom)[1]
        return MaxPoolScatterFn.apply(g, pos, geom, x.shape), None


class MaxPoolScatterFn(Function):
    """dL/dx of max pooling (linear in g); its adjoint gathers at the same argmax."""

    def forward(self, g, pos, geom, in_shape):
        return _max_pool_scatter(g, pos, geom, in_shape)

    def backward(self, u):
        _, pos, geom, _ = self.inputs
        return MaxPoolGatherFn.apply(u, pos, geom), None, None, None


class MaxPoolGatherFn(Function):
    """y = x at the saved argmax of each window (max pooling with the argmax held fixed)."""

    def forward(self, x, pos, geom):
        return _max_pool_gather(x, pos, geom)

    def backward(self, g):
        x, pos, geom = self.inputs
        return MaxPoolScatterFn.apply(g, pos, geom, x.shape), None, None


def _unbatched(fn):
    """Run a 4-D pooling body on 3-D (C, H, W) input too, as torch does."""
    def run(input, *args):
        if input.ndim == 3:
            out = fn(unsqueeze(input, 0), *args)
            if isinstance(out, tuple):
                return tuple(squeeze(o, 0) for o in out)
            return squeeze(out, 0)
        return fn(input, *args)
    return run


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max over (dilated) windows of NCHW input, as ``torch.nn.functional.max_pool2d``.

    Args:
        input: (N, C, H, W) or (C, H, W).
        kernel_size, stride (default: kernel_size), padding (implicit -inf, at most half the
            kernel), dilation: int or (h, w) pair.
        ceil_mode: round the output size up (see the module docstring).
        return_indices: also return the int64 flat index (into each H*W plane) of each max.

    Returns:
        (N, C, OH, OW), and the indices when ``return_indices``.

    Reference: Ranzato et al. 2007, "Unsupervised learning of invariant feature hierarchies
    with applications to object recognition" (max pooling in convolutional networks).
    """
    geom = _geometry("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode,
                     True)

    def body(x):
        out = MaxPool2dFn.apply(x, geom)
        if not return_indices:
            return out
        node = out.grad_fn
        pos = node.saved if node is not None else _max_pool_forward(x.data, geom)[1]
        return out, Tensor._wrap(_flat_indices(array_module(pos), pos, geom, x.shape[3]))

    return _unbatched(body)(input)


# ---------------------------------------------------------------------- average pooling
def _avg_divisor(xp, geom: _Geom, hw, count_include_pad, divisor_override):
    """(OH, OW) divisors. PARITY: torch counts padded positions (count_include_pad) but not
    those past the right padding in ceil mode; otherwise only the in-bounds ones."""
    if divisor_override:
        return xp.asarray(float(divisor_override))
    counts = []
    for a in (0, 1):
        start = xp.arange(geom.o[a]) * geom.s[a] - geom.p[a]
        end = xp.minimum(start + geom.k[a], hw[a] + geom.p[a])
        if count_include_pad:
            counts.append(end - start)
        else:
            counts.append(xp.minimum(end, hw[a]) - xp.maximum(start, 0))
    return xp.maximum(counts[0][:, None] * counts[1][None, :], 1)


def _tiles(geom: _Geom, hw) -> bool:
    """Windows tile the input from the origin: kernel == stride, no padding or dilation."""
    return (geom.k == geom.s and geom.p == (0, 0) and geom.d == (1, 1)
            and geom.o[0] * geom.k[0] <= hw[0] and geom.o[1] * geom.k[1] <= hw[1])


def _tile_view(xp, a, geom: _Geom):
    """(N, C, OH, KH, OW, KW) view of ``a`` (any memory order) for tiling windows."""
    (kh, kw), (oh, ow) = geom.k, geom.o
    s0, s1, s2, s3 = a.strides
    return xp.lib.stride_tricks.as_strided(a, (a.shape[0], a.shape[1], oh, kh, ow, kw),
                                           (s0, s1, s2 * kh, s2, s3 * kw, s3))


def _avg_pool_forward(x, geom: _Geom, divisor):
    xp = array_module(x)
    # NOTE: measured on (128, 64, 32, 32): a reduction over the (KH, KW) axes of the tile view
    # is ~8x slower than KH*KW strided adds for small kernels in NCHW memory (its inner loop
    # is 2 long), but faster in other memory orders or for large (global) kernels.
    if _tiles(geom, x.shape[2:]) and (not x.flags.c_contiguous
                                      or geom.k[0] * geom.k[1] > 64):
        out = _tile_view(xp, x, geom).sum(axis=(3, 5))
    else:
        xpad = _padded(x, geom, 0)
        out = alloc_like(x, (x.shape[0], x.shape[1]) + geom.o, 0)
        for i in range(geom.k[0]):
            for j in range(geom.k[1]):
                out += geom.window(xpad, i, j)
    out /= divisor.astype(x.dtype)
    return out


def _avg_pool_backward(g, geom: _Geom, divisor, in_shape, order):
    """dL/dx, laid out in memory in ``order`` (the forward input's)."""
    xp = array_module(g)
    gd = g / divisor.astype(g.dtype)
    if _tiles(geom, in_shape[2:]):
        out = alloc_in_order(xp, order, in_shape, g.dtype, 0)
        tiles = _tile_view(xp, out, geom)
        if geom.k[0] * geom.k[1] > 64:
            tiles[...] = gd[:, :, :, None, :, None]
        else:  # per-position assignment: ~2x faster than one broadcasting assignment
            for i in range(geom.k[0]):
                for j in range(geom.k[1]):
                    tiles[:, :, :, i, :, j] = gd
        return out
    n, c, h, w = in_shape
    buf = alloc_in_order(xp, order, (n, c, max(geom.span(0), h + geom.p[0]),
                                     max(geom.span(1), w + geom.p[1])), g.dtype, 0)
    for i in range(geom.k[0]):
        for j in range(geom.k[1]):
            geom.window(buf, i, j)[...] += gd
    return _crop(buf, geom, (h, w))


class AvgPool2dFn(Function):
    """y = (sum of x over each window) / divisor."""

    def forward(self, x, geom, divisor):
        return _avg_pool_forward(x, geom, divisor)

    def backward(self, g):
        x, geom, divisor = self.inputs
        return (AvgPool2dBackwardFn.apply(g, geom, divisor, x.shape, memory_order(x.data)),
                None, None)


class AvgPool2dBackwardFn(Function):
    """dL/dx of average pooling (in memory ``order``); its adjoint is average pooling."""

    def forward(self, g, geom, divisor, in_shape, order):
        return _avg_pool_backward(g, geom, divisor, in_shape, order)

    def backward(self, u):
        _, geom, divisor, _, _ = self.inputs
        return AvgPool2dFn.apply(u, geom, divisor), None, None, None, None


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """Mean over windows of NCHW input, as ``torch.nn.functional.avg_pool2d``.

    Args:
        input: (N, C, H, W) or (C, H, W).
        kernel_size, stride (default: kernel_size), padding (zeros, at most half the kernel).
        ceil_mode: round the output size up (see the module docstring).
        count_include_pad: divide by the window size including zero padding (else by the
            number of in-bounds elements).
        divisor_override: divide every window sum by this instead.

    Returns:
        (N, C, OH, OW).
    """
    if divisor_override is not None and (isinstance(divisor_override, bool)
                                         or not isinstance(divisor_override, numbers.Real)
                                         or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a non-zero number, got "
                         f"{divisor_override!r}")
    geom = _geometry("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode, False)
    divisor = _avg_divisor(array_module(input.data), geom, input.shape[-2:], count_include_pad,
                           divisor_override)
    return _unbatched(lambda x: AvgPool2dFn.apply(x, geom, divisor))(input)


# ---------------------------------------------------------------------- adaptive pooling
def _adaptive_bounds(size: int, out: int):
    """PyTorch's adaptive windows: [floor(i L / o), ceil((i + 1) L / o)) for i < o."""
    start = [(i * size) // out for i in range(out)]
    end = [-(-((i + 1) * size) // out) for i in range(out)]
    return start, end


def _output_size(fn, x, output_size) -> tuple[int, int]:
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                         f"{x.shape}")
    vals = (output_size, output_size) if isinstance(output_size, numbers.Integral) or \
        output_size is None else tuple(output_size)
    if len(vals) != 2:
        raise ValueError(f"{fn}: output_size must be an int or a pair, got {output_size!r}")
    # PARITY: None keeps the input size along that axis.
    vals = tuple(x.shape[-2 + a] if v is None else v for a, v in enumerate(vals))
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
               for v in vals):
        raise ValueError(f"{fn}: output_size must be positive ints (or None), got "
                         f"{output_size!r}")
    return int(vals[0]), int(vals[1])


class _SeparableFn(Function):
    """y = A x B^T over the last two axes (A: (OH, H), B: (OW, W)); adjoint: A^T g B."""

    def forward(self, x, a, b):
        xp = array_module(x)
        return xp.matmul(xp.matmul(a, x), b.T)

    def backward(self, g):
        _, a, b = self.inputs
        return _SeparableFn.apply(g, a.T, b.T), None, None


def _averaging_matrix(xp, size: int, out: int, dtype):
    start, end = _adaptive_bounds(size, out)
    m = xp.zeros((out, size), dtype=dtype)
    for i, (s, e) in enumerate(zip(start, end)):  # out rows: a loop over output size only
        m[i, s:e] = 1.0 / (e - s)
    return m


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Window i along an axis of length L covers [floor(i L / o), ceil((i + 1) L / o)), so windows
    may overlap and differ in size when o does not divide L.

    Args:
        input: (N, C, H, W) or (C, H, W).
        output_size: int or (oh, ow) pair; None in the pair keeps that input dimension.
    """
    oh, ow = _output_size("adaptive_avg_pool2d", input, output_size)
    h, w = input.shape[-2:]
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(input, (h // oh, w // ow))
    xp = array_module(input.data)
    a = _averaging_matrix(xp, h, oh, input.dtype)
    b = _averaging_matrix(xp, w, ow, input.dtype)
    return _SeparableFn.apply(input, a, b)


def _adaptive_windows(xp, size: int, out: int):
    """(out, kmax) clipped indices of each adaptive window and the mask of its real entries."""
    start, end = _adaptive_bounds(size, out)
    kmax = max(e - s for s, e in zip(start, end))
    idx = xp.asarray(start)[:, None] + xp.arange(kmax)[None, :]
    return xp.minimum(idx, size - 1), idx < xp.asarray(end)[:, None]


def _adaptive_max_forward(x, out_hw):
    """Values and flat argmax indices for adaptive windows (same tie rule as max pooling).

    A loop over the (kmax_h, kmax_w) window offsets; entries past a shorter window's end are
    masked out."""
    xp = array_module(x)
    w = x.shape[3]
    ri, rv = _adaptive_windows(xp, x.shape[2], out_hw[0])
    ci, cv = _adaptive_windows(xp, w, out_hw[1])
    best = xp.full(x.shape[:2] + out_hw, -xp.inf, dtype=x.dtype)
    flat = xp.zeros(x.shape[:2] + out_hw, dtype=xp.int64)
    flat += ri[:, :1] * w + ci[:, 0][None, :]
    for a in range(ri.shape[1]):
        for b in range(ci.shape[1]):
            v = x[:, :, ri[:, a][:, None], ci[:, b][None, :]]
            take = (v > best) | (v != v)
            take &= rv[:, a][:, None] & cv[:, b][None, :]
            xp.copyto(best, v, where=take)
            xp.copyto(flat, ri[:, a][:, None] * w + ci[:, b][None, :], where=take)
    return best, flat


class _GatherFn(Function):
    """y[n, c, l] = x[n, c, idx[n, c, l]] over flattened H*W planes (idx: int64 (N, C, ...))."""

    def forward(self, x, idx):
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        return array_module(x).take_along_axis(flat, idx.reshape(n, c, -1), axis=2).reshape(
            idx.shape)

    def backward(self, g):
        x, idx = self.inputs
        return _ScatterFn.apply(g, idx, x.shape), None


class _ScatterFn(Function):
    """The adjoint of :class:`_GatherFn`: zeros of ``shape`` plus g added at ``idx`` (indices
    may repeat, so the sum is a bincount)."""

    def forward(self, g, idx, shape):
        xp = array_module(g)
        n, c = shape[:2]
        hw = int(np.prod(shape[2:]))
        offsets = (xp.arange(n * c, dtype=xp.int64) * hw).reshape(n, c, *([1] * (idx.ndim - 2)))
        out = xp.bincount((idx + offsets).reshape(-1), weights=g.reshape(-1),
                          minlength=n * c * hw)
        return out.astype(g.dtype).reshape(shape)

    def backward(self, u):
        _, idx, _ = self.inputs
        return _GatherFn.apply(u, idx), None, None


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to a fixed output size, as ``torch.nn.functional.adaptive_max_pool2d``.

    Windows as in :func:`adaptive_avg_pool2d`; ties keep the first maximum, NaN propagates.

    Returns:
        (N, C, oh, ow), and the int64 flat indices when ``return_indices``.
    """
    out_hw = _output_size("adaptive_max_pool2d", input, output_size)

    def body(x):
        _, idx = _adaptive_max_forward(x.data, out_hw)
        out = _GatherFn.apply(x, idx)
        return (out, Tensor._wrap(idx)) if return_indices else out

    return _unbatched(body)(input)
