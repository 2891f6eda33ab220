"""Tests of fit's closure-based optimizers, gradient clipping, regularizer, and the plateau
schedule driven by LRSchedulerCallback."""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad import nn
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.nn.regularization import l1_penalty
from deepgrad.optim import LBFGS, SGD, NewtonCG
from deepgrad.optim.lr_scheduler import ReduceLROnPlateau
from deepgrad.training import LRSchedulerCallback, NonFiniteLossError, fit


def _blobs(n=300, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 2
    y = rng.integers(0, k, n)
    x = (centres[y] + rng.standard_normal((n, d))).astype(np.float32)
    return x, y.astype(np.int64)


def _model(seed=0):
    dg.manual_seed(seed)
    return nn.Linear(6, 3)


def _full_batch(n=300):
    x, y = _blobs(n)
    return DataLoader(TensorDataset(x, y), batch_size=n)


def _weights(model):
    return np.concatenate([p.data.ravel() for p in model.parameters()])


@pytest.mark.parametrize("make", [lambda ps: LBFGS(ps, line_search_fn="strong_wolfe"),
                                  lambda ps: NewtonCG(ps)])
def test_closure_optimizers_minimise_a_full_batch_loss(make):
    model = _model()
    opt = make(model.parameters())
    history = fit(model, opt, _full_batch(), epochs=3, progress=False)
    losses = [h["train_loss"] for h in history]
    assert losses[1] < 0.5 * losses[0] and losses[2] <= losses[1]
    assert history[-1]["train_acc"] > 0.9


def test_newton_closure_returns_the_graph_and_leaves_grad_alone():
    model = _model()
    fit(model, NewtonCG(model.parameters()), _full_batch(), epochs=1, progress=False)
    # the "graph" closure never calls backward(): Newton-CG differentiates the loss itself
    assert all(p.grad is None for p in model.parameters())


def test_the_closure_recomputes_the_loss_on_the_current_batch():
    x, y = _blobs(100)
    seen = []

    def loss_fn(out, target):
        seen.append(len(target))
        return F.cross_entropy(out, target)

    model = _model()
    loader = DataLoader(TensorDataset(x, y), batch_size=40)  # 40, 40, 20
    history = fit(model, LBFGS(model.parameters(), max_iter=3), loader, epochs=1,
                  loss_fn=loss_fn, progress=False)
    assert len(seen) > 3 and set(seen) == {40, 20}
    assert seen[-1] == 20  # the last step's evaluations are all on the last batch
    assert history[0]["train_loss"] > 0


def test_a_backward_closure_gives_sgd_the_same_steps():
    results = []
    for closure in (None, "backward"):
        model = _model()
        loader = DataLoader(TensorDataset(*_blobs()), batch_size=32, shuffle=True, seed=0)
        fit(model, SGD(model.parameters(), lr=0.1, momentum=0.9), loader, epochs=2,
            progress=False, closure=closure)
        results.append(_weights(model))
    np.testing.assert_array_equal(results[0], results[1])


def test_clip_grad_norm_bounds_every_update():
    model = _model()
    before = _weights(model)
    fit(model, SGD(model.parameters(), lr=1.0), _full_batch(), epochs=1, progress=False,
        clip_grad_norm=1e-3)
    assert np.linalg.norm(_weights(model) - before) <= 1e-3 * (1 + 1e-5)


def test_regularizer_is_minimised_but_not_reported():
    plain, penalised = _model(), _model()
    start = _weights(plain)
    h_plain = fit(plain, SGD(plain.parameters(), lr=0.1), _full_batch(), epochs=1,
                  progress=False)
    params = list(penalised.parameters())
    h_pen = fit(penalised, SGD(params, lr=0.1), _full_batch(), epochs=1, progress=False,
                regularizer=lambda: 0.05 * l1_penalty(params))
    # the history's loss is the data loss (comparable with val_loss), not data + penalty
    assert h_pen[0]["train_loss"] == h_plain[0]["train_loss"]
    # one step: the penalty's gradient 0.05 * sign(w) is added to the data gradient
    np.testing.assert_allclose(_weights(penalised),
                               _weights(plain) - 0.1 * 0.05 * np.sign(start), atol=1e-7)


def test_bad_closure_and_clip_values_are_refused():
    model = _model()
    with pytest.raises(ValueError, match="closure"):
        fit(model, SGD(model.parameters(), lr=0.1), _full_batch(), 1, closure="grad")
    for bad in (0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="clip_grad_norm"):
            fit(model, SGD(model.parameters(), lr=0.1), _full_batch(), 1, clip_grad_norm=bad)
    with pytest.raises(ValueError, match="NewtonCG"):
        fit(model, NewtonCG(model.parameters()), _full_batch(), 1, clip_grad_norm=1.0)


def test_divergence_of_a_closure_optimizer_is_reported():
    model = _model()
    x, y = _blobs()
    x[0, 0] = np.nan
    loader = DataLoader(TensorDataset(x, y), batch_size=300)
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 1/1.*check the inputs"):
        fit(model, LBFGS(model.parameters()), loader, epochs=1, progress=False)


def test_plateau_schedule_steps_on_the_monitored_metric():
    model = _model()
    opt = SGD(model.parameters(), lr=1e-4)  # the loss barely moves: every epoch is bad
    plateau = ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.5)
    history = fit(model, opt, _full_batch(), epochs=4, progress=False,
                  callbacks=[LRSchedulerCallback(plateau, "epoch", monitor="train_loss")])
    assert [h["lr"] for h in history] == pytest.approx([1e-4, 1e-4, 5e-5, 2.5e-5])


def test_plateau_schedule_needs_a_metric_that_exists():
    model = _model()
    opt = SGD(model.parameters(), lr=0.1)
    plateau = ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="monitor"):
        LRSchedulerCallback(plateau, "epoch")
    with pytest.raises(ValueError, match="interval='epoch'"):
        LRSchedulerCallback(plateau, "step", monitor="train_loss")
    callback = LRSchedulerCallback(plateau, "epoch", monitor="val_loss")
    with pytest.raises(ValueError, match="'val_loss' is missing.*no val_loader"):
        fit(model, opt, _full_batch(), epochs=1, progress=False, callbacks=[callback])
