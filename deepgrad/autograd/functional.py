"""Higher-order helpers built on double backward: Hessian-vector products and Hessians."""

from __future__ import annotations

import numpy as np


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def vjp(func, inputs, v=None, create_graph: bool = False):
    """Return (func(inputs), v^T J) as ``torch.autograd.functional.vjp``."""
    from deepgrad.autograd import grad

    inputs = _as_tuple(inputs)
    xs = [x.detach().requires_grad_(True) for x in inputs]
    out = func(*xs)
    g = grad(out, xs, v, create_graph=create_graph, allow_unused=True)
    g = tuple(gi if gi is not None else x * 0.0 for gi, x in zip(g, xs))
    return out.detach(), g if len(g) > 1 else g[0]


def hvp(func, inputs, v, create_graph: bool = False):
    """Return (func(inputs), H v) for a scalar function, by double backward.

    H v = d/dx (grad f(x) . v): one backward with ``create_graph`` and one more through it,
    exact to rounding (Pearlmutter 1994, "Fast exact multiplication by the Hessian").
    """
    from deepgrad.autograd import grad

    inputs = _as_tuple(inputs)
    vs = _as_tuple(v)
    xs = [x.detach().requires_grad_(True) for x in inputs]
    out = func(*xs)
    if out.numel() != 1:
        raise ValueError(f"hvp needs a scalar function, got output shape {out.shape}")
    gs = grad(out, xs, create_graph=True)
    dot = None
    for gi, vi in zip(gs, vs):
        term = (gi * vi).sum()
        dot = term if dot is None else dot + term
    hv = grad(dot, xs, create_graph=create_graph, allow_unused=True)
    hv = tuple(h if h is not None else x * 0.0 for h, x in zip(hv, xs))
    return out.detach(), hv if len(hv) > 1 else hv[0]


def hessian(func, x):
    """Full Hessian of a scalar function of one tensor, shape x.shape + x.shape (small x only)."""
    from deepgrad.tensor import Tensor

    n = x.numel()
    rows = []
    for i in range(n):
        e = np.zeros(n, dtype=x.dtype)
        e[i] = 1.0
        _, hv = hvp(func, x, Tensor._wrap(e.reshape(x.shape)))
        rows.append(hv.data.reshape(-1))
    return Tensor._wrap(np.stack(rows).reshape(x.shape + x.shape))
