"""Reductions: sum, mean, var, max/min, logsumexp, softmax and log-softmax.

Gradients of reductions broadcast the upstream gradient back over the reduced dimensions.
Softmax and log-softmax are fused (numerically stable: the row maximum is subtracted first).
"""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from deepgrad._backend import array_module
from deepgrad.autograd.function import Function
from deepgrad.ops.elementwise import div, exp, mul, sqrt, sub
from deepgrad.ops.shape import expand, reshape
from deepgrad.tensor import Tensor


def _axes(dim, ndim):
    """Normalise ``dim`` (None, int or tuple) to a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"dimension {d} is out of range for a tensor of {ndim} dimensions")
        out.append(int(d) % builtins.max(ndim, 1))
    return tuple(sorted(set(out)))


def _keep_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _broadcast_back(g: Tensor, in_shape, axes, keepdim) -> Tensor:
    """Reshape a reduced gradient to keepdim form and broadcast it over ``in_shape``."""
    if not keepdim:
        g = reshape(g, _keep_shape(in_shape, axes))
    return expand(g, in_shape)


class SumFn(Function):
    def forward(self, a, axes, keepdim):
        return a.sum(axis=axes, keepdims=keepdim)

    def backward(self, g):
        a, axes, keepdim = self.inputs
        return _broadcast_back(g, a.shape, axes, keepdim), None, None


class MeanFn(Function):
    def forward(self, a, axes, keepdim):
        return a.mean(axis=axes, keepdims=keepdim)

    def backward(self, g):
        # d mean / da_i = 1/n for each of the n reduced elements.
        a, axes, keepdim = self.inputs
        n = int(np.prod([a.shape[i] for i in axes])) if axes else 1
        return div(_broadcast_back(g, a.shape, axes, keepdim), float(n)), None, None


class AmaxFn(Function):
    def forward(self, a, axes, keepdim):
        return a.max(axis=axes, keepdims=keepdim)

    def backward(self, g):
        # The gradient goes to the maximal elements, split evenly among ties (as torch.amax).
        return _extreme_backward(self, g)


class AminFn(Function):
    def forward(self, a, axes, keepdim):
        return a.min(axis=axes, keepdims=keepdim)

    def backward(self, g):
        return _extreme_backward(self, g)


def _extreme_backward(node, g):
    a, axes, keepdim = node.inputs
    out = node.out_data if keepdim else node.out_data.reshape(_keep_shape(a.shape, axes))
    mask = (a.data == out).astype(a.data.dtype)
    mask /= mask.sum(axis=axes, keepdims=True)
    return mul(_broadcast_back(g, a.shape, axes, keepdim), Tensor._wrap(mask)), None, None


class LogSumExpFn(Function):
    def forward(self, a, axes, keepdim):
        xp = array_module(a)
        m = a.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        out = xp.log(xp.exp(a - m).sum(axis=axes, keepdims=True)) + m
        return out if keepdim else out.reshape([s for i, s in enumerate(a.shape)
                                                if i not in axes])

    def backward(self, g):
        # d logsumexp / da = softmax(a) over the reduced axes.
        a, axes, keepdim = self.inputs
        out = _broadcast_back(self.output(), a.shape, axes, keepdim)
        return mul(_broadcast_back(g, a.shape, axes, keepdim), exp(sub(a, out))), None, None


class SoftmaxFn(Function):
    def forward(self, a, dim):
        xp = array_module(a)
        e = xp.exp(a - a.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        return e

    def backward(self, g):
        # y = softmax(a): dL/da = y * (g - sum(g * y)).
        y = self.output()
        dim = self.inputs[1]
        return mul(y, sub(g, sum(mul(g, y), dim, keepdim=True))), None


class LogSoftmaxFn(Function):
    def forward(self, a, dim):
        xp = array_module(a)
        shifted = a - a.max(axis=dim, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))

    def backward(self, g):
        # y = log_softmax(a): dL/da = g - softmax(a) * sum(g).
        dim = self.inputs[1]
        return sub(g, mul(exp(self.output()), sum(g, dim, keepdim=True))), None


# ---------------------------------------------------------------------- wrappers
def sum(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return SumFn.apply(a, _axes(dim, a.ndim), keepdim)


def mean(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if a.data.dtype.kind not in "fc":
        raise TypeError(f"mean() needs a floating-point tensor, got dtype {a.dtype}")
    return MeanFn.apply(a, _axes(dim, a.ndim), keepdim)


def var(a: Tensor, dim=None, unbiased=None, keepdim: bool = False, correction=None) -> Tensor:
    """Variance with Bessel's correction by default (``correction=1``), as ``torch.var``."""
    if correction is None:
        correction = 0 if unbiased is False else 1
    axes = _axes(dim, a.ndim)
    n = int(np.prod([a.shape[i] for i in axes])) if axes else 1
    centred = sub(a, mean(a, axes, keepdim=True))
    total = sum(mul(centred, centred), axes, keepdim)
    return div(total, float(builtins.max(n - correction, 0)))


def std(a: Tensor, dim=None, unbiased=None, keepdim: bool = False, correction=None) -> Tensor:
    return sqrt(var(a, dim, unbiased=unbiased, keepdim=keepdim, correction=correction))


def amax(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return AmaxFn.apply(a, _axes(dim, a.ndim), keepdim)


def amin(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return AminFn.apply(a, _axes(dim, a.ndim), keepdim)


MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _values_indices(a, dim, keepdim, arg, reducer):
    axes = _axes(dim, a.ndim)
    idx = arg(a, dim, keepdim=True)
    values = reducer(a, axes, keepdim)
    indices = idx if keepdim else Tensor._wrap(idx.data.squeeze(axis=axes[0]))
    return MaxResult(values, indices)


def max(a: Tensor, dim=None, keepdim: bool = False):
    """The maximum; with ``dim``, a (values, indices) pair as ``torch.max``."""
    if dim is None:
        return amax(a)
    return _values_indices(a, dim, keepdim, argmax, amax)


def min(a: Tensor, dim=None, keepdim: bool = False):
    """The minimum; with ``dim``, a (values, indices) pair as ``torch.min``."""
    if dim is None:
        return amin(a)
    return _values_indices(a, dim, keepdim, argmin, amin)


def argmax(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return Tensor._wrap(np.asarray(a.data.argmax(), dtype=np.int64))
    return Tensor._wrap(a.data.argmax(axis=dim, keepdims=keepdim).astype(np.int64))


def argmin(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return Tensor._wrap(np.asarray(a.data.argmin(), dtype=np.int64))
    return Tensor._wrap(a.data.argmin(axis=dim, keepdims=keepdim).astype(np.int64))


def logsumexp(a: Tensor, dim, keepdim: bool = False) -> Tensor:
    return LogSumExpFn.apply(a, _axes(dim, a.ndim), keepdim)


def softmax(a: Tensor, dim: int) -> Tensor:
    """softmax(a)_i = exp(a_i) / sum_j exp(a_j) along ``dim`` (stable)."""
    return SoftmaxFn.apply(a, _axes(dim, a.ndim)[0])


def log_softmax(a: Tensor, dim: int) -> Tensor:
    """log_softmax(a)_i = a_i - logsumexp(a) along ``dim`` (stable)."""
    return LogSoftmaxFn.apply(a, _axes(dim, a.ndim)[0])


def norm(a: Tensor, p=2, dim=None, keepdim: bool = False) -> Tensor:
    """Vector p-norm over ``dim`` (all elements by default); ``p`` may be ``inf``."""
    from deepgrad.ops.elementwise import abs as _abs
    from deepgrad.ops.elementwise import pow as _pow

    if p in (float("inf"), "inf"):
        return amax(_abs(a), dim, keepdim)
    if p == 2:
        return sqrt(sum(mul(a, a), dim, keepdim))
    if p == 1:
        return sum(_abs(a), dim, keepdim)
    return _pow(sum(_pow(_abs(a), p), dim, keepdim), 1.0 / p)
