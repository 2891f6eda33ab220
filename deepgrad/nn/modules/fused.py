"""Fused forms of common module pairs, taken only when nobody can tell the difference.

A network's ``forward`` calls these instead of chaining the modules itself:

    batch_norm_then_relu(bn, relu, x)   == relu(bn(x))       (F.batch_norm_relu)
    relu_of_sum(relu, a, b)             == relu(a + b)       (ops.add_relu)

The fused op makes one pass over memory where the pair makes two (forward and backward), with
the same values, gradients and running statistics. It is used only when ``relu`` is a plain
:class:`ReLU`, the batch norm's ``forward`` is not overridden, and none of the modules involved
has a forward hook or pre-hook: diagnostics, summaries and user hooks attach those to see each
module's own output, and then get the modules called one by one as written.
"""

from __future__ import annotations

from deepgrad import ops
from deepgrad.nn.modules.activation import ReLU
from deepgrad.nn.modules.batchnorm import _BatchNorm
from deepgrad.nn.modules.module import Module
from deepgrad.tensor import Tensor


def _unobserved(*modules: Module) -> bool:
    return not any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def batch_norm_then_relu(bn: _BatchNorm, relu: Module, input: Tensor) -> Tensor:
    """``relu(bn(input))``; fused (:meth:`_BatchNorm.forward_relu`) when unobserved and ``bn``
    is a batch norm whose ``forward`` is deepgrad's own (a subclass may have changed it)."""
    if type(relu) is ReLU and isinstance(bn, _BatchNorm) \
            and type(bn).forward is _BatchNorm.forward and _unobserved(bn, relu):
        return bn.forward_relu(input)
    return relu(bn(input))


def relu_of_sum(relu: Module, a: Tensor, b: Tensor) -> Tensor:
    """``relu(a + b)`` (a residual connection); fused (``ops.add_relu``) when unobserved."""
    if type(relu) is ReLU and _unobserved(relu) and tuple(a.shape) == tuple(b.shape):
        return ops.add_relu(a, b)
    return relu(a + b)
