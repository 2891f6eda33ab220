"""Learning-rate schedulers against PyTorch: identical lr (and momentum) sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tsched

import deepgrad as dg
from deepgrad import optim
from deepgrad.optim import lr_scheduler as dsched

STEPS = 60


def _optimizers(kind: str = "sgd"):
    """The same two-group optimizer in deepgrad and torch (lrs 0.1 and 0.03)."""
    dps = [dg.tensor(np.ones(2), requires_grad=True) for _ in range(2)]
    tps = [torch.ones(2, requires_grad=True) for _ in range(2)]

    def build(mod, ps):
        groups = [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.03}]
        if kind == "sgd":
            return mod.SGD(groups, lr=0.1, momentum=0.9)
        if kind == "adam":
            return mod.Adam(groups, lr=0.1, betas=(0.9, 0.99))
        return mod.Adagrad(groups, lr=0.1)

    return build(optim, dps), build(torch.optim, tps)


def _snapshot(sched, opt):
    groups = opt.param_groups
    return (list(sched.get_last_lr()), [g["lr"] for g in groups],
            [g.get("momentum") for g in groups], [tuple(g.get("betas", ())) for g in groups])


# (id, factory(module, optimizer), optimizer kind)
SCHEDULES = [
    ("step", lambda m, o: m.StepLR(o, step_size=7, gamma=0.5), "sgd"),
    ("step-default-gamma", lambda m, o: m.StepLR(o, 10), "sgd"),
    ("multistep", lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3), "sgd"),
    ("exponential", lambda m, o: m.ExponentialLR(o, gamma=0.93), "sgd"),
    ("cosine", lambda m, o: m.CosineAnnealingLR(o, T_max=17, eta_min=1e-3), "sgd"),
    ("cosine-Tmax10", lambda m, o: m.CosineAnnealingLR(o, T_max=10), "adam"),
    ("linear-warmup", lambda m, o: m.LinearLR(o, start_factor=0.25, total_iters=8), "sgd"),
    ("linear-decay", lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1,
                                             total_iters=20), "sgd"),
    ("linear-default", lambda m, o: m.LinearLR(o), "sgd"),
    ("lambda", lambda m, o: m.LambdaLR(o, lr_lambda=lambda e: 0.95 ** e), "sgd"),
    ("lambda-per-group", lambda m, o: m.LambdaLR(
        o, lr_lambda=[lambda e: 1.0 / (1 + e), lambda e: min(1.0, (e + 1) / 10)]), "sgd"),
    ("onecycle-cos", lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=STEPS),
     "sgd"),
    ("onecycle-linear", lambda m, o: m.OneCycleLR(o, max_lr=0.4, total_steps=STEPS,
                                                  anneal_strategy="linear"), "sgd"),
    ("onecycle-three-phase", lambda m, o: m.OneCycleLR(
        o, max_lr=0.4, total_steps=STEPS, three_phase=True, pct_start=0.25), "sgd"),
    ("onecycle-betas", lambda m, o: m.OneCycleLR(
        o, max_lr=0.01, epochs=6, steps_per_epoch=10, base_momentum=0.8, max_momentum=0.9),
     "adam"),
    ("onecycle-no-momentum", lambda m, o: m.OneCycleLR(
        o, max_lr=0.3, total_steps=STEPS + 5, cycle_momentum=False, div_factor=10.0,
        final_div_factor=100.0), "adagrad"),
]


@pytest.mark.parametrize("factory,kind", [s[1:] for s in SCHEDULES],
                         ids=[s[0] for s in SCHEDULES])
def test_sequence_matches_torch(factory, kind):
    dopt, topt = _optimizers(kind)
    ds, ts = factory(dsched, dopt), factory(tsched, topt)
    seq_d, seq_t = [_snapshot(ds, dopt)], [_snapshot(ts, topt)]
    for _ in range(STEPS):
        dopt.step()
        topt.step()
        ds.step()
        ts.step()
        seq_d.append(_snapshot(ds, dopt))
        seq_t.append(_snapshot(ts, topt))
    assert seq_d == seq_t  # exact: the same float operations in the same order
    assert ds.last_epoch == ts.last_epoch
    assert [g["initial_lr"] for g in dopt.param_groups] == \
        [g["initial_lr"] for g in topt.param_groups]
    assert ds.base_lrs == ts.base_lrs


@pytest.mark.parametrize("factory,kind", [s[1:] for s in SCHEDULES],
                         ids=[s[0] for s in SCHEDULES])
def test_state_dict_round_trip(factory, kind):
    dopt, _ = _optimizers(kind)
    sched = factory(dsched, dopt)
    for _ in range(20):
        dopt.step()
        sched.step()
    saved_opt, saved = dopt.state_dict(), sched.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 20
    # PyTorch's resume order: build the scheduler, then load the optimizer and the scheduler
    dopt2, _ = _optimizers(kind)
    sched2 = factory(dsched, dopt2)
    dopt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    for _ in range(STEPS - 25):
        for o, s in ((dopt, sched), (dopt2, sched2)):
            o.step()
            s.step()
        assert _snapshot(sched, dopt) == _snapshot(sched2, dopt2)


PLATEAU = [
    ("min-rel", {"patience": 5}, "loss"),
    ("min-patience0", {"patience": 0, "factor": 0.5}, "loss"),
    ("min-abs-cooldown", {"patience": 2, "threshold": 0.05, "threshold_mode": "abs",
                          "cooldown": 3, "factor": 0.5}, "loss"),
    ("min-floor", {"patience": 1, "factor": 0.2, "min_lr": [0.01, 0.005]}, "loss"),
    ("min-eps", {"patience": 1, "factor": 0.9, "min_lr": 0.02, "eps": 1e-3}, "loss"),
    ("max-rel", {"mode": "max", "patience": 2, "threshold": 0.01}, "acc"),
    ("max-abs", {"mode": "max", "patience": 1, "threshold": 0.02, "threshold_mode": "abs",
                 "cooldown": 1}, "acc"),
]


def _metrics(kind: str) -> list[float]:
    """Improvements, exact plateaus, tiny improvements and noise, 60 values."""
    loss = [1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.69999, 0.72, 0.71, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6,
            0.6, 0.6, 0.59, 0.58, 0.58, 0.58, 0.58, 0.58, 0.58, 0.58, 0.58, 0.58, 0.58, 0.5,
            0.45, 0.45, 0.45, 0.45, 0.449, 0.45, 0.46, 0.47, 0.45, 0.45, 0.45, 0.45, 0.45,
            0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3,
            0.3, 0.3]
    return loss if kind == "loss" else [1.0 - v for v in loss]


@pytest.mark.parametrize("kwargs,kind", [p[1:] for p in PLATEAU], ids=[p[0] for p in PLATEAU])
def test_reduce_on_plateau_matches_torch(kwargs, kind):
    dopt, topt = _optimizers()
    ds = dsched.ReduceLROnPlateau(dopt, **kwargs)
    ts = tsched.ReduceLROnPlateau(topt, **kwargs)
    assert ds.get_last_lr() == ts.get_last_lr()
    reductions = 0
    for value in _metrics(kind):
        before = ds.get_last_lr()
        ds.step(value)
        ts.step(torch.tensor(value, dtype=torch.float64))
        reductions += ds.get_last_lr() != before
        assert ds.get_last_lr() == ts.get_last_lr()
        assert [g["lr"] for g in dopt.param_groups] == [g["lr"] for g in topt.param_groups]
        assert (ds.best, ds.num_bad_epochs, ds.cooldown_counter, ds.last_epoch) == \
            (ts.best, ts.num_bad_epochs, ts.cooldown_counter, ts.last_epoch)
    assert reductions >= 1


def test_reduce_on_plateau_state_dict_and_tensor_metric():
    dopt, _ = _optimizers()
    sched = dsched.ReduceLROnPlateau(dopt, patience=1)
    for v in [1.0, 1.0, 1.0]:
        sched.step(dg.tensor(v))
    assert sched.get_last_lr() == pytest.approx([0.01, 0.003])
    saved = sched.state_dict()
    dopt2, _ = _optimizers()
    sched2 = dsched.ReduceLROnPlateau(dopt2, patience=1)
    sched2.load_state_dict(saved)
    assert (sched2.best, sched2.num_bad_epochs, sched2.last_epoch) == (1.0, 0, 3)


def test_onecycle_raises_past_total_steps():
    dopt, _ = _optimizers()
    sched = dsched.OneCycleLR(dopt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="total steps"):
        sched.step()


def test_initial_lr_and_resume_errors():
    dopt, _ = _optimizers()
    with pytest.raises(KeyError, match="initial_lr"):
        dsched.StepLR(dopt, step_size=2, last_epoch=5)
    with pytest.raises(TypeError, match="not an Optimizer"):
        dsched.StepLR(object(), step_size=2)


def _invalid():
    return [
        ("StepLR-step_size", lambda o: dsched.StepLR(o, step_size=0), "step_size"),
        ("Cosine-T_max", lambda o: dsched.CosineAnnealingLR(o, T_max=0), "T_max"),
        ("Linear-start", lambda o: dsched.LinearLR(o, start_factor=0.0), "start_factor"),
        ("Linear-end", lambda o: dsched.LinearLR(o, end_factor=1.5), "end_factor"),
        ("Linear-total", lambda o: dsched.LinearLR(o, total_iters=0), "total_iters"),
        ("Lambda-len", lambda o: dsched.LambdaLR(o, [lambda e: 1.0]), "lr_lambda"),
        ("OneCycle-steps", lambda o: dsched.OneCycleLR(o, max_lr=0.1), "total_steps"),
        ("OneCycle-total", lambda o: dsched.OneCycleLR(o, 0.1, total_steps=0), "total_steps"),
        ("OneCycle-epochs", lambda o: dsched.OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=2),
         "epochs"),
        ("OneCycle-pct", lambda o: dsched.OneCycleLR(o, 0.1, 10, pct_start=1.5), "pct_start"),
        ("OneCycle-anneal", lambda o: dsched.OneCycleLR(o, 0.1, 10, anneal_strategy="exp"),
         "anneal_strategy"),
        ("OneCycle-max_lr", lambda o: dsched.OneCycleLR(o, [0.1], 10), "max_lr"),
        ("OneCycle-momentum", lambda o: dsched.OneCycleLR(
            optim.Adagrad(o.param_groups[0]["params"]), 0.1, 10), "momentum"),
        ("Plateau-factor", lambda o: dsched.ReduceLROnPlateau(o, factor=1.0), "factor"),
        ("Plateau-mode", lambda o: dsched.ReduceLROnPlateau(o, mode="avg"), "mode"),
        ("Plateau-threshold_mode", lambda o: dsched.ReduceLROnPlateau(
            o, threshold_mode="pct"), "threshold_mode"),
        ("Plateau-min_lr", lambda o: dsched.ReduceLROnPlateau(o, min_lr=[0.1]), "min_lr"),
        ("Plateau-patience", lambda o: dsched.ReduceLROnPlateau(o, patience=-1), "patience"),
    ]


@pytest.mark.parametrize("build,name", [c[1:] for c in _invalid()], ids=[c[0] for c in _invalid()])
def test_invalid_arguments_raise_value_error(build, name):
    dopt, _ = _optimizers()
    with pytest.raises(ValueError, match=name):
        build(dopt)


def test_lambda_state_dict_keeps_callable_object_state():
    class Warmup:
        def __init__(self):
            self.scale = 0.5

        def __call__(self, epoch):
            return self.scale * (epoch + 1)

    dopt, _ = _optimizers()
    fn = Warmup()
    sched = dsched.LambdaLR(dopt, [lambda e: 1.0, fn])
    fn.scale = 0.25
    saved = sched.state_dict()
    assert saved["lr_lambdas"] == [None, {"scale": 0.25}]
    other = Warmup()
    sched2 = dsched.LambdaLR(_optimizers()[0], [lambda e: 1.0, other])
    sched2.load_state_dict(saved)
    assert other.scale == 0.25



RESUMED = [
    ("step", lambda m, o: m.StepLR(o, step_size=3, gamma=0.5, last_epoch=4)),
    ("multistep", lambda m, o: m.MultiStepLR(o, [2, 6, 9], gamma=0.3, last_epoch=4)),
    ("exponential", lambda m, o: m.ExponentialLR(o, gamma=0.9, last_epoch=4)),
    ("cosine", lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=1e-3, last_epoch=4)),
    ("linear", lambda m, o: m.LinearLR(o, start_factor=0.5, total_iters=8, last_epoch=4)),
    ("lambda", lambda m, o: m.LambdaLR(o, lambda e: 0.9 ** e, last_epoch=4)),
]


@pytest.mark.parametrize("factory", [r[1] for r in RESUMED], ids=[r[0] for r in RESUMED])
def test_resume_with_last_epoch_matches_torch(factory):
    """last_epoch >= 0 resumes from group["initial_lr"] (cosine takes its closed form once)."""
    dopt, topt = _optimizers()
    for opt in (dopt, topt):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"] * 2.0
    ds, ts = factory(dsched, dopt), factory(tsched, topt)
    assert ds.get_last_lr() == ts.get_last_lr()
    for _ in range(25):
        dopt.step()
        topt.step()
        ds.step()
        ts.step()
        assert ds.get_last_lr() == ts.get_last_lr()
