"""Output sizes of convolution and pooling layers, computed and explained term by term.

The formula (PyTorch's ``Conv2d`` / ``MaxPool2d`` documentation) for one spatial dimension::

    out = floor((in + 2 p - d (k - 1) - 1) / s) + 1

Read it as: the effective (dilated) kernel spans ``d (k - 1) + 1`` pixels; padding makes the
input ``in + 2 p`` long; a window fits at ``padded - effective`` offsets past the first, of which
every ``s``-th is used, hence ``floor((padded - effective) / s) + 1`` positions.

With ``ceil_mode`` (pooling only) the division rounds up, and PyTorch then drops the last window
if it would start inside the right padding: ``if (out - 1) s >= in + p: out -= 1``.

References:
    Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep learning".
    LeCun et al. 1998, "Gradient-based learning applied to document recognition".
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

FORMULA = "out = floor((in + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1"


def _int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        return _int(name, value[0], minimum), _int(name, value[1], minimum)
    v = _int(name, value, minimum)
    return v, v


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling window sliding over one dimension.

    out = floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1, rounded up instead
    with ``ceil_mode``, where (PyTorch's rule) a last window that would start in the right
    padding is dropped.

    Args:
        size: input length (H or W), >= 1.
        kernel: window length, >= 1.
        stride: step between windows, >= 1.
        padding: zeros added on each side, >= 0.
        dilation: spacing between window taps, >= 1.
        ceil_mode: round up (pooling's ``ceil_mode``).

    Returns:
        The output length, >= 1.

    Raises:
        ValueError: for a non-int or out-of-range argument, or when the padded input is smaller
            than the effective kernel (the message names the numbers).

    Reference: PyTorch ``torch.nn.Conv2d`` / ``MaxPool2d`` docs; Dumoulin & Visin 2016.
    """
    size = _int("size", size, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 1)
    padding = _int("padding", padding, 0)
    dilation = _int("dilation", dilation, 1)
    effective = dilation * (kernel - 1) + 1
    padded = size + 2 * padding
    span = padded - effective
    # NOTE: floor division of a negative span gives an out < 1, refused below; with ceil_mode
    # PyTorch's (span + stride - 1) // stride lets a window overhang a too-small input.
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # PARITY: PyTorch drops a last window that would start in the right padding
    if out < 1:
        raise ValueError(
            f"output size would be {out} < 1: the padded input {size} + 2*{padding} = {padded} "
            f"is smaller than the effective kernel dilation*(kernel - 1) + 1 = "
            f"{dilation}*({kernel} - 1) + 1 = {effective}")
    return out


def _explain_dim(label: str, size: int, k: int, s: int, p: int, d: int, ceil_mode: bool,
                 ) -> tuple[list[str], int]:
    out = conv_output_size(size, k, s, p, d, ceil_mode)
    effective = d * (k - 1) + 1
    padded = size + 2 * p
    span = padded - effective
    lines = [
        f"  {label}: in = {size}, kernel = {k}, stride = {s}, padding = {p}, dilation = {d}",
        f"    effective kernel  d*(k - 1) + 1 = {d}*({k} - 1) + 1 = {effective}",
        f"    padded size       in + 2*p = {size} + 2*{p} = {padded}",
    ]
    if not ceil_mode:
        lines.append(f"    positions         floor(({padded} - {effective}) / {s}) + 1 = "
                     f"floor({span}/{s}) + 1 = {out}")
    else:
        raw = (span + s - 1) // s + 1
        lines.append(f"    positions         ceil(({padded} - {effective}) / {s}) + 1 = "
                     f"ceil({span}/{s}) + 1 = {raw}")
        if raw != out:
            lines.append(f"    ceil_mode: the last window would start at {(raw - 1) * s} >= "
                         f"in + p = {size + p} (in the right padding), so it is dropped: {out}")
        else:
            lines.append(f"    ceil_mode: the last window starts at {(raw - 1) * s} < in + p = "
                         f"{size + p}, so it is kept")
    unused = span - (out - 1) * s
    if unused > 0 and not ceil_mode:
        lines.append(f"    note: the last {unused} padded pixel(s) are never covered by a "
                     f"window (stride {s} does not divide {span})")
    lines.append(f"    -> {label}_out = {out}")
    return lines, out


def explain_conv_output(input_shape: Sequence[int], kernel, stride=1, padding=0, dilation=1,
                        out_channels: int | None = None, ceil_mode: bool = False) -> str:
    """Explain, term by term, the output shape of a conv or pooling layer.

    Args:
        input_shape: one sample, (C, H, W) or (H, W), without the batch dimension.
        kernel, stride, padding, dilation: int or (h, w) pair, as for ``nn.Conv2d``.
        out_channels: output channels of a convolution; None keeps C (pooling).
        ceil_mode: round the output size up (pooling's ``ceil_mode``).

    Returns:
        Several lines: the formula, then per dimension (H and W together when they are the
        same computation) the effective kernel d(k - 1) + 1, the padded size H + 2p, the number
        of positions, and finally the output shape.

    Raises:
        ValueError: for a malformed shape or argument, or an output size < 1 (named).

    Example: ``explain_conv_output((1, 28, 28), 5, padding=2, out_channels=6)`` ends with
    ``output shape: (6, 28, 28)``.

    Reference: Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep learning".
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) not in (2, 3):
        raise ValueError(f"input_shape must be (C, H, W) or (H, W), got {input_shape!r}")
    names = ("C", "H", "W") if len(shape) == 3 else ("H", "W")
    for n, v in zip(names, shape):
        _int(f"input_shape {n}", v, 1)
    h, w = int(shape[-2]), int(shape[-1])
    k, s, p, d = (_pair("kernel", kernel, 1), _pair("stride", stride, 1),
                  _pair("padding", padding, 0), _pair("dilation", dilation, 1))
    if out_channels is not None:
        _int("out_channels", out_channels, 1)

    def fmt(pair):
        return str(pair[0]) if pair[0] == pair[1] else f"({pair[0]}, {pair[1]})"

    lines = [f"input {shape}" + (f" (C={shape[0]}, H={h}, W={w})" if len(shape) == 3 else
                                 f" (H={h}, W={w})")
             + f"; kernel {fmt(k)}, stride {fmt(s)}, padding {fmt(p)}, dilation {fmt(d)}"
             + (", ceil_mode" if ceil_mode else ""),
             f"formula: {FORMULA}" + ("  (ceil instead of floor, see below)" if ceil_mode
                                      else "")]
    same = h == w and all(t[0] == t[1] for t in (k, s, p, d))
    if same:
        dim_lines, oh = _explain_dim("H", h, k[0], s[0], p[0], d[0], ceil_mode)
        lines += dim_lines
        lines.append("  W: the same computation (square input and square arguments)")
        ow = oh
    else:
        dim_lines, oh = _explain_dim("H", h, k[0], s[0], p[0], d[0], ceil_mode)
        lines += dim_lines
        dim_lines, ow = _explain_dim("W", w, k[1], s[1], p[1], d[1], ceil_mode)
        lines += dim_lines
    if len(shape) == 3:
        c_out = shape[0] if out_channels is None else int(out_channels)
        out_shape: tuple[int, ...] = (c_out, oh, ow)
        how = ("channels kept (pooling; pass out_channels for a convolution)"
               if out_channels is None else f"channels = out_channels = {c_out}")
        lines.append(f"  C: {how}")
    else:
        out_shape = (oh, ow) if out_channels is None else (int(out_channels), oh, ow)
    lines.append(f"output shape: {out_shape}")
    return "\n".join(lines)
