"""The base class of every differentiable primitive.

A primitive is a subclass of :class:`Function` with two static-style methods:

* ``forward(ctx, *arrays, **kwargs) -> array`` computes on raw arrays (NumPy today) and may
  stash what backward needs on ``ctx``;
* ``backward(ctx, grad) -> tuple`` receives the gradient of the output as a Tensor and returns
  one gradient Tensor (or None) per input, **written with Tensor ops** so that the gradient is
  itself differentiable (``create_graph=True``).

Backward code lives only in ``deepgrad/ops`` (DESIGN rule 1). Kernels that are not written with
Tensor ops set ``once_differentiable = True``; differentiating them twice raises an error.
"""

from __future__ import annotations

from deepgrad.autograd import grad_mode


class Function:
    """A node of the graph: one primitive applied to its inputs, producing one output.

    Attributes:
        inputs: the input Tensors (None where an argument is not a Tensor).
        needs_input_grad: for each input, whether it requires a gradient.
        out_data: the forward output array (kept for backward rules that need it).
    """

    once_differentiable = False
    __slots__ = ("inputs", "needs_input_grad", "out_data", "saved", "kwargs", "released",
                 "hooks", "__weakref__")

    def __init__(self):
        self.inputs = ()
        self.needs_input_grad = ()
        self.out_data = None
        self.saved = None
        self.kwargs = None
        self.released = False
        self.hooks = None

    # Subclasses override these two.
    def forward(self, *arrays, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def output(self):
        """The forward output as a Tensor for use inside ``backward``.

        When the backward pass itself is being recorded (``create_graph=True``) the output is
        recomputed from the inputs so that it carries a graph; otherwise the stored array is
        wrapped as a constant.
        """
        from deepgrad.tensor import Tensor

        if grad_mode.is_grad_enabled():
            return type(self).apply(*self.inputs, **(self.kwargs or {}))
        return Tensor._wrap(self.out_data)

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run the primitive on ``inputs`` (Tensors or constants) and record it in the graph."""
        from deepgrad.tensor import Tensor

        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        node = cls()
        out = node.forward(*arrays, **kwargs)
        requires = False
        if grad_mode._enabled:
            needs = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
            requires = any(needs)
        result = Tensor._wrap(out)
        if requires:
            node.inputs = inputs
            node.needs_input_grad = needs
            node.out_data = out
            node.kwargs = kwargs
            result.requires_grad = True
            result.grad_fn = node
        return result
