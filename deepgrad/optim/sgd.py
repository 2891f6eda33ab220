"""Stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum."""

from __future__ import annotations

import numpy as np

from deepgrad.optim.optimizer import Optimizer, required
from deepgrad.tensor import Tensor


class SGD(Optimizer):
    """SGD, exactly PyTorch's formulation.

    For each parameter p with gradient g at step t::

        g <- -g  if maximize
        g <- g + weight_decay * p
        if momentum != 0:
            b <- g                                   (t = 1)
            b <- momentum * b + (1 - dampening) * g  (t > 1)
            g <- g + momentum * b  if nesterov  else  b
        p <- p - lr * g

    Batch, mini-batch and stochastic gradient descent differ only in the batch size of the
    data that produced g. Nesterov momentum: Sutskever et al. 2013, "On the importance of
    initialization and momentum in deep learning".

    Args:
        params: parameters or parameter groups.
        lr: learning rate (> 0... or 0).
        momentum: momentum factor (>= 0).
        dampening: dampening of the momentum (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: ascend instead of descend.

    State: ``momentum_buffer`` per parameter (PyTorch's name).
    """

    def __init__(self, params, lr=1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        if group["lr"] is required or not isinstance(group["lr"], (int, float)) \
                or group["lr"] < 0:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if group["momentum"] < 0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["dampening"] < 0:
            raise ValueError(f"Invalid dampening value: {group['dampening']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place. Returns the closure's loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                g = -p.grad.data if maximize else p.grad.data
                if wd != 0:
                    g = g + wd * w
                if mom != 0:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = Tensor._wrap(np.array(g, dtype=w.dtype, copy=True))
                        state["momentum_buffer"] = buf
                    else:
                        b = buf.data
                        b *= mom
                        if damp != 0:
                            b += (1 - damp) * g
                        else:
                            b += g
                    g = g + mom * buf.data if nesterov else buf.data
                w -= lr * g
        return loss
