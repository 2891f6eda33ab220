"""Normalisation functions (stateless): ``batch_norm`` and ``layer_norm``.

The primitives (forward and backward) live in :mod:`deepgrad.ops.normalization`; this file checks
shapes and keeps the running statistics, as ``torch.nn.functional``.
"""

from __future__ import annotations

import math

from deepgrad.autograd.grad_mode import no_grad
from deepgrad.ops.normalization import batch_norm_eval, batch_norm_train
from deepgrad.ops.normalization import layer_norm as _layer_norm
from deepgrad.tensor import Tensor


def _check_channel_vector(name: str, t: Tensor | None, channels: int, input: Tensor) -> None:
    if t is not None and tuple(t.shape) != (channels,):
        raise ValueError(
            f"batch_norm: {name} has shape {tuple(t.shape)} but the input (shape "
            f"{tuple(input.shape)}) has {channels} channels; expected shape ({channels},)"
        )


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation of (N, C, *) input, per channel (Ioffe & Szegedy 2015).

    y = gamma * (x - mean) / sqrt(var + eps) + beta. In training the batch's statistics are used
    (mean and *biased* variance over N and all spatial positions) and, when given, the running
    buffers are updated in place:
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)
    (the *unbiased* variance, M values per channel). Otherwise the running statistics are used.

    Args:
        input: (N, C) or (N, C, *) Tensor.
        running_mean, running_var: (C,) buffers, or None (required when not training).
        weight, bias: (C,) affine parameters, or None.
        training: use and record batch statistics.
        momentum: weight of the new batch in the running averages.
        eps: added to the variance for numerical stability.

    Returns:
        A Tensor of the input's shape.

    Reference: Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training
    by Reducing Internal Covariate Shift".
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                       relu=False)


def batch_norm_relu(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                    weight: Tensor | None = None, bias: Tensor | None = None,
                    training: bool = False, momentum: float = 0.1,
                    eps: float = 1e-5) -> Tensor:
    """``relu(batch_norm(...))`` (same arguments, same running statistics) in one fused op.

    A deepgrad extension (PyTorch has no such function): the ReLU is applied in the batch
    norm's own pass over memory, and its gradient mask in the batch norm's backward, which
    saves a full read and write of the activation each way. The values are those of the two
    ops one after the other.
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                       relu=True)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                relu: bool) -> Tensor:
    if input.ndim < 2:
        raise ValueError(
            f"batch_norm: expected input of shape (N, C, *) with at least 2 dimensions, got "
            f"shape {tuple(input.shape)}"
        )
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channel_vector(name, t, channels, input)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var must be given when not "
                             "training")
        return batch_norm_eval(input, running_mean.data, running_var.data, weight, bias, eps,
                               relu)
    count = input.shape[0] * math.prod(input.shape[2:])
    if count <= 1:
        # PARITY: PyTorch's message (and ValueError) for a single value per channel.
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {tuple(input.shape)}")
    out, mean, var = batch_norm_train(input, weight, bias, eps, relu)
    with no_grad():
        if running_mean is not None:
            running_mean.data *= 1.0 - momentum
            running_mean.data += momentum * mean
        if running_var is not None:
            running_var.data *= 1.0 - momentum
            running_var.data += (momentum * count / (count - 1)) * var
    return out


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the trailing dimensions ``normalized_shape`` (Ba et al. 2016).

    y = gamma * (x - mean) / sqrt(var + eps) + beta, with the mean and biased variance of each
    sample over the last ``len(normalized_shape)`` dimensions.

    Args:
        input: (*, *normalized_shape) Tensor.
        normalized_shape: int or tuple, the trailing shape to normalise over.
        weight, bias: Tensors of shape ``normalized_shape``, or None.
        eps: added to the variance for numerical stability.

    Reference: Ba, Kiros & Hinton 2016, "Layer Normalization".
    """
    shape = _as_shape(normalized_shape)
    k = len(shape)
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise ValueError(
            f"layer_norm: normalized_shape={shape} expects input of shape (*, "
            f"{', '.join(map(str, shape))}), got input of shape {tuple(input.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"layer_norm: {name} has shape {tuple(t.shape)}, expected "
                             f"normalized_shape {shape}")
    return _layer_norm(input, shape, weight, bias, eps)


def _as_shape(normalized_shape) -> tuple:
    if isinstance(normalized_shape, int):
        return (int(normalized_shape),)
    shape = tuple(int(s) for s in normalized_shape)
    if not shape:
        raise ValueError("layer_norm: normalized_shape must have at least one dimension")
    return shape
