"""``Dropout``: inverted dropout in training, the identity in eval mode."""

from __future__ import annotations

from deepgrad.nn import functional as F
from deepgrad.nn.modules.module import Module
from deepgrad.tensor import Tensor


class Dropout(Module):
    """Zero each element with probability ``p`` while training and scale the survivors by
    1/(1-p), so eval needs no rescaling (Srivastava et al. 2014, "Dropout: a simple way to
    prevent neural networks from overfitting")."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
