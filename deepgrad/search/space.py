"""The search space of a hyperparameter search, how to draw from it, and how to narrow it.

A trial's hyperparameters are a dict with the keys of :data:`PARAMS`: ``optimizer``, ``lr``
(log-uniform), ``batch_size``, ``weight_decay`` (log-uniform, or fixed at 0), ``depth`` and
``width`` (the MLP's hidden layers: ``depth`` layers of ``width`` units) and ``dropout``
(uniform). "Choose broadly, then narrow": search a wide :class:`SearchSpace` first, then
:func:`narrow` it around the best trials and search again.

Reference: Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from deepgrad.optim import SGD, Adagrad, Adam, AdamW, NAdam, Optimizer, RMSprop

#: the hyperparameters of a trial, in the order they are drawn and reported.
PARAMS = ("optimizer", "lr", "batch_size", "weight_decay", "depth", "width", "dropout")


def _sgd(momentum: float, nesterov: bool = False) -> Callable[..., Optimizer]:
    return lambda params, lr, wd: SGD(params, lr=lr, momentum=momentum, nesterov=nesterov,
                                      weight_decay=wd)


#: optimizer name -> build(parameters, lr, weight_decay). The names and momenta are those of
#: ``deepgrad train --optimizer`` (the full-batch lbfgs/newton are left out).
OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": _sgd(0.9),
    "momentum": _sgd(0.9),
    "nesterov": _sgd(0.9, nesterov=True),
    "adagrad": lambda params, lr, wd: Adagrad(params, lr=lr, weight_decay=wd),
    "rmsprop": lambda params, lr, wd: RMSprop(params, lr=lr, weight_decay=wd),
    "adam": lambda params, lr, wd: Adam(params, lr=lr, weight_decay=wd),
    "adamw": lambda params, lr, wd: AdamW(params, lr=lr, weight_decay=wd),
    "nadam": lambda params, lr, wd: NAdam(params, lr=lr, weight_decay=wd),
}


def build_optimizer(name: str, params: Iterable, lr: float, weight_decay: float) -> Optimizer:
    """The optimizer ``name`` (a key of :data:`OPTIMIZERS`) over ``params``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](list(params), lr, weight_decay)


@dataclass(frozen=True)
class SearchSpace:
    """Where each hyperparameter is drawn from.

    Attributes:
        lr: (low, high), drawn log-uniformly.
        batch_sizes: choices.
        weight_decay: (low, high), drawn log-uniformly; ``(0, 0)`` fixes it at 0.
        depths: choices of the number of hidden layers (0: a linear model).
        widths: choices of the units per hidden layer.
        dropout: (low, high) in [0, 1), drawn uniformly; ``(0, 0)`` turns dropout off.
        optimizers: choices, keys of :data:`OPTIMIZERS`.
    """

    lr: tuple[float, float] = (1e-4, 1.0)
    batch_sizes: tuple[int, ...] = (32, 64, 128)
    weight_decay: tuple[float, float] = (1e-6, 1e-2)
    depths: tuple[int, ...] = (1, 2)
    widths: tuple[int, ...] = (64, 128, 256)
    dropout: tuple[float, float] = (0.0, 0.5)
    optimizers: tuple[str, ...] = ("sgd", "adam")

    def __post_init__(self):
        _range("lr", self.lr, positive=True)
        wd = _range("weight_decay", self.weight_decay, positive=False)
        if wd[0] == 0 and wd[1] != 0:
            raise ValueError(f"weight_decay: a log-uniform range needs low > 0 (or 0,0 to fix "
                             f"it at 0), got {wd}")
        lo, hi = _range("dropout", self.dropout, positive=False)
        if hi >= 1:
            raise ValueError(f"dropout: must lie in [0, 1), got {(lo, hi)}")
        _choices("batch_sizes", self.batch_sizes, minimum=1)
        _choices("depths", self.depths, minimum=0)
        _choices("widths", self.widths, minimum=1)
        if not self.optimizers:
            raise ValueError("optimizers: give at least one")
        unknown = [o for o in self.optimizers if o not in OPTIMIZERS]
        if unknown:
            raise ValueError(f"optimizers: unknown {', '.join(map(repr, unknown))}; choose "
                             f"from {', '.join(OPTIMIZERS)}")
        for f in fields(self):  # store tuples, so the space is hashable and prints plainly
            object.__setattr__(self, f.name, tuple(getattr(self, f.name)))

    def sample(self, rng: np.random.Generator) -> dict:
        """Draw one trial's hyperparameters (a dict with the keys of :data:`PARAMS`)."""
        wd = 0.0 if self.weight_decay[1] == 0 else _log_uniform(rng, self.weight_decay)
        return {
            "optimizer": str(rng.choice(list(self.optimizers))),
            "lr": _log_uniform(rng, self.lr),
            "batch_size": int(rng.choice(list(self.batch_sizes))),
            "weight_decay": wd,
            "depth": int(rng.choice(list(self.depths))),
            "width": int(rng.choice(list(self.widths))),
            "dropout": float(rng.uniform(*self.dropout)),
        }

    def summary(self) -> str:
        """The space in one line, e.g. for a report."""
        return (f"lr {self.lr[0]:.3g}..{self.lr[1]:.3g} (log), batch sizes "
                f"{list(self.batch_sizes)}, weight decay {self.weight_decay[0]:.3g}.."
                f"{self.weight_decay[1]:.3g} (log), depths {list(self.depths)}, widths "
                f"{list(self.widths)}, dropout {self.dropout[0]:.2f}..{self.dropout[1]:.2f}, "
                f"optimizers {', '.join(self.optimizers)}")

    def describe(self) -> dict:
        """The space as plain JSON-able values, by field name."""
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}


def _range(name: str, value: Sequence[float], positive: bool) -> tuple[float, float]:
    if len(value) != 2:
        raise ValueError(f"{name}: expected (low, high), got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or lo < 0 \
            or (positive and lo <= 0):
        rule = "0 < low <= high" if positive else "0 <= low <= high"
        raise ValueError(f"{name}: expected {rule}, got {value!r}")
    return lo, hi


def _choices(name: str, value: Sequence[int], minimum: int) -> None:
    if not value:
        raise ValueError(f"{name}: give at least one value")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ValueError(f"{name}: each value must be an integer >= {minimum}, got {v!r}")


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def best_trials(results: Sequence[Mapping], top: float | int = 0.25) -> list[Mapping]:
    """The best completed trials by validation accuracy, best first.

    Args:
        results: trial records with ``status`` and ``val_acc``.
        top: a fraction in (0, 1] of the completed trials (at least 2, when there are), or a
            count >= 1.
    """
    done = [r for r in results if r.get("status") == "ok" and r.get("val_acc") is not None]
    done.sort(key=lambda r: -r["val_acc"])
    if isinstance(top, float) and 0 < top <= 1:
        k = max(2, math.ceil(top * len(done)))
    elif isinstance(top, int) and not isinstance(top, bool) and top >= 1:
        k = top
    else:
        raise ValueError(f"top must be a fraction in (0, 1] or a count >= 1, got {top!r}")
    return done[:k]


def narrow(space: SearchSpace, results: Sequence[Mapping], top: float | int = 0.25,
           margin: float = 0.1) -> SearchSpace:
    """A smaller space around the best trials, for a second round of search.

    Each range becomes the smallest one holding the best trials' values, widened by ``margin``
    times the old range's width on each side (in log space for lr and weight decay) and
    clipped to the old range; each list of choices keeps the values the best trials used.

    Args:
        space: the space the trials were drawn from.
        results: the trial records (see :func:`~deepgrad.search.run_trial`).
        top: which trials count as best, see :func:`best_trials`.
        margin: widening, a fraction of the old width, >= 0.

    Raises:
        ValueError: when no trial completed.
    """
    best = best_trials(results, top)
    if not best:
        raise ValueError("narrow: no trial completed, nothing to narrow around")
    if not margin >= 0:
        raise ValueError(f"narrow: margin must be >= 0, got {margin!r}")

    def shrink(bounds: tuple[float, float], key: str, log: bool) -> tuple[float, float]:
        if bounds[1] == 0:
            return bounds
        f = math.log if log else float
        g = math.exp if log else float
        lo, hi = f(bounds[0]), f(bounds[1])
        vals = [f(r[key]) for r in best]
        pad = margin * (hi - lo)
        new_lo, new_hi = min(vals) - pad, max(vals) + pad
        # NOTE: an end that reaches the old bound keeps it exactly (no exp(log(x)) rounding).
        return (bounds[0] if new_lo <= lo else max(bounds[0], g(new_lo)),
                bounds[1] if new_hi >= hi else min(bounds[1], g(new_hi)))

    def keep(choices: tuple, key: str) -> tuple:
        used = {r[key] for r in best}
        return tuple(c for c in choices if c in used)

    return replace(space, lr=shrink(space.lr, "lr", True),
                   weight_decay=shrink(space.weight_decay, "weight_decay", True),
                   dropout=shrink(space.dropout, "dropout", False),
                   batch_sizes=keep(space.batch_sizes, "batch_size"),
                   depths=keep(space.depths, "depth"), widths=keep(space.widths, "width"),
                   optimizers=keep(space.optimizers, "optimizer"))
