"""Tests of deepgrad.training.averaging: Ensemble, AveragedModel/SWA/EMA, update_bn, SWALR.

Oracles: hand computations in NumPy, and torch.optim.swa_utils on the same tiny model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim import swa_utils

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad import nn
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.optim import SGD
from deepgrad.training import Callback, evaluate, fit
from deepgrad.training.averaging import (
    EMA,
    SWA,
    SWALR,
    AveragedModel,
    Ensemble,
    get_ema_avg_fn,
    get_ema_multi_avg_fn,
    get_swa_avg_fn,
    get_swa_multi_avg_fn,
    train_ensemble,
    update_bn,
)


def _dg_net():
    return nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))


def _torch_net(model):
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
                              torch.nn.Linear(5, 3)).double()
    _copy_to_torch(model, net)
    return net


def _copy_to_torch(model, net):
    net.load_state_dict({k: torch.from_numpy(v.data.copy()) for k, v in
                         model.state_dict().items()})


def _perturb(model, rng):
    """Move every parameter and buffer to new values, as a training step would."""
    for _, p in model.named_parameters():
        p.data[...] = p.data + rng.standard_normal(p.shape)
    for name, b in model.named_buffers():
        if name.endswith("num_batches_tracked"):
            b.data[...] = b.data + rng.integers(1, 5)
        else:
            b.data[...] = np.abs(b.data + rng.standard_normal(b.shape))


def _assert_state_equal(dg_state, th_state, rtol=1e-12):
    assert set(dg_state) == set(th_state)
    for k, v in dg_state.items():
        expected = th_state[k].detach().numpy()
        assert v.data.dtype.kind == expected.dtype.kind, k
        np.testing.assert_allclose(v.data, expected, rtol=rtol, atol=1e-14, err_msg=k)


def _loader(n=40, d=4, k=3, bs=8, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, d)), rng.integers(0, k, n)
    return DataLoader(TensorDataset(x, y), batch_size=bs, shuffle=True, seed=seed), (x, y)


# ----------------------------------------------------------------------------- Ensemble


def test_ensemble_averages_probabilities_exactly():
    members = [nn.Linear(4, 3), nn.Linear(4, 3), _dg_net().eval()]
    x = np.random.default_rng(1).standard_normal((6, 4))
    out = Ensemble(members)(dg.tensor(x))

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    probs = np.mean([softmax(m(dg.tensor(x)).data) for m in members], axis=0)
    np.testing.assert_allclose(out.data, np.log(probs), rtol=1e-12, atol=1e-14)
    # cross-entropy of the output is the NLL of the averaged distribution
    y = np.array([0, 1, 2, 0, 1, 2])
    loss = F.cross_entropy(out, dg.tensor(y)).item()
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(6), y])), rel=1e-12)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    ev_loss, ev_acc = evaluate(Ensemble(members), loader)
    assert ev_loss == pytest.approx(loss, rel=1e-12)
    assert ev_acc == pytest.approx(np.mean(probs.argmax(1) == y))


def test_ensemble_of_one_is_the_model_and_bad_members_are_refused():
    m = nn.Linear(4, 3)
    x = dg.randn(5, 4)
    np.testing.assert_allclose(Ensemble([m])(x).data, F.log_softmax(m(x), 1).data, atol=1e-14)
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(TypeError, match="Modules"):
        Ensemble([m, "model"])
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        Ensemble([nn.Flatten(0)])(x)


def test_train_ensemble_trains_one_distinct_member_per_seed():
    loader, (x, y) = _loader()
    seen = []

    class Seen(Callback):
        def on_train_begin(self, state):
            seen.append((state.model, state.optimizer))

    ens, histories = train_ensemble(
        lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)),
        lambda params: SGD(params, lr=0.1), lambda seed: loader, epochs=2, seeds=[3, 4],
        per_member=lambda model, opt: {"callbacks": [Seen()]}, progress=False)
    assert len(ens.members) == 2 and [len(h) for h in histories] == [2, 2]
    assert [m for m, _ in seen] == list(ens.members)
    w0, w1 = (m[0].weight.data for m in ens.members)
    assert not np.allclose(w0, w1)
    with pytest.raises(ValueError, match="distinct"):
        train_ensemble(lambda: nn.Linear(4, 3), lambda p: SGD(p, lr=0.1), loader, 1, [1, 1])


# ----------------------------------------------------------------------------- AveragedModel


AVERAGING_ROWS = [  # (name, deepgrad kwargs, torch kwargs, rtol)
    ("swa", {}, {}, 1e-12),
    ("swa-buffers", {"use_buffers": True}, {"use_buffers": True}, 1e-12),
    ("ema-avg_fn", {"avg_fn": get_ema_avg_fn(0.8)},
     {"avg_fn": swa_utils.get_ema_avg_fn(0.8)}, 1e-12),
    ("ema-multi-buffers", {"multi_avg_fn": get_ema_multi_avg_fn(0.8), "use_buffers": True},
     {"multi_avg_fn": swa_utils.get_ema_multi_avg_fn(0.8), "use_buffers": True}, 1e-12),
    # NOTE: torch's multi SWA computes its lerp weight 1/(n+1) as a float32 tensor.
    ("swa-multi", {"multi_avg_fn": get_swa_multi_avg_fn()},
     {"multi_avg_fn": swa_utils.get_swa_multi_avg_fn()}, 1e-6),
    ("swa-avg_fn", {"avg_fn": get_swa_avg_fn()}, {"avg_fn": swa_utils.get_swa_avg_fn()}, 1e-12),
]


@pytest.mark.parametrize("name,dg_kw,th_kw,rtol", AVERAGING_ROWS,
                         ids=[r[0] for r in AVERAGING_ROWS])
def test_averaged_model_matches_torch_swa_utils(name, dg_kw, th_kw, rtol):
    rng = np.random.default_rng(0)
    model = _dg_net()
    net = _torch_net(model)
    avg, th_avg = AveragedModel(model, **dg_kw), swa_utils.AveragedModel(net, **th_kw)
    for _ in range(4):
        _perturb(model, rng)
        _copy_to_torch(model, net)
        avg.update_parameters(model)
        th_avg.update_parameters(net)
        _assert_state_equal(avg.state_dict(), th_avg.state_dict(), rtol)
    assert int(avg.n_averaged.data) == 4


def test_averaged_model_hand_computation():
    rng = np.random.default_rng(0)
    model = nn.Linear(3, 2)
    swa, ema = AveragedModel(model), AveragedModel(model, avg_fn=get_ema_avg_fn(0.75))
    snapshots, e = [], None
    for _ in range(5):
        _perturb(model, rng)
        snapshots.append(model.weight.data.copy())
        e = snapshots[-1] if e is None else 0.75 * e + 0.25 * snapshots[-1]
        swa.update_parameters(model)
        ema.update_parameters(model)
    np.testing.assert_allclose(swa.module.weight.data, np.mean(snapshots, 0), rtol=1e-12)
    np.testing.assert_allclose(ema.module.weight.data, e, rtol=1e-12)
    # the copy is independent of the model, and forward runs the averaged weights
    x = dg.randn(2, 3)
    np.testing.assert_allclose(swa(x).data, x.data @ np.mean(snapshots, 0).T
                               + swa.module.bias.data, rtol=1e-12)
    with pytest.raises(ValueError, match="match"):
        swa.update_parameters(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="only one"):
        AveragedModel(model, avg_fn=get_swa_avg_fn(), multi_avg_fn=get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="decay"):
        get_ema_avg_fn(1.5)


def test_update_bn_matches_torch():
    rng = np.random.default_rng(2)
    model = _dg_net()
    _perturb(model, rng)
    net = _torch_net(model)
    x = rng.standard_normal((30, 4)) * 3 + 1
    batches = [x[i:i + 8] for i in range(0, 30, 8)]  # uneven last batch
    model.eval()
    net.eval()
    update_bn([(dg.tensor(b), None) for b in batches], model)
    swa_utils.update_bn([(torch.from_numpy(b), None) for b in batches], net)
    _assert_state_equal(model.state_dict(), net.state_dict())
    bn = model[1]
    assert bn.momentum == 0.1 and not model.training
    # cumulative average = the mean of the batch means
    np.testing.assert_allclose(bn.running_mean.data,
                               np.mean([(b @ model[0].weight.data.T + model[0].bias.data)
                                        .mean(0) for b in batches], 0), rtol=1e-12)
    update_bn([dg.tensor(b) for b in batches], nn.Linear(4, 2))  # no BatchNorm: no-op


# ----------------------------------------------------------------------------- callbacks


class _Recorder(Callback):
    def __init__(self):
        self.epochs, self.steps = {}, {}

    def on_batch_end(self, state):
        self.steps[state.step] = state.model[0].weight.data.copy()

    def on_epoch_end(self, state):
        self.epochs[state.epoch] = state.model[0].weight.data.copy()


def _fit(callbacks, epochs=4, bn=False):
    dg.manual_seed(0)
    loader, _ = _loader()
    layers = [nn.Linear(4, 6)] + ([nn.BatchNorm1d(6)] if bn else []) + [nn.ReLU(),
                                                                          nn.Linear(6, 3)]
    model = nn.Sequential(*layers)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    rec = _Recorder()
    history = fit(model, opt, loader, epochs, callbacks=[rec, *callbacks], progress=False)
    return model, rec, history, loader


def test_swa_callback_averages_epoch_ends_from_start_epoch():
    swa = SWA(start_epoch=2)
    _, rec, _, _ = _fit([swa])
    expected = np.mean([rec.epochs[e] for e in (2, 3, 4)], 0)
    np.testing.assert_allclose(swa.module[0].weight.data, expected, rtol=1e-12)
    assert int(swa.averaged_model.n_averaged.data) == 3


def test_swa_callback_every_k_steps_and_constant_lr():
    swa = SWA(start_epoch=3, every_steps=2, swa_lr=0.01)
    _, rec, history, loader = _fit([swa])
    first = 2 * len(loader) + 1  # first step of epoch 3
    steps = [s for s in rec.steps if s >= first and s % 2 == 0]
    np.testing.assert_allclose(swa.module[0].weight.data,
                               np.mean([rec.steps[s] for s in steps], 0), rtol=1e-12)
    assert [h["lr"] for h in history] == [0.1, 0.1, 0.01, 0.01]
    with pytest.raises(ValueError, match="start_epoch"):
        SWA(start_epoch=0)


def test_ema_callback_matches_hand_computation():
    ema = EMA(decay=0.9)
    _, rec, _, _ = _fit([ema], epochs=2)
    e = None
    for s in sorted(rec.steps):
        e = rec.steps[s] if e is None else 0.9 * e + 0.1 * rec.steps[s]
    np.testing.assert_allclose(ema.module[0].weight.data, e, rtol=1e-10)
    with pytest.raises(ValueError, match="every_steps"):
        EMA(every_steps=0)


def test_swa_with_bn_loader_recomputes_batchnorm_statistics():
    loader, _ = _loader()
    swa = SWA(start_epoch=2, bn_loader=loader)
    model, _, _, _ = _fit([swa], epochs=3, bn=True)
    expected = AveragedModel(swa.module)  # a copy with the same averaged weights
    update_bn(loader, expected)
    got = swa.module[1]
    np.testing.assert_allclose(got.running_mean.data, expected.module[1].running_mean.data,
                               rtol=1e-12)
    assert not np.allclose(got.running_mean.data, model[1].running_mean.data)
    assert int(got.num_batches_tracked.data) == len(loader)


# ----------------------------------------------------------------------------- SWALR


@pytest.mark.parametrize("strategy,anneal", [("cos", 3), ("linear", 2), ("cos", 0)])
def test_swalr_matches_torch(strategy, anneal):
    p = nn.Parameter(np.zeros(2))
    opt = SGD([p], lr=0.5)
    th_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.5)
    sched = SWALR(opt, swa_lr=0.05, anneal_epochs=anneal, anneal_strategy=strategy)
    th_sched = swa_utils.SWALR(th_opt, swa_lr=0.05, anneal_epochs=anneal,
                               anneal_strategy=strategy)
    for _ in range(6):
        assert opt.param_groups[0]["lr"] == pytest.approx(th_opt.param_groups[0]["lr"],
                                                          rel=1e-12)
        opt.step()
        th_opt.step()
        sched.step()
        th_sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="anneal_strategy"):
        SWALR(opt, 0.05, anneal_strategy="step")
