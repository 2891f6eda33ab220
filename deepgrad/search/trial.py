"""One trial of a hyperparameter search: train an MLP with the library's fit loop and report
its validation accuracy."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from deepgrad._random import manual_seed
from deepgrad.data import DataLoader, Dataset, TensorDataset
from deepgrad.models import get_model
from deepgrad.search.space import PARAMS, build_optimizer
from deepgrad.training import Callback, NonFiniteLossError, fit, validation_split

#: samples per batch when evaluating the validation set.
EVAL_BATCH_SIZE = 1000

#: the columns of a trial record after the hyperparameters, in report order.
RESULT_KEYS = ("val_acc", "val_loss", "train_loss", "best_val_acc", "epochs", "parameters",
               "seconds", "seed", "status")


@dataclass
class SearchData:
    """The training and validation sets every trial uses.

    Attributes:
        train: training samples. val: held-out samples, scored after every epoch.
        input_shape: one sample's shape. num_classes: number of classes.
    """

    train: Dataset
    val: Dataset
    input_shape: tuple[int, ...]
    num_classes: int

    @classmethod
    def from_arrays(cls, x: np.ndarray, y: np.ndarray, val_split: float, seed: int = 0,
                    num_classes: int | None = None) -> SearchData:
        """Split arrays into training and validation sets (the split is seeded).

        Args:
            x: inputs (N, *). y: integer class labels (N,).
            val_split: fraction held out for validation, in (0, 1).
            seed: seed of the split.
            num_classes: default ``max(y) + 1``.
        """
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
        k = int(np.max(y)) + 1 if num_classes is None else int(num_classes)
        train, val = validation_split(TensorDataset(x, y), val_split, seed=seed)
        return cls(train, val, tuple(int(d) for d in x.shape[1:]), k)


class _Report(Callback):
    """Hands each epoch's record to ``on_epoch`` (e.g. Optuna's pruning)."""

    def __init__(self, on_epoch: Callable[[int, dict], None]):
        self.on_epoch = on_epoch

    def on_epoch_end(self, state) -> None:
        self.on_epoch(state.epoch, state.history[-1])


def run_trial(params: Mapping, data: SearchData, epochs: int, seed: int,
              on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train one MLP with the hyperparameters ``params`` and score it on ``data.val``.

    The global generator is seeded with ``seed`` (initialisation, dropout) and the training
    loader shuffles with it, so a trial is reproducible from its record. A run whose loss
    becomes NaN/inf is recorded with status ``"diverged"`` and no accuracy.

    Args:
        params: the hyperparameters, keys :data:`~deepgrad.search.space.PARAMS`.
        data: training and validation sets.
        epochs: training epochs.
        seed: the trial's seed.
        on_epoch: called as ``on_epoch(epoch, record)`` after each epoch (may raise to stop).

    Returns:
        The record: the hyperparameters, then ``val_acc`` and ``val_loss`` (after the last
        epoch), ``train_loss``, ``best_val_acc`` (over epochs), ``epochs`` run, ``parameters``
        (count), ``seconds``, ``seed`` and ``status`` (``"ok"`` or ``"diverged"``).
    """
    manual_seed(int(seed))
    hidden = (int(params["width"]),) * int(params["depth"])
    model = get_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                      hidden=hidden, dropout=float(params["dropout"]))
    optimizer = build_optimizer(params["optimizer"], model.parameters(), float(params["lr"]),
                                float(params["weight_decay"]))
    train_loader = DataLoader(data.train, batch_size=int(params["batch_size"]), shuffle=True,
                              seed=int(seed))
    val_loader = DataLoader(data.val, batch_size=EVAL_BATCH_SIZE)
    record = {k: params[k] for k in PARAMS}
    record.update(val_acc=None, val_loss=None, train_loss=None, best_val_acc=None, epochs=0,
                  parameters=model.num_parameters(), seconds=0.0, seed=int(seed), status="ok")
    callbacks = [] if on_epoch is None else [_Report(on_epoch)]
    start = time.perf_counter()
    try:
        history = fit(model, optimizer, train_loader, epochs, val_loader=val_loader,
                      callbacks=callbacks, progress=False)
    except NonFiniteLossError:
        record.update(status="diverged", seconds=time.perf_counter() - start)
        return record
    last = history[-1]
    accs = [h["val_acc"] for h in history if h["val_acc"] is not None]
    record.update(val_acc=last["val_acc"], val_loss=last["val_loss"],
                  train_loss=last["train_loss"], best_val_acc=max(accs) if accs else None,
                  epochs=len(history), seconds=time.perf_counter() - start)
    if last["val_loss"] is not None and not math.isfinite(last["val_loss"]):
        record["status"] = "diverged"
    return record
