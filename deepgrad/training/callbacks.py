"""Callbacks: hooks into :func:`~deepgrad.training.fit` and the state they see.

A callback subclasses :class:`Callback` and overrides the hooks it needs; every hook receives
the one :class:`FitState` of the run. To end training early a callback sets
``state.stop_training = True`` (checked after each epoch). Early stopping and checkpoints are
meant to be written this way; :class:`LRSchedulerCallback` drives a learning-rate schedule.

PARITY: Keras' ``Callback`` (``on_epoch_end``, ``model.stop_training``); PyTorch has no fit
loop of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepgrad.optim.lr_scheduler import ReduceLROnPlateau


@dataclass
class FitState:
    """Everything a callback may read (and, for ``stop_training``, write) during ``fit``.

    Attributes:
        model: the model being trained.
        optimizer: its optimizer.
        epochs: the number of epochs asked for.
        epoch: the epoch in progress, from 1 (0 before the first).
        num_batches: batches per training epoch (``len(train_loader)``).
        batch: batches done in the current epoch, from 1 (valid in ``on_batch_end``).
        step: optimizer steps done since the start of the run.
        batch_loss: the loss of the last batch, a float (valid in ``on_batch_end``).
        history: one record per finished epoch (see ``fit``); ``history[-1]`` in
            ``on_epoch_end`` is the epoch just finished.
        stop_training: set to True to end training after the current epoch.
        completed: True once all epochs ran or a callback stopped training; False in
            ``on_train_end`` when training ends with an exception (Ctrl-C, divergence).
    """

    model: Any
    optimizer: Any
    epochs: int
    epoch: int = 0
    num_batches: int = 0
    batch: int = 0
    step: int = 0
    batch_loss: float = float("nan")
    history: list[dict] = field(default_factory=list)
    stop_training: bool = False
    completed: bool = False


class Callback:
    """Base class of fit-loop callbacks; every hook does nothing by default.

    Hooks are called in this order: ``on_train_begin``, then per epoch ``on_epoch_begin``,
    ``on_batch_end`` after each optimizer step, ``on_epoch_end`` after validation; finally
    ``on_train_end``, which also runs when training ends with an exception.
    """

    def on_train_begin(self, state: FitState) -> None:
        """Called once before the first epoch."""

    def on_epoch_begin(self, state: FitState) -> None:
        """Called before each epoch (``state.epoch`` is the epoch about to run)."""

    def on_batch_end(self, state: FitState) -> None:
        """Called after each optimizer step (``state.batch_loss`` holds the batch's loss)."""

    def on_epoch_end(self, state: FitState) -> None:
        """Called after each epoch and its validation (``state.history[-1]`` is its record)."""

    def on_train_end(self, state: FitState) -> None:
        """Called once at the end, also after an exception (then ``state.completed`` is False)."""


class LRSchedulerCallback(Callback):
    """Advance a learning-rate scheduler during ``fit``: after every optimizer step or epoch.

    Args:
        scheduler: a ``deepgrad.optim.lr_scheduler`` scheduler.
        interval: ``"step"`` (after every optimizer step; size the schedule in steps, e.g.
            ``T_max = epochs * len(train_loader)``) or ``"epoch"`` (after every epoch).
        monitor: for a scheduler whose ``step`` takes a metric (``ReduceLROnPlateau``): the
            key of the epoch's history record passed to it, e.g. ``"val_loss"`` or
            ``"train_loss"``; needs ``interval="epoch"``. None (default) for the others.

    Example:
        >>> sched = CosineAnnealingLR(opt, T_max=epochs * len(loader))
        >>> fit(model, opt, loader, epochs, callbacks=[LRSchedulerCallback(sched)])
        >>> plateau = ReduceLROnPlateau(opt, patience=2)
        >>> fit(model, opt, loader, epochs, val_loader=val,
        ...     callbacks=[LRSchedulerCallback(plateau, "epoch", monitor="val_loss")])

    Raises:
        ValueError: for an unknown interval, a ``ReduceLROnPlateau`` without ``monitor`` (or
            stepped per step), or, at the end of an epoch, a monitored value that is missing
            from the record (e.g. ``"val_loss"`` without a ``val_loader``).
    """

    def __init__(self, scheduler, interval: str = "step", monitor: str | None = None):
        if interval not in ("step", "epoch"):
            raise ValueError(f"interval must be 'step' or 'epoch', got {interval!r}")
        if isinstance(scheduler, ReduceLROnPlateau) and monitor is None:
            raise ValueError("ReduceLROnPlateau steps on a metric: pass monitor, e.g. "
                             "monitor='val_loss'")
        if monitor is not None and interval != "epoch":
            raise ValueError("a monitored metric is known once per epoch: use interval='epoch'")
        self.scheduler = scheduler
        self.interval = interval
        self.monitor = monitor

    def on_batch_end(self, state: FitState) -> None:
        if self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, state: FitState) -> None:
        if self.interval != "epoch":
            return
        if self.monitor is None:
            self.scheduler.step()
            return
        value = state.history[-1].get(self.monitor)
        if value is None:
            raise ValueError(f"LRSchedulerCallback: the monitored {self.monitor!r} is missing "
                             f"from epoch {state.epoch}'s record"
                             + (" (no val_loader was given)"
                                if self.monitor.startswith("val_") else ""))
        self.scheduler.step(value)
