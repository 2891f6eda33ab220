"""``optim.SGD`` against ``torch.optim.SGD``: 100-step trajectories in float64 (parameters and
``momentum_buffer``), every hyper-parameter combination, parameter groups, state_dict round
trips, argument validation, ``zero_grad`` and ``step(closure)``.

Each library computes its own gradients (deepgrad autograd vs torch autograd) of the same small
tanh-MLP regression loss, so the trajectories agree only if both the gradients and the update
rule do.

``COVERED`` (the optimizer classes with a test) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn, optim

COVERED = {"SGD", "Optimizer"}

STEPS = 100
RTOL = 1e-8


def _models(seed=0):
    torch.manual_seed(seed)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    tm = tm.double()
    dm = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return dm, tm


_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((16, 3))
Y = _RNG.standard_normal((16, 2))


def _dg_loss(dm, step):
    # A different (deterministic) mini-batch each step, like real SGD.
    idx = np.arange(step, step + 8) % 16
    return nn.functional.mse_loss(dm(dg.tensor(X[idx])), dg.tensor(Y[idx]))


def _torch_loss(tm, step):
    idx = np.arange(step, step + 8) % 16
    return torch.nn.functional.mse_loss(tm(torch.tensor(X[idx])), torch.tensor(Y[idx]))


def _groups(model, spec, lib_params):
    """``spec``: None (all parameters, one group) or a list of per-group option dicts that
    split the parameters in order (first group: first layer)."""
    params = list(lib_params(model))
    if spec is None:
        return params
    return [dict(params=params[:2], **spec[0]), dict(params=params[2:], **spec[1])]


def _assert_same_state(dm, dopt, tm, topt, what):
    for (name, p), tp in zip(dm.named_parameters(), tm.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=RTOL, atol=1e-12,
                                   err_msg=f"{what}: parameter {name}")
        tbuf = topt.state.get(tp, {}).get("momentum_buffer")
        dbuf = dopt.state.get(p, {}).get("momentum_buffer")
        assert (tbuf is None) == (dbuf is None), f"{what}: momentum_buffer presence of {name}"
        if tbuf is not None:
            np.testing.assert_allclose(dbuf.data, tbuf.numpy(), rtol=RTOL, atol=1e-12,
                                       err_msg=f"{what}: momentum_buffer of {name}")


def _run(dm, dopt, tm, topt, steps, start=0, maximize_sign=1.0):
    for s in range(start, start + steps):
        dopt.zero_grad()
        (_dg_loss(dm, s) * maximize_sign).backward()
        dopt.step()
        topt.zero_grad()
        (_torch_loss(tm, s) * maximize_sign).backward()
        topt.step()


CONFIGS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "momentum_dampening": dict(lr=0.05, momentum=0.9, dampening=0.5),
    "weight_decay": dict(lr=0.1, weight_decay=0.01),
    "momentum_weight_decay": dict(lr=0.05, momentum=0.8, weight_decay=0.05),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "nesterov_weight_decay": dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=1e-3),
    "maximize": dict(lr=0.1, maximize=True),
    "maximize_momentum_wd_dampening": dict(lr=0.05, momentum=0.9, dampening=0.1,
                                           weight_decay=0.01, maximize=True),
    "lr_zero": dict(lr=0.0, momentum=0.9),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_trajectory_matches_torch(name):
    kw = CONFIGS[name]
    dm, tm = _models()
    dopt = optim.SGD(dm.parameters(), **kw)
    topt = torch.optim.SGD(tm.parameters(), **kw)
    sign = -1.0 if kw.get("maximize") else 1.0  # maximize(-loss) descends the loss
    _run(dm, dopt, tm, topt, STEPS, maximize_sign=sign)
    _assert_same_state(dm, dopt, tm, topt, name)
    if kw["lr"] > 0:
        start = _dg_loss(_models()[0], 0).item()
        assert _dg_loss(dm, 0).item() < start  # it did optimize


GROUPS = {
    "two_groups_defaults_fill_in": (dict(lr=0.1, momentum=0.5),
                                    [dict(lr=0.02), dict(momentum=0.9, nesterov=True)]),
    "two_groups_mixed": (dict(lr=0.05), [dict(momentum=0.9, dampening=0.3, weight_decay=0.1),
                                         dict(lr=0.2, weight_decay=0.0)]),
}


@pytest.mark.parametrize("name", list(GROUPS))
def test_param_groups_trajectory_matches_torch(name):
    defaults, spec = GROUPS[name]
    dm, tm = _models(1)
    dopt = optim.SGD(_groups(dm, spec, nn.Module.parameters), **defaults)
    topt = torch.optim.SGD(_groups(tm, spec, torch.nn.Module.parameters), **defaults)
    assert len(dopt.param_groups) == 2
    for dgp, tgp in zip(dopt.param_groups, topt.param_groups):
        for key in ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"):
            assert dgp[key] == tgp[key], key
    _run(dm, dopt, tm, topt, STEPS)
    _assert_same_state(dm, dopt, tm, topt, name)


def test_changing_lr_in_param_groups_mid_run_matches_torch():
    dm, tm = _models(2)
    dopt = optim.SGD(dm.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    _run(dm, dopt, tm, topt, 30)
    for g in dopt.param_groups + topt.param_groups:
        g["lr"] = 0.01
    _run(dm, dopt, tm, topt, 30, start=30)
    _assert_same_state(dm, dopt, tm, topt, "lr change")


def test_parameters_without_grad_are_skipped_like_torch():
    dm, tm = _models(3)
    dopt = optim.SGD(dm.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    for s in range(5):
        dopt.zero_grad()
        _dg_loss(dm, s).backward()
        list(dm.parameters())[0].grad = None  # the first weight gets no gradient
        dopt.step()
        topt.zero_grad()
        _torch_loss(tm, s).backward()
        list(tm.parameters())[0].grad = None
        topt.step()
    _assert_same_state(dm, dopt, tm, topt, "skip")


@pytest.mark.parametrize("name", ["momentum", "nesterov_weight_decay", "plain"])
def test_state_dict_round_trip_continues_identically(name):
    kw = CONFIGS[name]
    ref_m, _ = _models(4)
    ref_opt = optim.SGD(ref_m.parameters(), **kw)
    m, _ = _models(4)
    opt = optim.SGD(m.parameters(), **kw)
    for s in range(STEPS // 2):
        for model, o in ((ref_m, ref_opt), (m, opt)):
            o.zero_grad()
            _dg_loss(model, s).backward()
            o.step()
    saved_model = copy.deepcopy({k: v.data.copy() for k, v in m.state_dict().items()})
    saved_opt = copy.deepcopy(opt.state_dict())
    del m, opt
    m2, _ = _models(99)  # different weights, overwritten by the checkpoint
    m2.load_state_dict(saved_model)
    opt2 = optim.SGD(m2.parameters(), lr=123.0)  # hyper-parameters come from the checkpoint
    opt2.load_state_dict(saved_opt)
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    for s in range(STEPS // 2, STEPS):
        for model, o in ((ref_m, ref_opt), (m2, opt2)):
            o.zero_grad()
            _dg_loss(model, s).backward()
            o.step()
    for (name_, p), q in zip(ref_m.named_parameters(), m2.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name_)
        a = ref_opt.state.get(p, {}).get("momentum_buffer")
        b = opt2.state.get(q, {}).get("momentum_buffer")
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a.data, b.data)
            assert not np.shares_memory(b.data, saved_opt["state"][0]["momentum_buffer"])


def test_state_dict_layout_matches_torch():
    dm, tm = _models(5)
    dopt = optim.SGD(_groups(dm, [dict(lr=0.1), dict(lr=0.2)], nn.Module.parameters), lr=0.1,
                     momentum=0.9)
    topt = torch.optim.SGD(_groups(tm, [dict(lr=0.1), dict(lr=0.2)],
                                   torch.nn.Module.parameters), lr=0.1, momentum=0.9)
    _run(dm, dopt, tm, topt, 2)
    dsd, tsd = dopt.state_dict(), topt.state_dict()
    assert set(dsd) == set(tsd) == {"state", "param_groups"}
    assert sorted(dsd["state"]) == sorted(tsd["state"])
    for k in tsd["state"]:
        assert set(dsd["state"][k]) == set(tsd["state"][k]) == {"momentum_buffer"}
        np.testing.assert_allclose(np.asarray(dsd["state"][k]["momentum_buffer"]),
                                   tsd["state"][k]["momentum_buffer"].numpy(), rtol=RTOL)
    assert [g["params"] for g in dsd["param_groups"]] == [g["params"] for g in
                                                           tsd["param_groups"]]


def test_load_state_dict_group_mismatch_raises():
    dm, _ = _models()
    opt = optim.SGD(_groups(dm, [dict(), dict()], nn.Module.parameters), lr=0.1)
    single = optim.SGD(dm.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="parameter groups"):
        single.load_state_dict(opt.state_dict())


BAD_ARGS = [
    ("negative_lr", dict(lr=-0.1), "learning rate"),
    ("negative_momentum", dict(lr=0.1, momentum=-0.5), "momentum"),
    ("negative_weight_decay", dict(lr=0.1, weight_decay=-1e-4), "weight_decay"),
    ("nesterov_without_momentum", dict(lr=0.1, nesterov=True), "Nesterov"),
    ("nesterov_with_dampening", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "Nesterov"),
]


@pytest.mark.parametrize("kw,pattern", [(k, p) for _, k, p in BAD_ARGS],
                         ids=[n for n, _, _ in BAD_ARGS])
def test_invalid_arguments_raise_value_error_like_torch(kw, pattern):
    dm, tm = _models()
    with pytest.raises(ValueError):
        torch.optim.SGD(tm.parameters(), **kw)
    with pytest.raises(ValueError, match=pattern):
        optim.SGD(dm.parameters(), **kw)


def test_invalid_group_arguments_raise():
    dm, _ = _models()
    params = list(dm.parameters())
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([dict(params=params[:2]), dict(params=params[2:], lr=-1.0)], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([dict(params=params[:2]), dict(params=params[1:])], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="Tensor"):
        optim.SGD(params[0], lr=0.1)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    dm, _ = _models()
    opt = optim.SGD(dm.parameters(), lr=0.1)
    _dg_loss(dm, 0).backward()
    grads = [p.grad for p in dm.parameters()]
    opt.zero_grad(set_to_none=set_to_none)
    for p, g in zip(dm.parameters(), grads):
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad is g and not np.any(p.grad.data)


def test_zero_grad_default_is_set_to_none_like_torch():
    dm, _ = _models()
    opt = optim.SGD(dm.parameters(), lr=0.1)
    _dg_loss(dm, 0).backward()
    opt.zero_grad()
    assert all(p.grad is None for p in dm.parameters())


def test_step_with_closure_returns_the_loss_and_matches_torch():
    dm, tm = _models(6)
    dopt = optim.SGD(dm.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    calls = []

    def dclosure():
        calls.append(dg.is_grad_enabled())
        dopt.zero_grad()
        loss = _dg_loss(dm, 0)
        loss.backward()
        return loss

    def tclosure():
        topt.zero_grad()
        loss = _torch_loss(tm, 0)
        loss.backward()
        return loss

    for _ in range(10):
        with dg.no_grad():  # the closure still records the graph
            dl = dopt.step(dclosure)
        tl = topt.step(tclosure)
        np.testing.assert_allclose(dl.item(), tl.item(), rtol=RTOL)
    assert calls == [True] * 10
    _assert_same_state(dm, dopt, tm, topt, "closure")
    assert dopt.step() is None  # no closure, no loss


def test_step_updates_in_place():
    dm, _ = _models()
    opt = optim.SGD(dm.parameters(), lr=0.1, momentum=0.9)
    arrays = [p.data for p in dm.parameters()]
    _dg_loss(dm, 0).backward()
    opt.step()
    assert all(p.data is a for p, a in zip(dm.parameters(), arrays))


@pytest.mark.default_dtype("float32")
def test_float32_parameters_stay_float32():
    m = nn.Linear(3, 2)
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        opt.zero_grad()
        m(dg.ones(4, 3)).sum().backward()
        opt.step()
    assert m.weight.dtype == np.float32
    assert opt.state[m.weight]["momentum_buffer"].dtype == np.float32


def test_repr_lists_groups():
    dm, _ = _models()
    text = repr(optim.SGD(dm.parameters(), lr=0.1, momentum=0.9))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "momentum: 0.9" in text
