"""Quasi-Newton methods for ``minimize``: BFGS and limited-memory BFGS."""

from __future__ import annotations

from collections import deque

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


def _search(obj: Objective, x, p, f, g, gtd, t0, c1, c2, max_ls):
    def evaluate(t):
        return obj.value_and_grad(x + t * p)

    return strong_wolfe(evaluate, p, f, g, gtd, t=t0, c1=c1, c2=c2,
                        tolerance_change=line_search_tolerance(x), max_ls=max_ls)


def _first_step(g: np.ndarray) -> float:
    # NOTE: with no curvature information yet, aim for a first step of length ~1 in x
    # (as scipy's BFGS and L-BFGS-B do), not a unit multiple of the raw gradient.
    norm = float(np.linalg.norm(g))
    return min(1.0, 1.0 / norm) if norm > 0 else 1.0


def bfgs(obj: Objective, x0: np.ndarray, tol: float, max_iter: int, callback=None,
         c1: float = 1e-4, c2: float = 0.9, ftol: float = 0.0,
         max_ls: int = 25) -> OptimizeResult:
    """BFGS with an inverse-Hessian approximation and a strong-Wolfe line search.

    Nocedal & Wright Algorithm 6.1::

        H = I;  repeat:
            p = -H g                                   search direction
            t = strong-Wolfe step along p, from t = 1  (first step: min(1, 1/||g||_2))
            s = t p;  y = g_new - g;  rho = 1 / (y.s)
            before the first update: H = (y.s / y.y) I     (initial scaling, eq. 6.20)
            H = (I - rho s y^T) H (I - rho y s^T) + rho s s^T   (eq. 6.17)

    until ||g||_inf <= tol (scipy's ``gtol`` with ``norm=inf``). The Wolfe conditions keep
    y.s > 0, so H stays positive definite; a pair that fails this (rounding) is skipped. If a
    line search fails, H is reset to I once before giving up (status 2).

    Reference: Nocedal & Wright 2006, "Numerical Optimization", section 6.1.
    """
    x = x0.copy()
    f, g = start(obj, x)
    H = None  # None: the (unscaled) identity, before any curvature pair
    k = 0
    status = 0
    while True:
        if inf_norm(g) <= tol:
            break
        if k >= max_iter:
            status = 1
            break
        p = -g if H is None else -(H @ g)
        gtd = float(g @ p)
        if gtd >= 0:  # H lost positive definiteness to rounding: restart from I
            H, p, gtd = None, -g, -float(g @ g)
        t0 = _first_step(g) if H is None else 1.0
        ls = _search(obj, x, p, f, g, gtd, t0, c1, c2, max_ls)
        if not ls.success and not ls.f < f:
            if H is not None:
                H = None
                continue
            status = 2
            break
        s = ls.t * p
        y = ls.g - g
        x = x + s
        f_old, f, g = f, ls.f, ls.g
        k += 1
        stop = stop_status(callback, x, obj.shape, f, g, k)
        if stop is not None:
            status = stop
            break
        if relative_reduction_small(f_old, f, ftol):
            return finish(obj, "bfgs", x, f, g, k, 0,
                          "Relative reduction of f <= ftol.")
        ys = float(y @ s)
        if ys <= np.finfo(x.dtype).eps * float(np.linalg.norm(y) * np.linalg.norm(s)):
            continue
        if H is None:
            H = np.eye(x.size, dtype=x.dtype) * (ys / float(y @ y))
        rho = 1.0 / ys
        Hy = H @ y
        # (I - rho s y^T) H (I - rho y s^T) + rho s s^T, expanded to O(n^2) (H symmetric)
        H += (rho * rho * float(y @ Hy) + rho) * np.outer(s, s)
        H -= rho * (np.outer(Hy, s) + np.outer(s, Hy))
    return finish(obj, "bfgs", x, f, g, k, status)


def lbfgs(obj: Objective, x0: np.ndarray, tol: float, max_iter: int, callback=None,
          m: int = 10, c1: float = 1e-4, c2: float = 0.9, ftol: float = 2.220446049250313e-09,
          max_ls: int = 25) -> OptimizeResult:
    """Limited-memory BFGS: the two-loop recursion over the last m pairs, strong-Wolfe steps.

    Nocedal & Wright Algorithms 7.4 and 7.5 (Liu & Nocedal 1989)::

        q = g
        for i = newest .. oldest:  a_i = rho_i s_i.q;  q = q - a_i y_i
        r = gamma q,  gamma = s.y / y.y of the newest pair     (eq. 7.20)
        for i = oldest .. newest:  b = rho_i y_i.r;  r = r + (a_i - b) s_i
        p = -r;  t = strong-Wolfe step from t = 1 (first step: min(1, 1/||g||_2))

    Stops when ||g||_inf <= tol, or when the relative reduction
    (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol -- both as scipy's L-BFGS-B (its pgtol
    and ftol, whose default ftol = 1e7 * machine epsilon this copies; pass ftol=0 to stop on
    the gradient only). A pair with y.s <= eps y.y is not stored. A failed line search clears
    the memory once before giving up (status 2).

    Reference: Liu & Nocedal 1989, "On the limited memory BFGS method for large scale
    optimization", Math. Programming 45; Nocedal & Wright 2006, section 7.2.
    """
    if m < 1:
        raise ValueError(f"lbfgs: history size m must be >= 1, got {m}")
    x = x0.copy()
    f, g = start(obj, x)
    pairs: deque = deque(maxlen=m)  # (s, y, rho), oldest first
    k = 0
    status = 0
    while True:
        if inf_norm(g) <= tol:
            break
        if k >= max_iter:
            status = 1
            break
        if pairs:
            q = g.copy()
            alphas = []
            for s, y, rho in reversed(pairs):
                a = rho * float(s @ q)
                q -= a * y
                alphas.append(a)
            s, y, _ = pairs[-1]
            r = q * (float(s @ y) / float(y @ y))
            for (s, y, rho), a in zip(pairs, reversed(alphas)):
                b = rho * float(y @ r)
                r += (a - b) * s
            p = -r
        else:
            p = -g
        gtd = float(g @ p)
        if gtd >= 0:
            pairs.clear()
            p, gtd = -g, -float(g @ g)
        t0 = 1.0 if pairs else _first_step(g)
        ls = _search(obj, x, p, f, g, gtd, t0, c1, c2, max_ls)
        if not ls.success and not ls.f < f:
            if pairs:
                pairs.clear()
                continue
            status = 2
            break
        s = ls.t * p
        y = ls.g - g
        x = x + s
        f_old, f, g = f, ls.f, ls.g
        k += 1
        stop = stop_status(callback, x, obj.shape, f, g, k)
        if stop is not None:
            status = stop
            break
        if relative_reduction_small(f_old, f, ftol) and inf_norm(g) > tol:
            return finish(obj, "lbfgs", x, f, g, k, 0,
                          "Relative reduction of f <= ftol.")
        ys = float(y @ s)
        yy = float(y @ y)
        if ys > np.finfo(x.dtype).eps * yy:
            pairs.append((s, y, 1.0 / ys))
    return finish(obj, "lbfgs", x, f, g, k, status)
