"""Loss functions (stateless), each with ``reduction`` in {"mean", "sum", "none"}.

Shape rules follow PyTorch. Where PyTorch would silently broadcast a prediction against a target
of another shape (a classic bug), deepgrad raises instead (see the PARITY notes).
"""

from __future__ import annotations

import numpy as np

from deepgrad import ops
from deepgrad.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    _check_reduction(reduction)
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    return loss


def _as_tensor(x, like: Tensor) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x), dtype=like.dtype)


def _same_shape(name: str, input: Tensor, target: Tensor) -> None:
    # PARITY: PyTorch only warns when shapes differ and then broadcasts; we refuse.
    if input.shape != target.shape:
        raise ValueError(
            f"{name}: input shape {input.shape} and target shape {target.shape} differ"
        )


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: (x - y)^2."""
    target = _as_tensor(target, input)
    _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error: |x - y|."""
    target = _as_tensor(target, input)
    _same_shape("l1_loss", input, target)
    return _reduce(ops.abs(input - target), reduction)


def smooth_l1_loss(input: Tensor, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Smooth L1 (Girshick 2015, Fast R-CNN): 0.5 d^2 / beta if |d| < beta else |d| - beta/2.

    With ``beta = 0`` it is the L1 loss.
    """
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    target = _as_tensor(target, input)
    _same_shape("smooth_l1_loss", input, target)
    d = input - target
    ad = ops.abs(d)
    if beta == 0:
        return _reduce(ad, reduction)
    loss = ops.where(ad.data < beta, d * d * (0.5 / beta), ad - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """Huber loss: 0.5 d^2 if |d| < delta else delta (|d| - delta/2) = delta * smooth_l1(delta)."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    return smooth_l1_loss(input, target, reduction, beta=delta) * delta


def _class_targets(target, n_classes: int, ignore_index: int, name: str) -> np.ndarray:
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: class-index targets must be integers, got dtype {t.dtype}")
    valid = t[t != ignore_index]
    if valid.size:
        lo, hi = int(valid.min()), int(valid.max())
        bad = lo if lo < 0 else hi
        if lo < 0 or hi >= n_classes:
            raise ValueError(
                f"{name}: target {bad} is out of bounds for {n_classes} classes "
                f"(labels must lie in 0..{n_classes - 1})"
            )
    return t.astype(np.int64, copy=False)


def _to_2d(input: Tensor, target, name: str):
    """Bring (N, C, d1, ...) input and (N, d1, ...) target to (N*d, C) and (N*d,)."""
    if input.ndim == 1:
        return ops.unsqueeze(input, 0), np.asarray(target).reshape(1), ()
    if input.ndim == 2:
        t = target.data if isinstance(target, Tensor) else np.asarray(target)
        if t.shape != (input.shape[0],):
            raise ValueError(f"{name}: input shape {input.shape} needs a target of shape "
                             f"({input.shape[0]},), got {t.shape}")
        return input, t, None
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    expected = (input.shape[0],) + input.shape[2:]
    if t.shape != expected:
        raise ValueError(f"{name}: input shape {input.shape} needs a target of shape {expected}, "
                         f"got {t.shape}")
    c = input.shape[1]
    flat = ops.reshape(ops.movedim(input, 1, -1), (-1, c))
    return flat, t.reshape(-1), expected


def cross_entropy(input: Tensor, target, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits against class indices (or class probabilities).

    loss_n = -w[y_n] log softmax(x_n)[y_n]. Fused and stable for extreme logits.

    Args:
        input: logits (N, C), (C,) or (N, C, d1, ...).
        target: int class indices (N,) / (N, d1, ...), or float probabilities shaped like input.
        weight: optional per-class weights (C,).
        ignore_index: target value that contributes nothing.
        reduction: "mean" (weighted mean over non-ignored samples), "sum" or "none".
        label_smoothing: epsilon in [0, 1]; the target becomes (1-eps) onehot + eps/C.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if not np.all(np.isfinite(input.data)):
        raise ValueError("cross_entropy: the logits contain NaN or inf")
    tdata = target.data if isinstance(target, Tensor) else np.asarray(target)
    if tdata.dtype.kind == "f":
        return _soft_cross_entropy(input, _as_tensor(target, input), weight, reduction,
                                   label_smoothing)
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    if weight is not None and tuple(weight.shape) != (c,):
        raise ValueError(f"cross_entropy: weight has shape {tuple(weight.shape)}, expected ({c},)")
    x2, t, out_shape = _to_2d(input, target, "cross_entropy")
    t = _class_targets(t, c, ignore_index, "cross_entropy")
    if label_smoothing > 0:
        if weight is not None:
            raise NotImplementedError("cross_entropy: label_smoothing with class weights is not "
                                      "supported yet; drop one of them")
        nll = ops.cross_entropy_logits(x2, t, None, ignore_index, "none")
        mask = Tensor._wrap((t != ignore_index).astype(x2.dtype))
        smooth = -ops.mean(ops.log_softmax(x2, 1), 1) * mask
        loss = nll * (1.0 - label_smoothing) + smooth * label_smoothing
        if reduction == "mean":
            return ops.sum(loss) / float(mask.data.sum())
        return _reshape_none(loss, reduction, out_shape)
    if reduction != "none":
        return ops.cross_entropy_logits(x2, t, weight, ignore_index, reduction)
    loss = ops.cross_entropy_logits(x2, t, weight, ignore_index, "none")
    return _reshape_none(loss, reduction, out_shape)


def _reshape_none(loss, reduction, out_shape):
    if reduction == "sum":
        return ops.sum(loss)
    if out_shape == ():
        return ops.reshape(loss, ())
    return loss if out_shape is None else ops.reshape(loss, out_shape)


def _soft_cross_entropy(input, target, weight, reduction, label_smoothing):
    _same_shape("cross_entropy", input, target)
    dim = 1 if input.ndim > 1 else 0
    c = input.shape[dim]
    if label_smoothing > 0:
        target = target * (1.0 - label_smoothing) + label_smoothing / c
    logp = ops.log_softmax(input, dim)
    if weight is not None:
        shape = [1] * input.ndim
        shape[dim] = c
        logp = logp * ops.reshape(_as_tensor(weight, input), tuple(shape))
    loss = -ops.sum(logp * target, dim)
    if reduction == "mean":
        # PARITY: torch averages over every sample position, N * d1 * ... = numel / C.
        return ops.sum(loss) / float(input.data.size // c)
    return _reduce(loss, reduction)


def nll_loss(input: Tensor, target, weight=None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities: loss_n = -w[y_n] * input[n, y_n]."""
    _check_reduction(reduction)
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    x2, t, out_shape = _to_2d(input, target, "nll_loss")
    t = _class_targets(t, c, ignore_index, "nll_loss")
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    w = np.ones(c, dtype=input.dtype) if weight is None else np.asarray(
        weight.data if isinstance(weight, Tensor) else weight, dtype=input.dtype)
    coef = (w[safe] * valid).astype(input.dtype)
    picked = ops.getitem(x2, (np.arange(x2.shape[0]), safe))
    loss = -picked * Tensor._wrap(coef)
    if reduction == "mean":
        return ops.sum(loss) / float(coef.sum())
    return _reshape_none(loss, reduction, out_shape)


def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """BCE of probabilities: -(y log p + (1 - y) log(1 - p)), each log clamped at -100 as
    PyTorch does so that p = 0 or 1 gives a finite loss."""
    target = _as_tensor(target, input)
    _same_shape("binary_cross_entropy", input, target)
    p = input.data
    if np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
        raise ValueError("binary_cross_entropy: every input must be a probability in [0, 1]; "
                         "for logits use binary_cross_entropy_with_logits")
    loss = ops.binary_cross_entropy_elementwise(input, target)
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """BCE of logits, stable for any |x| (multi-label classification).

    loss = (1 - y) x - (1 + (pw - 1) y) log sigmoid(x); with pos_weight pw = 1 this is
    -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))).
    """
    target = _as_tensor(target, input)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    log_sig = ops.logsigmoid(input)
    if pos_weight is None:
        loss = (1.0 - target) * input - log_sig
    else:
        pw = _as_tensor(pos_weight, input)
        loss = (1.0 - target) * input - (1.0 + (pw - 1.0) * target) * log_sig
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce(loss, reduction)
