"""Line searches along a direction d: the strong-Wolfe search with cubic interpolation.

One implementation serves both :func:`deepgrad.optimize.minimize` and ``optim.LBFGS``. It is
Nocedal & Wright's Algorithm 3.5 (bracketing) and 3.6 (zoom) with safeguarded cubic
interpolation, in the exact variant of ``torch.optim.lbfgs._strong_wolfe`` (itself a port of
Torch7's ``lswolfe.lua`` after minFunc), so that ``optim.LBFGS`` reproduces PyTorch's iterates
step for step.

Reference: Nocedal & Wright 2006, "Numerical Optimization", 2nd ed., section 3.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np


def cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                      bounds: tuple[float, float] | None = None) -> float:
    """Minimiser of the cubic that matches values and slopes at two points, clamped to bounds.

    With (x1, f1, g1) and (x2, f2, g2), x1 <= x2 (Nocedal & Wright eq. 3.59)::

        d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2)
        d2 = sqrt(d1^2 - g1 g2)
        x  = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)

    (mirrored when x1 > x2). When d1^2 < g1 g2 the cubic has no minimiser and the middle of
    the bounds is returned (as it is for non-finite data). ``bounds`` defaults to the
    interval between the two points.

    Returns:
        The trial point, inside ``bounds``.
    """
    x1, f1, g1, x2, f2, g2 = (float(v) for v in (x1, f1, g1, x2, f2, g2))
    if bounds is not None:
        lo, hi = float(bounds[0]), float(bounds[1])
    else:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    # NOTE: x1 == x2 gives no information; torch would produce a NaN here (PARITY: only in
    # this degenerate case do we differ, by bisecting instead).
    if x1 == x2:
        return (lo + hi) / 2.0
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    try:
        d2_square = d1 ** 2 - g1 * g2
    except OverflowError:  # |d1| > 1e154: the values are useless for interpolation
        d2_square = math.nan
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            den = g2 - g1 + 2 * d2
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / den) if den != 0 else math.nan
        else:
            den = g1 - g2 + 2 * d2
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / den) if den != 0 else math.nan
        if math.isfinite(min_pos):
            return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


class LineSearchResult(NamedTuple):
    """What :func:`strong_wolfe` found.

    Attributes:
        f: objective at the accepted step.
        g: gradient (flat ndarray) at the accepted step.
        t: the accepted step length (0 when no decrease was found).
        nfev: evaluations spent.
        success: True when the strong Wolfe conditions hold at ``t``.
    """

    f: float
    g: np.ndarray
    t: float
    nfev: int
    success: bool


def strong_wolfe(evaluate: Callable[[float], tuple[float, np.ndarray]], d: np.ndarray,
                 f: float, g: np.ndarray, gtd: float, t: float = 1.0, c1: float = 1e-4,
                 c2: float = 0.9, tolerance_change: float = 1e-9,
                 max_ls: int = 25) -> LineSearchResult:
    """Find a step t along d that satisfies the strong Wolfe conditions.

    With phi(t) = f(x + t d), the conditions are (0 < c1 < c2 < 1)::

        phi(t) <= phi(0) + c1 t phi'(0)          (sufficient decrease, Armijo)
        |phi'(t)| <= c2 |phi'(0)|                (curvature)

    Bracketing phase (Nocedal & Wright Alg. 3.5): try t; if it violates sufficient decrease,
    or (from the third trial on) is no lower than the previous trial, or the slope has turned
    non-negative, the minimiser is bracketed; if the curvature condition holds, stop; otherwise
    extrapolate by cubic interpolation within [t + 0.01 (t - t_prev), 10 t].

    Zoom phase (Alg. 3.6): keep a bracket [lo, hi] with phi(lo) the lowest value seen that
    satisfies sufficient decrease, try the cubic interpolant's minimiser, moved to 10% of the
    bracket width from an end when it falls too close to one twice in a row (or outside), and
    shrink the bracket until the conditions hold, the bracket is shorter than
    ``tolerance_change`` in max-norm of the step, or ``max_ls`` evaluations are spent.

    Args:
        evaluate: t -> (phi(t), gradient at x + t d as a flat ndarray); must leave x unchanged.
        d: the search direction (flat ndarray).
        f: phi(0).
        g: gradient at x.
        gtd: phi'(0) = g . d, negative for a descent direction.
        t: the first trial step.
        c1: sufficient-decrease constant.
        c2: curvature constant.
        tolerance_change: stop zooming when |hi - lo| * max|d| falls below this.
        max_ls: the most evaluations (the first trial is always evaluated).

    Returns:
        A :class:`LineSearchResult` with the lowest acceptable point found.

    Reference: Nocedal & Wright 2006, Algorithms 3.5 and 3.6; Torch7 ``optim.lswolfe``.
    """
    d_norm = float(np.max(np.abs(d))) if d.size else 0.0
    gtd = float(gtd)
    f = float(f)
    f_new, g_new = evaluate(t)
    nfev = 1
    gtd_new = float(np.dot(g_new, d))

    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    bracket: list[float] = []
    bracket_f: list[float] = []
    bracket_g: list[np.ndarray] = []
    bracket_gtd: list[float] = []
    while ls_iter < max_ls:
        # PARITY: torch compares with the previous value only from the third trial on
        # (ls_iter > 1), not from the second as Algorithm 3.5 writes it.
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        # extrapolate: the slope is still negative and the value still decreasing
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        t_old = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                              bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = t_old, f_new, g_new, gtd_new
        f_new, g_new = evaluate(t)
        nfev += 1
        gtd_new = float(np.dot(g_new, d))
        ls_iter += 1

    if ls_iter >= max_ls:
        # out of evaluations while still extrapolating: keep the better of 0 and t
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        # safeguard: a trial within 10% of the bracket width from an end twice in a row (or
        # outside the bracket) is moved to that 10% mark, so the bracket keeps shrinking
        b_max, b_min = max(bracket), min(bracket)
        eps = 0.1 * (b_max - b_min)
        if min(b_max - t, t - b_min) < eps:
            if insuf_progress or t >= b_max or t <= b_min:
                t = b_max - eps if abs(t - b_max) < abs(t - b_min) else b_min + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = evaluate(t)
        nfev += 1
        gtd_new = float(np.dot(g_new, d))
        ls_iter += 1

        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low_pos]:
            # no sufficient decrease, or not below the best point: t becomes the high end
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # the slope points away from hi: the old low end becomes the high end
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new

    return LineSearchResult(float(bracket_f[low_pos]), bracket_g[low_pos],
                            float(bracket[low_pos]), nfev, done)
