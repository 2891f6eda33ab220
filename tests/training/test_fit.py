"""Tests of fit, evaluate, callbacks, progress output and validation_split."""

from __future__ import annotations

import math

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad import nn
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.models import get_model
from deepgrad.optim import SGD
from deepgrad.training import (
    Callback,
    NonFiniteLossError,
    ProgressLogger,
    evaluate,
    fit,
    format_record,
    validation_split,
)

HISTORY_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}


def _blobs(n=600, d=8, k=4, seed=0):
    """k well separated Gaussian blobs in d dimensions: float32 inputs, int64 labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 4
    y = rng.integers(0, k, n)
    x = (centres[y] + rng.standard_normal((n, d))).astype(np.float32)
    return x, y.astype(np.int64)


def _setup(seed=0, lr=0.1, hidden=(16,), n=600):
    dg.manual_seed(seed)
    x, y = _blobs(n)
    model = get_model("mlp", input_shape=(8,), num_classes=4, hidden=hidden)
    opt = SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, seed=seed)
    return model, opt, loader, (x, y)


def test_fit_learns_a_separable_problem_and_records_history():
    model, opt, loader, (x, y) = _setup()
    history = fit(model, opt, loader, epochs=3, progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for h in history:
        assert set(h) == HISTORY_KEYS
        assert h["val_loss"] is None and h["val_acc"] is None
        assert h["lr"] == 0.1 and h["seconds"] > 0
    assert history[-1]["train_acc"] > 0.95
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    loss, acc = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=100))
    assert acc > 0.97 and loss < 0.2


def test_fit_with_validation_loader():
    model, opt, loader, _ = _setup()
    xv, yv = _blobs(100, seed=0)
    history = fit(model, opt, loader, epochs=2, progress=False,
                  val_loader=DataLoader(TensorDataset(xv, yv), batch_size=64))
    assert all(h["val_loss"] is not None and 0 <= h["val_acc"] <= 1 for h in history)
    assert history[-1]["val_acc"] > 0.9


def test_fit_is_reproducible():
    runs = []
    for _ in range(2):
        model, opt, loader, _ = _setup(seed=3)
        runs.append(fit(model, opt, loader, epochs=1, progress=False)[0]["train_loss"])
    assert runs[0] == runs[1]


def test_evaluate_is_the_sample_mean_in_eval_mode_without_grad():
    dg.manual_seed(0)
    x, y = _blobs(70)
    model = nn.Sequential(nn.Linear(8, 4), nn.Dropout(0.5))
    model.train()
    loss, acc = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=32))  # 32+32+6
    assert model.training  # restored
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    with dg.no_grad():
        out = model(dg.tensor(x))
    assert math.isclose(loss, F.cross_entropy(out, dg.tensor(y)).item(), rel_tol=1e-5)
    assert acc == np.mean(out.data.argmax(1) == y)


def test_evaluate_reports_no_accuracy_for_regression():
    dg.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    loss, acc = evaluate(nn.Linear(3, 1), DataLoader(TensorDataset(x, y), batch_size=8),
                         F.mse_loss)
    assert acc is None and loss > 0


def test_evaluate_refuses_an_empty_loader():
    with pytest.raises(ValueError, match="no samples"):
        evaluate(nn.Linear(3, 1), [])


def test_non_finite_loss_names_epoch_and_step_and_suggests_lower_lr():
    model, opt, loader, _ = _setup()
    calls = {"n": 0}

    def loss_fn(out, y):
        calls["n"] += 1
        loss = F.cross_entropy(out, y)
        return loss * float("nan") if calls["n"] == len(loader) + 3 else loss

    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 3/19.*lower learning rate"):
        fit(model, opt, loader, epochs=3, loss_fn=loss_fn, progress=False)


def test_divergence_with_a_huge_learning_rate_is_reported(recwarn):
    model, opt, loader, _ = _setup(lr=1e12)
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step \d+/19: training diverged"):
        fit(model, opt, loader, epochs=2, progress=False)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_non_finite_inputs_hint_at_the_data():
    model, opt, _, (x, y) = _setup()
    x = x.copy()
    x[0, 0] = np.nan
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    with pytest.raises(NonFiniteLossError, match="step 1/19.*check the inputs"):
        fit(model, opt, loader, epochs=1, progress=False)


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True])
def test_fit_refuses_bad_epochs(epochs):
    model, opt, loader, _ = _setup()
    with pytest.raises(ValueError, match="epochs"):
        fit(model, opt, loader, epochs=epochs, progress=False)


class Recorder(Callback):
    def __init__(self, stop_after=None):
        self.events, self.stop_after = [], stop_after

    def on_train_begin(self, state):
        self.events.append("train_begin")

    def on_epoch_begin(self, state):
        self.events.append(f"epoch_begin {state.epoch}")

    def on_batch_end(self, state):
        assert math.isfinite(state.batch_loss) and state.batch >= 1
        if state.batch == state.num_batches:
            self.events.append(f"last_batch {state.step}")

    def on_epoch_end(self, state):
        self.events.append(f"epoch_end {state.history[-1]['epoch']}")
        if state.epoch == self.stop_after:
            state.stop_training = True

    def on_train_end(self, state):
        self.events.append(f"train_end completed={state.completed}")


def test_callbacks_see_every_hook_and_can_stop_training():
    model, opt, loader, _ = _setup()
    rec = Recorder(stop_after=2)
    history = fit(model, opt, loader, epochs=5, callbacks=[rec], progress=False)
    assert len(history) == 2
    assert rec.events == ["train_begin", "epoch_begin 1", "last_batch 19", "epoch_end 1",
                          "epoch_begin 2", "last_batch 38", "epoch_end 2",
                          "train_end completed=True"]


def test_on_train_end_runs_after_an_exception():
    model, opt, loader, _ = _setup(lr=1e12)
    rec = Recorder()
    with pytest.raises(NonFiniteLossError):
        fit(model, opt, loader, epochs=2, callbacks=[rec], progress=False)
    assert rec.events[-1] == "train_end completed=False"


def test_progress_prints_one_plain_line_per_epoch(capsys):
    model, opt, loader, _ = _setup()
    fit(model, opt, loader, epochs=2)  # stdout is captured: not a terminal, so no bar
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  train_loss ")
    assert "lr 0.1" in lines[1] and err == ""


def test_progress_off_is_silent_and_log_is_pluggable(capsys):
    model, opt, loader, _ = _setup()
    fit(model, opt, loader, epochs=1, progress=False)
    lines = []
    fit(model, opt, loader, epochs=1, log=lines.append)
    assert capsys.readouterr().out == "" and len(lines) == 1


def test_progress_bar_mode_runs(capsys):
    model, opt, loader, _ = _setup()
    fit(model, opt, loader, epochs=1, progress=False,
        callbacks=[ProgressLogger(log=lambda s: None, bar=True)])
    assert "epoch 1/1" in capsys.readouterr().err


def test_format_record_skips_missing_metrics():
    line = format_record({"epoch": 3, "train_loss": 0.5, "train_acc": None, "val_loss": None,
                          "val_acc": None, "lr": 0.01, "seconds": 1.25}, epochs=10)
    assert line == "epoch  3/10  train_loss 0.5000  lr 0.01  1.2s"


def test_validation_split_is_seeded_disjoint_and_complete():
    ds = TensorDataset(np.arange(100, dtype=np.float32)[:, None], np.arange(100))
    train, val = validation_split(ds, 0.2, seed=1)
    assert len(train) == 80 and len(val) == 20
    assert sorted(np.concatenate([train.indices, val.indices])) == list(range(100))
    again = validation_split(ds, 0.2, seed=1)[1]
    other = validation_split(ds, 0.2, seed=2)[1]
    assert np.array_equal(val.indices, again.indices)
    assert not np.array_equal(val.indices, other.indices)
    assert len(validation_split(ds, 0.001)[1]) == 1  # at least one sample
    assert len(validation_split(ds, 0.999)[0]) == 1  # and at least one left to train on


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_validation_split_refuses_bad_fractions(fraction):
    ds = TensorDataset(np.zeros((10, 1), np.float32), np.zeros(10, np.int64))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        validation_split(ds, fraction)


def test_lr_scheduler_callback_steps_per_batch_or_per_epoch():
    from deepgrad.optim.lr_scheduler import CosineAnnealingLR, StepLR
    from deepgrad.training import LRSchedulerCallback

    model, opt, loader, _ = _setup()
    sched = CosineAnnealingLR(opt, T_max=2 * len(loader))
    history = fit(model, opt, loader, epochs=2, progress=False,
                  callbacks=[LRSchedulerCallback(sched)])
    assert [h["lr"] for h in history] == pytest.approx([0.1, 0.05])  # at each epoch's start
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)

    model, opt, loader, _ = _setup()
    sched = StepLR(opt, step_size=1, gamma=0.5)
    history = fit(model, opt, loader, epochs=3, progress=False,
                  callbacks=[LRSchedulerCallback(sched, interval="epoch")])
    assert [h["lr"] for h in history] == pytest.approx([0.1, 0.05, 0.025])
    with pytest.raises(ValueError, match="interval"):
        LRSchedulerCallback(sched, interval="batch")
