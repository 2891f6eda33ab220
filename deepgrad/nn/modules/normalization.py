"""``LayerNorm``: per-sample normalisation over the trailing dimensions."""

from __future__ import annotations

import numpy as np

from deepgrad import _dtype
from deepgrad.nn.functional.norm import _as_shape, layer_norm
from deepgrad.nn.modules.module import Module, Parameter
from deepgrad.tensor import Tensor


class LayerNorm(Module):
    """y = (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta over the last dimensions.

    Mean and biased variance are taken per sample over ``normalized_shape`` (the trailing
    dimensions); unlike batch norm nothing depends on the batch, so train and eval agree.

    Args:
        normalized_shape: int or tuple, the trailing shape to normalise over.
        eps: added to the variance for numerical stability.
        elementwise_affine: learn gamma (``weight``, init 1) of shape ``normalized_shape``.
        bias: also learn beta (``bias``, init 0); only with ``elementwise_affine``.

    Shape:
        input (*, *normalized_shape) -> output of the same shape.

    Reference: Ba, Kiros & Hinton 2016, "Layer Normalization".
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None):
        super().__init__()
        shape = _as_shape(normalized_shape)
        if any(s <= 0 for s in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive, got {shape}")
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dt = _dtype.get_default_dtype() if dtype is None else _dtype.to_numpy_dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dtype=dt))
            if bias:
                self.bias = Parameter(np.zeros(shape, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, input: Tensor) -> Tensor:
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")
