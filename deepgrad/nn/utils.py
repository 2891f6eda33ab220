"""Utilities on parameters: flattening to one vector and back."""

from __future__ import annotations

import numpy as np

from deepgrad.autograd.grad_mode import no_grad
from deepgrad.tensor import Tensor


def parameters_to_vector(parameters) -> Tensor:
    """Concatenate the parameters into one 1-D tensor (a copy)."""
    params = list(parameters)
    if not params:
        return Tensor._wrap(np.zeros(0, dtype=np.float32))
    return Tensor._wrap(np.concatenate([p.data.reshape(-1) for p in params]))


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vec`` into the parameters, in place."""
    params = list(parameters)
    total = sum(p.numel() for p in params)
    data = vec.data if isinstance(vec, Tensor) else np.asarray(vec)
    if data.ndim != 1 or data.size != total:
        raise ValueError(f"expected a 1-D vector of {total} elements, got shape {data.shape}")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.data[...] = data[offset:offset + n].reshape(p.shape)
            offset += n


# re-exported here, where torch.nn.utils has them
from deepgrad.nn.clip_grad import (  # noqa: E402, F401
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
