"""RMSprop: divide the gradient by a running RMS of its recent magnitudes."""

from __future__ import annotations

import numpy as np

from deepgrad.optim._functional import (
    _check_lr_eps_wd,
    _effective_grad,
    _floats,
    _lerp_,
    _require,
    _workspace,
    _zeros,
)
from deepgrad.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop, exactly PyTorch's formulation.

    For each parameter p with gradient g::

        g <- -g  if maximize
        g <- g + weight_decay * p
        v <- alpha * v + (1 - alpha) * g^2                      (square_avg)
        if centered:
            g_avg <- alpha * g_avg + (1 - alpha) * g            (grad_avg)
            denom = sqrt(v - g_avg^2) + eps
        else:
            denom = sqrt(v) + eps
        if momentum > 0:
            b <- momentum * b + g / denom                       (momentum_buffer)
            p <- p - lr * b
        else:
            p <- p - lr * g / denom

    Note that eps is added outside the square root and the momentum buffer accumulates the
    already-scaled step, as in PyTorch (TensorFlow differs on both).

    Reference: Hinton, Srivastava & Swersky 2012, "Neural Networks for Machine Learning",
    lecture 6e (unpublished slides); centered form: Graves 2013, "Generating Sequences With
    Recurrent Neural Networks", arXiv:1308.0850.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        alpha: smoothing constant of the running averages (>= 0).
        eps: added to the denominator for numerical stability (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
        momentum: momentum factor (>= 0).
        centered: normalise by an estimate of the gradient's variance instead of its
            uncentered second moment.
        maximize: ascend instead of descend.

    State per parameter (PyTorch's names): ``step``, ``square_avg``, plus ``momentum_buffer``
    when momentum > 0 and ``grad_avg`` when centered.

    PARITY: ``step`` is a Python int (torch: a 0-dim float tensor); ``maximize`` is
    keyword-only here (positional after ``foreach`` in torch), as in every deepgrad optimizer.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        self._work: dict = {}
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        _check_lr_eps_wd(group)
        _require(group["momentum"] >= 0.0, "momentum", group["momentum"], ">= 0")
        _require(group["alpha"] >= 0.0, "alpha", group["alpha"], ">= 0")

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place. Returns the closure's loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, alpha, eps, wd, momentum = _floats(group, "lr", "alpha", "eps", "weight_decay",
                                                   "momentum")
            centered, maximize = group["centered"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["square_avg"] = _zeros(w)
                if momentum > 0 and "momentum_buffer" not in state:
                    state["momentum_buffer"] = _zeros(w)
                if centered and "grad_avg" not in state:
                    state["grad_avg"] = _zeros(w)
                s, d = _workspace(self._work, p, 2)
                state["step"] += 1
                g = _effective_grad(p.grad.data, w, maximize, wd, s)
                sq = state["square_avg"].data
                sq *= alpha
                np.multiply(g, 1.0 - alpha, out=d)
                d *= g
                sq += d
                if centered:
                    g_avg = state["grad_avg"].data
                    _lerp_(g_avg, g, 1.0 - alpha, d)
                    np.multiply(g_avg, g_avg, out=d)
                    np.subtract(sq, d, out=d)
                    np.sqrt(d, out=d)
                else:
                    np.sqrt(sq, out=d)
                d += eps
                if momentum > 0:
                    buf = state["momentum_buffer"].data
                    buf *= momentum
                    np.divide(g, d, out=s)
                    buf += s
                    np.multiply(buf, -lr, out=s)
                else:
                    np.multiply(g, -lr, out=s)
                    s /= d
                w += s
        return loss
