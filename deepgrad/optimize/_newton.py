"""Newton's method for ``minimize``: Hessian-free Newton-CG and full-Hessian Newton."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from deepgrad.optimize._objective import (
    Objective,
    OptimizeResult,
    finish,
    inf_norm,
    line_search_tolerance,
    relative_reduction_small,
    start,
    stop_status,
)
from deepgrad.optimize.line_search import strong_wolfe

# The largest relative CG residual accepted: FORCING_CAP by optim.NewtonCG (2-norm),
# NEWTON_FORCING_CAP by minimize(method="newton") (1-norm; see newton's NOTE).
FORCING_CAP = 0.01
NEWTON_FORCING_CAP = 0.5


def truncated_cg(hvp: Callable[[np.ndarray], np.ndarray], g: np.ndarray, tol: float,
                 max_iter: int, norm_ord: float = 2,
                 scale_steepest: bool = False) -> tuple[np.ndarray, int, str]:
    """Approximately solve H p = -g by conjugate gradients from p = 0, stopping early.

    Nocedal & Wright Algorithm 7.1 (inner loop)::

        z = 0;  r = g;  d = -g
        for j = 0, 1, ...:
            if d.Hd <= 0:  return  -g if j == 0 else z          (negative curvature exit)
            a = r.r / d.Hd;  z = z + a d;  r_new = r + a Hd
            if ||r_new|| <= tol:  return z                       (truncation)
            d = -r_new + (r_new.r_new / r.r) d

    Every iterate z is a descent direction when H is positive definite along the directions
    tried, so the result can always be used with a line search.

    Args:
        hvp: v -> H v.
        g: the gradient (flat).
        tol: residual norm at which to stop, e.g. min(0.01, sqrt(||g||)) ||g||.
        max_iter: the most Hessian-vector products.
        norm_ord: the norm (``numpy.linalg.norm``'s ``ord``) that ``tol`` bounds; 2 or 1.
        scale_steepest: when the very first direction -g has negative curvature, return
            -g scaled by g.g / |g.Hg| (the minimiser along -g of the quadratic model with
            the curvature g.Hg replaced by |g.Hg|) instead of -g itself.

    Returns:
        (p, number of products used, reason: "converged", "negative curvature" or "max_iter").

    Reference: Dembo & Steihaug 1983, "Truncated-Newton algorithms for large-scale
    unconstrained optimization", Math. Programming 26; Nocedal & Wright 2006, section 7.1.
    """
    def norm(v: np.ndarray, vv: float) -> float:  # vv = v.v, already computed
        return math.sqrt(vv) if norm_ord == 2 else float(np.linalg.norm(v, norm_ord))

    z = np.zeros_like(g)
    r = g.copy()
    d = -r
    rr = float(r @ r)
    if norm(r, rr) <= tol:
        return z, 0, "converged"
    for j in range(max_iter):
        Hd = hvp(d)
        curv = float(d @ Hd)
        if not curv > 0:  # also catches NaN
            if j > 0:
                return z, j + 1, "negative curvature"
            if scale_steepest and curv < 0:
                return -(rr / -curv) * g, 1, "negative curvature"
            return -g.copy(), 1, "negative curvature"
        a = rr / curv
        z = z + a * d
        r = r + a * Hd
        rr_new = float(r @ r)
        if norm(r, rr_new) <= tol:
            return z, j + 1, "converged"
        d = -r + (rr_new / rr) * d
        rr = rr_new
    return z, max_iter, "max_iter"


def modified_cholesky_solve(H: np.ndarray, g: np.ndarray, beta: float = 1e-3):
    """Solve (H + tau I) p = -g with the smallest tau (doubling) that makes it positive definite.

    Nocedal & Wright Algorithm 3.3 (Cholesky with added multiple of the identity)::

        tau = 0 if min(diag H) > 0 else beta - min(diag H)
        repeat: try L L^T = H + tau I;  on failure tau = max(2 tau, beta)

    Returns:
        (p, tau).
    """
    n = H.shape[0]
    dmin = float(np.min(np.diag(H))) if n else 1.0
    tau = 0.0 if dmin > 0 else beta - dmin
    eye = np.eye(n, dtype=H.dtype)
    for _ in range(200):
        try:
            L = np.linalg.cholesky(H + tau * eye)
        except np.linalg.LinAlgError:
            tau = max(2 * tau, beta)
            continue
        w = np.linalg.solve(L, -g)
        return np.linalg.solve(L.T, w), tau
    raise np.linalg.LinAlgError("modified Cholesky: no positive definite shift found")


def newton(obj: Objective, x0: np.ndarray, tol: float, max_iter: int, callback=None,
           hessian: str = "hvp", max_cg_iter: int | None = None, cg_tol: float | None = None,
           c1: float = 1e-4, c2: float = 0.9, ftol: float = 0.0,
           max_ls: int = 25) -> OptimizeResult:
    """Line-search Newton: Newton-CG with exact Hessian-vector products, or full Hessian.

    ``hessian="hvp"`` (default), Hessian-free Newton-CG (Nocedal & Wright Algorithm 7.1)::

        repeat:
            g, and v -> H v by double backward (Pearlmutter 1994: H v = d/dx (g(x) . v))
            p = truncated_cg(H, g, ||r||_1 <= eta ||g||_1),  eta = min(0.5, sqrt(||g||_1))
                or cg_tol  (stops at negative curvature; if it meets it at once, the
                steepest-descent step -(g.g / |g.Hg|) g)
            t = strong-Wolfe step along p from t = 1 (c1 = 1e-4, c2 = 0.9);  x = x + t p

    The forcing term eta -> 0 gives superlinear, near the solution quadratic, convergence.
    NOTE: the forcing term is that of scipy's Newton-CG (and N&W's cap of 0.5), measured in
    the 1-norm as scipy does. On nonconvex problems the forcing term decides which minimum
    the iterates reach, not only how fast: a cap of 0.01 (2-norm) took 22 / 32 / 157
    iterations on Rosenbrock from the standard start (n = 2 / 10 / 100), but for n = 10 and
    100 the near-exact Newton steps ran into the other local minimum, near (-1, 1, ..., 1)
    with f = 3.99, while scipy reached x* = 1; the 2-norm with cap 0.5 reached x* = 1 in
    71 / 123 / 352. With scipy's choice: 73 / 128 / 223 (scipy: 83 / 127 / 220), and on 50
    random starts in [-2, 2]^n (n = 4, 10) the same minimum as scipy every time, in 0.96 of
    its iterations (median ratio; at most 1.32). Smaller caps are faster on some starts but
    less predictable: 0.2 ends in the other minimum for n = 10, and 0.4 crawled for 3700
    iterations on one random start, every step the single CG step taken before a
    negative-curvature exit. optim.NewtonCG keeps FORCING_CAP (0.01, 2-norm).

    ``hessian="full"``, for small problems: H from n Hessian-vector products (symmetrised),
    p = -(H + tau I)^-1 g with the modified Cholesky of N&W Algorithm 3.3 when H is not
    positive definite, then the same line search; ``nhev`` then counts full Hessians.

    Stops when ||g||_inf <= tol. (scipy's Newton-CG instead stops when the L1 norm of a step
    falls below n * xtol; the gradient test is the stricter one at the same tolerance.)

    Reference: Dembo & Steihaug 1983; Nocedal & Wright 2006, sections 3.4 and 7.1;
    Pearlmutter 1994, "Fast exact multiplication by the Hessian", Neural Computation 6.
    """
    if hessian not in ("hvp", "full"):
        raise ValueError(f"newton: hessian must be 'hvp' or 'full', got {hessian!r}")
    n = x0.size
    max_cg_iter = 20 * n if max_cg_iter is None else int(max_cg_iter)
    x = x0.copy()
    f, g = start(obj, x)
    k = 0
    status = 0
    full_hessians = 0
    while True:
        if inf_norm(g) <= tol:
            break
        if k >= max_iter:
            status = 1
            break
        # NOTE: the same point again, this time keeping the gradient's graph for the
        # Hessian products (counted in nfev: it is a real forward and backward pass)
        f, g, hvp = obj.value_grad_hvp(x)
        if hessian == "full":
            eye = np.eye(n, dtype=x.dtype)
            H = np.stack([hvp(eye[i]) for i in range(n)])
            H = (H + H.T) / 2
            full_hessians += 1
            p, _ = modified_cholesky_solve(H, g)
        else:
            gnorm = float(np.linalg.norm(g, 1))
            eta = min(NEWTON_FORCING_CAP, math.sqrt(gnorm)) if cg_tol is None else cg_tol
            p, _, _ = truncated_cg(hvp, g, eta * gnorm, max_cg_iter, norm_ord=1,
                                   scale_steepest=True)
        gtd = float(g @ p)
        if not gtd < 0:  # no descent direction (e.g. max_cg_iter = 0): steepest descent
            p, gtd = -g, -float(g @ g)

        def evaluate(t, x=x, p=p):
            return obj.value_and_grad(x + t * p)

        ls = strong_wolfe(evaluate, p, f, g, gtd, t=1.0, c1=c1, c2=c2,
                          tolerance_change=line_search_tolerance(x), max_ls=max_ls)
        if not ls.success and not ls.f < f:
            status = 2
            break
        x = x + ls.t * p
        f_old, f, g = f, ls.f, ls.g
        k += 1
        stop = stop_status(callback, x, obj.shape, f, g, k)
        if stop is not None:
            status = stop
            break
        if relative_reduction_small(f_old, f, ftol) and inf_norm(g) > tol:
            break
    if hessian == "full":
        obj.nhev = full_hessians
    return finish(obj, "newton", x, f, g, k, status, hessian=True)
