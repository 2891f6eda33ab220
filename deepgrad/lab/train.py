"""``train_classifier``: the lab's one training loop, recording curves for the plots and verdicts.

Deliberately small and explicit (no callbacks): every claim trains the same way, so the
variants differ only in what the claim varies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

import deepgrad as dg
from deepgrad.autograd.grad_mode import no_grad
from deepgrad.nn import functional as F
from deepgrad.nn.clip_grad import clip_grad_norm_
from deepgrad.optim import LBFGS, NewtonCG
from deepgrad.tensor import Tensor

#: A training loss above this (or NaN/inf) counts as divergence and stops the run.
DIVERGENCE_LOSS = 1e4

#: The keys of every curves dict (all lists, one entry per evaluation), plus "diverged".
CURVE_KEYS = ("step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "time", "lr")


def _accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    if logits.ndim != 2 or y.ndim != 1:
        return math.nan
    return float(np.mean(logits.argmax(axis=1) == y))


def evaluate_arrays(model, x: np.ndarray, y: np.ndarray, loss_fn=F.cross_entropy,
                    batch_size: int = 1000) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on arrays, in eval mode under ``no_grad``.

    The model's previous train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0.0, len(x)
    try:
        with no_grad():
            for i in range(0, n, batch_size):
                xb, yb = x[i:i + batch_size], y[i:i + batch_size]
                out = model(Tensor(xb))
                total += float(loss_fn(out, Tensor(yb)).item()) * len(xb)
                correct += _accuracy(out.data, yb) * len(xb)
    finally:
        model.train(was_training)
    return total / max(n, 1), correct / max(n, 1)


def train_classifier(model, optimizer, data, *, epochs: float | None = None,
                     steps: int | None = None, batch_size: int = 64,
                     loss_fn: Callable = F.cross_entropy, eval_every: int = 50,
                     scheduler=None, clip_norm: float | None = None, l1: float = 0.0,
                     seed: int = 0, ctx=None, scheduler_interval: str = "epoch",
                     eval_train: bool = False, label: str = "") -> dict:
    """Train ``model`` on ``data`` (a :class:`~deepgrad.lab.data.LabData`) with ``optimizer``.

    Mini-batches are drawn without replacement from a fresh permutation each epoch
    (``numpy.random.default_rng(seed)``); the global deepgrad generator (dropout) is seeded
    with ``seed`` too. Every ``eval_every`` steps, and after the last step, one entry is
    appended to each curve:

    * ``train_loss`` / ``train_acc``: the mean over the mini-batches since the previous entry
      (train mode, the data loss without the L1 term) -- or, with ``eval_train=True``, over
      the whole training set in eval mode (what overfitting plots want);
    * ``test_loss`` / ``test_acc``: over the whole test set, eval mode, no grad;
    * ``time``: seconds spent training so far (evaluation excluded), ``lr``: the first param
      group's learning rate, ``step``, ``epoch`` (fractional: samples seen / n_train).

    A loss that is NaN, inf or above :data:`DIVERGENCE_LOSS` stops the run with
    ``curves["diverged"] = True`` (an entry is recorded with the non-finite loss as ``nan``).

    Args:
        model: a ``deepgrad.nn.Module`` producing logits (or what ``loss_fn`` takes).
        optimizer: a ``deepgrad.optim`` optimizer over ``model``'s parameters (LBFGS and
            NewtonCG get a closure automatically).
        data: ``LabData`` (x float32, y int64 arrays).
        epochs: how many passes (may be fractional); or
        steps: how many optimizer steps (exactly one of the two).
        batch_size: samples per step.
        loss_fn: ``loss_fn(output, target) -> Tensor`` scalar.
        eval_every: steps between curve entries.
        scheduler: an ``lr_scheduler``; ``scheduler.step()`` is called after every epoch
            (PyTorch's usual convention) or, with ``scheduler_interval="step"``, every step.
        clip_norm: clip the total gradient 2-norm to this before each step.
        l1: add ``l1 * sum |w|`` over the weight matrices/kernels (parameters with ndim >= 2).
        seed: batch order and dropout seed.
        ctx: the :class:`LabContext`, for progress lines (optional).
        scheduler_interval: ``"epoch"`` or ``"step"``.
        eval_train: measure the train curves on the full training set in eval mode.
        label: shown in progress lines.

    Returns:
        The curves: a dict of lists (:data:`CURVE_KEYS`) and ``"diverged"``: bool.
    """
    if (epochs is None) == (steps is None):
        raise ValueError("train_classifier: give exactly one of epochs and steps")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"train_classifier: scheduler_interval must be 'epoch' or 'step', "
                         f"got {scheduler_interval!r}")
    n = len(data.x_train)
    batch_size = int(min(batch_size, n))
    steps_per_epoch = max(n // batch_size, 1)
    total_steps = int(steps) if steps is not None else max(int(round(epochs * steps_per_epoch)), 1)
    eval_every = max(int(eval_every), 1)
    rng = np.random.default_rng(seed)
    dg.manual_seed(int(seed) * 7919 + 17)
    closure_kind = ("graph" if isinstance(optimizer, NewtonCG)
                    else "backward" if isinstance(optimizer, LBFGS) else None)
    weights = [p for p in model.parameters() if p.ndim >= 2] if l1 else []
    curves: dict = {k: [] for k in CURVE_KEYS}
    curves["diverged"] = False
    model.train()
    train_time, loss_sum, acc_sum, count = 0.0, 0.0, 0.0, 0
    order, pos = rng.permutation(n), 0
    last_report = time.perf_counter()

    def record(step: int, diverged: bool = False):
        nonlocal loss_sum, acc_sum, count
        if eval_train and not diverged:
            tr_loss, tr_acc = evaluate_arrays(model, data.x_train, data.y_train, loss_fn)
        else:
            tr_loss = loss_sum / count if count else math.nan
            tr_acc = acc_sum / count if count else math.nan
        if diverged:
            te_loss, te_acc = math.nan, math.nan
        else:
            te_loss, te_acc = evaluate_arrays(model, data.x_test, data.y_test, loss_fn)
        for key, value in (("step", step), ("epoch", step * batch_size / n),
                           ("train_loss", tr_loss), ("train_acc", tr_acc),
                           ("test_loss", te_loss), ("test_acc", te_acc), ("time", train_time),
                           ("lr", float(optimizer.param_groups[0]["lr"]))):
            curves[key].append(float(value) if value is not None else math.nan)
        loss_sum, acc_sum, count = 0.0, 0.0, 0

    for step in range(1, total_steps + 1):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        xb, yb = Tensor(data.x_train[idx]), Tensor(data.y_train[idx])
        t0 = time.perf_counter()
        seen: list = []

        def closure(xb=xb, yb=yb, seen=seen):
            optimizer.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            if not seen:
                seen.append((float(loss.item()), out.data))
            objective = loss
            if weights:
                objective = loss + l1 * sum(w.abs().sum() for w in weights)
            if closure_kind == "graph":
                return objective
            objective.backward()
            if clip_norm is not None:
                clip_grad_norm_(model.parameters(), clip_norm)
            return objective

        try:
            if closure_kind is None:
                closure()
                if seen and math.isfinite(seen[0][0]) and seen[0][0] <= DIVERGENCE_LOSS:
                    optimizer.step()
            else:
                optimizer.step(closure)
        except (FloatingPointError, ValueError, np.linalg.LinAlgError):
            if not seen:
                raise
            seen[0] = (math.nan, seen[0][1])
        train_time += time.perf_counter() - t0
        loss_value, logits = seen[0]
        if not math.isfinite(loss_value) or loss_value > DIVERGENCE_LOSS:
            curves["diverged"] = True
            loss_sum, count = math.nan, 1
            record(step, diverged=True)
            break
        loss_sum += loss_value
        acc_sum += _accuracy(logits, data.y_train[idx])
        count += 1
        if scheduler is not None and (scheduler_interval == "step"
                                      or step % steps_per_epoch == 0):
            scheduler.step()
        if step % eval_every == 0 or step == total_steps:
            record(step)
            now = time.perf_counter()
            if ctx is not None and now - last_report > 2.0:
                last_report = now
                ctx.progress(f"{label} seed {seed}: step {step}/{total_steps} "
                             f"loss {curves['train_loss'][-1]:.3f} "
                             f"test acc {curves['test_acc'][-1]:.3f}")
    return curves


def final_metrics(curves: dict) -> dict:
    """The last entry of each curve, plus best test accuracy and divergence, for ``final``."""
    out = {k: (curves[k][-1] if curves[k] else math.nan) for k in CURVE_KEYS}
    acc = [a for a in curves["test_acc"] if math.isfinite(a)]
    out["best_test_acc"] = max(acc) if acc else math.nan
    out["diverged"] = bool(curves["diverged"])
    return out


def run_variant(ctx, variant: str, build: Callable, data, **train_kwargs) -> list[dict]:
    """Train one variant once per seed of ``ctx``; returns the runs for ``ClaimOutcome.runs``.

    Args:
        ctx: the :class:`LabContext` (its seeds, progress).
        variant: the variant's name (the runs' ``"variant"``).
        build: ``build(seed) -> (model, optimizer)`` or ``(model, optimizer, scheduler)``;
            called after ``deepgrad.manual_seed(seed)``, so the initialisation is seeded.
        data: the ``LabData``.
        **train_kwargs: passed to :func:`train_classifier` (``steps``/``epochs``,
            ``batch_size``, ``eval_every``, ...).

    Returns:
        ``[{"variant", "seed", "curves", "final"}, ...]``, one per seed.
    """
    runs = []
    for seed in ctx.seeds:
        dg.manual_seed(seed)
        built = build(seed)
        model, optimizer = built[0], built[1]
        scheduler = built[2] if len(built) > 2 else None
        curves = train_classifier(model, optimizer, data, seed=seed, ctx=ctx, label=variant,
                                  scheduler=scheduler, **train_kwargs)
        final = final_metrics(curves)
        ctx.progress(f"{variant} seed {seed}: test acc {final['test_acc']:.3f}"
                     + (" (diverged)" if final["diverged"] else ""))
        runs.append({"variant": variant, "seed": seed, "curves": curves, "final": final})
    return runs
