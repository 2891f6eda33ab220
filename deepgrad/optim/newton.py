"""Hessian-free Newton-CG over a model's parameters, for full-batch training of small models."""

from __future__ import annotations

import math

import numpy as np

from deepgrad.autograd import grad
from deepgrad.autograd.grad_mode import enable_grad
from deepgrad.optim.optimizer import Optimizer
from deepgrad.optimize._newton import FORCING_CAP, truncated_cg
from deepgrad.optimize.line_search import strong_wolfe
from deepgrad.tensor import Tensor


class NewtonCG(Optimizer):
    """Newton's method with the Newton system solved by truncated conjugate gradients.

    Each ``step(closure)`` is one Newton iteration on the flat vector x of the parameters::

        loss = closure()                                  (with its graph)
        g = grad(loss, params, create_graph=True)         (a graph for the gradient too)
        H v = grad(g . v, params)                         (exact, by double backward)
        p = truncated CG on (H + damping I) p = -g, to a residual eta ||g||_2 with
            eta = cg_tol or min(0.01, sqrt(||g||_2)), at most max_cg_iter products,
            leaving at negative curvature (-g if it meets it at once)
        line_search_fn="strong_wolfe": t from the strong-Wolfe search from t = lr
            (c1 = 1e-4, c2 = 0.9, at most 25 evaluations);  None: t = lr
        x = x + t p

    Hessian-vector products cost one backward pass through the gradient's graph each
    (Pearlmutter 1994), so no n x n matrix is ever formed. Meant for deterministic,
    full-batch losses of small models (logistic regression, small MLPs): mini-batch noise
    defeats both the curvature model and the line search.

    The closure must return the loss **with its graph** (computed in grad mode, which
    ``step`` enables) and must **not** call ``backward()`` itself: the optimizer
    differentiates the returned loss with ``autograd.grad`` and leaves ``.grad`` untouched.
    A closure that calls ``backward()`` frees the graph and meets a clear error. Every
    parameter must be used by the loss or it gets a zero gradient.

    Args:
        params: the parameters (a single group).
        lr: the initial (line search) or fixed (no line search) step length.
        max_cg_iter: the most Hessian-vector products per step.
        cg_tol: relative CG residual; None for the forcing term min(0.01, sqrt(||g||_2)).
        damping: Tikhonov/Levenberg-Marquardt damping added to H (>= 0).
        line_search_fn: ``"strong_wolfe"`` or None.
        tolerance_grad: skip the step when max|g| is at most this.

    State (under the first parameter): ``n_iter``, ``func_evals``, ``hvp_evals``, and of the
    last step ``cg_iters``, ``cg_exit`` and ``t``.

    Reference: Dembo & Steihaug 1983, "Truncated-Newton algorithms for large-scale
    unconstrained optimization", Math. Programming 26; Martens 2010, "Deep learning via
    Hessian-free optimization", ICML; Nocedal & Wright 2006, Algorithm 7.1.
    """

    def __init__(self, params, lr: float = 1.0, max_cg_iter: int = 50,
                 cg_tol: float | None = None, damping: float = 0.0,
                 line_search_fn: str | None = "strong_wolfe", tolerance_grad: float = 1e-7):
        defaults = dict(lr=lr, max_cg_iter=max_cg_iter, cg_tol=cg_tol, damping=damping,
                        line_search_fn=line_search_fn, tolerance_grad=tolerance_grad)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("NewtonCG doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _validate_group(self, group: dict) -> None:
        if not isinstance(group["lr"], (int, float)) or not group["lr"] > 0:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if int(group["max_cg_iter"]) < 1:
            raise ValueError(f"Invalid max_cg_iter: {group['max_cg_iter']}")
        if group["cg_tol"] is not None and not 0 < group["cg_tol"] < 1:
            raise ValueError(f"Invalid cg_tol: {group['cg_tol']} (needs 0 < cg_tol < 1)")
        if not group["damping"] >= 0:
            raise ValueError(f"Invalid damping value: {group['damping']}")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"only 'strong_wolfe' is supported as line_search_fn, got "
                             f"{group['line_search_fn']!r}")
        for p in group["params"]:
            if not p.requires_grad:
                raise ValueError("NewtonCG: every parameter must require grad")

    # ------------------------------------------------------------------ helpers
    def _dtype(self):
        return np.result_type(*[p.data.dtype for p in self._params])

    def _flat(self, tensors) -> np.ndarray:
        dtype = self._dtype()
        return np.concatenate([
            np.zeros(p.numel(), dtype=dtype) if t is None else t.data.reshape(-1).astype(dtype)
            for p, t in zip(self._params, tensors)
        ])

    def _split(self, v: np.ndarray) -> list[Tensor]:
        out, offset = [], 0
        for p in self._params:
            n = p.numel()
            out.append(Tensor._wrap(v[offset:offset + n].reshape(p.shape).astype(p.data.dtype)))
            offset += n
        return out

    def _add(self, step: float, v: np.ndarray) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.data += step * v[offset:offset + n].reshape(p.shape)
            offset += n

    def _loss_with_graph(self, closure) -> Tensor:
        loss = self._run_closure(closure)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise TypeError("NewtonCG: the closure must return the scalar loss Tensor")
        if not loss.requires_grad:
            raise RuntimeError("NewtonCG: the closure returned a loss without a graph; compute "
                               "it from the parameters in grad mode and return it")
        return loss

    def _grad(self, loss: Tensor, create_graph: bool):
        try:
            with enable_grad():
                return grad(loss, self._params, create_graph=create_graph, allow_unused=True)
        except RuntimeError as e:
            if "second time" in str(e):
                raise RuntimeError("NewtonCG: the loss's graph was already freed; the closure "
                                   "must return the loss without calling backward()") from e
            raise

    def _gradient_and_hvp(self, loss: Tensor, damping: float, state: dict):
        """The flat gradient, and v -> (H + damping I) v through the gradient's graph."""
        grads = self._grad(loss, create_graph=True)
        params = self._params

        def hvp(v: np.ndarray) -> np.ndarray:
            state["hvp_evals"] += 1
            dot = None
            with enable_grad():
                for gi, vi in zip(grads, self._split(v)):
                    if gi is None or not gi.requires_grad:
                        continue
                    term = (gi * vi).sum()
                    dot = term if dot is None else dot + term
                if dot is None:  # the loss is linear in the parameters
                    hv = np.zeros_like(v)
                else:
                    hv = self._flat(grad(dot, params, retain_graph=True, allow_unused=True))
            return hv + damping * v if damping else hv

        return self._flat(grads), hvp

    # ------------------------------------------------------------------ the step
    def step(self, closure):
        """One Newton-CG iteration; returns the loss at the starting point.

        Args:
            closure: returns the loss computed with its graph (and does not call backward).
        """
        if closure is None:
            raise ValueError("NewtonCG.step needs a closure that returns the loss")
        group = self.param_groups[0]
        state = self.state.setdefault(self._params[0], {})
        for key in ("n_iter", "func_evals", "hvp_evals"):
            state.setdefault(key, 0)

        loss = self._loss_with_graph(closure)
        state["func_evals"] += 1
        g, hvp = self._gradient_and_hvp(loss, float(group["damping"]), state)
        if np.max(np.abs(g)) <= group["tolerance_grad"]:
            return loss
        state["n_iter"] += 1
        params = self._params

        gnorm = float(np.linalg.norm(g))
        cg_tol = group["cg_tol"]
        eta = min(FORCING_CAP, math.sqrt(gnorm)) if cg_tol is None else float(cg_tol)
        p, cg_iters, cg_exit = truncated_cg(hvp, g, eta * gnorm, int(group["max_cg_iter"]))
        hvp = None  # release the gradient's graph before the line search
        gtd = float(g @ p)
        if not gtd < 0:
            p, gtd = -g, -float(g @ g)
        state["cg_iters"], state["cg_exit"] = cg_iters, cg_exit

        t = float(group["lr"])
        if group["line_search_fn"] == "strong_wolfe":
            x0 = [q.data.copy() for q in params]

            def evaluate(step_size: float):
                self._add(step_size, p)
                f_t = self._loss_with_graph(closure)
                g_t = self._flat(self._grad(f_t, create_graph=False))
                for q, data in zip(params, x0):
                    q.data[...] = data
                return float(f_t), g_t

            ls = strong_wolfe(evaluate, p, float(loss), g, gtd, t=t, max_ls=25)
            state["func_evals"] += ls.nfev
            t = ls.t
        self._add(t, p)
        state["t"] = t
        return loss
