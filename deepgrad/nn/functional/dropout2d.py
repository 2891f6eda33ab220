"""Channel-wise dropout (stateless): ``dropout2d``."""

from __future__ import annotations

import warnings

from deepgrad._random import get_rng
from deepgrad.ops.elementwise import mul
from deepgrad.tensor import Tensor


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels with probability p and scale the kept ones by 1/(1-p).

    Every element of a feature map shares one Bernoulli draw, which suits convolutional
    features whose neighbouring pixels are strongly correlated (element-wise dropout would barely
    regularise them). The identity when not training.

    Args:
        input: (N, C, H, W) or (N, C, L) Tensor; the mask is drawn per (sample, channel).
        p: probability of zeroing a channel, in [0, 1].
        training: apply dropout (else return the input unchanged).
        inplace: accepted for PyTorch compatibility; the result is always a new Tensor.

    Shape:
        input (N, C, *) -> output of the same shape.

    Reference: Tompson et al. 2015, "Efficient Object Localization Using Convolutional
    Networks".
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim < 2:
        raise ValueError(
            f"dropout2d: expected input of shape (N, C, H, W) or (N, C, L), got shape "
            f"{tuple(input.shape)}"
        )
    if input.ndim == 3:
        # PARITY: PyTorch warns and treats 3-D input as (N, C, L) (channel-wise 1-D dropout).
        warnings.warn("dropout2d: received a 3-D input; treating it as (N, C, L) and dropping "
                      "whole channels (use dropout1d to silence this warning)", stacklevel=2)
    elif input.ndim != 4:
        warnings.warn(f"dropout2d: received a {input.ndim}-D input; dropout2d expects 3-D or "
                      "4-D input and drops whole (sample, channel) slices", stacklevel=2)
    if not training or p == 0.0:
        return input
    mask_shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    if p == 1.0:
        return mul(input, Tensor._wrap(input.data.dtype.type(0.0)))
    keep = get_rng().random(mask_shape) >= p
    scale = (keep * (1.0 / (1.0 - p))).astype(input.dtype)
    return mul(input, Tensor._wrap(scale))
