"""Tests of checkpoints: an interrupted and resumed ``fit`` ends bit-identical to an
uninterrupted one (the oracle), for first-order and closure optimizers, mid-epoch and at an
epoch boundary; Ctrl-C through GracefulInterrupt; unreadable files are named."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.optim import LBFGS, SGD, Adam
from deepgrad.optim.lr_scheduler import CosineAnnealingLR, StepLR
from deepgrad.training import (
    Callback,
    EarlyStopping,
    GracefulInterrupt,
    LRSchedulerCallback,
    ModelCheckpoint,
    TrainingInterrupted,
    fit,
    load_checkpoint,
    save_checkpoint,
)
from deepgrad.training.checkpoint import make_checkpoint, write_checkpoint

EPOCHS = 3


def _data(n=120, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = (rng.standard_normal((k, d))[y] * 2 + rng.standard_normal((n, d))).astype(np.float64)
    return x, y.astype(np.int64)


def _run(optimizer: str, init_seed=0):
    """A fresh run: model with dropout (draws from the global RNG), optimizer, schedule,
    shuffled loader with its own generator, validation loader."""
    dg.manual_seed(init_seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    x, y = _data()
    full = optimizer == "lbfgs"
    loader = DataLoader(TensorDataset(x, y), batch_size=120 if full else 16, shuffle=True,
                        seed=7)
    val = DataLoader(TensorDataset(*_data(40, seed=1)), batch_size=40)
    callbacks = []
    if optimizer == "sgd":
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        sched = CosineAnnealingLR(opt, T_max=EPOCHS * len(loader))
        callbacks.append(LRSchedulerCallback(sched, "step"))
    elif optimizer == "adam":
        opt = Adam(model.parameters(), lr=0.01)
        callbacks.append(LRSchedulerCallback(StepLR(opt, step_size=1, gamma=0.5), "epoch"))
    else:
        opt = LBFGS(model.parameters(), lr=1.0, max_iter=3, line_search_fn="strong_wolfe")
    callbacks.append(EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True))
    dg.manual_seed(123)  # the RNG stream that dropout draws from during training
    return model, opt, loader, val, callbacks


class _InterruptAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, state):
        if state.step == self.step:
            state.interrupt = True


def _weights(model):
    return {k: t.data.copy() for k, t in model.state_dict().items()}


def _strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.mark.parametrize("optimizer,stop_step", [
    ("sgd", 11),   # mid-epoch 2 (8 batches per epoch)
    ("sgd", 8),    # the last batch of epoch 1: stops at the epoch's end
    ("adam", 3),
    ("lbfgs", 2),  # full batch: one step per epoch, so at an epoch boundary
])
def test_interrupted_and_resumed_fit_is_bit_identical(tmp_path, optimizer, stop_step):
    model, opt, loader, val, cbs = _run(optimizer)
    reference = fit(model, opt, loader, EPOCHS, val_loader=val, callbacks=cbs, progress=False)
    expected = _weights(model)

    model, opt, loader, val, cbs = _run(optimizer)
    saver = ModelCheckpoint(tmp_path)
    with pytest.raises(TrainingInterrupted):
        fit(model, opt, loader, EPOCHS, val_loader=val, progress=False,
            callbacks=[saver, *cbs, _InterruptAt(stop_step)])  # saver runs last anyway
    assert saver.last_saved["mid_epoch"] == (optimizer != "lbfgs" and stop_step % 8 != 0)
    ckpt = load_checkpoint(tmp_path / "checkpoint.npz")
    assert ckpt.progress["step"] == stop_step

    model, opt, loader, val, cbs = _run(optimizer, init_seed=99)  # other initial weights
    dg.manual_seed(5)  # and another RNG state: both must come from the checkpoint
    history = fit(model, opt, loader, EPOCHS, val_loader=val, progress=False,
                  callbacks=[*cbs, ModelCheckpoint(tmp_path)], resume_from=ckpt)
    assert _strip(history) == _strip(reference)
    for key, value in _weights(model).items():
        assert np.array_equal(value, expected[key]), key


def test_graceful_interrupt_turns_ctrl_c_into_a_step_boundary_stop(tmp_path):
    class CtrlC(Callback):
        def on_batch_end(self, state):
            if state.step == 3:
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    model, opt, loader, val, cbs = _run("sgd")
    with pytest.raises(TrainingInterrupted, match="epoch 1, batch 3/8"):
        fit(model, opt, loader, EPOCHS, progress=False,
            callbacks=[*cbs, CtrlC(), GracefulInterrupt(), ModelCheckpoint(tmp_path)])
    assert signal.getsignal(signal.SIGINT) is before
    assert load_checkpoint(tmp_path / "checkpoint.npz").progress["batch"] == 3

    class TwiceCtrlC(Callback):  # the second Ctrl-C aborts at once
        def on_batch_end(self, state):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt) as info:
        fit(model, opt, loader, EPOCHS, progress=False,
            callbacks=[TwiceCtrlC(), GracefulInterrupt()])
    assert not isinstance(info.value, TrainingInterrupted)
    assert signal.getsignal(signal.SIGINT) is before


def test_checkpoint_file_holds_weights_by_hand_and_typed_states(tmp_path):
    model, opt, loader, val, cbs = _run("sgd")
    seen = {}

    class Grab(Callback):
        def on_epoch_end(self, state):
            seen["ckpt"] = make_checkpoint(state, config={"note": "x", "t": (1, 2),
                                                          "k": {3: np.float32(0.5)}})

    fit(model, opt, loader, 1, val_loader=val, progress=False, callbacks=[*cbs, Grab()])
    path = write_checkpoint(tmp_path / "c.npz", seen["ckpt"])
    with np.load(path) as archive:
        by_hand = {k[6:]: archive[k] for k in archive.files if k.startswith("model/")}
    assert by_hand.keys() == model.state_dict().keys()
    back = load_checkpoint(path)
    assert back.config == {"note": "x", "t": (1, 2), "k": {3: np.float32(0.5)}}
    assert isinstance(back.config["k"][3], np.float32)
    assert set(back.optimizer["state"]) == set(range(4))  # int keys survive
    assert back.progress["history"] == seen["ckpt"].progress["history"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_unsaveable_state_is_named(tmp_path):
    model, opt, loader, val, cbs = _run("sgd")

    class Bad(Callback):
        def state_dict(self):
            return {"f": print}

        def load_state_dict(self, state):
            pass

        def on_epoch_end(self, state):
            save_checkpoint(tmp_path / "c.npz", state)

    with pytest.raises(TypeError, match="state of Bad.f"):
        fit(model, opt, loader, 1, progress=False, callbacks=[Bad()])
    assert not (tmp_path / "c.npz").exists()


def test_bad_checkpoints_are_refused_with_the_file_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable deepgrad checkpoint"):
        load_checkpoint(junk)
    weights_only = tmp_path / "w.npz"
    np.savez(weights_only, a=np.zeros(2))
    with pytest.raises(ValueError, match="w.npz: not a readable deepgrad checkpoint"):
        load_checkpoint(weights_only)

    model, opt, loader, val, cbs = _run("sgd")
    fit(model, opt, loader, 1, val_loader=val, progress=False,
        callbacks=[*cbs, ModelCheckpoint(tmp_path)])
    model, opt, loader, val, cbs = _run("sgd")
    with pytest.raises(ValueError, match="stateful callbacks"):  # EarlyStopping missing
        fit(model, opt, loader, 2, progress=False, callbacks=cbs[:1],
            resume_from=tmp_path / "checkpoint.npz")
    other = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="does not fit the model"):
        fit(other, SGD(other.parameters(), lr=0.1), loader, 2, progress=False,
            resume_from=tmp_path / "checkpoint.npz")
