"""The training loop: :func:`fit` (epochs of optimizer steps, validation, history) and
:func:`evaluate` (loss and accuracy over a loader, without gradients)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from deepgrad._backend import array_module
from deepgrad._random import get_rng
from deepgrad.autograd.grad_mode import no_grad
from deepgrad.data import Dataset, Subset
from deepgrad.nn import Module
from deepgrad.nn import functional as F
from deepgrad.nn.clip_grad import clip_grad_norm_
from deepgrad.optim import LBFGS, NewtonCG, Optimizer
from deepgrad.tensor import Tensor
from deepgrad.training.callbacks import Callback, FitState, TrainingInterrupted
from deepgrad.training.checkpoint import Checkpoint, load_checkpoint, restore_checkpoint
from deepgrad.training.metrics import correct_count
from deepgrad.training.progress import ProgressLogger


class NonFiniteLossError(FloatingPointError):
    """Training diverged: the loss (or the model's output) became NaN or infinite."""


def _unpack(batch, who: str) -> tuple[Tensor, Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"{who}: each batch must be an (inputs, targets) pair, got "
                         f"{type(batch).__name__}"
                         + (f" of length {len(batch)}" if isinstance(batch, (tuple, list))
                            else ""))
    return batch[0], batch[1]


def _all_finite(t: Tensor) -> bool:
    xp = array_module(t.data)
    return bool(xp.isfinite(t.data).all())


def _current_lr(optimizer: Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def predict(model: Module, loader: Iterable) -> np.ndarray:
    """Predicted classes (argmax over the outputs' last dimension) for every batch of
    ``loader``, in eval mode under ``no_grad()``; the previous mode is restored."""
    was_training = model.training
    model.eval()
    preds = []
    try:
        with no_grad():
            for batch in loader:
                x, _ = _unpack(batch, "predict")
                preds.append(np.asarray(model(x).data).argmax(axis=-1))
    finally:
        model.train(was_training)
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def evaluate(
    model: Module,
    loader: Iterable,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
) -> tuple[float, float | None]:
    """Mean loss and accuracy of ``model`` over every batch of ``loader``.

    Runs in eval mode (dropout off, batch norm on running statistics) under ``no_grad()``;
    the model's previous train/eval mode is restored afterwards.

    Args:
        model: the model.
        loader: yields ``(inputs, targets)`` batches, e.g. a ``DataLoader``.
        loss_fn: ``loss_fn(output, targets)`` with ``reduction="mean"``; batch means are
            averaged weighted by batch size, so the result is the mean over all samples.

    Returns:
        ``(loss, accuracy)``; accuracy is None when the outputs are not (N, C) scores with
        integer class targets.

    Raises:
        ValueError: if the loader yields no batches, or a batch is not an (inputs, targets)
            pair.
    """
    was_training = model.training
    model.eval()
    total_loss, correct, n, classify = 0.0, 0, 0, True
    try:
        with no_grad():
            for batch in loader:
                x, y = _unpack(batch, "evaluate")
                out = model(x)
                size = len(y)
                total_loss += float(loss_fn(out, y).item()) * size
                c = correct_count(out, y)
                classify = classify and c is not None
                correct += c or 0
                n += size
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    return total_loss / n, (correct / n if classify else None)


def _diverged(what: str, state: FitState) -> NonFiniteLossError:
    lr = _current_lr(state.optimizer)
    return NonFiniteLossError(
        f"{what} at epoch {state.epoch}, step {state.batch}/{state.num_batches}: training "
        f"diverged; try a lower learning rate (lr is {lr:g})"
        + (", or check the inputs for NaN/inf" if state.step == 0 else "")
    )


def _closure_mode(optimizer: Optimizer, closure: str | None) -> str | None:
    if closure == "auto":
        if isinstance(optimizer, NewtonCG):
            return "graph"
        return "backward" if isinstance(optimizer, LBFGS) else None
    if closure not in (None, "backward", "graph"):
        raise ValueError(f"fit: closure must be 'auto', None, 'backward' or 'graph', got "
                         f"{closure!r}")
    return closure


def _step(state: FitState, x: Tensor, y: Tensor, loss_fn, mode: str | None,
          clip_grad_norm: float | None, regularizer) -> tuple[Tensor, float]:
    """One optimizer step on the batch (x, y); returns the output and the data loss at the
    point where the step started (the first evaluation, for closure-based optimizers)."""
    model, optimizer = state.model, state.optimizer
    first: list = []

    def evaluate_objective() -> Tensor:
        out = model(x)
        # NOTE: the output is checked before the loss, whose own NaN guard would give a less
        # useful error. Only at the step's starting point is an infinite loss refused: a line
        # search may try (and reject) points where the loss overflows.
        if isinstance(out, Tensor) and not _all_finite(out):
            raise _diverged("the model output contains NaN or inf" + (
                " at a point tried by the optimizer's line search" if first else ""), state)
        loss = loss_fn(out, y)
        if not first:
            value = float(loss.item())
            if not math.isfinite(value):
                raise _diverged(f"non-finite loss ({value})", state)
            first.append((out, value))
        return loss if regularizer is None else loss + regularizer()

    def backward_closure() -> Tensor:
        optimizer.zero_grad()
        objective = evaluate_objective()
        objective.backward()
        if clip_grad_norm is not None:
            clip_grad_norm_(model.parameters(), clip_grad_norm)
        return objective

    if mode is None:
        backward_closure()
        optimizer.step()
    elif mode == "backward":
        optimizer.step(backward_closure)
    else:  # "graph": the optimizer differentiates the returned loss itself
        optimizer.step(evaluate_objective)
    return first[0]


def _new_epoch_totals() -> dict:
    return {"loss": 0.0, "correct": 0, "samples": 0, "classify": True, "lr": None,
            "seconds": 0.0}


def _interrupted(state: FitState) -> TrainingInterrupted:
    state.interrupted = True
    where = f"epoch {state.epoch}" + (f", batch {state.batch}/{state.num_batches}"
                                      if state.mid_epoch else " (end)")
    return TrainingInterrupted(f"training interrupted at {where}")


def _train_epoch(state: FitState, loader: Iterable, loss_fn, callbacks: Sequence[Callback],
                 mode: str | None, clip_grad_norm: float | None, regularizer) -> None:
    """The rest of the epoch in progress: an optimizer step per batch of ``loader``, summed
    into ``state.epoch_totals``."""
    state.model.train()
    if state.num_batches and state.batch >= state.num_batches:
        return  # resumed from a checkpoint taken after the epoch's last step
    totals = state.epoch_totals
    for batch in loader:
        x, y = _unpack(batch, "fit")
        state.batch += 1
        out, value = _step(state, x, y, loss_fn, mode, clip_grad_norm, regularizer)
        state.step += 1
        size = len(y)
        totals["loss"] += value * size
        c = correct_count(out, y)
        totals["classify"] = totals["classify"] and c is not None
        totals["correct"] += c or 0
        totals["samples"] += size
        state.batch_loss = value
        for cb in callbacks:
            cb.on_batch_end(state)
        # NOTE: after the last step of an epoch the interrupt waits for the epoch's end, so a
        # checkpoint never holds a finished epoch without its record.
        if state.interrupt and (not state.num_batches or state.batch < state.num_batches):
            raise _interrupted(state)


def fit(
    model: Module,
    optimizer: Optimizer,
    train_loader: Iterable,
    epochs: int,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    val_loader: Iterable | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    log: Callable[[str], object] = print,
    clip_grad_norm: float | None = None,
    regularizer: Callable[[], Tensor] | None = None,
    closure: str | None = "auto",
    resume_from: str | os.PathLike | Checkpoint | None = None,
) -> list[dict]:
    """Train ``model`` for ``epochs`` epochs and return the per-epoch history.

    Each step: ``optimizer.zero_grad()``, forward, ``loss_fn(output, targets)`` (plus
    ``regularizer()``), backward, gradient clipping, ``optimizer.step()``; closure-based
    optimizers (L-BFGS, Newton-CG) instead get ``optimizer.step(closure)`` with a closure that
    recomputes the loss on the current batch (see ``closure``). After each epoch the model is
    evaluated on ``val_loader`` (if given) with :func:`evaluate`. The test set is deliberately
    not an argument: evaluate it once, after training.

    Args:
        model: the model (put in train mode for each epoch).
        optimizer: an optimizer over the model's parameters.
        train_loader: yields ``(inputs, targets)`` batches; iterated once per epoch.
        epochs: number of epochs, a positive int.
        loss_fn: the loss, with ``reduction="mean"``.
        val_loader: optional held-out batches evaluated after every epoch.
        callbacks: :class:`Callback` objects, called in order (those with ``runs_last``,
            such as ``ModelCheckpoint``, after the others).
        progress: report progress through :class:`ProgressLogger` (a tqdm bar on a
            terminal, one line per epoch through ``log`` in any case).
        log: where the per-epoch lines go.
        clip_grad_norm: if given, the gradients are rescaled after each backward pass so that
            their total 2-norm is at most this (``nn.utils.clip_grad_norm_``).
        regularizer: if given, ``regularizer()`` (a scalar Tensor, e.g.
            ``lambda: 1e-4 * l1_penalty(model.parameters())``) is added to the loss that is
            minimised. The history reports the data loss alone, comparable with ``val_loss``.
        closure: how the optimizer is stepped. ``None``: ``loss.backward()`` then
            ``optimizer.step()``. ``"backward"``: ``optimizer.step(closure)`` with a closure
            that clears the gradients, computes the loss on the current batch, calls
            ``backward()`` and returns the loss (``LBFGS``). ``"graph"``:
            ``optimizer.step(closure)`` with a closure that returns the loss with its graph
            and does not call ``backward()`` (``NewtonCG``, which differentiates it itself;
            ``clip_grad_norm`` then has no gradients to clip and is refused). ``"auto"``
            (default): ``"graph"`` for ``NewtonCG``, ``"backward"`` for ``LBFGS``, else None.
        resume_from: a checkpoint (path or :class:`~deepgrad.training.checkpoint.Checkpoint`)
            written by ``ModelCheckpoint`` / ``save_checkpoint`` for the same model, optimizer,
            loader and stateful callbacks: their states, the global RNG, the history and the
            counters are restored and training continues where it stopped, mid-epoch
            included, up to ``epochs`` in all. With the same data and settings the result is
            bit-identical to a run that was never interrupted.

    Returns:
        The history: one dict per epoch with ``epoch`` (from 1), ``train_loss``,
        ``train_acc`` (mean over the epoch's batches, in train mode, as the weights moved),
        ``val_loss``, ``val_acc`` (None without ``val_loader``), ``lr`` (of the first
        parameter group, at the start of the epoch) and ``seconds`` (wall time incl. validation).
        Accuracies are None when the task is not classification. With a closure-based
        optimizer the batch loss is the one at the point where its step started. A resumed
        run returns the whole history, earlier epochs included.

    Raises:
        NonFiniteLossError: if the loss or the output becomes NaN/inf (epoch and step named).
        TrainingInterrupted: when ``state.interrupt`` was set (e.g. by ``GracefulInterrupt``).
        ValueError: for a non-positive ``epochs``, a loader without samples, a bad
            ``closure`` or ``clip_grad_norm``, or a checkpoint that does not fit (more epochs
            done than ``epochs``, other callbacks, another model).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs <= 0:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    mode = _closure_mode(optimizer, closure)
    if clip_grad_norm is not None:
        if isinstance(clip_grad_norm, bool) or not isinstance(clip_grad_norm, (int, float)) \
                or not 0 < clip_grad_norm < math.inf:
            raise ValueError(f"fit: clip_grad_norm must be a finite number > 0, got "
                             f"{clip_grad_norm!r}")
        if mode == "graph":
            raise ValueError("fit: clip_grad_norm needs gradients in .grad; a 'graph' closure "
                             "optimizer (NewtonCG) never fills them")
    callbacks = list(callbacks)
    if progress:
        callbacks.append(ProgressLogger(log=log))
    callbacks = ([cb for cb in callbacks if not getattr(cb, "runs_last", False)]
                 + [cb for cb in callbacks if getattr(cb, "runs_last", False)])
    state = FitState(model=model, optimizer=optimizer, epochs=int(epochs),
                     train_loader=train_loader, callbacks=callbacks)
    try:
        state.num_batches = len(train_loader)  # type: ignore[arg-type]
    except TypeError:
        state.num_batches = 0  # an iterable without a length
    if resume_from is not None:
        ckpt = (resume_from if isinstance(resume_from, Checkpoint)
                else load_checkpoint(resume_from))
        if ckpt.epochs_done > state.epochs:
            raise ValueError(f"fit: the checkpoint has {ckpt.epochs_done} finished epochs, "
                             f"more than epochs={state.epochs}")
        restore_checkpoint(ckpt, state)
    try:
        # NOTE: divergence is detected and reported by the finiteness checks; NumPy's overflow
        # warnings on the way there would only add noise.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for cb in callbacks:
                cb.on_train_begin(state)
            state.session_start = time.perf_counter()
            for epoch in range(len(state.history) + 1, state.epochs + 1):
                if state.stop_training:  # restored from a checkpoint of a stopped run
                    break
                fresh = not state.mid_epoch
                if fresh:
                    state.epoch, state.batch = epoch, 0
                    state.epoch_totals = _new_epoch_totals()
                for cb in callbacks:
                    cb.on_epoch_begin(state)
                if fresh:  # NOTE: after on_epoch_begin, which may set it (SWA)
                    state.epoch_totals["lr"] = _current_lr(optimizer)
                state.epoch_start = time.perf_counter()
                _train_epoch(state, train_loader, loss_fn, callbacks, mode, clip_grad_norm,
                             regularizer)
                totals = state.epoch_totals
                n = totals["samples"]
                if n == 0:
                    raise ValueError("fit: the training loader yielded no samples")
                val_loss = val_acc = None
                if val_loader is not None:
                    val_loss, val_acc = evaluate(model, val_loader, loss_fn)
                state.history.append({
                    "epoch": epoch, "train_loss": totals["loss"] / n,
                    "train_acc": totals["correct"] / n if totals["classify"] else None,
                    "val_loss": val_loss, "val_acc": val_acc, "lr": totals["lr"],
                    "seconds": totals["seconds"] + time.perf_counter() - state.epoch_start,
                })
                for cb in callbacks:
                    cb.on_epoch_end(state)
                if state.interrupt:
                    raise _interrupted(state)
                if state.stop_training:
                    break
            state.completed = True
    finally:
        for cb in callbacks:
            cb.on_train_end(state)
    return state.history


def validation_split(
    dataset: Dataset, fraction: float, seed: int | None = 0
) -> tuple[Subset, Subset]:
    """Hold out a random ``fraction`` of ``dataset`` for validation.

    Args:
        dataset: the training set.
        fraction: share held out, in (0, 1); the validation set gets
            ``round(fraction * len(dataset))`` samples, at least one, and the training set at
            least one.
        seed: seed of the permutation (None: the global generator).

    Returns:
        ``(train_subset, val_subset)``, disjoint, together all of ``dataset``.

    Raises:
        ValueError: for a fraction outside (0, 1) or a dataset too small to split.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction!r}")
    n = len(dataset)
    if n < 2:
        raise ValueError(f"cannot hold out a validation set from {n} sample(s)")
    n_val = min(max(1, round(fraction * n)), n - 1)
    rng = np.random.default_rng(seed) if seed is not None else get_rng()
    perm = rng.permutation(n)
    return Subset(dataset, np.sort(perm[n_val:])), Subset(dataset, np.sort(perm[:n_val]))
