"""Adam and AdamW (the shared in-place helpers are in ``optim/_functional.py``)."""

from __future__ import annotations

import numpy as np

from deepgrad.optim._functional import (
    _check_betas,
    _check_lr_eps_wd,
    _effective_grad,
    _floats,
    _lerp_,
    _workspace,
    _zeros,
)
from deepgrad.optim.optimizer import Optimizer


# ---------------------------------------------------------------------- Adam / AdamW
class Adam(Optimizer):
    """Adam: adaptive moment estimation, exactly PyTorch's formulation.

    For each parameter p with gradient g at step t (t = 1, 2, ...)::

        g <- -g  if maximize
        p <- p * (1 - lr * weight_decay)      if decoupled_weight_decay   (AdamW)
        g <- g + weight_decay * p             otherwise                  (L2 penalty)
        m <- beta1 * m + (1 - beta1) * g                                 (exp_avg)
        v <- beta2 * v + (1 - beta2) * g^2                               (exp_avg_sq)
        v_max <- max(v_max, v);  v_hat = v_max  if amsgrad  else  v     (max_exp_avg_sq)
        denom = sqrt(v_hat) / sqrt(1 - beta2^t) + eps
        p <- p - lr / (1 - beta1^t) * m / denom

    Reference: Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization"; AMSGrad:
    Reddi et al. 2018, "On the Convergence of Adam and Beyond".

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        betas: decay rates (beta1, beta2) of the first and second moment averages, in [0, 1).
        eps: added to the denominator for numerical stability (>= 0).
        weight_decay: L2 penalty, or decoupled decay with ``decoupled_weight_decay`` (>= 0).
        amsgrad: use the running maximum of the second moment (AMSGrad).
        maximize: ascend instead of descend.
        decoupled_weight_decay: decay the weights directly (AdamW) instead of through g.

    State per parameter (PyTorch's names): ``step``, ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``.

    PARITY: ``step`` is a Python int (torch keeps a 0-dim float tensor); ``foreach``,
    ``fused``, ``capturable`` and ``differentiable`` have no meaning here and are not accepted.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        self._work: dict = {}
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        _check_lr_eps_wd(group)
        _check_betas(group["betas"])

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place. Returns the closure's loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, eps, wd = _floats(group, "lr", "eps", "weight_decay")
            beta1, beta2 = (float(b) for b in group["betas"])
            amsgrad, maximize = group["amsgrad"], group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = _zeros(w)
                    state["exp_avg_sq"] = _zeros(w)
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = _zeros(w)
                s, d = _workspace(self._work, p, 2)
                state["step"] += 1
                t = state["step"]
                if wd != 0 and decoupled:
                    w *= 1.0 - lr * wd
                    g = _effective_grad(p.grad.data, w, maximize, 0.0, s)
                else:
                    g = _effective_grad(p.grad.data, w, maximize, wd, s)
                m, v = state["exp_avg"].data, state["exp_avg_sq"].data
                _lerp_(m, g, 1.0 - beta1, d)
                v *= beta2
                np.multiply(g, 1.0 - beta2, out=d)
                d *= g
                v += d
                if amsgrad:
                    v_max = state["max_exp_avg_sq"].data
                    np.maximum(v_max, v, out=v_max)
                    v = v_max
                step_size = lr / (1.0 - beta1 ** t)
                bias_correction2_sqrt = (1.0 - beta2 ** t) ** 0.5
                np.sqrt(v, out=d)
                d /= bias_correction2_sqrt
                d += eps
                # g is consumed: s is free for the update lr_t * m / denom
                np.multiply(m, -step_size, out=s)
                s /= d
                w += s
        return loss


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (``p <- p * (1 - lr * weight_decay)``).

    The update is :class:`Adam`'s with ``decoupled_weight_decay=True``: the decay shrinks the
    weights directly instead of entering the moment estimates through the gradient, so its
    strength does not depend on the adaptive scaling.

    Reference: Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization".

    Args:
        params, lr, betas, eps, amsgrad, maximize: as :class:`Adam`.
        weight_decay: decoupled weight decay coefficient (>= 0; default 1e-2, as PyTorch).

    State per parameter: as :class:`Adam`.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        """As :meth:`Optimizer.load_state_dict`; groups always keep decoupled weight decay."""
        super().load_state_dict(state_dict)
        # PARITY: torch's AdamW forces decoupled_weight_decay=True on loaded groups too.
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
