"""``Conv2d``: a learnable 2-D convolution (the primitive is :func:`deepgrad.ops.conv.conv2d`)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from deepgrad import _dtype, ops
from deepgrad.nn import init
from deepgrad.nn.modules.module import Module, Parameter
from deepgrad.ops.conv import conv2d, conv_padding
from deepgrad.tensor import Tensor

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(v, name: str, minimum: int) -> tuple[int, int]:
    vals = (v, v) if isinstance(v, numbers.Integral) else tuple(v) if isinstance(
        v, (tuple, list)) else None
    if (vals is None or len(vals) != 2 or isinstance(v, bool)
            or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool)
                       for e in vals) or min(vals) < minimum):
        raise ValueError(f"Conv2d: {name} must be an int or a pair of ints >= {minimum}, "
                         f"got {v!r}")
    return int(vals[0]), int(vals[1])


def _pad_axis(x: Tensor, axis: int, lo: int, hi: int, mode: str) -> Tensor:
    """Pad one axis by reflection, replication or wrap-around (composition of differentiable
    slicing and concatenation)."""
    if lo == 0 and hi == 0:
        return x
    n = x.shape[axis]
    limit = n - 1 if mode == "reflect" else n
    if max(lo, hi) > limit:
        raise ValueError(f"Conv2d: padding ({lo}, {hi}) is too large for {mode} padding of a "
                         f"dimension of size {n} (at most {limit})")

    def take(start, stop, step=1):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, stop, step)
        return ops.getitem(x, tuple(index))

    if mode == "circular":
        parts = [take(n - lo, n), x, take(0, hi)]
    elif mode == "reflect":  # mirror without repeating the edge: x[lo..1], x, x[n-2..n-1-hi]
        parts = [take(lo, 0, -1), x, take(n - 2, n - 2 - hi if n - 2 - hi >= 0 else None, -1)]
    else:  # replicate
        def edge(i, count):
            shape = list(x.shape)
            shape[axis] = count
            return ops.expand(take(i, i + 1), tuple(shape))
        parts = [edge(0, lo), x, edge(n - 1, hi)]
    return ops.cat([p for p in parts if p.shape[axis] > 0], axis)


class Conv2d(Module):
    """2-D convolution over NCHW input: y = conv2d(x, W) + b.

    Args:
        in_channels, out_channels: channels of input and output (both divisible by groups).
        kernel_size: int or (kh, kw).
        stride, dilation: int or pair, >= 1.
        padding: int or pair, or 'valid' / 'same' (stride 1 only).
        groups: independent channel groups (in_channels = groups: depthwise).
        bias: learn an additive bias per output channel.
        padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'.
        dtype: parameter dtype (the default dtype if None).

    Shape:
        input (N, C_in, H, W) or (C_in, H, W) -> output (N, C_out, OH, OW);
        weight (C_out, C_in / groups, kh, kw), bias (C_out,), as in PyTorch.

    PARITY: initialised as PyTorch: kaiming_uniform_(a = sqrt(5)), i.e.
    W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C_in / groups * kh * kw, and
    b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Reference: LeCun et al. 1998, "Gradient-based learning applied to document recognition".
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 dtype=None):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                raise ValueError(f"Conv2d: {name} must be a positive int, got {v!r}")
        if in_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups:
            raise ValueError(f"Conv2d: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {list(_PADDING_MODES)}, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.dilation = _pair(dilation, "dilation", 1)
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding", 0)
        # Validates 'same' / 'valid' (and 'same' with a stride) now, as torch does.
        self._pads = conv_padding(self.padding, self.kernel_size, self.dilation, self.stride)
        self.groups, self.padding_mode = int(groups), padding_mode
        dt = _dtype.get_default_dtype() if dtype is None else _dtype.to_numpy_dtype(dtype)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        if self.padding_mode == "zeros":
            return conv2d(input, self.weight, self.bias, self.stride, self.padding,
                          self.dilation, self.groups)
        if input.ndim not in (3, 4):
            raise ValueError(f"Conv2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got "
                             f"shape {input.shape}")
        t, b, l, r = self._pads
        x = _pad_axis(_pad_axis(input, input.ndim - 2, t, b, self.padding_mode),
                      input.ndim - 1, l, r, self.padding_mode)
        return conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s
