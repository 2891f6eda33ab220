"""Shape primitives: reshape, permute, expand/sum_to, indexing, concatenation.

These move values without arithmetic, so each backward is the inverse movement: reshape back,
permute back, sum over what was broadcast, scatter back into what was indexed.
"""

from __future__ import annotations

import numpy as np

from deepgrad._backend import array_module
from deepgrad.autograd.function import Function
from deepgrad.ops._layout import alloc_like
from deepgrad.tensor import Tensor, _unwrap_index


def _norm_dim(dim: int, ndim: int) -> int:
    if not -ndim <= dim < max(ndim, 1):
        raise IndexError(f"dimension {dim} is out of range for a tensor of {ndim} dimensions")
    return dim % max(ndim, 1)


# ---------------------------------------------------------------------- broadcasting
class SumToFn(Function):
    def forward(self, a, shape):
        return _sum_to_array(a, shape)

    def backward(self, g):
        # The adjoint of summing over broadcast dimensions is broadcasting back.
        return expand(g, self.inputs[0].shape), None


def _sum_to_array(a, shape):
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1
    )
    out = a.sum(axis=axes, keepdims=True) if axes else a
    if lead:
        out = out.reshape(shape)
    return out


class ExpandFn(Function):
    def forward(self, a, shape):
        return array_module(a).broadcast_to(a, shape)

    def backward(self, g):
        return sum_to(g, self.inputs[0].shape), None


def sum_to(g: Tensor, shape) -> Tensor:
    """Sum ``g`` over the dimensions that broadcasting added or stretched, giving ``shape``."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    return SumToFn.apply(g, shape)


def expand(a: Tensor, shape) -> Tensor:
    """Broadcast ``a`` to ``shape`` (-1 keeps a dimension), as ``torch.Tensor.expand``."""
    shape = tuple(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ValueError(f"cannot expand shape {a.shape} to {shape}: fewer dimensions")
    shape = tuple(a.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    if shape == a.shape:
        return a
    try:
        np.broadcast_shapes(a.shape, shape)
    except ValueError:
        raise ValueError(f"cannot expand shape {a.shape} to {shape}") from None
    return ExpandFn.apply(a, shape)


# ---------------------------------------------------------------------- views
class ReshapeFn(Function):
    def forward(self, a, shape):
        return a.reshape(shape)

    def backward(self, g):
        return reshape(g, self.inputs[0].shape), None


class PermuteFn(Function):
    def forward(self, a, dims):
        return a.transpose(dims)

    def backward(self, g):
        dims = self.inputs[1]
        return permute(g, tuple(np.argsort(dims))), None


def reshape(a: Tensor, shape) -> Tensor:
    shape = tuple(int(s) for s in shape)
    if shape == a.shape:
        return a
    try:
        return ReshapeFn.apply(a, shape)
    except ValueError:
        raise ValueError(f"cannot reshape a tensor of shape {a.shape} into shape {shape}") from None


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if a.ndim == 0:
        return reshape(a, (1,))
    s, e = _norm_dim(start_dim, a.ndim), _norm_dim(end_dim, a.ndim)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = a.shape[:s] + (int(np.prod(a.shape[s:e + 1])),) + a.shape[e + 1:]
    return reshape(a, shape)


def permute(a: Tensor, dims) -> Tensor:
    dims = tuple(_norm_dim(d, a.ndim) for d in dims)
    if sorted(dims) != list(range(a.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {a.ndim} dimensions")
    if dims == tuple(range(a.ndim)):
        return a
    return PermuteFn.apply(a, dims)


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(a.ndim))
    d0, d1 = _norm_dim(dim0, a.ndim), _norm_dim(dim1, a.ndim)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(a, dims)


def movedim(a: Tensor, source: int, destination: int) -> Tensor:
    s, d = _norm_dim(source, a.ndim), _norm_dim(destination, a.ndim)
    dims = [i for i in range(a.ndim) if i != s]
    dims.insert(d, s)
    return permute(a, dims)


def squeeze(a: Tensor, dim=None) -> Tensor:
    if dim is None:
        return reshape(a, tuple(s for s in a.shape if s != 1))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    dims = {_norm_dim(d, a.ndim) for d in dims}
    # PARITY: squeezing a dimension whose size is not 1 is a no-op, as in PyTorch.
    return reshape(a, tuple(s for i, s in enumerate(a.shape) if not (i in dims and s == 1)))


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    d = _norm_dim(dim, a.ndim + 1)
    return reshape(a, a.shape[:d] + (1,) + a.shape[d:])


# ---------------------------------------------------------------------- indexing
def _is_basic(index) -> bool:
    """True when ``index`` selects without copying (ints, slices, None, Ellipsis only)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice))
               for i in items)


def _one_range(index, shape):
    """(k, start, stop) when ``index`` is a step-1 slice on axis k with full slices before it
    (and nothing after), so that ``x[index]`` is the range start:stop along k; else None."""
    items = index if isinstance(index, tuple) else (index,)
    if not items or len(items) > len(shape):
        return None
    *lead, last = items
    if not all(isinstance(i, slice) and i == slice(None) for i in lead):
        return None
    if not isinstance(last, slice) or last.step not in (None, 1):
        return None
    start, stop, _ = last.indices(shape[len(lead)])
    return len(lead), start, stop


class GetItemFn(Function):
    def forward(self, a, index):
        return a[index]

    def backward(self, g):
        a, index = self.inputs
        # NOTE: the gradient takes the memory order of ``a`` (as torch's preserve_format), so
        # that the op that made ``a`` gets its gradient in the order it wrote ``a`` in (an
        # LSTM's packed states: a transposing 2 MB copy less in W4's backward).
        return index_add_into(g, index, a.shape, like=a.data), None


class IndexAddIntoFn(Function):
    """Scatter ``g`` into zeros of ``shape`` at ``index`` (adding where indices repeat), laid
    out in memory like ``like`` (an array of ``shape``; else like ``g`` when it has as many
    dimensions, else C order)."""

    def forward(self, g, index, shape, like=None):
        if like is not None and like.shape == tuple(shape):
            layout = like
        else:
            layout = g if len(shape) == g.ndim else None
        rng = _one_range(index, shape) if layout is not None else None
        if rng is not None:
            # NOTE: g lands in one contiguous range along one axis (out[:, a:b] = g, e.g. the
            # steps of an LSTM's packed output): write g there and zeros only around it,
            # instead of zeroing everything first (one full pass less).
            axis, a, b = rng
            out = alloc_like(layout, shape, dtype=g.dtype)
            out[index] = g
            lead = (slice(None),) * axis
            out[lead + (slice(0, a),)] = 0
            out[lead + (slice(b, shape[axis]),)] = 0
            return out
        if layout is not None and _is_basic(index):
            out = alloc_like(layout, shape, 0, dtype=g.dtype)
        else:
            out = array_module(g).zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g
        else:
            np.add.at(out, index, g)
        return out

    def backward(self, gg):
        # The adjoint of scattering is gathering at the same index.
        return (getitem(gg, self.inputs[1]),) + (None,) * (len(self.inputs) - 1)


def getitem(a: Tensor, index) -> Tensor:
    """``a[index]`` with ints, slices, None, Ellipsis, integer arrays and boolean masks."""
    index = _unwrap_index(index)
    try:
        return GetItemFn.apply(a, index)
    except IndexError as exc:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {a.shape}: {exc}") \
            from None


def index_add_into(g: Tensor, index, shape, like=None) -> Tensor:
    """Zeros of ``shape`` with ``g`` added at ``index``; ``like``: an array of ``shape`` whose
    memory order the result takes."""
    return IndexAddIntoFn.apply(g, index, tuple(shape), like)


# ---------------------------------------------------------------------- joining
class CatFn(Function):
    def forward(self, *arrays, dim):
        return array_module(*arrays).concatenate(arrays, axis=dim)

    def backward(self, g):
        dim = self.kwargs["dim"]
        grads, start = [], 0
        for t in self.inputs:
            size = t.shape[dim]
            index = (slice(None),) * dim + (slice(start, start + size),)
            grads.append(getitem(g, index))
            start += size
        return tuple(grads)


class StackFn(Function):
    def forward(self, *arrays, dim):
        return array_module(*arrays).stack(arrays, axis=dim)

    def backward(self, g):
        dim = self.kwargs["dim"]
        return tuple(getitem(g, (slice(None),) * dim + (i,)) for i in range(len(self.inputs)))


def _as_tensors(tensors, what):
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError(f"{what} expects a non-empty sequence of tensors")
    return tensors


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dimension (``torch.cat``)."""
    tensors = _as_tensors(tensors, "cat")
    d = _norm_dim(dim, tensors[0].ndim)
    first = tensors[0].shape
    for t in tensors[1:]:
        if t.ndim != len(first) or any(
            s != f for i, (s, f) in enumerate(zip(t.shape, first)) if i != d
        ):
            raise ValueError(f"cat: shapes {first} and {t.shape} differ outside dimension {d}")
    return CatFn.apply(*tensors, dim=d)


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack along a new dimension (``torch.stack``)."""
    tensors = _as_tensors(tensors, "stack")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack expects equal shapes, got {tensors[0].shape} and {t.shape}")
    return StackFn.apply(*tensors, dim=_norm_dim(dim, tensors[0].ndim + 1))


def split(a: Tensor, split_size, dim: int = 0):
    """Split into chunks of ``split_size`` (int) or of the given sizes (list)."""
    d = _norm_dim(dim, a.ndim)
    n = a.shape[d]
    sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else []) \
        if isinstance(split_size, int) else list(split_size)
    if sum(sizes) != n:
        raise ValueError(f"split sizes {sizes} do not add up to dimension size {n}")
    out, start = [], 0
    for s in sizes:
        out.append(getitem(a, (slice(None),) * d + (slice(start, start + s),)))
        start += s
    return tuple(out)


def unbind(a: Tensor, dim: int = 0):
    d = _norm_dim(dim, a.ndim)
    return tuple(getitem(a, (slice(None),) * d + (i,)) for i in range(a.shape[d]))


# ---------------------------------------------------------------------- padding
class PadFn(Function):
    def forward(self, a, widths, value):
        out = alloc_like(a, tuple(s + lo + hi for s, (lo, hi) in zip(a.shape, widths)), value)
        out[tuple(slice(lo, lo + s) for (lo, _), s in zip(widths, a.shape))] = a
        return out  # in a's memory order (np.pad would return C order)

    def backward(self, g):
        a, widths, _ = self.inputs
        index = tuple(slice(lo, lo + s) for (lo, _), s in zip(widths, a.shape))
        return getitem(g, index), None, None


def pad(a: Tensor, pad: tuple, value: float = 0.0) -> Tensor:
    """Constant padding with PyTorch's ``F.pad`` convention: (left, right, top, bottom, ...)
    pads the last dimension first."""
    if len(pad) % 2 or len(pad) // 2 > a.ndim:
        raise ValueError(f"pad needs pairs for at most {a.ndim} dimensions, got {pad}")
    if any(p < 0 for p in pad):
        raise ValueError(f"negative padding is not supported, got {pad}")
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return PadFn.apply(a, tuple(widths), value)


# ---------------------------------------------------------------------- once-differentiable
class OnceDifferentiableGuardFn(Function):
    """Passes a gradient through; raises if anyone tries to differentiate it again."""

    def forward(self, value, name, *context):
        return value

    def backward(self, g):
        raise RuntimeError(
            f"{self.inputs[1]} is once-differentiable: its gradient cannot be differentiated "
            "again (create_graph=True through this op is not supported)"
        )


def once_differentiable_guard(value: Tensor, name: str, *context) -> Tensor:
    return OnceDifferentiableGuardFn.apply(value, name, *context)
