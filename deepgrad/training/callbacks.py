"""Callbacks: hooks into :func:`~deepgrad.training.fit` and the state they see.

A callback subclasses :class:`Callback` and overrides the hooks it needs; every hook receives
the one :class:`FitState` of the run. To end training early a callback sets
``state.stop_training = True`` (checked after each epoch); to stop at once, at the next step
boundary, with a resumable state, it sets ``state.interrupt = True`` (see
:class:`GracefulInterrupt`). Here: :class:`LRSchedulerCallback` (a learning-rate schedule),
:class:`EarlyStopping` and :class:`GracefulInterrupt`; checkpoints are in
:mod:`deepgrad.training.checkpoint`, loggers in :mod:`deepgrad.training.loggers`.

A callback that holds state a resumed run needs (a best value so far, a schedule's position)
defines ``state_dict()`` and ``load_state_dict(state)``; checkpoints save and restore it.

PARITY: Keras' ``Callback`` (``on_epoch_end``, ``model.stop_training``, ``EarlyStopping``);
PyTorch has no fit loop of its own.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepgrad.optim.lr_scheduler import ReduceLROnPlateau


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` stopped at a step boundary because ``state.interrupt`` was set (e.g. by
    :class:`GracefulInterrupt` on Ctrl-C). The state is consistent: a checkpoint written now
    (``ModelCheckpoint`` does so in ``on_train_end``) resumes exactly."""


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
        interrupt: set to True (from a callback or a signal handler) to end training at the
            next step boundary: ``fit`` then sets ``interrupted`` and raises
            :class:`TrainingInterrupted`. Within the last batch of an epoch, training stops
            after that epoch's validation and ``on_epoch_end`` instead.
        interrupted: True in ``on_train_end`` when training stopped for ``interrupt``: the
            model, optimizer, loader and counters are at a step boundary (resumable).
        completed: True once all epochs ran or a callback stopped training; False in
            ``on_train_end`` when training ends with an exception (Ctrl-C, divergence).
        train_loader: the training loader (its ``state_dict`` goes into checkpoints).
        callbacks: the run's callbacks, in order.
        epoch_totals: running sums of the epoch in progress (``loss`` weighted by samples,
            ``correct``, ``samples``, ``classify``, the epoch's starting ``lr`` and the
            ``seconds`` of earlier sessions), so that a mid-epoch resume ends with the same
            record.
        seconds_before: training seconds of earlier sessions of a resumed run.
        session_start: ``time.perf_counter()`` when this session's ``fit`` started.
        epoch_start: ``time.perf_counter()`` when this session's part of the epoch started.
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
    interrupt: bool = False
    interrupted: bool = False
    completed: bool = False
    train_loader: Any = None
    callbacks: list = field(default_factory=list)
    epoch_totals: dict = field(default_factory=dict)
    seconds_before: float = 0.0
    session_start: float = field(default_factory=time.perf_counter)
    epoch_start: float = field(default_factory=time.perf_counter)

    @property
    def mid_epoch(self) -> bool:
        """True when the epoch ``epoch`` has started but has no history record yet."""
        return 0 < self.epoch and len(self.history) < self.epoch and self.batch > 0

    def train_seconds(self) -> float:
        """Seconds spent in ``fit`` so far, over all sessions of a resumed run."""
        return self.seconds_before + time.perf_counter() - self.session_start


class Callback:
    """Base class of fit-loop callbacks; every hook does nothing by default.

    Hooks are called in this order: ``on_train_begin``, then per epoch ``on_epoch_begin``,
    ``on_batch_end`` after each optimizer step, ``on_epoch_end`` after validation; finally
    ``on_train_end``, which also runs when training ends with an exception.

    A callback with ``runs_last = True`` (``ModelCheckpoint``) is called after all others,
    in the given order among themselves.
    """

    runs_last: bool = False

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


def stateful_callbacks(callbacks) -> list:
    """The callbacks that define ``state_dict`` and ``load_state_dict``, in order."""
    return [cb for cb in callbacks
            if callable(getattr(cb, "state_dict", None))
            and callable(getattr(cb, "load_state_dict", None))]


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

    def state_dict(self) -> dict:
        """The scheduler's state (for checkpoints)."""
        return {"scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the scheduler's state from :meth:`state_dict`."""
        self.scheduler.load_state_dict(state["scheduler"])


# ----------------------------------------------------------------------------- monitoring


def resolve_mode(monitor: str, mode: str) -> str:
    """``"min"`` or ``"max"``: ``"auto"`` means max for accuracies (``"acc"`` in the name)."""
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def monitored_value(state: FitState, monitor: str, who: str) -> float:
    """The value of ``monitor`` in the record of the epoch just finished."""
    value = state.history[-1].get(monitor)
    if value is None:
        raise ValueError(f"{who}: the monitored {monitor!r} is missing from epoch "
                         f"{state.epoch}'s record"
                         + (" (no val_loader was given)" if monitor.startswith("val_") else ""))
    return float(value)


def is_improvement(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (NaN never does)."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class EarlyStopping(Callback):
    """Stop training when a monitored metric has stopped improving.

    After each epoch the record's ``monitor`` value is compared with the best so far; an epoch
    that does not beat it by more than ``min_delta`` counts as bad, and after ``patience``
    bad epochs in a row training stops (``state.stop_training``).

    Args:
        monitor: the history key watched, e.g. ``"val_loss"``, ``"val_acc"``, ``"train_loss"``.
        mode: ``"min"`` (lower is better), ``"max"``, or ``"auto"`` (max for accuracies).
        patience: bad epochs tolerated before stopping, an int >= 0.
        min_delta: the least change that counts as an improvement, >= 0.
        restore_best_weights: at the end of training (stopped early or not), load the
            weights of the best epoch back into the model.

    Attributes:
        best: the best value so far; ``best_epoch``: its epoch; ``wait``: bad epochs in a row;
        stopped_epoch: the epoch after which training was stopped (0 if it was not).

    Raises:
        ValueError: for a bad ``mode``, ``patience`` or ``min_delta``; at the end of an epoch,
            if ``monitor`` is missing from the record.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 5,
                 min_delta: float = 0.0, restore_best_weights: bool = False):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) \
                or not 0 <= min_delta < math.inf:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def on_train_begin(self, state: FitState) -> None:
        if not state.history and not state.mid_epoch:  # a fresh run, not a resumed one
            self._reset()

    def on_epoch_end(self, state: FitState) -> None:
        value = monitored_value(state, self.monitor, "EarlyStopping")
        if is_improvement(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: np.array(t.data, copy=True)
                                     for k, t in state.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.stop_training = True
            self.stopped_epoch = state.epoch

    def on_train_end(self, state: FitState) -> None:
        if self.restore_best_weights and state.completed and self.best_weights is not None \
                and self.best_epoch != len(state.history):
            state.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        """The best value, its epoch (and weights), the bad-epoch count: for checkpoints."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.best, self.best_epoch = state["best"], int(state["best_epoch"])
        self.wait, self.stopped_epoch = int(state["wait"]), int(state["stopped_epoch"])
        self.best_weights = state["best_weights"]


class GracefulInterrupt(Callback):
    """Ctrl-C during ``fit`` finishes the current optimizer step, then stops resumably.

    While training runs, a SIGINT handler is installed (main thread only, and not where SIGINT
    is ignored; elsewhere this does nothing): the first Ctrl-C sets ``state.interrupt``, so
    ``fit`` stops at the next step boundary with :class:`TrainingInterrupted` (a
    ``KeyboardInterrupt``) and a ``ModelCheckpoint`` saves a checkpoint that resumes exactly.
    A second Ctrl-C raises ``KeyboardInterrupt`` at once (nothing is saved for that point).
    The previous handler is restored when training ends.

    Args:
        log: called with a one-line notice on the first Ctrl-C (None: silent).
    """

    def __init__(self, log=None):
        self.log = log
        self._previous = None
        self._installed = False

    def on_train_begin(self, state: FitState) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            if state.interrupt:
                raise KeyboardInterrupt
            state.interrupt = True
            if self.log is not None:
                self.log("interrupt: stopping after this step (Ctrl-C again to abort now)")

        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.SIG_IGN:  # NOTE: e.g. a background job: Ctrl-C is not for us
            return
        self._previous = previous
        signal.signal(signal.SIGINT, handler)
        self._installed = True

    def on_train_end(self, state: FitState) -> None:
        if self._installed:
            previous = self._previous
            signal.signal(signal.SIGINT,
                          signal.default_int_handler if previous is None else previous)
            self._installed = False
            self._previous = None
