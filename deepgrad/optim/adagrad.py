"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

import numpy as np

from deepgrad.optim._functional import (
    _check_lr_eps_wd,
    _effective_grad,
    _floats,
    _require,
    _workspace,
)
from deepgrad.optim.optimizer import Optimizer
from deepgrad.tensor import Tensor


class Adagrad(Optimizer):
    """Adagrad, exactly PyTorch's formulation.

    For each parameter p with gradient g at step t (t = 1, 2, ...)::

        g <- -g  if maximize
        g <- g + weight_decay * p
        lr_t = lr / (1 + (t - 1) * lr_decay)
        G <- G + g^2                          (sum; starts at initial_accumulator_value)
        p <- p - lr_t * g / (sqrt(G) + eps)

    Coordinates with a history of large gradients take small steps and rare coordinates large
    ones; the effective rate only ever shrinks, which is Adagrad's strength on sparse, convex
    problems and its weakness on long non-convex runs (RMSprop and Adadelta's motivation).

    Reference: Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online Learning
    and Stochastic Optimization" (JMLR 12).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        lr_decay: learning-rate decay per step (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
        initial_accumulator_value: starting value of every entry of the sum (>= 0).
        eps: added to the denominator for numerical stability (>= 0).
        maximize: ascend instead of descend.

    State per parameter (PyTorch's names): ``step`` and ``sum``, created at construction as
    torch does (so ``state_dict`` before the first step already holds them).

    PARITY: ``step`` is a Python int (torch: a 0-dim float tensor). The sum of a group added
    later with ``add_param_group`` starts at that group's ``initial_accumulator_value``
    (torch uses the constructor's value and only for the groups given at construction).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value,
                        maximize=maximize)
        self._work: dict = {}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _validate_group(self, group: dict) -> None:
        _check_lr_eps_wd(group)
        _require(group["lr_decay"] >= 0.0, "lr_decay", group["lr_decay"], ">= 0")
        _require(group["initial_accumulator_value"] >= 0.0, "initial_accumulator_value",
                 group["initial_accumulator_value"], ">= 0")

    def _init_state(self, p: Tensor, group: dict) -> dict:
        state = self.state.setdefault(p, {})
        if not state:
            state["step"] = 0
            state["sum"] = Tensor._wrap(
                np.full_like(p.data, group["initial_accumulator_value"]))
        return state

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place. Returns the closure's loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, lr_decay, eps, wd = _floats(group, "lr", "lr_decay", "eps", "weight_decay")
            maximize = group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                state = self._init_state(p, group)
                s, d = _workspace(self._work, p, 2)
                state["step"] += 1
                g = _effective_grad(p.grad.data, w, maximize, wd, s)
                clr = lr / (1 + (state["step"] - 1) * lr_decay)
                acc = state["sum"].data
                np.multiply(g, g, out=d)
                acc += d
                np.sqrt(acc, out=d)
                d += eps
                np.multiply(g, -clr, out=s)
                s /= d
                w += s
        return loss
