"""L-BFGS over a model's parameters, following ``torch.optim.LBFGS`` step for step."""

from __future__ import annotations

import numpy as np

from deepgrad.optim.optimizer import Optimizer
from deepgrad.optimize.line_search import strong_wolfe
from deepgrad.tensor import Tensor


def _arr(v):
    """State vectors are kept as Tensors (they survive state_dict round trips); read arrays."""
    return v.data if isinstance(v, Tensor) else v


class LBFGS(Optimizer):
    """Limited-memory BFGS, exactly PyTorch's algorithm (after minFunc).

    One ``step(closure)`` runs up to ``max_iter`` iterations on the flat vector x of all
    parameters, with g the flat gradient the closure leaves in ``.grad``::

        evaluate f, g;  stop at once if max|g| <= tolerance_grad
        repeat (at most max_iter times, max_eval closure calls):
            first iteration ever: d = -g, H_diag = 1, empty history
            else: y = g - g_prev;  s = t d;  if y.s > 1e-10: push (y, s, 1 / y.s), drop the
                  oldest beyond history_size, H_diag = y.s / y.y
                  d = -(two-loop recursion over the history, initial matrix H_diag I) g
            t = min(1, 1 / sum|g|) lr on the first iteration ever, else lr
            stop if g.d > -tolerance_change
            line_search_fn=None: x = x + t d, then re-evaluate f, g (not after the last
                iteration);  "strong_wolfe": t from the strong-Wolfe search, x = x + t d
            stop if max|g| <= tolerance_grad, or max|t d| <= tolerance_change, or
                |f - f_prev| < tolerance_change, or the budgets are spent

    The history, the last direction and step, and the counters persist across ``step`` calls
    (state of the first parameter, PyTorch's names: ``func_evals``, ``n_iter``, ``d``, ``t``,
    ``old_dirs`` (the y's), ``old_stps`` (the s's), ``ro``, ``H_diag``, ``al``,
    ``prev_flat_grad``, ``prev_loss``).

    Args:
        params: the parameters (a single group; per-group options are not supported).
        lr: learning rate (the initial step t).
        max_iter: iterations per ``step``.
        max_eval: closure evaluations per ``step`` (default ``max_iter * 5 // 4``).
        tolerance_grad: first-order optimality tolerance on max|g|.
        tolerance_change: tolerance on changes of f and x.
        history_size: pairs kept for the two-loop recursion.
        line_search_fn: None (fixed steps) or ``"strong_wolfe"``
            (:func:`deepgrad.optimize.line_search.strong_wolfe`, c1 = 1e-4, c2 = 0.9).

    The closure must clear the gradients, compute the loss, call ``backward()`` and return
    the loss; it is called with grad mode enabled. ``step`` returns the loss of the first
    evaluation.

    Reference: Liu & Nocedal 1989, "On the limited memory BFGS method for large scale
    optimization", Math. Programming 45; Nocedal & Wright 2006, Algorithm 7.4.
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None):
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _validate_group(self, group: dict) -> None:
        if not isinstance(group["lr"], (int, float)) or not 0.0 <= group["lr"]:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if int(group["max_iter"]) < 1:
            raise ValueError(f"Invalid max_iter: {group['max_iter']}")
        if int(group["history_size"]) < 1:
            raise ValueError(f"Invalid history_size: {group['history_size']}")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"only 'strong_wolfe' is supported as line_search_fn, got "
                             f"{group['line_search_fn']!r}")

    # ------------------------------------------------------------------ flat views
    def _gather_flat_grad(self) -> np.ndarray:
        dtype = np.result_type(*[p.data.dtype for p in self._params])
        return np.concatenate([
            np.zeros(p.numel(), dtype=dtype) if p.grad is None else p.grad.data.reshape(-1)
            for p in self._params
        ]).astype(dtype, copy=False)

    def _add_grad(self, step_size: float, update: np.ndarray) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.data += step_size * update[offset:offset + n].reshape(p.shape)
            offset += n

    def _clone_param(self) -> list[np.ndarray]:
        return [p.data.copy() for p in self._params]

    def _set_param(self, params_data) -> None:
        for p, data in zip(self._params, params_data):
            p.data[...] = data

    def _directional_evaluate(self, closure, x, t: float, d: np.ndarray):
        self._add_grad(t, d)
        loss = float(self._run_closure(closure))
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    # ------------------------------------------------------------------ the step
    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; return the loss at the starting point.

        Args:
            closure: re-evaluates the model (zero_grad, forward, backward) and returns the loss.
        """
        if closure is None:
            raise ValueError("LBFGS.step needs a closure that re-evaluates the loss")
        group = self.param_groups[0]
        lr = float(group["lr"])
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]

        # PARITY: the optimizer's state is global; like torch, keep it under the first param.
        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = self._run_closure(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1

        flat_grad = self._gather_flat_grad()
        if np.max(np.abs(flat_grad)) <= tolerance_grad:
            return orig_loss

        d = _arr(state.get("d"))
        t = state.get("t")
        old_dirs = [_arr(v) for v in state.get("old_dirs") or []]
        old_stps = [_arr(v) for v in state.get("old_stps") or []]
        ro = list(state.get("ro") or [])
        H_diag = state.get("H_diag")
        prev_flat_grad = _arr(state.get("prev_flat_grad"))
        prev_loss = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # ---- the direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / float(y @ y)
                num_old = len(old_dirs)
                if "al" not in state or len(state["al"]) < history_size:
                    state["al"] = [None] * history_size
                al = state["al"]
                # two-loop recursion: q = -g through the history, newest pair first
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = float(old_stps[i] @ q) * ro[i]
                    q = q - al[i] * old_dirs[i]
                r = q * H_diag
                for i in range(num_old):
                    be_i = float(old_dirs[i] @ r) * ro[i]
                    r = r + (al[i] - be_i) * old_stps[i]
                d = r

            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            # ---- the step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(np.sum(np.abs(flat_grad)))) * lr
            else:
                t = lr
            gtd = float(flat_grad @ d)
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._clone_param()

                def evaluate(step, x_init=x_init, d=d):
                    return self._directional_evaluate(closure, x_init, step, d)

                # PARITY: torch passes tolerance_change=1e-9 (the default), not the group's.
                loss, flat_grad, t, ls_func_evals, _ = strong_wolfe(
                    evaluate, d, loss, flat_grad, gtd, t=t, max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = np.max(np.abs(flat_grad)) <= tolerance_grad
            else:
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    # NOTE: no re-evaluation after the last iteration (as torch): with
                    # mini-batches the next step's closure evaluates the new point anyway.
                    loss = float(self._run_closure(closure))
                    flat_grad = self._gather_flat_grad()
                    opt_cond = np.max(np.abs(flat_grad)) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # ---- stopping tests
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.max(np.abs(d * t)) <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state["d"] = None if d is None else Tensor._wrap(d)
        state["t"] = t
        state["old_dirs"] = [Tensor._wrap(v) for v in old_dirs]
        state["old_stps"] = [Tensor._wrap(v) for v in old_stps]
        state["ro"] = ro
        state["H_diag"] = H_diag
        state["prev_flat_grad"] = None if prev_flat_grad is None else Tensor._wrap(prev_flat_grad)
        state["prev_loss"] = prev_loss
        return orig_loss
