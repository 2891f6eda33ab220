"""Numerical gradient checks in float64 with a random upstream gradient.

``gradcheck`` compares the analytic vector-Jacobian product v^T J (from backward) with the
central difference (f(x + h e_i) - f(x - h e_i)) / 2h contracted with the same random v.
A plain ``.sum()`` (v = ones) would be vacuous for softmax, whose Jacobian rows sum to zero,
so v is always random.
"""

from __future__ import annotations

import numpy as np


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _numerical_vjp(func, inputs, v, eps):
    """sum_k v_k * d f_k / d x_i by central differences, for each input requiring grad."""
    grads = []
    for x in inputs:
        if not getattr(x, "requires_grad", False):
            grads.append(None)
            continue
        # NOTE: index x.data itself: reshape(-1) of a non-contiguous array is a copy, and
        # perturbing a copy would leave func's input unchanged.
        data = x.data
        g = np.zeros(data.shape, dtype=np.float64)
        for i in np.ndindex(data.shape):
            orig = data[i]
            data[i] = orig + eps
            plus = _outputs(func, inputs)
            data[i] = orig - eps
            minus = _outputs(func, inputs)
            data[i] = orig
            g[i] = sum(float(np.sum(vk * (p - m))) for vk, p, m in zip(v, plus, minus)) / (2 * eps)
        grads.append(g)
    return grads


def _outputs(func, inputs):
    return [o.data.astype(np.float64) for o in _as_tuple(func(*inputs))]


def gradcheck(func, inputs, eps: float = 1e-6, atol: float = 1e-8, rtol: float = 1e-6,
              seed: int = 0, raise_exception: bool = True) -> bool:
    """Check analytic gradients of ``func`` at ``inputs`` against central differences.

    Args:
        func: callable taking the input Tensors and returning a Tensor or tuple of Tensors.
        inputs: Tensor or tuple of Tensors; those with ``requires_grad`` are checked. They must
            be float64 (finite differences in float32 are too coarse to mean anything).
        eps: finite-difference step.
        atol, rtol: tolerances of the comparison.
        seed: seed of the random upstream gradient.
        raise_exception: raise ``AssertionError`` with details on mismatch (else return False).

    Returns:
        True when every checked gradient matches.
    """
    from deepgrad.autograd import grad

    inputs = _as_tuple(inputs)
    checked = [x for x in inputs if getattr(x, "requires_grad", False)]
    for x in checked:
        if x.data.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs, got {x.data.dtype}")
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    rng = np.random.default_rng(seed)
    outs = _as_tuple(func(*inputs))
    v = [rng.standard_normal(o.shape) for o in outs]
    from deepgrad.tensor import Tensor

    diff_outs = [(o, Tensor(vk, dtype=o.dtype)) for o, vk in zip(outs, v) if o.requires_grad]
    analytic = grad([o for o, _ in diff_outs], checked, [g for _, g in diff_outs],
                    allow_unused=True) if diff_outs else [None] * len(checked)
    numeric = [g for g in _numerical_vjp(func, inputs, v, eps) if g is not None]
    for k, (a, n) in enumerate(zip(analytic, numeric)):
        a = np.zeros_like(n) if a is None else a.data
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            if not raise_exception:
                return False
            err = np.max(np.abs(a - n))
            raise AssertionError(
                f"gradcheck: input {k} (shape {n.shape}): analytic and numerical gradients "
                f"differ by up to {err:.3e}\nanalytic:\n{a}\nnumerical:\n{n}"
            )
    return True


def gradgradcheck(func, inputs, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-5,
                  seed: int = 0, raise_exception: bool = True) -> bool:
    """Check second derivatives: gradcheck of the map x -> v^T J(x) built with create_graph.

    The first-order gradient uses a random upstream gradient v (held fixed), so the check covers
    the full Hessian-vector structure, not only the sum.
    """
    from deepgrad.autograd import grad
    from deepgrad.tensor import Tensor

    inputs = _as_tuple(inputs)
    rng = np.random.default_rng(seed + 1)
    outs = _as_tuple(func(*inputs))
    v = [Tensor(rng.standard_normal(o.shape), dtype=o.dtype) for o in outs]

    def first_grad(*xs):
        ys = _as_tuple(func(*xs))
        wanted = [x for x in xs if getattr(x, "requires_grad", False)]
        gs = grad(list(ys), wanted, v, create_graph=True, allow_unused=True)
        return tuple(g if g is not None else x * 0.0 for g, x in zip(gs, wanted))

    return gradcheck(first_grad, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed,
                     raise_exception=raise_exception)
