"""Gradient clipping: rescale by the total norm, or clamp each entry (``torch.nn.utils``).

Clipping acts on ``p.grad`` in place, between ``loss.backward()`` and ``optimizer.step()``.
It bounds the size of a step when the loss surface has a cliff (exploding gradients in
recurrent networks). Reference: Pascanu, Mikolov & Bengio 2013, "On the difficulty of
training recurrent neural networks".
"""

from __future__ import annotations

import math

import numpy as np

from deepgrad import _dtype
from deepgrad.tensor import Tensor


def _as_list(parameters) -> list:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _vector_norm(x: np.ndarray, p: float):
    """The p-norm of all entries of ``x``, as ``torch.linalg.vector_norm`` (a NumPy scalar)."""
    if p == 2.0:
        flat = x.reshape(-1)
        return np.sqrt(np.dot(flat, flat))
    if x.size == 0:
        return x.dtype.type(0.0)
    a = np.abs(x)
    if p == math.inf:
        return a.max()
    if p == -math.inf:
        return a.min()
    if p == 0.0:
        return x.dtype.type(np.count_nonzero(x))
    if p == 1.0:
        return a.sum()
    return np.sum(a ** p) ** (1.0 / p)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """The p-norm of all the given tensors' entries, as if concatenated into one vector.

    Computed, as PyTorch, as the norm of the per-tensor norms.

    Args:
        tensors: a Tensor or an iterable of Tensors (typically the gradients).
        norm_type: p of the norm; ``inf`` for the largest absolute entry.
        error_if_nonfinite: raise when the total norm is nan or inf.

    Returns:
        A 0-dim Tensor of the tensors' dtype (the default dtype when there are none).

    Raises:
        RuntimeError: if ``error_if_nonfinite`` and the norm is not finite (torch's type).
    """
    arrays = [t.data for t in _as_list(tensors)]
    norm_type = float(norm_type)
    if not arrays:
        return Tensor._wrap(np.array(0.0, dtype=_dtype.get_default_dtype()))
    dtype = np.result_type(*arrays)
    norms = np.array([_vector_norm(a, norm_type) for a in arrays], dtype=dtype)
    total = np.asarray(_vector_norm(norms, norm_type), dtype=dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    return Tensor._wrap(total)


def clip_grads_with_norm_(parameters, max_norm: float, total_norm) -> None:
    """Scale every gradient by min(max_norm / (total_norm + 1e-6), 1), in place."""
    grads = [p.grad.data for p in _as_list(parameters) if p.grad is not None]
    max_norm = float(max_norm)
    if max_norm < 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    if not grads:
        return
    total = total_norm.data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    coef = np.minimum(max_norm / (total + total.dtype.type(1e-6)), total.dtype.type(1.0))
    # NOTE: a coefficient of exactly 1 leaves the gradients unchanged, so it is skipped; a
    # nan coefficient (nan total norm) is applied, as in PyTorch.
    if not coef >= 1.0:
        with np.errstate(invalid="ignore"):  # inf * 0 -> nan, as torch, without a warning
            for g in grads:
                g *= coef


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Rescale the gradients so that their total norm is at most ``max_norm``.

    total = || (||g_1||_p, ..., ||g_n||_p) ||_p      (the p-norm of all gradients together)
    g_i <- g_i * min(max_norm / (total + 1e-6), 1)

    The direction of the overall gradient is kept; only its length is bounded.

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` is clipped (those
            without a gradient are skipped).
        max_norm: the largest allowed total norm (>= 0).
        norm_type: p of the norm; ``inf`` (or ``float('inf')``) for the max-norm.
        error_if_nonfinite: raise ``RuntimeError`` when the total norm is nan or inf
            (otherwise the gradients are scaled by the non-finite coefficient, as PyTorch).

    Returns:
        The total norm of the gradients before clipping (0-dim Tensor).

    PARITY: a negative ``max_norm`` raises ``ValueError`` (torch silently flips the
    gradients' sign); ``foreach`` is not accepted.
    """
    params = _as_list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value], in place.

    Unlike :func:`clip_grad_norm_` this changes the gradient's direction.

    PARITY: a negative ``clip_value`` raises ``ValueError`` (torch clamps into an empty range).
    """
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for p in _as_list(parameters):
        if p.grad is not None:
            g = p.grad.data
            np.clip(g, -clip_value, clip_value, out=g)
