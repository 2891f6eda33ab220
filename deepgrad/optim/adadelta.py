"""Adadelta: Adagrad's decaying rate fixed by running averages, in the units of p."""

from __future__ import annotations

import numpy as np

from deepgrad.optim._functional import (
    _check_lr_eps_wd,
    _effective_grad,
    _floats,
    _require,
    _workspace,
    _zeros,
)
from deepgrad.optim.optimizer import Optimizer


class Adadelta(Optimizer):
    """Adadelta, exactly PyTorch's formulation.

    For each parameter p with gradient g::

        g <- -g  if maximize
        g <- g + weight_decay * p
        E[g^2]  <- rho * E[g^2] + (1 - rho) * g^2                    (square_avg)
        delta    = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g
        E[dx^2] <- rho * E[dx^2] + (1 - rho) * delta^2               (acc_delta)
        p <- p - lr * delta

    The ratio of the two RMS values gives the step the units of the parameter, so the paper
    needs no learning rate (lr = 1.0, PyTorch's default, recovers it).

    Reference: Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701.

    Args:
        params: parameters or parameter groups.
        lr: coefficient that scales delta before it is applied (>= 0).
        rho: decay rate of the running averages, in [0, 1].
        eps: added inside both square roots for numerical stability (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
        maximize: ascend instead of descend.

    State per parameter (PyTorch's names): ``step``, ``square_avg``, ``acc_delta``.

    PARITY: ``step`` is a Python int (torch: a 0-dim float tensor).
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        self._work: dict = {}
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        _check_lr_eps_wd(group)
        _require(0.0 <= group["rho"] <= 1.0, "rho", group["rho"], "in [0, 1]")

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place. Returns the closure's loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, rho, eps, wd = _floats(group, "lr", "rho", "eps", "weight_decay")
            maximize = group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["square_avg"] = _zeros(w)
                    state["acc_delta"] = _zeros(w)
                s, d, delta = _workspace(self._work, p, 3)
                state["step"] += 1
                g = _effective_grad(p.grad.data, w, maximize, wd, s)
                sq, acc = state["square_avg"].data, state["acc_delta"].data
                sq *= rho
                np.multiply(g, 1.0 - rho, out=d)
                d *= g
                sq += d
                np.add(sq, eps, out=d)
                np.sqrt(d, out=d)                 # d = RMS[g]
                np.add(acc, eps, out=delta)
                np.sqrt(delta, out=delta)         # RMS[dx] of the previous steps
                delta /= d
                delta *= g
                acc *= rho
                np.multiply(delta, 1.0 - rho, out=d)
                d *= delta
                acc += d
                np.multiply(delta, -lr, out=d)
                w += d
        return loss
