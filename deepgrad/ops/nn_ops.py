"""Fused, numerically stable loss primitives.

``cross_entropy`` fuses log-softmax and the negative log-likelihood, so that extreme logits
never produce ``inf`` or ``nan`` and the gradient is the familiar softmax(x) - onehot(y).
"""

from __future__ import annotations

import numpy as np

from deepgrad._backend import array_module
from deepgrad.autograd.function import Function
from deepgrad.ops.elementwise import mul, sub
from deepgrad.ops.reduce import softmax
from deepgrad.ops.shape import reshape
from deepgrad.tensor import Tensor


class CrossEntropyFn(Function):
    """Per-sample or reduced cross-entropy of logits (N, C) against class indices (N,).

    loss_i = -w[y_i] * log_softmax(x_i)[y_i]; 'mean' divides by sum_i w[y_i] over the samples
    whose label is not ``ignore_index`` (PyTorch's weighted mean).
    """

    def forward(self, x, target, weight, ignore_index, reduction):
        xp = array_module(x)
        n = x.shape[0]
        rows = xp.arange(n)
        shifted = x - x.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        sums = exp.sum(axis=1, keepdims=True)
        valid = target != ignore_index
        safe_target = xp.where(valid, target, 0)
        # w_i = weight[y_i] (1 without class weights), 0 where y_i is ignored.
        w = valid.astype(x.dtype) if weight is None else weight[safe_target].astype(x.dtype) * valid
        # log_softmax(x_i)[y_i] = shifted[i, y_i] - log(sum_j exp(shifted[i, j])); only the
        # picked entries are formed, not the whole (N, C) log-softmax.
        picked = shifted[rows, safe_target] - xp.log(sums[:, 0])
        losses = -picked * w
        # Saved for backward: softmax probabilities and the per-sample coefficient.
        exp /= sums
        self.saved = (exp, safe_target, w)
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        denom = w.sum()
        return losses.sum() / denom if denom != 0 else xp.asarray(np.nan, dtype=x.dtype)

    def backward(self, g):
        # dL/dx_i = coef_i * (softmax(x_i) - onehot(y_i)), coef_i = g_i * w_i (/ sum w for mean).
        x, _, _, _, reduction = self.inputs
        probs_arr, target, w = self.saved
        n = x.shape[0]
        rows = np.arange(n)
        if reduction == "mean":
            w = w / w.sum()
        if x.requires_grad and _grad_enabled():
            onehot = np.zeros(probs_arr.shape, dtype=probs_arr.dtype)
            onehot[rows, target] = 1.0
            diff = sub(softmax(x, 1), Tensor._wrap(onehot))
        else:
            # NOTE: without a graph to record, softmax(x) - onehot(y) is a constant: form it
            # on the array (the same subtraction, entry by entry).
            d = probs_arr.copy()
            d[rows, target] -= 1.0
            diff = Tensor._wrap(d)
        w_col = Tensor._wrap(w.reshape(n, 1))
        # g is a scalar for "mean"/"sum" and (N,) for "none".
        coef = mul(g, w_col) if g.ndim == 0 else mul(reshape(g, (n, 1)), w_col)
        return mul(diff, coef), None, None, None, None


def _grad_enabled() -> bool:
    from deepgrad.autograd.grad_mode import is_grad_enabled

    return is_grad_enabled()


def cross_entropy_logits(x: Tensor, target: Tensor, weight=None, ignore_index: int = -100,
                         reduction: str = "mean") -> Tensor:
    """Fused cross-entropy for 2-D logits (N, C) and int64 targets (N,). See ``F.cross_entropy``
    for the checked, shape-general public function."""
    w = weight.data if isinstance(weight, Tensor) else weight
    return CrossEntropyFn.apply(x, target, w, ignore_index, reduction)


_BCE_EPS = float(np.float32(1e-12))


class BinaryCrossEntropyFn(Function):
    """Elementwise BCE of probabilities p against targets y, PyTorch's clamped form.

    loss = -(y * max(log p, -100) + (1 - y) * max(log(1 - p), -100))
    """

    def forward(self, p, y):
        xp = array_module(p)
        with np.errstate(divide="ignore"):
            log_p = xp.maximum(xp.log(p), -100.0)
            log_q = xp.maximum(xp.log1p(-p), -100.0)
        return -(y * log_p + (1 - y) * log_q)

    def backward(self, g):
        # dL/dp = (p - y) / (p (1 - p)), with the denominator clamped at 1e-12 as PyTorch does
        # so that p = 0 or 1 gives a large finite gradient instead of inf or nan.
        # dL/dy = log(1 - p) - log p (each clamped at -100).
        from deepgrad.ops.elementwise import clamp, log, log1p, neg

        p, y = self.inputs
        gp = gy = None
        if self.needs_input_grad[0]:
            # PARITY: PyTorch's clamp constant is the float32 value of 1e-12, also in float64.
            denom = clamp(mul(p, sub(1.0, p)), min=_BCE_EPS)
            gp = mul(g, sub(p, y) / denom)
        if self.needs_input_grad[1]:
            gy = mul(g, sub(clamp(log1p(neg(p)), min=-100.0), clamp(log(p), min=-100.0)))
        return gp, gy


def binary_cross_entropy_elementwise(p: Tensor, y) -> Tensor:
    """Unreduced BCE of probabilities (see ``F.binary_cross_entropy``)."""
    return BinaryCrossEntropyFn.apply(p, y)
