"""NAdam: Adam with Nesterov momentum."""

from __future__ import annotations

import numpy as np

from deepgrad.optim._functional import (
    _check_betas,
    _check_lr_eps_wd,
    _effective_grad,
    _floats,
    _lerp_,
    _require,
    _workspace,
    _zeros,
)
from deepgrad.optim.optimizer import Optimizer


class NAdam(Optimizer):
    """NAdam, exactly PyTorch's formulation (with Dozat's momentum warm-up schedule).

    For each parameter p with gradient g at step t (t = 1, 2, ...)::

        g <- -g  if maximize
        p <- p * (1 - lr * weight_decay)      if decoupled_weight_decay
        g <- g + weight_decay * p             otherwise
        mu_t     = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))
        mu_{t+1} = beta1 * (1 - 0.5 * 0.96^((t + 1) * momentum_decay))
        mu_product <- mu_product * mu_t                     (prod of mu_1 .. mu_t)
        m <- beta1 * m + (1 - beta1) * g                    (exp_avg)
        v <- beta2 * v + (1 - beta2) * g^2                  (exp_avg_sq)
        denom = sqrt(v / (1 - beta2^t)) + eps
        p <- p - lr * (1 - mu_t) / (1 - mu_product) * g / denom
               - lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / denom

    Reference: Dozat 2016, "Incorporating Nesterov Momentum into Adam" (ICLR workshop).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        betas: (beta1, beta2), each in [0, 1).
        eps: added to the denominator for numerical stability (>= 0).
        weight_decay: L2 penalty, or decoupled decay with ``decoupled_weight_decay`` (>= 0).
        momentum_decay: psi, the rate of the momentum warm-up schedule (>= 0).
        decoupled_weight_decay: decay the weights directly (as AdamW) instead of through g.
        maximize: ascend instead of descend.

    State per parameter (PyTorch's names): ``step``, ``mu_product``, ``exp_avg``,
    ``exp_avg_sq``.

    PARITY: ``step`` is a Python int and ``mu_product`` a Python float (float64); torch keeps
    0-dim tensors of the default dtype, so under float32 its ``mu_product`` is rounded to
    float32 each step.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        self._work: dict = {}
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        _check_lr_eps_wd(group)
        _check_betas(group["betas"])
        _require(group["momentum_decay"] >= 0.0, "momentum_decay", group["momentum_decay"],
                 ">= 0")

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place. Returns the closure's loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, eps, wd, psi = _floats(group, "lr", "eps", "weight_decay", "momentum_decay")
            beta1, beta2 = (float(b) for b in group["betas"])
            maximize = group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["mu_product"] = 1.0
                    state["exp_avg"] = _zeros(w)
                    state["exp_avg_sq"] = _zeros(w)
                s, d = _workspace(self._work, p, 2)
                state["step"] += 1
                t = state["step"]
                bias_correction2 = 1.0 - beta2 ** t
                if wd != 0 and decoupled:
                    w *= 1.0 - lr * wd
                    g = _effective_grad(p.grad.data, w, maximize, 0.0, s)
                else:
                    g = _effective_grad(p.grad.data, w, maximize, wd, s)
                mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
                mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
                state["mu_product"] *= mu
                mu_product = state["mu_product"]
                m, v = state["exp_avg"].data, state["exp_avg_sq"].data
                _lerp_(m, g, 1.0 - beta1, d)
                v *= beta2
                np.multiply(g, 1.0 - beta2, out=d)
                d *= g
                v += d
                np.divide(v, bias_correction2, out=d)
                np.sqrt(d, out=d)
                d += eps
                # the gradient term (may work in place on s when g lives there) ...
                np.multiply(g, -lr * (1.0 - mu) / (1.0 - mu_product), out=s)
                s /= d
                w += s
                # ... then the look-ahead momentum term
                mu_product_next = mu_product * mu_next
                np.multiply(m, (-lr * mu_next) / (1.0 - mu_product_next), out=s)
                s /= d
                w += s
        return loss
