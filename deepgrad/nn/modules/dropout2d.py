"""``Dropout2d``: channel-wise inverted dropout."""

from __future__ import annotations

from deepgrad.nn.functional.dropout2d import dropout2d
from deepgrad.nn.modules.module import Module
from deepgrad.tensor import Tensor


class Dropout2d(Module):
    """Zero whole channels with probability ``p`` while training; scale the rest by 1/(1-p).

    Every element of a feature map shares one Bernoulli draw per (sample, channel). The
    identity in eval mode.

    Args:
        p: probability of zeroing a channel.
        inplace: accepted for PyTorch compatibility; the result is always a new Tensor.

    Shape:
        input (N, C, H, W) or (N, C, L) -> output of the same shape.

    Reference: Tompson et al. 2015, "Efficient Object Localization Using Convolutional
    Networks".
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return dropout2d(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
