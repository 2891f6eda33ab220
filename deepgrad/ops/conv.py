"""2-D convolution (``conv2d``): width columns + one batched GEMM forward and backward.

The array kernels live in :mod:`deepgrad.ops._im2col`. Here are the three primitives that make
the convolution differentiable to any order. With y = conv(x, W) (bilinear in x and W) and
adjoints defined by <v, A(g, W)> = <conv(v, W), g> and <V, B(x, g)> = <conv(x, V), g>:

    dL/dx = A(g, W)   "input gradient"  (a transposed convolution)       Conv2dInputGradFn
    dL/dW = B(x, g)   "weight gradient" (a correlation of x with g)      Conv2dWeightGradFn
    dL/db = sum of g over N, H, W

and the two gradient maps are again bilinear, so their own vector-Jacobian products close the
set: VJP of A(g, W) with u is (conv(u, W), B(u, g)); VJP of B(x, g) with U is
(A(g, U), conv(x, U)). Hence ``create_graph=True`` works through convolutions (exact
Hessian-vector products for Newton methods) without a separate once-differentiable kernel.
"""

from __future__ import annotations

import numbers

from deepgrad._backend import array_module
from deepgrad.autograd import grad_mode
from deepgrad.autograd.function import Function
from deepgrad.ops._im2col import (
    conv_forward,
    conv_input_grad,
    conv_weight_grad,
    hcwn,
    nchw,
    out_size,
    release,
)
from deepgrad.ops.reduce import sum as _sum
from deepgrad.ops.shape import squeeze, unsqueeze
from deepgrad.tensor import Tensor


class Conv2dFn(Function):
    """y = conv2d(x, W) + b; ``geom`` = (stride, pads, dilation, groups).

    When ``keep_cols`` the width columns are kept for the weight gradient (one copy of the input
    per kernel column: KW times the input's memory, released after backward); otherwise the
    weight gradient recomputes them.
    """

    def forward(self, x, w, b, geom, keep_cols):
        stride, pads, dilation, groups = geom
        y, cols = conv_forward(x, w, b, stride, pads, dilation, groups, keep_cols)
        self.saved = cols
        return y

    def backward(self, g):
        x, w, b, geom, _ = self.inputs
        need_x, need_w, need_b = self.needs_input_grad[:3]
        cols, self.saved = self.saved, None
        if not grad_mode.is_grad_enabled() and (need_w or need_x):
            # NOTE: both gradients read g in HCWN memory order; copy it into that order once
            # (a no-op when g already is a view of HCWN memory, as inside a network).
            g = Tensor._wrap(nchw(hcwn(g.data)))
        gw = gx = gb = None
        if need_w:
            gw = Conv2dWeightGradFn.apply(x, g, geom, w.shape, cols)
        # NOTE: once the weight gradient is formed the columns are dead, and the input
        # gradient's own columns are written into their buffer, unless they are a view of x
        # (1x1 kernels).
        # A second backward (retain_graph=True) recomputes them.
        if cols is not None and (grad_mode.is_grad_enabled()
                                 or array_module(cols).may_share_memory(cols, x.data)):
            cols = None  # create_graph keeps the weight-gradient node (and its input) alive
        if need_x:
            gx = Conv2dInputGradFn.apply(g, w, geom, x.shape[2:], cols)
        # NOTE: the columns (and the input gradient's columns written into them) are dead now;
        # the next convolution reuses their memory (see _im2col.release).
        release(cols, x.data, g.data, None if gx is None else gx.data)
        if need_b:
            gb = _sum(g, (0, 2, 3))
        return gx, gw, gb, None, None


class Conv2dInputGradFn(Function):
    """gx = A(g, W), the gradient of conv2d with respect to its input (of spatial size in_hw)."""

    def forward(self, g, w, geom, in_hw, workspace=None):
        stride, pads, dilation, groups = geom
        return conv_input_grad(g, w, in_hw, stride, pads, dilation, groups, workspace)

    def backward(self, u):
        # <u, A(g, W)> = <conv(u, W), g>: d/dg = conv(u, W); d/dW = B(u, g).
        g, w, geom = self.inputs[:3]
        need_g, need_w = self.needs_input_grad[:2]
        gg = Conv2dFn.apply(u, w, None, geom, False) if need_g else None
        gw = Conv2dWeightGradFn.apply(u, g, geom, w.shape, None) if need_w else None
        return (gg, gw) + (None,) * (len(self.inputs) - 2)


class Conv2dWeightGradFn(Function):
    """gW = B(x, g), the gradient of conv2d with respect to its weight (of shape w_shape)."""

    def forward(self, x, g, geom, w_shape, cols):
        stride, pads, dilation, groups = geom
        return conv_weight_grad(x, g, w_shape, stride, pads, dilation, groups, cols)

    def backward(self, u):
        # <U, B(x, g)> = <conv(x, U), g>: d/dx = A(g, U); d/dg = conv(x, U).
        x, g, geom, _, _ = self.inputs
        need_x, need_g = self.needs_input_grad[:2]
        gx = Conv2dInputGradFn.apply(g, u, geom, x.shape[2:]) if need_x else None
        gg = Conv2dFn.apply(x, u, None, geom, False) if need_g else None
        return gx, gg, None, None, None


# ---------------------------------------------------------------------- argument parsing
def _pair(v, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as a pair."""
    vals = (v, v) if isinstance(v, numbers.Integral) else tuple(v) if isinstance(
        v, (tuple, list)) else None
    if (vals is None or len(vals) != 2 or isinstance(v, bool)
            or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool)
                       for e in vals)):
        raise ValueError(f"conv2d: {name} must be an int or a pair of ints, got {v!r}")
    if min(vals) < minimum:
        raise ValueError(f"conv2d: {name} must be >= {minimum}, got {v!r}")
    return int(vals[0]), int(vals[1])


def conv_padding(padding, kernel, dilation, stride) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding for an int, a pair, 'valid' or 'same'.

    PARITY: 'same' pads d*(k-1) in total, the smaller half first (torch's rule for even
    kernels), and, as in torch, is refused for strided convolutions.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(
                f"conv2d: invalid padding string {padding!r}, should be one of 'valid', 'same'")
        if stride != (1, 1):
            raise ValueError("conv2d: padding='same' is not supported for strided convolutions")
        tot_h, tot_w = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return (tot_h // 2, tot_h - tot_h // 2, tot_w // 2, tot_w - tot_w // 2)
    ph, pw = _pair(padding, "padding", 0)
    return (ph, ph, pw, pw)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation over NCHW input, as ``torch.nn.functional.conv2d``.

    y[n, o, i, j] = b[o] + sum_{c, p, q} W[o, c, p, q] *
                    x_pad[n, g(o)*Cg + c, i*sh + p*dh, j*sw + q*dw]

    where g(o) is the group of output channel o and Cg = C / groups. Computed as one batched
    GEMM over output rows on width columns, an im2col without the KH-fold copy (see
    :mod:`deepgrad.ops._im2col`); differentiable to any order.

    Args:
        input: (N, C, H, W), or unbatched (C, H, W).
        weight: (O, C / groups, KH, KW).
        bias: (O,) or None.
        stride, dilation: int or (h, w) pair, >= 1.
        padding: int or (h, w) pair of zero padding on both sides, or 'valid' / 'same'.
        groups: split C and O into this many independent groups (groups = C: depthwise).

    Returns:
        (N, O, OH, OW) with OH = floor((H + 2 ph - dh (KH - 1) - 1) / sh) + 1 (same for OW).

    Reference: LeCun et al. 1998, "Gradient-based learning applied to document recognition";
    Chellapilla et al. 2006, "High performance convolutional neural networks for document
    processing" (convolution as im2col + matrix product).
    """
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("conv2d: input and weight must be Tensors")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out, in/groups, kH, kW), got shape "
                         f"{weight.shape}")
    if input.ndim not in (3, 4):
        raise ValueError(f"conv2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                         f"{input.shape}")
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    o, cg, kh, kw = weight.shape
    c = input.shape[-3]
    if o % groups:
        raise ValueError(f"conv2d: out_channels (weight.shape[0] = {o}) must be divisible by "
                         f"groups = {groups}")
    if c != cg * groups:
        raise ValueError(f"conv2d: expected input with {cg * groups} channels (weight of shape "
                         f"{weight.shape}, groups={groups}), got {c} channels (input shape "
                         f"{input.shape})")
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (o,)):
        raise ValueError(f"conv2d: bias must be a Tensor of shape ({o},), got "
                         f"{getattr(bias, 'shape', type(bias).__name__)}")
    dtypes = {t.dtype for t in (input, weight, bias) if t is not None}
    if len(dtypes) > 1:
        raise TypeError(f"conv2d: input ({input.dtype}), weight ({weight.dtype})"
                        + (f" and bias ({bias.dtype})" if bias is not None else "")
                        + " must have the same dtype")
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    pads = conv_padding(padding, (kh, kw), dilation, stride)
    h, w = input.shape[-2:]
    ph, pw = h + pads[0] + pads[1], w + pads[2] + pads[3]
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if ph < eh or pw < ew:
        raise ValueError(f"conv2d: input of spatial size ({h} x {w}), ({ph} x {pw}) after "
                         f"padding, is smaller than the dilated kernel ({eh} x {ew})")
    assert out_size(h, kh, stride[0], dilation[0], pads[0], pads[1]) >= 1
    x = unsqueeze(input, 0) if input.ndim == 3 else input
    keep_cols = grad_mode.is_grad_enabled() and weight.requires_grad
    y = Conv2dFn.apply(x, weight, bias, (stride, pads, dilation, int(groups)), keep_cols)
    return squeeze(y, 0) if input.ndim == 3 else y
