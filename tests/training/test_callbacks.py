"""Tests of the callbacks EarlyStopping, ModelCheckpoint (keep_last, save_best_only) and the
loggers (CSV, JSON Lines, TensorBoard), driven by a scripted validation loss."""

from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.optim import SGD
from deepgrad.training import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLinesLogger,
    ModelCheckpoint,
    TensorBoardLogger,
    TrainingInterrupted,
    fit,
    load_checkpoint,
)


def _setup():
    dg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4))
    y = rng.integers(0, 3, 64)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    return model, opt, DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)


class Script(Callback):
    """Overwrites each record's val_loss with a scripted value and records the weights."""

    def __init__(self, values):
        self.values, self.weights = values, {}

    def on_epoch_end(self, state):
        state.history[-1]["val_loss"] = self.values[state.epoch - 1]
        self.weights[state.epoch] = {k: t.data.copy() for k, t in
                                     state.model.state_dict().items()}


def test_early_stopping_stops_after_patience_and_restores_best_weights():
    model, opt, loader = _setup()
    script = Script([1.0, 0.5, 0.55, 0.6, 0.4, 0.3])
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    history = fit(model, opt, loader, 6, progress=False, callbacks=[script, stop])
    assert len(history) == 4 and stop.stopped_epoch == 4
    assert stop.best == 0.5 and stop.best_epoch == 2
    for key, t in model.state_dict().items():
        assert np.array_equal(t.data, script.weights[2][key])
    assert not np.array_equal(model[0].weight.data, script.weights[4]["0.weight"])


def test_early_stopping_min_delta_mode_and_missing_monitor():
    model, opt, loader = _setup()
    stop = EarlyStopping(patience=1, min_delta=0.1)  # 0.95 is not better than 1.0 by > 0.1
    assert len(fit(model, opt, loader, 5, progress=False,
                   callbacks=[Script([1.0, 0.95, 0.5, 0.5, 0.5]), stop])) == 2
    assert EarlyStopping("val_acc").mode == "max" and EarlyStopping("train_loss").mode == "min"
    assert stop.best_weights is None  # not kept without restore_best_weights
    with pytest.raises(ValueError, match="'val_loss' is missing .*no val_loader"):
        fit(model, opt, loader, 1, progress=False, callbacks=[EarlyStopping()])
    for bad in ({"patience": -1}, {"min_delta": -0.1}, {"mode": "lowest"}):
        with pytest.raises(ValueError):
            EarlyStopping(**bad)


def test_model_checkpoint_keeps_the_last_k_and_resumes(tmp_path):
    model, opt, loader = _setup()
    saver = ModelCheckpoint(tmp_path, keep_last=2)
    fit(model, opt, loader, 4, progress=False, callbacks=[saver])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint-epoch0003.npz", "checkpoint-epoch0004.npz", "checkpoint.npz"]
    assert load_checkpoint(tmp_path / "checkpoint-epoch0003.npz").epochs_done == 3
    latest = load_checkpoint(tmp_path / "checkpoint.npz")
    assert latest.epochs_done == 4 and latest.callbacks == [
        ["ModelCheckpoint", {"best": None, "kept": ["checkpoint-epoch0003.npz",
                                                    "checkpoint-epoch0004.npz"]}]]
    # a resumed run goes on deleting the copies the first one made
    model, opt, loader = _setup()
    fit(model, opt, loader, 5, progress=False, callbacks=[ModelCheckpoint(tmp_path, keep_last=2)],
        resume_from=tmp_path / "checkpoint.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-epoch0004.npz", "checkpoint-epoch0005.npz", "checkpoint.npz"]
    with pytest.raises(ValueError, match="keep_last"):
        ModelCheckpoint(tmp_path, keep_last=-1)


def test_model_checkpoint_save_best_only_and_end_of_training(tmp_path):
    model, opt, loader = _setup()
    fit(model, opt, loader, 4, progress=False, callbacks=[
        Script([1.0, 0.5, 0.7, 0.6]), ModelCheckpoint(tmp_path / "best", save_best_only=True)])
    assert load_checkpoint(tmp_path / "best" / "checkpoint.npz").epochs_done == 2
    model, opt, loader = _setup()
    fit(model, opt, loader, 3, progress=False,
        callbacks=[ModelCheckpoint(tmp_path / "end", every_epoch=False)])
    assert load_checkpoint(tmp_path / "end" / "checkpoint.npz").epochs_done == 3


class Check(Callback):
    """Reads the log file after the logger flushed the epoch's row."""

    def __init__(self, path, lines):
        self.path, self.lines = path, lines

    def on_epoch_end(self, state):
        self.lines.append(len(self.path.read_text().splitlines()))


class Stop(Callback):
    def on_batch_end(self, state):
        if state.step == 6:
            state.interrupt = True


@pytest.mark.parametrize("logger", [CSVLogger, JSONLinesLogger])
def test_loggers_write_one_flushed_row_per_epoch_also_across_a_resume(tmp_path, logger):
    path = tmp_path / "log" / "history.txt"
    model, opt, loader = _setup()
    lines = []
    history = fit(model, opt, loader, 3, progress=False,
                  callbacks=[logger(path), Check(path, lines)])
    header = 1 if logger is CSVLogger else 0
    assert lines == [header + 1, header + 2, header + 3]  # flushed at each epoch's end

    def rows():
        if logger is CSVLogger:
            with open(path, newline="") as f:
                return [{k: float(v) if v else None for k, v in r.items()}
                        for r in csv.DictReader(f)]
        return [json.loads(line) for line in path.read_text().splitlines()]

    assert rows() == [{k: (None if v is None else float(v)) for k, v in h.items()}
                      for h in history]
    # interrupted in epoch 2 and resumed: every epoch exactly once
    model, opt, loader = _setup()
    with pytest.raises(TrainingInterrupted):
        fit(model, opt, loader, 3, progress=False,
            callbacks=[logger(path), Stop(), ModelCheckpoint(tmp_path)])
    model, opt, loader = _setup()
    again = fit(model, opt, loader, 3, progress=False,
                callbacks=[logger(path), ModelCheckpoint(tmp_path)],
                resume_from=tmp_path / "checkpoint.npz")
    assert [r["epoch"] for r in rows()] == [1, 2, 3]
    assert [r["train_loss"] for r in rows()] == [h["train_loss"] for h in again]


def _have_tensorboard() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("tensorboardX", "tensorboard"))


@pytest.mark.skipif(not _have_tensorboard(), reason="no TensorBoard event writer installed")
def test_tensorboard_logger_writes_event_files(tmp_path):
    model, opt, loader = _setup()
    fit(model, opt, loader, 2, progress=False, callbacks=[TensorBoardLogger(tmp_path / "tb")])
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_tensorboard_logger_names_the_pip_command_when_absent(tmp_path, monkeypatch):
    import sys

    for name in ("tensorboardX", "tensorboard", "tensorboard.summary",
                 "tensorboard.summary.writer", "tensorboard.summary.writer.event_file_writer"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        TensorBoardLogger(tmp_path)
