"""``BatchNorm1d`` and ``BatchNorm2d``: per-channel normalisation with running statistics."""

from __future__ import annotations

import numpy as np

from deepgrad import _dtype
from deepgrad.nn.functional.norm import batch_norm, batch_norm_relu
from deepgrad.nn.modules.module import Module, Parameter
from deepgrad.tensor import Tensor


class _BatchNorm(Module):
    """Shared logic of the BatchNorm layers (PyTorch's ``_BatchNorm``)."""

    _valid_ndims: tuple = ()
    _shape_text: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=None):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features <= 0:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int, got "
                             f"{num_features!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1] or None, got "
                             f"{momentum}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = _dtype.get_default_dtype() if dtype is None else _dtype.to_numpy_dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dt))
            self.bias = Parameter(np.zeros(self.num_features, dtype=dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor._wrap(np.zeros(self.num_features, dt)))
            self.register_buffer("running_var", Tensor._wrap(np.ones(self.num_features, dt)))
            self.register_buffer("num_batches_tracked",
                                 Tensor._wrap(np.zeros((), dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        """Reset the running statistics and set gamma = 1, beta = 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def _check_input(self, input: Tensor) -> None:
        name = type(self).__name__
        if input.ndim not in self._valid_ndims:
            raise ValueError(f"{name}: expected {self._shape_text} input (got {input.ndim}D input "
                             f"of shape {tuple(input.shape)})")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected {self.num_features} channels (num_features) in "
                             f"dimension 1, got {input.shape[1]} (input shape "
                             f"{tuple(input.shape)})")

    def forward(self, input: Tensor) -> Tensor:
        return self._normalise(input, batch_norm)

    def forward_relu(self, input: Tensor) -> Tensor:
        """``relu(self(input))`` in one fused op (``F.batch_norm_relu``); no hooks run. See
        :func:`deepgrad.nn.modules.fused.batch_norm_then_relu` for the call that falls back
        to the two modules when hooks are set."""
        return self._normalise(input, batch_norm_relu)

    def _normalise(self, input: Tensor, fn) -> Tensor:
        self._check_input(input)
        # PARITY: the same decisions as torch.nn.modules.batchnorm._BatchNorm.forward.
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.data)
        use_batch_stats = self.training or (self.running_mean is None
                                            and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return fn(input, self.running_mean if keep else None,
                  self.running_var if keep else None, self.weight, self.bias,
                  use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input, per channel C.

    y = (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta. In training E and Var are the batch's
    mean and biased variance over N (and L); running estimates (with the *unbiased* variance)
    are kept for eval. ``momentum=None`` keeps a cumulative average over all batches.

    Args:
        num_features: C.
        eps: added to the variance for numerical stability.
        momentum: weight of each new batch in the running statistics, or None.
        affine: learn gamma (``weight``, init 1) and beta (``bias``, init 0).
        track_running_stats: keep running statistics; if False, batch statistics are used in
            eval mode too.

    Shape:
        input (N, C) or (N, C, L) -> output of the same shape.

    Reference: Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training
    by Reducing Internal Covariate Shift".
    """

    _valid_ndims = (2, 3)
    _shape_text = "2D or 3D"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input, per channel over N, H and W.

    See :class:`BatchNorm1d` for the formula and arguments.

    Shape:
        input (N, C, H, W) -> output of the same shape.

    Reference: Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training
    by Reducing Internal Covariate Shift".
    """

    _valid_ndims = (4,)
    _shape_text = "4D"

