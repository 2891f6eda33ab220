"""Reverse-mode automatic differentiation: the graph engine, grad(), grad modes, checks."""

from deepgrad.autograd.engine import run_backward
from deepgrad.autograd.function import Function
from deepgrad.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Return d(outputs)/d(inputs), contracted with ``grad_outputs``, as ``torch.autograd.grad``.

    Args:
        outputs: a Tensor or sequence of Tensors.
        inputs: a Tensor or sequence of Tensors that require grad.
        grad_outputs: upstream gradients, one per output (may be omitted for scalar outputs).
        retain_graph: keep the graph for another pass (defaults to ``create_graph``).
        create_graph: record this computation so the result can be differentiated again.
        allow_unused: return None for inputs the outputs do not depend on instead of raising.

    Returns:
        A tuple with one gradient Tensor per input.
    """
    from deepgrad.tensor import Tensor, _default_grad

    single = isinstance(outputs, Tensor)
    outputs = [outputs] if single else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: one of the inputs does not require grad")
    for out in outputs:
        if not out.requires_grad:
            raise RuntimeError("grad: one of the outputs does not require grad (no graph)")
    grads = [_default_grad(o, g) for o, g in zip(outputs, grad_outputs)]
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outputs, grads, retain_graph, create_graph, inputs=inputs)
    if not allow_unused:
        for i, g in enumerate(result):
            if g is None:
                raise RuntimeError(
                    f"grad: input {i} was not used to compute the outputs; pass allow_unused=True"
                )
    if not create_graph:
        result = [None if g is None else g.detach() for g in result]
    return tuple(result)


from deepgrad.autograd import functional  # noqa: E402
from deepgrad.autograd.gradcheck import gradcheck, gradgradcheck  # noqa: E402

__all__ = [
    "Function", "enable_grad", "functional", "grad", "gradcheck", "gradgradcheck",
    "is_grad_enabled", "no_grad", "run_backward", "set_grad_enabled",
]
