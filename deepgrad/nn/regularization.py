"""Explicit weight penalties to add to a loss (differentiable, built from Tensor ops).

Usage::

    loss = criterion(model(x), y) + 1e-4 * l1_penalty(model.parameters())
    loss.backward()

The L1 penalty drives weights to exactly zero (sparse solutions; the lasso, Tibshirani 1996,
"Regression Shrinkage and Selection via the Lasso"); the squared L2 penalty shrinks them
towards zero (ridge / Tikhonov). Its gradient is 2 * p, so ``weight_decay = wd`` in an SGD-like
optimizer equals adding ``wd / 2 * l2_penalty(params)`` to the loss (and is not the same
thing as AdamW's decoupled decay).
"""

from __future__ import annotations

import numpy as np

from deepgrad import _dtype
from deepgrad.tensor import Tensor


def _params(parameters) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"expected Tensors, got {type(p).__name__}")
    return params


def _total(terms: list[Tensor]) -> Tensor:
    if not terms:
        return Tensor._wrap(np.array(0.0, dtype=_dtype.get_default_dtype()))
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def l1_penalty(parameters) -> Tensor:
    """sum over parameters p of sum_i |p_i| (a 0-dim Tensor in the graph).

    The gradient is sign(p), 0 at exactly 0 (the subgradient PyTorch also picks).

    Args:
        parameters: a Tensor or an iterable of Tensors (e.g. ``model.parameters()``).
    """
    return _total([p.abs().sum() for p in _params(parameters)])


def l2_penalty(parameters) -> Tensor:
    """sum over parameters p of sum_i p_i^2, the squared L2 norm (a 0-dim Tensor in the graph).

    Args:
        parameters: a Tensor or an iterable of Tensors (e.g. ``model.parameters()``).
    """
    return _total([(p * p).sum() for p in _params(parameters)])
