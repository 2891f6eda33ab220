"""Minimisation of plain functions written with deepgrad ops (``scipy.optimize``'s shape).

``minimize(fun, x0, method=...)`` with Newton-CG (exact Hessian-vector products by double
backward) or full-Hessian Newton, BFGS, L-BFGS and nonlinear conjugate gradients, all with a
strong-Wolfe line search. For training a model's parameters see ``deepgrad.optim.LBFGS`` and
``deepgrad.optim.NewtonCG``, which reuse the line search and the truncated CG solver here.
"""

from deepgrad.optimize._newton import modified_cholesky_solve, truncated_cg
from deepgrad.optimize._objective import OptimizeResult
from deepgrad.optimize.line_search import LineSearchResult, cubic_interpolate, strong_wolfe
from deepgrad.optimize.minimize import minimize

__all__ = [
    "LineSearchResult", "OptimizeResult", "cubic_interpolate", "minimize",
    "modified_cholesky_solve", "strong_wolfe", "truncated_cg",
]
