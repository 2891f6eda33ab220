"""Nonlinear conjugate gradient (Polak-Ribiere+) for ``minimize``."""

from __future__ import annotations

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


def nonlinear_cg(obj: Objective, x0: np.ndarray, tol: float, max_iter: int, callback=None,
                 c1: float = 1e-4, c2: float = 0.4, ftol: float = 0.0, restart: int | None = None,
                 max_ls: int = 25) -> OptimizeResult:
    """Polak-Ribiere+ nonlinear conjugate gradients with restarts and strong-Wolfe steps.

    Nocedal & Wright Algorithm 5.4 with the PR+ choice of beta (eq. 5.45)::

        p = -g
        repeat:
            t = strong-Wolfe step along p (c2 = 0.4 by default, as scipy's CG; < 1/2 keeps the
                next direction a descent direction in most steps)
            x = x + t p;  beta = max(0, g_new.(g_new - g) / g.g)
            beta = 0 every ``restart`` iterations (default n)            (restart)
            p = -g_new + beta p;  if g_new.p >= 0: p = -g_new            (restart)

    First trial step: t = min(1, 1.01 * 2 (f_k - f_k-1) / g.p), the minimiser of the quadratic
    through f_k-1, f_k and the slope (N&W eq. 3.60; f_-1 = f_0 + ||g_0||_2 / 2 so the first
    step has length ~1). Stops when ||g||_inf <= tol (scipy's ``gtol`` with ``norm=inf``).

    Reference: Polak & Ribiere 1969, "Note sur la convergence de methodes de directions
    conjuguees", Rev. Francaise Informat. Recherche Operationnelle 16; Nocedal & Wright 2006,
    section 5.2.
    """
    n = x0.size
    restart = n if restart is None else int(restart)
    if restart < 1:
        raise ValueError(f"cg: restart must be >= 1, got {restart}")
    x = x0.copy()
    f, g = start(obj, x)
    f_prev = f + float(np.linalg.norm(g)) / 2
    p = -g
    since_restart = 0
    k = 0
    status = 0
    while True:
        if inf_norm(g) <= tol:
            break
        if k >= max_iter:
            status = 1
            break
        gtd = float(g @ p)
        t0 = 1.0
        if gtd < 0 and f_prev > f:
            t0 = min(1.0, 1.01 * 2 * (f - f_prev) / gtd)

        def evaluate(t, x=x, p=p):
            return obj.value_and_grad(x + t * p)

        ls = strong_wolfe(evaluate, p, f, g, gtd, t=t0, c1=c1, c2=c2,
                          tolerance_change=line_search_tolerance(x), max_ls=max_ls)
        if not ls.success and not ls.f < f:
            if since_restart > 0:
                p, since_restart = -g, 0
                continue
            status = 2
            break
        x = x + ls.t * p
        g_new = ls.g
        f_prev, f = f, ls.f
        k += 1
        stop = stop_status(callback, x, obj.shape, f, g_new, k)
        if stop is not None:
            g, status = g_new, stop
            break
        if relative_reduction_small(f_prev, f, ftol) and inf_norm(g_new) > tol:
            return finish(obj, "cg", x, f, g_new, k, 0, "Relative reduction of f <= ftol.")
        since_restart += 1
        beta = max(0.0, float(g_new @ (g_new - g)) / float(g @ g))
        if since_restart >= restart:
            beta, since_restart = 0.0, 0
        p = -g_new + beta * p
        g = g_new
        if float(g @ p) >= 0:
            p, since_restart = -g, 0
    return finish(obj, "cg", x, f, g, k, status)
