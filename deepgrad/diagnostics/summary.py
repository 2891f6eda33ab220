"""``summarize``: a layer-by-layer table of output shapes, parameters and FLOPs (torchinfo-style).

One forward pass of a dummy batch under ``no_grad`` with forward hooks on the *leaf* modules
(those without children) records, for every call of a leaf: its dotted name, type, input and
output shapes, parameter count and floating-point operations.

FLOP convention (per sample; a multiply-add counts as 2 FLOPs):

* ``Conv2d``: 2 * C_out * OH * OW * (C_in / groups) * kh * kw, + C_out * OH * OW with a bias.
* ``Linear``: 2 * in_features * out_features, + out_features with a bias (times any extra
  leading dimensions of the input).
* ``BatchNorm1d/2d``, ``LayerNorm``: 2 per output element (normalisation and affine folded into
  y = a * x + b, the inference cost).
* activations (ReLU, Tanh, Sigmoid, ELU, LeakyReLU, Softplus, Softmax, LogSoftmax): 1 per
  output element.
* ``MaxPool2d`` / ``AvgPool2d``: kh * kw per output element; adaptive pooling: 1 per input
  element.
* ``Dropout``, ``Flatten``, ``Identity``, reshapes and other parameter-free data movement
  (e.g. ResNet's option-A shortcut): 0.
* any other leaf type (e.g. ``LSTM``) is not counted: its FLOPs are None ("--" in the table)
  and the summary lists the type.

Operations written directly in a ``forward`` rather than in a leaf module (a residual
``out + identity``, a functional call) are not seen by hooks and are not counted. A module
called twice appears twice; its parameters are counted at its first call only.

The model is left as it was: the pass runs in eval mode (BatchNorm uses, and does not update,
its running statistics; dropout is off), then every module's own training flag is restored and
the hooks removed, also on error. The dummy input comes from a private generator, so the global
random state is untouched.

References:
    Molchanov et al. 2017, "Pruning convolutional neural networks for resource efficient
    inference", ICLR (FLOPs of conv and fully connected layers as 2 x multiply-adds, as here;
    they count a bias as 2 FLOPs per output, here it is 1).
    torchinfo (Tyler Yep) and Keras ``Model.summary()`` for the table layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from deepgrad import _dtype
from deepgrad.autograd.grad_mode import no_grad
from deepgrad.models.resnet import PadShortcut
from deepgrad.nn.modules import activation as _act
from deepgrad.nn.modules.batchnorm import _BatchNorm
from deepgrad.nn.modules.conv import Conv2d
from deepgrad.nn.modules.dropout import Dropout
from deepgrad.nn.modules.dropout2d import Dropout2d
from deepgrad.nn.modules.linear import Flatten, Identity, Linear, Unflatten
from deepgrad.nn.modules.module import Module
from deepgrad.nn.modules.normalization import LayerNorm
from deepgrad.nn.modules.pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    MaxPool2d,
)
from deepgrad.tensor import Tensor

_ELEMENTWISE = (_act.ReLU, _act.LeakyReLU, _act.ELU, _act.Sigmoid, _act.Tanh, _act.Softplus,
                _act.Softmax, _act.LogSoftmax)
_FREE = (Dropout, Dropout2d, Flatten, Unflatten, Identity, PadShortcut)


@dataclass
class LayerInfo:
    """One call of a leaf module: shapes include the batch dimension; FLOPs are per sample."""

    name: str
    type: str
    input_shape: list[int] | None
    output_shape: list | None
    params: int
    trainable_params: int
    flops: int | None


@dataclass
class ModelSummary:
    """What :func:`summarize` measured; ``table()`` prints it, ``to_dict()`` serialises it.

    Attributes:
        model: the model's class name.
        input_shape: one sample's shape (without the batch dimension).
        batch_size: the batch size of the dummy pass.
        layers: one :class:`LayerInfo` per leaf-module call, in execution order.
        output_shape: shape of the model's output (with the batch dimension).
        total_params, trainable_params: unique parameters of the model.
        param_bytes: their storage in bytes.
        uncounted: leaf types whose FLOPs the convention does not cover.
    """

    model: str
    input_shape: tuple[int, ...]
    batch_size: int
    layers: list[LayerInfo] = field(default_factory=list)
    output_shape: list | None = None
    total_params: int = 0
    trainable_params: int = 0
    param_bytes: int = 0
    uncounted: list[str] = field(default_factory=list)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def total_flops(self) -> int:
        """FLOPs per sample of the counted layers."""
        return sum(layer.flops for layer in self.layers if layer.flops is not None)

    @property
    def param_memory_mb(self) -> float:
        """Parameter storage in MB (10^6 bytes, as torchinfo)."""
        return self.param_bytes / 1e6

    def to_dict(self) -> dict:
        """A JSON-serialisable dict: the attributes, the totals, and ``layers`` as dicts."""
        return {
            "model": self.model, "input_shape": list(self.input_shape),
            "batch_size": self.batch_size, "output_shape": self.output_shape,
            "layers": [asdict(layer) for layer in self.layers],
            "total_params": self.total_params, "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "total_flops": self.total_flops, "param_bytes": self.param_bytes,
            "param_memory_mb": self.param_memory_mb, "uncounted": list(self.uncounted),
        }

    def table(self) -> str:
        """A fixed-width table (layer, output shape, params, FLOPs) followed by the totals."""
        head = ("Layer (type)", "Output Shape", "Param #", "FLOPs")
        rows = [(f"{layer.name} ({layer.type})" if layer.name else layer.type,
                 str(layer.output_shape), f"{layer.params:,}",
                 "--" if layer.flops is None else f"{layer.flops:,}") for layer in self.layers]
        widths = [max([len(head[i])] + [len(r[i]) for r in rows]) for i in range(4)]
        widths = [max(widths[0], 28), max(widths[1], 20), max(widths[2], 10), max(widths[3], 14)]

        def line(cells):
            return (f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  "
                    f"{cells[2]:>{widths[2]}}  {cells[3]:>{widths[3]}}")

        rule = "=" * (sum(widths) + 6)
        out = [f"{self.model} summary: input {tuple(self.input_shape)}, batch size "
               f"{self.batch_size}", rule, line(head), rule]
        out += [line(r) for r in rows]
        out += [rule,
                f"Output shape: {self.output_shape}",
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.non_trainable_params:,}",
                f"Total FLOPs per sample: {self.total_flops:,} "
                f"({_si(self.total_flops)}FLOPs)",
                f"Param memory: {self.param_memory_mb:.2f} MB"]
        if self.uncounted:
            out.append(f"FLOPs not counted for: {', '.join(self.uncounted)}")
        out.append(rule)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:g} "


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def _first_tensor(obj):
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for item in obj:
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


def _shape_of(obj):
    if isinstance(obj, Tensor):
        return list(obj.shape)
    if isinstance(obj, (tuple, list)):
        return [_shape_of(o) for o in obj]
    return None


def layer_flops(module: Module, input: Tensor | None, output: Tensor | None,
                batch_size: int) -> int | None:
    """FLOPs per sample of one call of the leaf ``module`` (the module docstring's convention);
    None for a type the convention does not cover."""
    if isinstance(module, _FREE):
        return 0
    if output is None:
        return None
    out_per_sample = output.numel() // batch_size
    if isinstance(module, Conv2d):
        kh, kw = module.kernel_size
        spatial = out_per_sample  # C_out * OH * OW
        fl = 2 * spatial * (module.in_channels // module.groups) * kh * kw
        return fl + (spatial if module.bias is not None else 0)
    if isinstance(module, Linear):
        rows = out_per_sample // module.out_features
        per_row = 2 * module.in_features * module.out_features
        return rows * (per_row + (module.out_features if module.bias is not None else 0))
    if isinstance(module, (_BatchNorm, LayerNorm)):
        return 2 * out_per_sample
    if isinstance(module, _ELEMENTWISE):
        return out_per_sample
    if isinstance(module, (MaxPool2d, AvgPool2d)):
        kh, kw = _pair(module.kernel_size)
        return kh * kw * out_per_sample
    if isinstance(module, (AdaptiveAvgPool2d, AdaptiveMaxPool2d)):
        return None if input is None else input.numel() // batch_size
    return None


def _check_shape(input_shape) -> tuple[int, ...]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (not shape or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0
                         for d in shape)):
        raise ValueError(f"summarize: input_shape must be a non-empty tuple of positive ints "
                         f"(one sample, without the batch dimension, e.g. (1, 28, 28)), got "
                         f"{input_shape!r}")
    return tuple(int(d) for d in shape)


def summarize(model: Module, input_shape: Sequence[int], batch_size: int = 1) -> ModelSummary:
    """Run one forward pass and record every leaf layer's output shape, parameters and FLOPs.

    Args:
        model: the model to describe; left unchanged (training flags, hooks, statistics).
        input_shape: one sample's shape without the batch dimension, e.g. (1, 28, 28).
        batch_size: rows of the dummy batch (FLOPs are reported per sample regardless).

    Returns:
        A :class:`ModelSummary`; ``print(summary.table())`` shows it.

    Raises:
        TypeError: if ``model`` is not a Module.
        ValueError: for a malformed ``input_shape`` or ``batch_size``, or when the forward pass
            fails on that shape (the message names the layer that was running).

    Reference: the FLOP convention of the module docstring (Molchanov et al. 2017).
    """
    if not isinstance(model, Module):
        raise TypeError(f"summarize: model must be a deepgrad Module, got "
                        f"{type(model).__name__}")
    shape = _check_shape(input_shape)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"summarize: batch_size must be a positive int, got {batch_size!r}")
    params = list(model.parameters())
    floats = [p.data.dtype for p in params if p.data.dtype.kind == "f"]
    dtype = floats[0] if floats else _dtype.get_default_dtype()
    x = Tensor._wrap(np.random.default_rng(0).standard_normal((batch_size,) + shape)
                     .astype(dtype))

    summary = ModelSummary(type(model).__name__, shape, batch_size)
    summary.total_params = sum(p.numel() for p in params)
    summary.trainable_params = sum(p.numel() for p in params if p.requires_grad)
    summary.param_bytes = sum(p.data.nbytes for p in params)
    seen: set[int] = set()
    running: list[tuple[str, Module, list | None]] = []

    def pre_hook(name):
        def hook(module, inputs):
            running.append((name, module, _shape_of(_first_tensor(inputs))))
        return hook

    def post_hook(name):
        def hook(module, inputs, output):
            if running:
                running.pop()
            own = [p for p in module._parameters.values() if p is not None]
            first = id(module) not in seen
            seen.add(id(module))
            inp, out = _first_tensor(inputs), _first_tensor(output)
            flops = layer_flops(module, inp, out, batch_size)
            if flops is None and type(module).__name__ not in summary.uncounted:
                summary.uncounted.append(type(module).__name__)
            summary.layers.append(LayerInfo(
                name, type(module).__name__, _shape_of(inp), _shape_of(output),
                sum(p.numel() for p in own) if first else 0,
                sum(p.numel() for p in own if p.requires_grad) if first else 0, flops))
        return hook

    modes = [(m, m.training) for m in model.modules()]
    handles = []
    try:
        for name, m in model.named_modules():
            if next(m.children(), None) is None:
                handles.append(m.register_forward_pre_hook(pre_hook(name)))
                handles.append(m.register_forward_hook(post_hook(name)))
        model.eval()
        with no_grad():
            try:
                output = model(x)
            except (ValueError, RuntimeError, IndexError, TypeError) as exc:
                where = (f"in layer {running[-1][0] or type(model).__name__!r} "
                         f"({type(running[-1][1]).__name__}, input shape {running[-1][2]})"
                         if running else "after layer " + repr(summary.layers[-1].name)
                         if summary.layers else "before the first layer")
                raise ValueError(f"summarize: the forward pass of {type(model).__name__} on "
                                 f"input shape {(batch_size,) + shape} failed {where}: {exc}"
                                 ) from exc
        summary.output_shape = _shape_of(output)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    return summary
