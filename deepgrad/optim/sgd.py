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
        scratch = None
        for group in self.param_groups:
            # NOTE: Python floats, so that float32 parameters are updated in float32 even when
            # a schedule stored NumPy float64 scalars (as PyTorch does).
            hyper = (float(group["lr"]), float(group["momentum"]), float(group["dampening"]),
                     float(group["weight_decay"]), group["nesterov"], group["maximize"])
            mom = hyper[1]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w, g = p.data, p.grad.data
                if mom == 0:
                    buf = None
                else:
                    state = self.state.setdefault(p, {})
                    if state.get("momentum_buffer") is None:
                        # First step: b <- g (after maximize and weight decay).
                        g = _effective_grad(w, g, hyper)
                        b = np.array(g, dtype=w.dtype, copy=True)
                        state["momentum_buffer"] = Tensor._wrap(b)
                        _descend(w, g + mom * b if hyper[4] else b, hyper, None)
                        continue
                    buf = state["momentum_buffer"].data
                if _blockable(w, g, buf):
                    if scratch is None or scratch.dtype != w.dtype:
                        scratch = np.empty(_BLOCK, dtype=w.dtype)
                    wf, gf = w.reshape(-1), g.reshape(-1)
                    bf = None if buf is None else buf.reshape(-1)
                    for i in range(0, wf.size, _BLOCK):
                        j = i + _BLOCK
                        _update(wf[i:j], gf[i:j], None if bf is None else bf[i:j], hyper,
                                scratch[:min(j, wf.size) - i])
                else:
                    _update(w, g, buf, hyper, None)
        return loss


# NOTE: the update reads and writes three parameter-sized arrays several times. Running it on
# blocks of _BLOCK elements (128 KiB of float32 per array) keeps each block in the L2 cache
# across those passes, so memory is read and written once; the arithmetic, element by
# element, is exactly the same as on whole arrays.
_BLOCK = 1 << 15


def _blockable(w, g, buf) -> bool:
    arrays = (w, g) if buf is None else (w, g, buf)
    return (w.size > _BLOCK and all(a.flags.c_contiguous and a.shape == w.shape
                                    and a.dtype == w.dtype for a in arrays))


def _effective_grad(w, g, hyper):
    """g after ``maximize`` and weight decay (a new array only when it changes)."""
    _, _, _, wd, _, maximize = hyper
    if maximize:
        g = -g
    if wd != 0:
        g = g + wd * w
    return g


def _descend(w, d, hyper, scratch) -> None:
    """w <- w - lr * d, in place (through ``scratch`` when given)."""
    lr = hyper[0]
    if scratch is None:
        w -= lr * d
    else:
        np.multiply(d, lr, out=scratch)
        w -= scratch


def _update(w, g, buf, hyper, scratch) -> None:
    """One SGD update of ``w`` and the momentum buffer ``buf`` (or None), in place."""
    _, mom, damp, _, nesterov, _ = hyper
    g = _effective_grad(w, g, hyper)
    if buf is not None:
        buf *= mom
        if damp != 0:
            buf += (1 - damp) * g
        else:
            buf += g
        g = g + mom * buf if nesterov else buf
    _descend(w, g, hyper, scratch)
