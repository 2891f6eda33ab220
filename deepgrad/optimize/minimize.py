"""``minimize``: unconstrained minimisation of a function written with deepgrad ops."""

from __future__ import annotations

import numpy as np

from deepgrad.optimize._cg import nonlinear_cg
from deepgrad.optimize._newton import newton
from deepgrad.optimize._objective import Objective, OptimizeResult
from deepgrad.optimize._quasi_newton import bfgs, lbfgs
from deepgrad.tensor import Tensor

_METHODS = {
    "newton": newton, "newton-cg": newton,
    "bfgs": bfgs,
    "lbfgs": lbfgs, "l-bfgs": lbfgs,
    "cg": nonlinear_cg,
}
_OPTIONS = {
    newton: {"hessian", "max_cg_iter", "cg_tol", "c1", "c2", "ftol", "max_ls"},
    bfgs: {"c1", "c2", "ftol", "max_ls"},
    lbfgs: {"m", "c1", "c2", "ftol", "max_ls"},
    nonlinear_cg: {"c1", "c2", "ftol", "restart", "max_ls"},
}


def minimize(fun, x0, method: str = "bfgs", *, args: tuple = (), tol: float = 1e-5,
             max_iter: int | None = None, callback=None, dtype=np.float64,
             options: dict | None = None, **kwargs) -> OptimizeResult:
    """Minimise a scalar function of one array, with gradients (and Hessians) by autograd.

    ``fun(x, *args)`` receives x as a Tensor of x0's shape that requires grad, and returns a
    scalar Tensor built with deepgrad ops. Gradients come from one backward pass; Newton's
    Hessian-vector products from a second backward pass through the gradient
    (``create_graph=True``), exact to rounding.

    Methods (the docstrings of the functions named hold the algorithms):

    * ``"newton"`` (alias ``"newton-cg"``): line-search Newton-CG, truncated CG on H p = -g
      with a negative-curvature exit and exact Hessian-vector products; ``hessian="full"``
      forms H and uses a modified Cholesky factorisation instead (small n only).
      (:func:`deepgrad.optimize._newton.newton`)
    * ``"bfgs"``: BFGS on the inverse Hessian with initial scaling.
    * ``"lbfgs"`` (alias ``"l-bfgs"``): limited-memory BFGS, two-loop recursion, ``m=10``.
    * ``"cg"``: nonlinear conjugate gradients, Polak-Ribiere+, restarts every n iterations
      and whenever p is not a descent direction.

    All methods take strong-Wolfe steps (Nocedal & Wright Alg. 3.5/3.6, cubic interpolation;
    :func:`deepgrad.optimize.line_search.strong_wolfe`) with c1 = 1e-4 and c2 = 0.9, except
    CG: c2 = 0.4.

    Stopping: ``||grad f(x)||_inf <= tol`` for every method -- scipy's ``gtol`` with its
    default ``norm=inf`` for BFGS and CG, L-BFGS-B's ``pgtol`` (which L-BFGS also pairs with
    scipy's relative-reduction test ``ftol`` = 2.2e-9; ``ftol=0`` turns it off), and for
    Newton a gradient test instead of scipy's step-size ``xtol`` -- or ``max_iter``
    iterations (default 200 n; 15000 for L-BFGS, as scipy), or a line search that finds no
    decrease (status 2).

    Args:
        fun: ``fun(x, *args) -> Tensor`` with one element.
        x0: the starting point (ndarray, Tensor or nested lists), any shape.
        method: one of the names above (case-insensitive).
        args: extra positional arguments passed to ``fun``.
        tol: tolerance on the gradient's inf-norm.
        max_iter: the most iterations.
        callback: called after every iteration with an :class:`OptimizeResult` holding
            ``x``, ``fun``, ``jac``, ``grad_norm`` and ``nit``; returning True (or raising
            StopIteration) stops the run with status 5.
        dtype: the floating dtype x is converted to (float64 by default).
        options: method options as a dict (scipy style); they may also be passed as keywords.
            newton: ``hessian`` ("hvp" | "full"), ``max_cg_iter`` (20 n), ``cg_tol`` (relative
            residual in the 1-norm; default the forcing term min(0.5, sqrt(||g||_1)), as
            scipy's Newton-CG); lbfgs: ``m`` (10);
            cg: ``restart`` (n); all: ``c1``, ``c2``, ``ftol`` (relative-reduction test, 0
            except lbfgs) and ``max_ls`` (25 evaluations per line search).

    Returns:
        An :class:`OptimizeResult`: ``x`` (ndarray of x0's shape), ``fun``, ``jac``,
        ``grad_norm``, ``nit``, ``nfev``, ``njev``, ``nhev`` (newton), ``success``, ``status``,
        ``message``, ``method``.

    Raises:
        ValueError: unknown method or option values, non-finite x0 or f(x0), non-scalar fun.
        TypeError: an option the method does not take, or fun not returning a Tensor.

    Example::

        def rosen(x):
            return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()

        res = minimize(rosen, np.array([-1.2, 1.0]), method="newton")
        res.x  # array([1., 1.])

    Reference: Nocedal & Wright 2006, "Numerical Optimization", 2nd ed.
    """
    key = str(method).lower()
    if key not in _METHODS:
        raise ValueError(f"minimize: unknown method {method!r}; choose one of "
                         f"{sorted(set(_METHODS))}")
    impl = _METHODS[key]
    opts = dict(options or {})
    opts.update(kwargs)
    unknown = set(opts) - _OPTIONS[impl]
    if unknown:
        raise TypeError(f"minimize: method {key!r} got unknown option(s) {sorted(unknown)}; "
                        f"it takes {sorted(_OPTIONS[impl])}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"minimize: dtype must be a floating dtype, got {dtype}")
    x0 = np.array(x0.data if isinstance(x0, Tensor) else x0, dtype=dtype)
    if x0.size == 0:
        raise ValueError("minimize: x0 is empty")
    if not np.all(np.isfinite(x0)):
        raise ValueError("minimize: x0 contains NaN or infinity")
    if tol < 0:
        raise ValueError(f"minimize: tol must be >= 0, got {tol}")
    n = x0.size
    if max_iter is None:
        max_iter = 15000 if impl is lbfgs else 200 * n
    if max_iter < 0:
        raise ValueError(f"minimize: max_iter must be >= 0, got {max_iter}")
    obj = Objective(fun, x0.shape, dtype, args)
    x_flat = x0.reshape(-1)
    return impl(obj, x_flat, tol, max_iter, callback, **opts)
