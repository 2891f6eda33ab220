"""Small helpers shared by the adaptive-rate optimizers (Adagrad, Adadelta, RMSprop, Adam,
AdamW, NAdam): argument checks, hyper-parameters as Python floats, and in-place update pieces.

They keep a step free of array allocations: each parameter gets a few scratch arrays (shaped
like it) the first time it is updated, and every later step writes into them with NumPy's
``out=`` and in-place operators.
"""

from __future__ import annotations

import numbers

import numpy as np

from deepgrad.tensor import Tensor


def _require(ok: bool, name: str, value, expected: str) -> None:
    """Raise ``ValueError`` naming the argument when ``ok`` is False."""
    if not ok:
        raise ValueError(f"Invalid {name} value: {value!r} (expected {expected})")


def _floats(group: dict, *keys: str) -> tuple[float, ...]:
    """The group's hyper-parameters as Python floats.

    NOTE: a schedule may store NumPy scalars; Python floats keep float32 parameters updated in
    float32 (NumPy's scalar promotion rules).
    """
    return tuple(float(group[k]) for k in keys)


def _check_lr_eps_wd(group: dict) -> None:
    lr = group["lr"]
    _require(isinstance(lr, numbers.Real) and not isinstance(lr, bool) and lr >= 0.0,
             "lr", lr, "a number >= 0")
    _require(group["eps"] >= 0.0, "eps", group["eps"], ">= 0")
    _require(group["weight_decay"] >= 0.0, "weight_decay", group["weight_decay"], ">= 0")


def _check_betas(betas) -> None:
    _require(isinstance(betas, (tuple, list)) and len(betas) == 2, "betas", betas,
             "a pair (beta1, beta2)")
    _require(0.0 <= betas[0] < 1.0, "betas[0]", betas[0], "in [0, 1)")
    _require(0.0 <= betas[1] < 1.0, "betas[1]", betas[1], "in [0, 1)")


def _zeros(w: np.ndarray) -> Tensor:
    return Tensor._wrap(np.zeros_like(w))


def _workspace(work: dict, p: Tensor, n: int) -> list[np.ndarray]:
    """``n`` scratch arrays like ``p.data``, allocated once and reused by every step."""
    bufs = work.get(p)
    w = p.data
    if bufs is None or len(bufs) < n or bufs[0].shape != w.shape or bufs[0].dtype != w.dtype:
        bufs = [np.empty_like(w) for _ in range(n)]
        work[p] = bufs
    return bufs


def _effective_grad(grad: np.ndarray, w: np.ndarray, maximize: bool, weight_decay: float,
                    out: np.ndarray) -> np.ndarray:
    """g = (-grad if maximize else grad) + weight_decay * w; ``grad`` itself when unchanged.

    NOTE: when a copy is needed it is written to ``out``; the caller may then overwrite ``out``
    once g has been consumed. ``grad`` (the parameter's ``.grad``) is never modified.
    """
    if weight_decay != 0:
        np.multiply(w, weight_decay, out=out)
        if maximize:
            out -= grad
        else:
            out += grad
        return out
    if maximize:
        return np.negative(grad, out=out)
    return grad


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float, tmp: np.ndarray) -> None:
    """start <- start + weight * (end - start), in PyTorch's two-sided form (``lerp_``)."""
    np.subtract(end, start, out=tmp)
    if abs(weight) < 0.5:
        tmp *= weight
        start += tmp
    else:
        # PARITY: torch computes end - (end - start) * (1 - weight) for weights >= 0.5.
        tmp *= 1.0 - weight
        np.subtract(end, tmp, out=start)
