"""Matrix products: ``matmul`` (batched, broadcasting) and the fused ``linear``."""

from __future__ import annotations

from deepgrad import _parallel
from deepgrad.autograd.function import Function
from deepgrad.ops.reduce import SumFn
from deepgrad.ops.reduce import sum as _sum
from deepgrad.ops.shape import PermuteFn, reshape, squeeze, sum_to, transpose, unsqueeze
from deepgrad.tensor import Tensor


class MatmulFn(Function):
    """C = A @ B for A (..., n, k), B (..., k, m), batch dimensions broadcast."""

    def forward(self, a, b):
        return _parallel.matmul(a, b)

    def backward(self, g):
        # dL/dA = G B^T, dL/dB = A^T G, each summed over broadcast batch dimensions.
        a, b = self.inputs
        ga = sum_to(matmul(g, transpose(b, -1, -2)), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(matmul(transpose(a, -1, -2), g), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch semantics for 1-D and batched operands."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: both arguments need at least one dimension")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                         f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})")
    if a.ndim == 1 and b.ndim == 1:
        return _sum(a * b)
    if a.ndim == 1:
        return squeeze(MatmulFn.apply(unsqueeze(a, 0), b), -2)
    if b.ndim == 1:
        return squeeze(MatmulFn.apply(a, unsqueeze(b, -1)), -1)
    return MatmulFn.apply(a, b)


class LinearFn(Function):
    """y = x W^T + b for x (..., in), W (out, in), b (out,): one GEMM and an in-place add."""

    def forward(self, x, w, b):
        out = _parallel.matmul(x, w.T)
        if b is not None:
            out += b
        return out

    def backward(self, g):
        # dL/dx = G W,  dL/dW = G^T x (over all leading dims),  dL/db = sum of G over them.
        # NOTE: on this hot path the primitives are applied directly: the shapes are known to
        # be valid, so the public wrappers' checks (matmul, transpose, sum) are skipped. The
        # nodes recorded under create_graph are the same.
        x, w, b = self.inputs
        need_x, need_w, need_b = self.needs_input_grad
        gx = None
        if need_x:
            gx = MatmulFn.apply(g, w) if g.ndim >= 2 else matmul(g, w)
        gw = gb = None
        if need_w or need_b:
            g2 = reshape(g, (-1, g.shape[-1])) if g.ndim != 2 else g
            if need_w:
                x2 = reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x
                gw = MatmulFn.apply(PermuteFn.apply(g2, (1, 0)), x2)
            if need_b:
                gb = SumFn.apply(g2, (0,), False)
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map y = x W^T + b, as ``torch.nn.functional.linear``.

    Shape:
        x: (..., in_features); weight: (out_features, in_features); bias: (out_features,).
    """
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the weight expects "
            f"{weight.shape[-1]} (weight shape {weight.shape})"
        )
    return LinearFn.apply(x, weight, bias)
