"""Elementwise primitives: arithmetic, exp/log, activations, clamp, where.

Each primitive is a ``XxxFn`` Function whose ``backward`` is written with Tensor ops (so it
is differentiable again) and a lowercase wrapper. Binary ops broadcast; their gradients are
summed back to each input's shape with :func:`~deepgrad.ops.shape.sum_to`.
"""

from __future__ import annotations

import numpy as np

from deepgrad import _parallel
from deepgrad._backend import array_module
from deepgrad.autograd import grad_mode
from deepgrad.autograd.function import Function
from deepgrad.ops.shape import sum_to
from deepgrad.tensor import Tensor


def _const(arr) -> Tensor:
    return Tensor._wrap(arr)


def _binary(ufunc, a, b):
    """ufunc(a, b), split across deepgrad's threads for two large same-shape arrays."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype:
        out = _parallel.elementwise(lambda o, x, y: ufunc(x, y, out=o), a, a, b)
        if out is not None:
            return out
    return ufunc(a, b)


def _shape(x):
    return x.shape if isinstance(x, Tensor) else ()


def _check_dtypes(a, b):
    """Refuse mixing float32 and float64 tensors silently (PyTorch promotes; we say so)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        da, db = a.data.dtype, b.data.dtype
        if da != db and da.kind == "f" and db.kind == "f":
            # PARITY: PyTorch promotes float32 + float64 to float64; NumPy does the same.
            return


# ---------------------------------------------------------------------- arithmetic
class AddFn(Function):
    def forward(self, a, b):
        return _binary(np.add, a, b)

    def backward(self, g):
        # d(a+b)/da = 1, d(a+b)/db = 1, summed over broadcast dimensions.
        a, b = self.inputs
        return sum_to(g, _shape(a)), sum_to(g, _shape(b))


class SubFn(Function):
    def forward(self, a, b):
        return _binary(np.subtract, a, b)

    def backward(self, g):
        a, b = self.inputs
        return sum_to(g, _shape(a)), sum_to(neg(g), _shape(b)) if self.needs_input_grad[1] else None


class MulFn(Function):
    def forward(self, a, b):
        return _binary(np.multiply, a, b)

    def backward(self, g):
        # d(ab)/da = b, d(ab)/db = a.
        a, b = self.inputs
        ga = sum_to(mul(g, b), _shape(a)) if self.needs_input_grad[0] else None
        gb = sum_to(mul(g, a), _shape(b)) if self.needs_input_grad[1] else None
        return ga, gb


class DivFn(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2.
        a, b = self.inputs
        ga = sum_to(div(g, b), _shape(a)) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            gb = sum_to(neg(div(mul(g, a), mul(b, b))), _shape(b))
        return ga, gb


class NegFn(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (neg(g),)


class PowFn(Function):
    def forward(self, a, b):
        return a**b

    def backward(self, g):
        # d(a^b)/da = b a^(b-1);  d(a^b)/db = a^b log a.
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            if isinstance(b, Tensor):
                ga = sum_to(mul(g, mul(b, pow(a, sub(b, 1)))), _shape(a))
            elif b == 0:
                ga = mul(g, 0.0)
            else:
                ga = mul(g, mul(pow(a, b - 1), b))
        if self.needs_input_grad[1]:
            xp = array_module(self.out_data)
            log_a = log(a) if isinstance(a, Tensor) else _const(xp.log(xp.asarray(a, g.dtype)))
            gb = sum_to(mul(g, mul(self.output(), log_a)), _shape(b))
        return ga, gb


class CastFn(Function):
    def forward(self, a, dtype):
        return a.astype(dtype)

    def backward(self, g):
        a = self.inputs[0]
        return (cast(g, a.dtype),)


class CloneFn(Function):
    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return (g,)


# ---------------------------------------------------------------------- unary math
class ExpFn(Function):
    def forward(self, a):
        return array_module(a).exp(a)

    def backward(self, g):
        return (mul(g, self.output()),)


class LogFn(Function):
    def forward(self, a):
        return array_module(a).log(a)

    def backward(self, g):
        return (div(g, self.inputs[0]),)


class Log1pFn(Function):
    def forward(self, a):
        return array_module(a).log1p(a)

    def backward(self, g):
        return (div(g, add(self.inputs[0], 1.0)),)


class SqrtFn(Function):
    def forward(self, a):
        return array_module(a).sqrt(a)

    def backward(self, g):
        # d sqrt(a)/da = 1 / (2 sqrt(a)).
        return (div(g, mul(self.output(), 2.0)),)


class AbsFn(Function):
    def forward(self, a):
        return array_module(a).abs(a)

    def backward(self, g):
        # PARITY: sign(0) = 0, so |x| has gradient 0 at 0, as in PyTorch.
        a = self.inputs[0]
        return (mul(g, _const(array_module(a.data).sign(a.data))),)


class ClampFn(Function):
    def forward(self, a, lo, hi):
        xp = array_module(a)
        return xp.clip(a, lo, hi)

    def backward(self, g):
        # The gradient passes where lo <= a <= hi (inclusive, as PyTorch) and is 0 elsewhere.
        a, lo, hi = self.inputs
        x = a.data
        mask = np.ones(x.shape, dtype=bool)
        if lo is not None:
            mask &= x >= (lo.data if isinstance(lo, Tensor) else lo)
        if hi is not None:
            mask &= x <= (hi.data if isinstance(hi, Tensor) else hi)
        return mul(g, _const(mask.astype(x.dtype))), None, None


class MaximumFn(Function):
    def forward(self, a, b):
        return array_module(a).maximum(a, b)

    def backward(self, g):
        # PARITY: where a == b the gradient is split evenly between the two, as torch.maximum.
        return _minmax_backward(self, g, np.greater)


class MinimumFn(Function):
    def forward(self, a, b):
        return array_module(a).minimum(a, b)

    def backward(self, g):
        return _minmax_backward(self, g, np.less)


def _minmax_backward(node, g, wins):
    a, b = node.inputs
    ad = a.data if isinstance(a, Tensor) else a
    bd = b.data if isinstance(b, Tensor) else b
    dtype = g.data.dtype
    share_a = wins(ad, bd).astype(dtype) + 0.5 * np.equal(ad, bd).astype(dtype)
    ga = sum_to(mul(g, _const(share_a)), _shape(a)) if node.needs_input_grad[0] else None
    gb = sum_to(mul(g, _const(1.0 - share_a)), _shape(b)) if node.needs_input_grad[1] else None
    return ga, gb


class WhereFn(Function):
    def forward(self, cond, a, b):
        return array_module(a, b).where(cond, a, b)

    def backward(self, g):
        cond, a, b = self.inputs
        c = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
        zero = _const(np.zeros((), g.data.dtype))
        ga = sum_to(where(c, g, zero), _shape(a)) if self.needs_input_grad[1] else None
        gb = sum_to(where(c, zero, g), _shape(b)) if self.needs_input_grad[2] else None
        return None, ga, gb


# ---------------------------------------------------------------------- activations
def _relu_grad(out, g, y, block: int = 1 << 17):
    """out = g * (y > 0) on 1-D chunks, in cache-sized blocks (the mask never leaves cache)."""
    mask = np.empty(min(block, out.size), dtype=bool)
    for s in range(0, out.size, block):
        e = min(out.size, s + block)
        m = mask[:e - s]
        np.greater(y[s:e], 0, out=m)
        np.multiply(g[s:e], m, out=out[s:e])


def _relu_backward(g: Tensor, out) -> Tensor:
    """g * (out > 0) for a ReLU's output ``out``: the gradient through the ReLU."""
    # PARITY: relu'(0) = 0, as in PyTorch.
    if not grad_mode.is_grad_enabled() and g.data.dtype == out.dtype:
        gx = _parallel.elementwise(_relu_grad, out, g.data, out)
        if gx is not None:
            return Tensor._wrap(gx)
    # NOTE: the 0/1 mask in g's dtype: float * float is a plain SIMD loop, float * bool
    # goes through a casting loop (~25% slower here); the values are the same.
    return mul(g, _const((out > 0).astype(g.data.dtype)))


class ReluFn(Function):
    def forward(self, a):
        out = _parallel.elementwise(lambda o, x: np.maximum(x, 0, out=o), a, a)
        return array_module(a).maximum(a, 0) if out is None else out

    def backward(self, g):
        return (_relu_backward(g, self.out_data),)


def _add_relu_chunk(out, a, b, block: int = 1 << 16):
    for s in range(0, out.size, block):
        o = out[s:s + block]
        np.add(a[s:s + block], b[s:s + block], out=o)
        np.maximum(o, 0, out=o)


class AddReluFn(Function):
    """max(a + b, 0) in one pass over memory (a residual sum and its ReLU)."""

    def forward(self, a, b):
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype:
            out = _parallel.elementwise(_add_relu_chunk, a, a, b)
            if out is not None:
                return out
        out = array_module(a, b).add(a, b)
        return array_module(out).maximum(out, 0, out=out)

    def backward(self, g):
        a, b = self.inputs
        gs = _relu_backward(g, self.out_data)
        return sum_to(gs, _shape(a)), sum_to(gs, _shape(b))


class LeakyReluFn(Function):
    def forward(self, a, slope):
        return array_module(a).where(a > 0, a, a * slope)

    def backward(self, g):
        a, slope = self.inputs
        x = a.data
        return mul(g, _const(np.where(x > 0, 1.0, slope).astype(x.dtype))), None


class EluFn(Function):
    def forward(self, a, alpha):
        xp = array_module(a)
        return xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0)))

    def backward(self, g):
        # elu'(x) = 1 for x > 0, alpha * exp(x) otherwise.
        a, alpha = self.inputs
        pos = _const(a.data > 0)
        return mul(g, where(pos, 1.0, mul(exp(minimum(a, 0.0)), alpha))), None


class SigmoidFn(Function):
    def forward(self, a):
        # Stable for large |a|: exp of a non-positive number only.
        xp = array_module(a)
        e = xp.exp(-xp.abs(a))
        return xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)

    def backward(self, g):
        # sigma' = sigma (1 - sigma).
        s = self.output()
        return (mul(g, mul(s, rsub(s, 1.0))),)


class LogSigmoidFn(Function):
    def forward(self, a):
        # log sigma(a) = -(log(1 + exp(-|a|)) + max(-a, 0)), stable at extreme logits.
        xp = array_module(a)
        return -(xp.log1p(xp.exp(-xp.abs(a))) + xp.maximum(-a, 0))

    def backward(self, g):
        # d log sigma(a) / da = 1 - sigma(a) = sigma(-a).
        return (mul(g, sigmoid(neg(self.inputs[0]))),)


class TanhFn(Function):
    def forward(self, a):
        return array_module(a).tanh(a)

    def backward(self, g):
        t = self.output()
        return (mul(g, rsub(mul(t, t), 1.0)),)


class SoftplusFn(Function):
    def forward(self, a, beta, threshold):
        xp = array_module(a)
        z = a * beta
        soft = (xp.log1p(xp.exp(-xp.abs(z))) + xp.maximum(z, 0)) / beta
        # PARITY: above the threshold softplus reverts to the identity, as PyTorch.
        return xp.where(z > threshold, a, soft)

    def backward(self, g):
        a, beta, threshold = self.inputs
        lin = _const(a.data * beta > threshold)
        return mul(g, where(lin, 1.0, sigmoid(mul(a, beta)))), None, None


# ---------------------------------------------------------------------- wrappers
def add(a, b) -> Tensor:
    return AddFn.apply(a, b)


def sub(a, b) -> Tensor:
    return SubFn.apply(a, b)


def rsub(a, b) -> Tensor:
    """``b - a`` (handy in backward rules)."""
    return SubFn.apply(b, a)


def mul(a, b) -> Tensor:
    return MulFn.apply(a, b)


def div(a, b) -> Tensor:
    return DivFn.apply(a, b)


def neg(a) -> Tensor:
    return NegFn.apply(a)


def pow(a, b) -> Tensor:
    return PowFn.apply(a, b)


def cast(a, dtype) -> Tensor:
    dtype = np.dtype(dtype)
    if a.data.dtype == dtype:
        return a
    if a.requires_grad and dtype.kind != "f":
        return Tensor._wrap(a.data.astype(dtype))
    return CastFn.apply(a, dtype=dtype)


def clone(a) -> Tensor:
    return CloneFn.apply(a)


def exp(a) -> Tensor:
    return ExpFn.apply(a)


def log(a) -> Tensor:
    return LogFn.apply(a)


def log1p(a) -> Tensor:
    return Log1pFn.apply(a)


def sqrt(a) -> Tensor:
    return SqrtFn.apply(a)


def abs(a) -> Tensor:
    return AbsFn.apply(a)


def sign(a) -> Tensor:
    """Sign of each element; its gradient is zero everywhere (a constant)."""
    return Tensor._wrap(array_module(a.data).sign(a.data))


def clamp(a, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    return ClampFn.apply(a, min, max)


def maximum(a, b) -> Tensor:
    return MaximumFn.apply(a, b)


def minimum(a, b) -> Tensor:
    return MinimumFn.apply(a, b)


def where(condition, a, b) -> Tensor:
    """Elementwise ``a if condition else b``; the condition carries no gradient."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        cond = cond.astype(bool)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        dtype = np.result_type(a, b, np.float32) if not isinstance(a, bool) else None
        return Tensor._wrap(np.where(cond, a, b).astype(dtype) if dtype else np.where(cond, a, b))
    return WhereFn.apply(cond, a, b)


def add_relu(a, b) -> Tensor:
    """max(a + b, 0): ``relu(add(a, b))`` in one pass (same values and gradients)."""
    return AddReluFn.apply(a, b)


def relu(a) -> Tensor:
    return ReluFn.apply(a)


def leaky_relu(a, negative_slope: float = 0.01) -> Tensor:
    return LeakyReluFn.apply(a, negative_slope)


def elu(a, alpha: float = 1.0) -> Tensor:
    return EluFn.apply(a, alpha)


def sigmoid(a) -> Tensor:
    return SigmoidFn.apply(a)


def logsigmoid(a) -> Tensor:
    return LogSigmoidFn.apply(a)


def tanh(a) -> Tensor:
    return TanhFn.apply(a)


def softplus(a, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return SoftplusFn.apply(a, beta, threshold)
