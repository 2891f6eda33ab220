"""Two-dimensional test functions for the ``optimizers`` claim: first-order optimizers (each
at its best learning rate from a grid) against Newton, BFGS, L-BFGS and CG on Rosenbrock,
Beale and a saddle, counting steps to reach the minimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import deepgrad as dg
from deepgrad import optim
from deepgrad.nn import Parameter
from deepgrad.optimize import minimize

#: f(x) - f* at or below this counts as converged.
F_TOL = 1e-6


def rosenbrock(x, y):
    """(1 - x)^2 + 100 (y - x^2)^2: a curved narrow valley; minimum 0 at (1, 1)."""
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def beale(x, y):
    """(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2; minimum 0 at (3, 0.5)."""
    return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
            + (2.625 - x + x * y ** 3) ** 2)


def saddle(x, y):
    """x^2 + y^4/4 - y^2/2: a saddle at (0, 0), minima -1/4 at (0, +-1)."""
    return x ** 2 + y ** 4 / 4 - y ** 2 / 2


@dataclass(frozen=True)
class Surface:
    name: str
    fn: object
    x0: tuple[float, float]
    f_min: float
    minima: tuple[tuple[float, float], ...]
    xlim: tuple[float, float]
    ylim: tuple[float, float]


SURFACES = (
    Surface("rosenbrock", rosenbrock, (-1.2, 1.0), 0.0, ((1.0, 1.0),), (-2.0, 2.0), (-1.0, 3.0)),
    Surface("beale", beale, (1.0, 1.0), 0.0, ((3.0, 0.5),), (-0.5, 4.0), (-1.5, 2.0)),
    Surface("saddle", saddle, (1.0, 1e-3), -0.25, ((0.0, 1.0), (0.0, -1.0)), (-1.5, 1.5),
            (-1.6, 1.6)),
)

#: first-order optimizer name -> (factory(params, lr), lr grid centre)
FIRST_ORDER = {
    "SGD": (lambda p, lr: optim.SGD(p, lr=lr), 1e-3),
    "Momentum": (lambda p, lr: optim.SGD(p, lr=lr, momentum=0.9), 1e-4),
    "Nesterov": (lambda p, lr: optim.SGD(p, lr=lr, momentum=0.9, nesterov=True), 1e-4),
    "Adagrad": (lambda p, lr: optim.Adagrad(p, lr=lr), 0.3),
    "Adadelta": (lambda p, lr: optim.Adadelta(p, lr=lr), 3.0),
    "RMSprop": (lambda p, lr: optim.RMSprop(p, lr=lr), 1e-2),
    "Adam": (lambda p, lr: optim.Adam(p, lr=lr), 3e-2),
    "Nadam": (lambda p, lr: optim.NAdam(p, lr=lr), 3e-2),
}
SECOND_ORDER = {"Newton": "newton", "BFGS": "bfgs", "L-BFGS": "lbfgs", "CG": "cg"}


def lr_grid(centre: float, n: int) -> list[float]:
    """``n`` learning rates, log-spaced by factors of sqrt(10), centred on ``centre``."""
    k = np.arange(n) - (n - 1) / 2
    return [float(centre * 10 ** (0.5 * i)) for i in k]


def _first_reach(values: list[float], f_min: float) -> float:
    for i, v in enumerate(values):
        if math.isfinite(v) and v - f_min <= F_TOL:
            return float(i)
    return math.inf


def run_first_order(surface: Surface, name: str, lrs: list[float], max_steps: int) -> dict:
    """Run one first-order optimizer from ``surface.x0`` at every lr of the grid at once (one
    parameter group per lr, one vectorised evaluation) and keep the best lr's run.

    Best: fewest steps to f - f* <= F_TOL; if none gets there, the lowest final f.

    Returns:
        ``{"lr", "steps_to_tol", "path": [[x, y], ...], "f": [...], "grid": {lr: steps}}``;
        ``path`` and ``f`` start at x0 (iteration 0).
    """
    factory = FIRST_ORDER[name][0]
    params = [Parameter(dg.tensor(np.array(surface.x0, dtype=np.float64))) for _ in lrs]
    opt = factory([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lrs[0])
    paths = [[list(surface.x0)] for _ in lrs]
    fvals = [[float(surface.fn(*surface.x0))] for _ in lrs]
    alive = np.ones(len(lrs), dtype=bool)
    done = np.zeros(len(lrs), dtype=bool)
    for _ in range(max_steps):
        opt.zero_grad()
        xs = dg.stack(params)  # (L, 2)
        f = surface.fn(xs[:, 0], xs[:, 1])
        f.sum().backward()
        opt.step()
        with np.errstate(all="ignore"):
            pts = np.stack([p.data for p in params])
            fv = np.asarray(surface.fn(pts[:, 0], pts[:, 1]), dtype=np.float64)
        for i in range(len(lrs)):
            if alive[i] and not done[i]:
                if not np.all(np.isfinite(pts[i])) or np.abs(pts[i]).max() > 1e6:
                    alive[i] = False
                    fvals[i].append(math.inf)
                    continue
                paths[i].append(pts[i].tolist())
                fvals[i].append(float(fv[i]))
                if fv[i] - surface.f_min <= F_TOL:
                    done[i] = True
        if not np.any(alive & ~done):
            break
    steps = [_first_reach(fv, surface.f_min) for fv in fvals]
    finals = [fv[-1] if math.isfinite(fv[-1]) else math.inf for fv in fvals]
    best = min(range(len(lrs)), key=lambda i: (steps[i], finals[i]))
    return {"lr": lrs[best], "steps_to_tol": steps[best], "path": paths[best],
            "f": fvals[best], "final_gap": finals[best] - surface.f_min,
            "grid": {f"{lr:.3g}": s for lr, s in zip(lrs, steps)}}


def run_second_order(surface: Surface, name: str, max_iter: int) -> dict:
    """``deepgrad.optimize.minimize`` from x0, recording every iterate with its callback."""
    method = SECOND_ORDER[name]
    path = [list(surface.x0)]
    fvals = [float(surface.fn(*surface.x0))]

    def record(res):
        path.append([float(v) for v in np.asarray(res.x)])
        fvals.append(float(res.fun))

    def fun(v):
        return surface.fn(v[0], v[1])

    # NOTE: on a 2-D surface Newton is the textbook method: the exact 2x2 Hessian, not the
    # truncated-CG (Hessian-free) variant meant for many parameters.
    extra = {"hessian": "full"} if method == "newton" else {}
    res = minimize(fun, np.array(surface.x0), method=method, tol=1e-10, max_iter=max_iter,
                   callback=record, **extra)
    return {"steps_to_tol": _first_reach(fvals, surface.f_min), "path": path, "f": fvals,
            "nit": int(res.nit), "nfev": int(res.nfev), "message": str(res.message),
            "final_gap": float(res.fun) - surface.f_min}


def contour_axes(ax, surface: Surface) -> None:
    """Log-scaled contours of ``surface`` on ``ax``, with its minima marked."""
    xs = np.linspace(*surface.xlim, 300)
    ys = np.linspace(*surface.ylim, 300)
    gx, gy = np.meshgrid(xs, ys)
    z = surface.fn(gx, gy) - surface.f_min
    levels = np.logspace(-3, math.log10(max(float(z.max()), 1.0)), 25)
    ax.contour(gx, gy, np.maximum(z, 1e-12), levels=levels, cmap="Greys", linewidths=0.6)
    for mx, my in surface.minima:
        ax.plot(mx, my, "k*", ms=10)
    ax.plot(*surface.x0, "ko", ms=5)
    ax.set_xlim(*surface.xlim)
    ax.set_ylim(*surface.ylim)
