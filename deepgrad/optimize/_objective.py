"""The objective wrapper shared by the methods of ``minimize``, and the result object.

A user function ``fun(x, *args) -> scalar Tensor`` is written with deepgrad ops; here it is
called on a fresh leaf Tensor and differentiated by autograd: once for the gradient, twice
(``create_graph=True`` and a second backward through the gradient's graph) for exact
Hessian-vector products (Pearlmutter 1994). The methods work on flat float ndarrays.
"""

from __future__ import annotations

import math

import numpy as np

from deepgrad.autograd import grad
from deepgrad.autograd.grad_mode import enable_grad
from deepgrad.tensor import Tensor


class OptimizeResult(dict):
    """The outcome of :func:`~deepgrad.optimize.minimize`: a dict with attribute access.

    As ``scipy.optimize.OptimizeResult``. Keys: ``x`` (ndarray, the shape of x0), ``fun``,
    ``jac`` (the gradient at x), ``grad_norm`` (its inf-norm), ``nit``, ``nfev``, ``njev``,
    ``nhev`` (Newton only), ``success``, ``status`` (0 converged, 1 max_iter reached,
    2 line search failed / precision loss, 3 non-finite value, 5 stopped by the callback),
    ``message`` and ``method``.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__

    def __dir__(self):
        return list(self.keys())

    def __repr__(self) -> str:
        if not self:
            return "OptimizeResult()"
        width = max(map(len, self.keys())) + 1
        return "\n".join(f"{k.rjust(width)}: {v!r}" for k, v in self.items())


STATUS_MESSAGES = {
    0: "Optimization terminated successfully.",
    1: "Maximum number of iterations has been exceeded.",
    2: "Desired error not necessarily achieved due to precision loss (line search failed).",
    3: "NaN or infinity encountered.",
    5: "Stopped by the callback.",
}


class Objective:
    """Evaluate ``fun`` and its derivatives by autograd, counting the calls.

    Args:
        fun: ``fun(x, *args)`` returning a scalar (one-element) Tensor.
        shape: the shape ``fun`` expects x in.
        dtype: the floating dtype of x.
        args: extra positional arguments for ``fun``.
    """

    def __init__(self, fun, shape: tuple, dtype, args: tuple = ()):
        self.fun = fun
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.args = tuple(args)
        self.nfev = 0
        self.njev = 0
        self.nhev = 0

    def _flat(self, g) -> np.ndarray:
        if g is None:
            return np.zeros(int(np.prod(self.shape)), dtype=self.dtype)
        return np.array(g.data, dtype=self.dtype).reshape(-1)

    def _evaluate(self, x: np.ndarray, create_graph: bool):
        xt = Tensor._wrap(np.array(x, dtype=self.dtype).reshape(self.shape))
        xt.requires_grad_(True)
        with enable_grad():
            out = self.fun(xt, *self.args)
            if not isinstance(out, Tensor):
                raise TypeError(f"minimize: fun must return a scalar Tensor, got "
                                f"{type(out).__name__}")
            if out.numel() != 1:
                raise ValueError(f"minimize: fun must return a scalar, got shape {out.shape}")
            self.nfev += 1
            self.njev += 1
            g = None
            if out.requires_grad:
                (g,) = grad(out, xt, create_graph=create_graph, allow_unused=True)
        return xt, float(out.data.reshape(())), g

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """f(x) and the flat gradient (one forward and one backward pass)."""
        _, f, g = self._evaluate(x, create_graph=False)
        return f, self._flat(g)

    def value_grad_hvp(self, x: np.ndarray):
        """f(x), the flat gradient, and v -> H(x) v by a second backward pass.

        The gradient is computed with ``create_graph=True`` and its graph is kept, so every
        product costs one backward pass through it (no new forward pass).
        """
        xt, f, g = self._evaluate(x, create_graph=True)
        g_flat = self._flat(g)

        def hvp(v: np.ndarray) -> np.ndarray:
            self.nhev += 1
            if g is None or not g.requires_grad:  # fun is linear in x: H = 0
                return np.zeros_like(g_flat)
            vt = Tensor._wrap(np.asarray(v, dtype=self.dtype).reshape(self.shape))
            with enable_grad():
                dot = (g * vt).sum()
                (hv,) = grad(dot, xt, retain_graph=True, allow_unused=True)
            return self._flat(hv)

        return f, g_flat, hvp


def start(obj: Objective, x: np.ndarray) -> tuple[float, np.ndarray]:
    """The first evaluation, at x0: a non-finite value or gradient there is the caller's error."""
    f, g = obj.value_and_grad(x)
    if not (np.isfinite(f) and np.all(np.isfinite(g))):
        raise ValueError(f"minimize: fun or its gradient is not finite at x0 (f = {f})")
    return f, g


def call_callback(callback, x: np.ndarray, shape: tuple, f: float, g: np.ndarray,
                  nit: int) -> bool:
    """Run the user's callback on an intermediate result; True means stop."""
    if callback is None:
        return False
    res = OptimizeResult(x=x.reshape(shape).copy(), fun=f, jac=g.reshape(shape).copy(),
                         grad_norm=inf_norm(g), nit=nit)
    try:
        return bool(callback(res))
    except StopIteration:
        return True


def stop_status(callback, x: np.ndarray, shape: tuple, f: float, g: np.ndarray,
                nit: int) -> int | None:
    """After an accepted step: 3 when f is no longer finite, 5 when the user's callback asks
    to stop, else None (go on)."""
    if not math.isfinite(f):
        return 3
    if call_callback(callback, x, shape, f, g, nit):
        return 5
    return None


def inf_norm(v: np.ndarray) -> float:
    return float(np.max(np.abs(v))) if v.size else 0.0


def finish(obj: Objective, method: str, x: np.ndarray, f: float, g: np.ndarray, nit: int,
           status: int, message: str | None = None, hessian: bool = False) -> OptimizeResult:
    """Pack the final state into an :class:`OptimizeResult`."""
    if status == 0 and not (np.isfinite(f) and np.all(np.isfinite(x))):
        status = 3
    res = OptimizeResult(
        x=x.reshape(obj.shape).copy(), fun=float(f), jac=g.reshape(obj.shape).copy(),
        grad_norm=inf_norm(g), nit=nit, nfev=obj.nfev, njev=obj.njev,
    )
    if hessian:
        res["nhev"] = obj.nhev
    res.update(success=status == 0, status=status,
               message=message or STATUS_MESSAGES[status], method=method)
    return res


def relative_reduction_small(f_old: float, f_new: float, ftol: float) -> bool:
    """scipy L-BFGS-B's test: (f_old - f_new) / max(|f_old|, |f_new|, 1) <= ftol."""
    return ftol > 0 and (f_old - f_new) <= ftol * max(abs(f_old), abs(f_new), 1.0)


def line_search_tolerance(x: np.ndarray) -> float:
    """Stop zooming when the steps of a bracket differ by ~100 ulps of x."""
    return 100 * float(np.finfo(x.dtype).eps) * max(1.0, inf_norm(x))
