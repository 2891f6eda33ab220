"""Activation functions (stateless). The primitives live in ``deepgrad.ops``."""

from __future__ import annotations

from deepgrad import ops
from deepgrad._random import get_rng
from deepgrad.tensor import Tensor


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return ops.relu(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x if x > 0 else negative_slope * x (Maas et al. 2013)."""
    return ops.leaky_relu(input, negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha * (exp(x) - 1) (Clevert et al. 2016)."""
    return ops.elu(input, alpha)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return ops.sigmoid(input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(1 / (1 + exp(-x))), stable for large |x|."""
    return ops.logsigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return ops.tanh(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, the identity where beta x > threshold."""
    return ops.softplus(input, beta, threshold)


def softmax(input: Tensor, dim: int) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along ``dim``."""
    return ops.softmax(input, dim)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    """x_i - log sum_j exp(x_j) along ``dim``."""
    return ops.log_softmax(input, dim)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout,
    Srivastava et al. 2014); the identity when not training."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = get_rng().random(input.shape) >= p
    scale = (keep / (1.0 - p)).astype(input.dtype)
    return input * Tensor._wrap(scale)
