"""The Tensor: an n-dimensional array that records the operations applied to it.

A Tensor wraps a NumPy array (``.data``). When ``requires_grad`` is True, each operation on it
creates a node in a graph (``.grad_fn``) and ``backward()`` fills ``.grad`` of the leaves, as in
PyTorch. The methods here only dispatch to the primitives in :mod:`deepgrad.ops`; no gradient
code lives in this file.
"""

from __future__ import annotations

import numbers

import numpy as np

from deepgrad import _dtype
from deepgrad._random import get_rng
from deepgrad.autograd import grad_mode


def _is_float(dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


def _as_array(data, dtype=None) -> np.ndarray:
    """Convert ``data`` to an ndarray, applying deepgrad's dtype rules (PyTorch's)."""
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        arr = np.asarray(data)
        # PARITY: Python floats become the default dtype, Python ints int64, as torch.tensor.
        if arr.dtype == np.float64 and not isinstance(data, np.generic):
            arr = arr.astype(_dtype.get_default_dtype())
        elif arr.dtype.kind in "iu" and not isinstance(data, np.generic):
            arr = arr.astype(np.int64)
    if dtype is not None:
        arr = arr.astype(_dtype.to_numpy_dtype(dtype), copy=False)
    if arr.dtype == object:
        raise TypeError("tensor() got data that is not numeric")
    return arr


class Tensor:
    """A multi-dimensional array with reverse-mode automatic differentiation.

    Args:
        data: array-like (nested lists, scalars, ndarrays, Tensors).
        requires_grad: record operations on this tensor for ``backward``.
        dtype: dtype name or NumPy dtype; defaults follow PyTorch (floats take the default
            dtype, ints int64, ndarrays keep theirs).
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_hooks", "__weakref__")
    __array_priority__ = 1000  # so that ndarray <op> Tensor defers to Tensor's operators

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        arr = _as_array(data, dtype)
        if isinstance(data, (Tensor, np.ndarray)) and dtype is None:
            arr = arr.copy()
        self.data = arr
        self.grad = None
        self.grad_fn = None
        self._hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr) -> Tensor:
        """Wrap an array without copying or validation (internal fast path)."""
        t = Tensor.__new__(Tensor)
        t.data = arr if isinstance(arr, np.ndarray) else np.asarray(arr)
        t.grad = None
        t.requires_grad = False
        t.grad_fn = None
        t._hooks = None
        return t

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:
        return self.transpose(-2, -1)

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """Return the underlying array (shares memory, like ``torch.Tensor.numpy``)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def item(self):
        if self.data.size != 1:
            raise ValueError(
                f"only one-element tensors can be converted to a Python scalar, got shape "
                f"{self.shape}"
            )
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                "the truth value of a tensor with more than one element is ambiguous"
            )
        return bool(self.data.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.data.item())

    def to(self, dtype) -> Tensor:
        return self.type(dtype)

    def type(self, dtype) -> Tensor:
        from deepgrad.ops.elementwise import cast

        return cast(self, _dtype.to_numpy_dtype(dtype))

    def float(self) -> Tensor:
        return self.type(np.float32)

    def double(self) -> Tensor:
        return self.type(np.float64)

    def long(self) -> Tensor:
        return self.type(np.int64)

    def int(self) -> Tensor:
        return self.type(np.int32)

    def bool(self) -> Tensor:
        return self.type(np.bool_)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", precision=4, prefix="tensor(")
        extras = []
        if self.data.dtype not in (_dtype.get_default_dtype(), np.dtype(np.int64),
                                   np.dtype(np.bool_)):
            extras.append(f"dtype={self.data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not _is_float(self.data.dtype):
            raise RuntimeError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype}"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad can only be turned off on leaf tensors; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """A new tensor sharing the data, cut from the graph."""
        return Tensor._wrap(self.data)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        from deepgrad.ops.elementwise import clone

        return clone(self)

    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        Args:
            gradient: the upstream gradient (same shape as self); may be omitted for scalars.
            retain_graph: keep the graph for another backward (defaults to ``create_graph``).
            create_graph: record the backward pass so the gradients can be differentiated.
            inputs: accumulate only into these leaves.
        """
        from deepgrad.autograd.engine import run_backward

        if not self.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        gradient = _default_grad(self, gradient)
        if retain_graph is None:
            retain_graph = create_graph
        if inputs is not None:
            from deepgrad.autograd import grad as _grad

            grads = _grad([self], list(inputs), [gradient], retain_graph=retain_graph,
                          create_graph=create_graph, allow_unused=True)
            for leaf, g in zip(inputs, grads):
                if g is not None:
                    leaf.grad = g if leaf.grad is None else leaf.grad + g
            return
        run_backward([self], [gradient], retain_graph, create_graph)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a
        replacement gradient."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require grad")
        if self.grad_fn is not None:
            if self.grad_fn.hooks is None:
                self.grad_fn.hooks = []
            self.grad_fn.hooks.append(hook)
            hooks = self.grad_fn.hooks
        else:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            hooks = self._hooks
        return _HookHandle(hooks, hook)

    # ------------------------------------------------------------------ in place (no graph)
    def _check_inplace(self):
        if grad_mode.is_grad_enabled() and self.requires_grad:
            raise RuntimeError(
                "a leaf tensor that requires grad is being used in an in-place operation; "
                "wrap it in deepgrad.no_grad()"
            )

    def _inplace(self, op, other) -> Tensor:
        self._check_inplace()
        other = other.data if isinstance(other, Tensor) else other
        op(self.data, other, out=self.data, casting="same_kind")
        return self

    def add_(self, other, alpha=1) -> Tensor:
        if alpha != 1:
            other = (other.data if isinstance(other, Tensor) else other) * alpha
        return self._inplace(np.add, other)

    def sub_(self, other, alpha=1) -> Tensor:
        if alpha != 1:
            other = (other.data if isinstance(other, Tensor) else other) * alpha
        return self._inplace(np.subtract, other)

    def mul_(self, other) -> Tensor:
        return self._inplace(np.multiply, other)

    def div_(self, other) -> Tensor:
        return self._inplace(np.divide, other)

    def zero_(self) -> Tensor:
        self._check_inplace()
        self.data[...] = 0
        return self

    def fill_(self, value) -> Tensor:
        self._check_inplace()
        self.data[...] = value
        return self

    def copy_(self, src) -> Tensor:
        self._check_inplace()
        src = src.data if isinstance(src, Tensor) else np.asarray(src)
        np.copyto(self.data, np.broadcast_to(src, self.data.shape), casting="same_kind")
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        self._check_inplace()
        self.data[...] = get_rng().uniform(a, b, self.shape)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        self._check_inplace()
        self.data[...] = get_rng().normal(mean, std, self.shape)
        return self

    def __setitem__(self, index, value):
        if self.requires_grad or self.grad_fn is not None:
            if grad_mode.is_grad_enabled():
                raise RuntimeError(
                    "in-place assignment into a tensor that is part of the graph is not "
                    "supported; build a new tensor (e.g. with where()) instead"
                )
        index = _unwrap_index(index)
        self.data[index] = value.data if isinstance(value, Tensor) else value

    # ------------------------------------------------------------------ operators
    def __add__(self, other):
        return _ew().add(self, other)

    def __radd__(self, other):
        return _ew().add(other, self)

    def __sub__(self, other):
        return _ew().sub(self, other)

    def __rsub__(self, other):
        return _ew().sub(other, self)

    def __mul__(self, other):
        return _ew().mul(self, other)

    def __rmul__(self, other):
        return _ew().mul(other, self)

    def __truediv__(self, other):
        return _ew().div(self, other)

    def __rtruediv__(self, other):
        return _ew().div(other, self)

    def __pow__(self, other):
        return _ew().pow(self, other)

    def __rpow__(self, other):
        return _ew().pow(other, self)

    def __neg__(self):
        return _ew().neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ew().abs(self)

    def __matmul__(self, other):
        from deepgrad.ops.linalg import matmul

        return matmul(self, other)

    def __rmatmul__(self, other):
        from deepgrad.ops.linalg import matmul

        return matmul(other, self)

    def _compare(self, op, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self.data, other))

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(np.equal, other)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(np.not_equal, other)

    def __lt__(self, other):
        return self._compare(np.less, other)

    def __le__(self, other):
        return self._compare(np.less_equal, other)

    def __gt__(self, other):
        return self._compare(np.greater, other)

    def __ge__(self, other):
        return self._compare(np.greater_equal, other)

    def __invert__(self):
        return Tensor._wrap(np.invert(self.data))

    def __and__(self, other):
        return self._compare(np.logical_and, other)

    def __or__(self, other):
        return self._compare(np.logical_or, other)

    __hash__ = object.__hash__

    def __getitem__(self, index):
        from deepgrad.ops.shape import getitem

        return getitem(self, index)

    # ------------------------------------------------------------------ math methods
    def exp(self):
        return _ew().exp(self)

    def log(self):
        return _ew().log(self)

    def log1p(self):
        return _ew().log1p(self)

    def sqrt(self):
        return _ew().sqrt(self)

    def abs(self):
        return _ew().abs(self)

    def sign(self):
        return _ew().sign(self)

    def clamp(self, min=None, max=None):
        return _ew().clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return _ew().maximum(self, other)

    def minimum(self, other):
        return _ew().minimum(self, other)

    def relu(self):
        return _ew().relu(self)

    def sigmoid(self):
        return _ew().sigmoid(self)

    def tanh(self):
        return _ew().tanh(self)

    def softmax(self, dim):
        from deepgrad.ops.reduce import softmax

        return softmax(self, dim)

    def log_softmax(self, dim):
        from deepgrad.ops.reduce import log_softmax

        return log_softmax(self, dim)

    def sum(self, dim=None, keepdim=False):
        from deepgrad.ops.reduce import sum

        return sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        from deepgrad.ops.reduce import mean

        return mean(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        from deepgrad.ops.reduce import var

        return var(self, dim, unbiased=unbiased, keepdim=keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        from deepgrad.ops.reduce import std

        return std(self, dim, unbiased=unbiased, keepdim=keepdim, correction=correction)

    def max(self, dim=None, keepdim=False):
        from deepgrad.ops.reduce import max

        return max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        from deepgrad.ops.reduce import min

        return min(self, dim, keepdim)

    def amax(self, dim=None, keepdim=False):
        from deepgrad.ops.reduce import amax

        return amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        from deepgrad.ops.reduce import amin

        return amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        from deepgrad.ops.reduce import argmax

        return argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        from deepgrad.ops.reduce import argmin

        return argmin(self, dim, keepdim)

    def logsumexp(self, dim, keepdim=False):
        from deepgrad.ops.reduce import logsumexp

        return logsumexp(self, dim, keepdim)

    def norm(self, p=2, dim=None, keepdim=False):
        from deepgrad.ops.reduce import norm

        return norm(self, p, dim, keepdim)

    def matmul(self, other):
        return self @ other

    # ------------------------------------------------------------------ shape methods
    def reshape(self, *shape):
        from deepgrad.ops.shape import reshape

        return reshape(self, _shape_args(shape))

    def view(self, *shape):
        return self.reshape(*shape)

    def flatten(self, start_dim=0, end_dim=-1):
        from deepgrad.ops.shape import flatten

        return flatten(self, start_dim, end_dim)

    def permute(self, *dims):
        from deepgrad.ops.shape import permute

        return permute(self, _shape_args(dims))

    def transpose(self, dim0, dim1):
        from deepgrad.ops.shape import transpose

        return transpose(self, dim0, dim1)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self.T

    def movedim(self, source, destination):
        from deepgrad.ops.shape import movedim

        return movedim(self, source, destination)

    def squeeze(self, dim=None):
        from deepgrad.ops.shape import squeeze

        return squeeze(self, dim)

    def unsqueeze(self, dim):
        from deepgrad.ops.shape import unsqueeze

        return unsqueeze(self, dim)

    def expand(self, *shape):
        from deepgrad.ops.shape import expand

        return expand(self, _shape_args(shape))

    def broadcast_to(self, shape):
        from deepgrad.ops.shape import expand

        return expand(self, tuple(shape))

    def expand_as(self, other):
        return self.broadcast_to(other.shape)

    def view_as(self, other):
        return self.reshape(other.shape)

    def contiguous(self):
        return self

    def where(self, condition, other):
        return _ew().where(condition, self, other)


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _ew():
    from deepgrad.ops import elementwise

    return elementwise


def _shape_args(args) -> tuple:
    """Accept both f(2, 3) and f((2, 3)), as PyTorch does."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _unwrap_index(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _default_grad(t: Tensor, gradient):
    if gradient is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; the output has shape "
                f"{t.shape}, so pass a gradient of that shape"
            )
        return Tensor._wrap(np.ones_like(t.data))
    gradient = gradient if isinstance(gradient, Tensor) else Tensor(gradient, dtype=t.dtype)
    if gradient.shape != t.shape:
        raise ValueError(
            f"gradient has shape {gradient.shape} but the output has shape {t.shape}"
        )
    return gradient


# ---------------------------------------------------------------------- factories
def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Create a tensor from array-like ``data`` (always copies), as ``torch.tensor``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """Wrap an ndarray without copying, as ``torch.from_numpy``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected an ndarray, got {type(array).__name__}")
    return Tensor._wrap(array)


def _float_dtype(dtype):
    return _dtype.get_default_dtype() if dtype is None else _dtype.to_numpy_dtype(dtype)


def _make(arr, requires_grad):
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _size(shape) -> tuple:
    shape = _shape_args(shape)
    if not all(isinstance(s, numbers.Integral) and s >= 0 for s in shape):
        raise ValueError(f"sizes must be non-negative integers, got {shape}")
    return tuple(int(s) for s in shape)


def zeros(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.zeros(_size(shape), _float_dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.ones(_size(shape), _float_dtype(dtype)), requires_grad)


def empty(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.empty(_size(shape), _float_dtype(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False) -> Tensor:
    if dtype is None and isinstance(fill_value, bool):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, numbers.Integral):
        dtype = np.int64
    return _make(np.full(_size(shape), fill_value, _float_dtype(dtype)), requires_grad)


def randn(*shape, dtype=None, requires_grad=False) -> Tensor:
    arr = get_rng().standard_normal(_size(shape)).astype(_float_dtype(dtype))
    return _make(arr, requires_grad)


def rand(*shape, dtype=None, requires_grad=False) -> Tensor:
    arr = get_rng().random(_size(shape)).astype(_float_dtype(dtype))
    return _make(arr, requires_grad)


def randint(low, high, size, dtype=None) -> Tensor:
    arr = get_rng().integers(low, high, _size(size))
    return Tensor._wrap(arr.astype(np.int64 if dtype is None else _dtype.to_numpy_dtype(dtype)))


def randperm(n: int) -> Tensor:
    return Tensor._wrap(get_rng().permutation(n).astype(np.int64))


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    args_int = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    if dtype is None:
        dtype = np.int64 if args_int else _dtype.get_default_dtype()
    return _make(np.arange(start, end, step).astype(_dtype.to_numpy_dtype(dtype)),
                 requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.linspace(start, end, steps).astype(_float_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def _like_dtype(t, dtype):
    return t.dtype if dtype is None else _dtype.to_numpy_dtype(dtype)


def zeros_like(t, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.zeros(t.shape, _like_dtype(t, dtype)), requires_grad)


def ones_like(t, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.ones(t.shape, _like_dtype(t, dtype)), requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.full(t.shape, fill_value, _like_dtype(t, dtype)), requires_grad)


def randn_like(t, dtype=None, requires_grad=False) -> Tensor:
    return randn(*t.shape, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)


def rand_like(t, dtype=None, requires_grad=False) -> Tensor:
    return rand(*t.shape, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)
