"""Adaptive first-order optimizers against PyTorch (float64), table-driven.

Each row trains the same small tanh network from the same weights on the same noisy
mini-batches for 100 steps in deepgrad and in torch, then compares every parameter and every
state buffer. ``COVERED`` (the classes with a row) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import optim

STEPS = 100
RTOL, ATOL = 1e-8, 1e-12

# (id, deepgrad class, torch class, kwargs shared by both)
CASES = [
    ("adagrad", optim.Adagrad, torch.optim.Adagrad, {}),
    ("adagrad-lr", optim.Adagrad, torch.optim.Adagrad, {"lr": 0.1}),
    ("adagrad-lr_decay", optim.Adagrad, torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.05}),
    ("adagrad-wd", optim.Adagrad, torch.optim.Adagrad, {"weight_decay": 0.1}),
    ("adagrad-init_acc", optim.Adagrad, torch.optim.Adagrad,
     {"initial_accumulator_value": 0.5, "eps": 1e-3}),
    ("adagrad-max", optim.Adagrad, torch.optim.Adagrad, {"maximize": True, "weight_decay": 0.1}),
    ("adadelta", optim.Adadelta, torch.optim.Adadelta, {}),
    ("adadelta-rho", optim.Adadelta, torch.optim.Adadelta, {"rho": 0.5, "lr": 0.5, "eps": 1e-4}),
    ("adadelta-wd", optim.Adadelta, torch.optim.Adadelta, {"weight_decay": 0.1}),
    ("adadelta-max", optim.Adadelta, torch.optim.Adadelta, {"maximize": True}),
    ("rmsprop", optim.RMSprop, torch.optim.RMSprop, {}),
    ("rmsprop-alpha", optim.RMSprop, torch.optim.RMSprop, {"alpha": 0.9, "eps": 1e-6}),
    ("rmsprop-centered", optim.RMSprop, torch.optim.RMSprop, {"centered": True, "lr": 1e-3}),
    ("rmsprop-momentum", optim.RMSprop, torch.optim.RMSprop, {"momentum": 0.9, "lr": 1e-3}),
    ("rmsprop-centered-momentum-wd", optim.RMSprop, torch.optim.RMSprop,
     {"centered": True, "momentum": 0.5, "weight_decay": 0.1, "lr": 1e-3}),
    ("rmsprop-max", optim.RMSprop, torch.optim.RMSprop, {"maximize": True, "momentum": 0.5}),
    ("adam", optim.Adam, torch.optim.Adam, {}),
    ("adam-lr", optim.Adam, torch.optim.Adam, {"lr": 1e-2}),
    ("adam-amsgrad", optim.Adam, torch.optim.Adam, {"amsgrad": True, "lr": 1e-2}),
    ("adam-wd", optim.Adam, torch.optim.Adam, {"weight_decay": 0.1, "lr": 1e-2}),
    ("adam-amsgrad-wd", optim.Adam, torch.optim.Adam,
     {"amsgrad": True, "weight_decay": 0.1, "lr": 1e-2}),
    # beta1 = 0.4: lerp weight 0.6 takes torch's other lerp branch
    ("adam-betas", optim.Adam, torch.optim.Adam, {"betas": (0.4, 0.9), "eps": 1e-6}),
    ("adam-max", optim.Adam, torch.optim.Adam, {"maximize": True, "amsgrad": True}),
    ("adam-decoupled", optim.Adam, torch.optim.Adam,
     {"decoupled_weight_decay": True, "weight_decay": 0.1, "lr": 1e-2}),
    ("adamw", optim.AdamW, torch.optim.AdamW, {}),
    ("adamw-wd", optim.AdamW, torch.optim.AdamW, {"weight_decay": 0.5, "lr": 1e-2}),
    ("adamw-amsgrad", optim.AdamW, torch.optim.AdamW, {"amsgrad": True, "lr": 1e-2}),
    ("adamw-max", optim.AdamW, torch.optim.AdamW, {"maximize": True, "weight_decay": 0.1}),
    ("nadam", optim.NAdam, torch.optim.NAdam, {}),
    ("nadam-wd", optim.NAdam, torch.optim.NAdam, {"weight_decay": 0.1}),
    ("nadam-decoupled", optim.NAdam, torch.optim.NAdam,
     {"weight_decay": 0.1, "decoupled_weight_decay": True, "lr": 1e-2}),
    ("nadam-psi-betas", optim.NAdam, torch.optim.NAdam,
     {"momentum_decay": 0.05, "betas": (0.8, 0.99)}),
    ("nadam-max", optim.NAdam, torch.optim.NAdam, {"maximize": True}),
]
# read by tests/test_coverage.py: the optimizer classes with a parity row
COVERED = {c[1].__name__ for c in CASES}
CLASSES = [(optim.Adagrad, torch.optim.Adagrad), (optim.Adadelta, torch.optim.Adadelta),
           (optim.RMSprop, torch.optim.RMSprop), (optim.Adam, torch.optim.Adam),
           (optim.AdamW, torch.optim.AdamW), (optim.NAdam, torch.optim.NAdam)]


@pytest.fixture(autouse=True)
def _float64():
    prev_dg, prev_torch = dg.get_default_dtype(), torch.get_default_dtype()
    dg.set_default_dtype("float64")
    torch.set_default_dtype(torch.float64)  # NOTE: torch's step/mu_product follow it
    yield
    dg.set_default_dtype(prev_dg)
    torch.set_default_dtype(prev_torch)


def _problem(seed: int = 0):
    """Initial weights (W1, b1, W2, b2, unused) and STEPS noisy regression batches."""
    rng = np.random.default_rng(seed)
    init = [rng.normal(0, 0.5, (8, 4)), rng.normal(0, 0.1, 8), rng.normal(0, 0.5, (3, 8)),
            rng.normal(0, 0.1, 3), rng.normal(0, 1.0, 5)]
    w_true = rng.normal(0, 1.0, (3, 4))
    xs = rng.normal(0, 1.0, (STEPS, 16, 4))
    ys = np.tanh(xs @ w_true.T) + 0.1 * rng.normal(0, 1.0, (STEPS, 16, 3))
    return init, xs, ys


def _loss(params, x, y, sign: float):
    w1, b1, w2, b2 = params[:4]
    out = (x @ w1.T + b1).tanh() @ w2.T + b2
    return ((out - y) ** 2).mean() * sign


def _run_dg(opt, params, xs, ys, steps, sign):
    for k in range(steps):
        opt.zero_grad()
        _loss(params, dg.tensor(xs[k]), dg.tensor(ys[k]), sign).backward()
        opt.step()


def _run_torch(opt, params, xs, ys, steps, sign):
    for k in range(steps):
        opt.zero_grad()
        _loss(params, torch.tensor(xs[k]), torch.tensor(ys[k]), sign).backward()
        opt.step()


def _state_arrays(state: dict) -> dict:
    out = {}
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().numpy()
        elif isinstance(v, dg.Tensor):
            out[k] = v.data
        else:
            out[k] = np.asarray(v, dtype=np.float64)
    return out


def _assert_match(dopt, dparams, topt, tparams):
    for i, (dp, tp) in enumerate(zip(dparams, tparams)):
        np.testing.assert_allclose(dp.data, tp.detach().numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"param {i}")
        ds, ts = _state_arrays(dopt.state.get(dp, {})), _state_arrays(topt.state.get(tp, {}))
        assert set(ds) == set(ts), f"param {i}: state {sorted(ds)} vs torch {sorted(ts)}"
        for k in ds:
            np.testing.assert_allclose(ds[k], ts[k], rtol=RTOL, atol=ATOL,
                                       err_msg=f"param {i} state {k}")


def _pair(dcls, tcls, kwargs, groups=None):
    init, xs, ys = _problem()
    dparams = [dg.tensor(a, requires_grad=True) for a in init]
    tparams = [torch.tensor(a, requires_grad=True) for a in init]
    if groups is None:
        dopt, topt = dcls(dparams, **kwargs), tcls(tparams, **kwargs)
    else:
        dopt = dcls([dict(g, params=[dparams[i] for i in g["params"]]) for g in groups],
                    **kwargs)
        topt = tcls([dict(g, params=[tparams[i] for i in g["params"]]) for g in groups],
                    **kwargs)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    return dopt, dparams, topt, tparams, xs, ys, sign


@pytest.mark.parametrize("dcls,tcls,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_torch_100_steps(dcls, tcls, kwargs):
    dopt, dparams, topt, tparams, xs, ys, sign = _pair(dcls, tcls, kwargs)
    _run_dg(dopt, dparams, xs, ys, STEPS, sign)
    _run_torch(topt, tparams, xs, ys, STEPS, sign)
    _assert_match(dopt, dparams, topt, tparams)
    # the run actually moved the weights
    assert not np.allclose(dparams[0].data, _problem()[0][0])


@pytest.mark.parametrize("dcls,tcls", CLASSES, ids=[c[0].__name__ for c in CLASSES])
def test_param_groups_match_torch(dcls, tcls):
    groups = [{"params": [0, 1]}, {"params": [2, 3], "lr": 3e-3, "weight_decay": 0.05}]
    dopt, dparams, topt, tparams, xs, ys, sign = _pair(dcls, tcls, {}, groups)
    _run_dg(dopt, dparams, xs, ys, 30, sign)
    _run_torch(topt, tparams, xs, ys, 30, sign)
    _assert_match(dopt, dparams, topt, tparams)
    # our group keys are a subset of torch's (torch adds foreach, fused, ...)
    for dgroup, tgroup in zip(dopt.state_dict()["param_groups"],
                              topt.state_dict()["param_groups"]):
        assert set(dgroup) <= set(tgroup), set(dgroup) - set(tgroup)


@pytest.mark.parametrize("dcls,tcls,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_state_dict_round_trip_mid_run(dcls, tcls, kwargs):
    dopt, dparams, _, _, xs, ys, sign = _pair(dcls, tcls, kwargs)
    _run_dg(dopt, dparams, xs, ys, 40, sign)
    saved = dopt.state_dict()
    clones = [dg.tensor(p.data.copy(), requires_grad=True) for p in dparams]
    other = dcls(clones, **kwargs)
    other.load_state_dict(saved)
    # the saved dict is a snapshot: later steps of the original do not change it
    before = {i: {k: np.array(v, copy=True) for k, v in s.items()}
              for i, s in saved["state"].items()}
    _run_dg(dopt, dparams, xs[40:], ys[40:], 60, sign)
    _run_dg(other, clones, xs[40:], ys[40:], 60, sign)
    for i, s in saved["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(np.asarray(v), before[i][k])
    for p, q in zip(dparams, clones):
        np.testing.assert_array_equal(p.data, q.data)
    for p, q in zip(dparams, clones):
        a, b = _state_arrays(dopt.state.get(p, {})), _state_arrays(other.state.get(q, {}))
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("dcls,tcls", CLASSES, ids=[c[0].__name__ for c in CLASSES])
def test_state_dict_layout_matches_torch(dcls, tcls):
    dopt, dparams, topt, tparams, xs, ys, sign = _pair(dcls, tcls, {})
    _run_dg(dopt, dparams, xs, ys, 2, sign)
    _run_torch(topt, tparams, xs, ys, 2, sign)
    dsd, tsd = dopt.state_dict(), topt.state_dict()
    assert sorted(dsd["state"]) == sorted(tsd["state"])
    for i in dsd["state"]:
        assert set(dsd["state"][i]) == set(tsd["state"][i])
        assert dsd["state"][i]["step"] == float(tsd["state"][i]["step"])
        assert dsd["state"][i]["step"] in ((0, 2) if i == 4 else (2,))  # 4: never has a grad


def test_closure_returns_loss_and_matches_torch():
    dopt, dparams, topt, tparams, xs, ys, _ = _pair(optim.Adam, torch.optim.Adam, {"lr": 1e-2})
    for k in range(10):
        def dclosure(k=k):
            dopt.zero_grad()
            loss = _loss(dparams, dg.tensor(xs[k]), dg.tensor(ys[k]), 1.0)
            loss.backward()
            return loss

        def tclosure(k=k):
            topt.zero_grad()
            loss = _loss(tparams, torch.tensor(xs[k]), torch.tensor(ys[k]), 1.0)
            loss.backward()
            return loss

        dl, tl = dopt.step(dclosure), topt.step(tclosure)
        assert float(dl.item()) == pytest.approx(float(tl.item()), rel=1e-10)
    _assert_match(dopt, dparams, topt, tparams)


def test_adagrad_state_exists_before_first_step():
    p = dg.tensor(np.ones(3), requires_grad=True)
    opt = optim.Adagrad([p], initial_accumulator_value=0.25)
    sd = opt.state_dict()["state"][0]
    assert sd["step"] == 0
    np.testing.assert_array_equal(sd["sum"], np.full(3, 0.25))


def test_adamw_keeps_decoupled_after_load():
    p = dg.tensor(np.ones(3), requires_grad=True)
    opt = optim.AdamW([p])
    sd = opt.state_dict()
    sd["param_groups"][0]["decoupled_weight_decay"] = False
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    assert optim.AdamW([p]).defaults["weight_decay"] == 1e-2


@pytest.mark.parametrize("dcls", [c[0] for c in CLASSES], ids=[c[0].__name__ for c in CLASSES])
def test_float32_params_stay_float32(dcls):
    p = dg.tensor(np.linspace(-1, 1, 6).astype(np.float32), requires_grad=True)
    opt = dcls([p], lr=np.float32(1e-2), weight_decay=0.1)  # NumPy scalars are accepted
    for k in range(3):
        opt.param_groups[0]["lr"] = np.float64(1e-2 / (k + 1))  # as a schedule may store
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    assert p.data.dtype == np.float32
    assert all(v.data.dtype == np.float32 for v in opt.state[p].values()
               if isinstance(v, dg.Tensor))


ALLOC_CASES = [(optim.Adagrad, {"weight_decay": 0.1}), (optim.Adadelta, {"maximize": True}),
               (optim.RMSprop, {"centered": True, "momentum": 0.9}),
               (optim.Adam, {"amsgrad": True, "weight_decay": 0.1}),
               (optim.AdamW, {}), (optim.NAdam, {"weight_decay": 0.1})]


@pytest.mark.parametrize("dcls,kwargs", ALLOC_CASES, ids=[c[0].__name__ for c in ALLOC_CASES])
def test_step_allocates_no_param_sized_arrays(dcls, kwargs):
    n = 200_000
    p = dg.tensor(np.linspace(-1, 1, n), requires_grad=True)
    p.grad = dg.tensor(np.linspace(1, 2, n))
    opt = dcls([p], **kwargs)
    opt.step()  # first step creates the state and the scratch arrays
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < p.data.nbytes // 4, f"step allocated {peak} bytes"


def test_params_without_grad_are_skipped():
    a = dg.tensor(np.ones(2), requires_grad=True)
    b = dg.tensor(np.ones(2), requires_grad=True)
    a.grad = dg.tensor(np.array([1.0, -1.0]))
    opt = optim.Adam([a, b], lr=0.1)
    opt.step()
    assert b not in opt.state
    np.testing.assert_array_equal(b.data, np.ones(2))
    np.testing.assert_allclose(a.data, [0.9, 1.1])


INVALID = [
    (optim.Adagrad, {"lr": -1.0}, "lr"),
    (optim.Adagrad, {"lr_decay": -0.1}, "lr_decay"),
    (optim.Adagrad, {"weight_decay": -0.1}, "weight_decay"),
    (optim.Adagrad, {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
    (optim.Adagrad, {"eps": -1e-10}, "eps"),
    (optim.Adadelta, {"lr": -1.0}, "lr"),
    (optim.Adadelta, {"rho": 1.5}, "rho"),
    (optim.Adadelta, {"rho": -0.1}, "rho"),
    (optim.Adadelta, {"eps": -1.0}, "eps"),
    (optim.Adadelta, {"weight_decay": -1.0}, "weight_decay"),
    (optim.RMSprop, {"lr": -1.0}, "lr"),
    (optim.RMSprop, {"alpha": -0.5}, "alpha"),
    (optim.RMSprop, {"eps": -1.0}, "eps"),
    (optim.RMSprop, {"momentum": -0.9}, "momentum"),
    (optim.RMSprop, {"weight_decay": -1.0}, "weight_decay"),
    (optim.Adam, {"lr": -1e-3}, "lr"),
    (optim.Adam, {"lr": "fast"}, "lr"),
    (optim.Adam, {"eps": -1.0}, "eps"),
    (optim.Adam, {"betas": (1.0, 0.999)}, r"betas\[0\]"),
    (optim.Adam, {"betas": (0.9, -0.1)}, r"betas\[1\]"),
    (optim.Adam, {"betas": (0.9,)}, "betas"),
    (optim.Adam, {"weight_decay": -1.0}, "weight_decay"),
    (optim.AdamW, {"weight_decay": -1.0}, "weight_decay"),
    (optim.AdamW, {"betas": (0.9, 1.0)}, r"betas\[1\]"),
    (optim.NAdam, {"lr": -1.0}, "lr"),
    (optim.NAdam, {"betas": (-0.1, 0.9)}, r"betas\[0\]"),
    (optim.NAdam, {"momentum_decay": -1.0}, "momentum_decay"),
    (optim.NAdam, {"eps": -1.0}, "eps"),
    (optim.NAdam, {"weight_decay": float("nan")}, "weight_decay"),
]


@pytest.mark.parametrize("dcls,kwargs,name", INVALID,
                         ids=[f"{c.__name__}-{n}" for c, _, n in INVALID])
def test_invalid_arguments_raise_value_error(dcls, kwargs, name):
    p = dg.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=name):
        dcls([p], **kwargs)
    # the same check guards groups added later
    opt = dcls([dg.tensor(np.ones(2), requires_grad=True)])
    with pytest.raises(ValueError, match=name):
        opt.add_param_group(dict(kwargs, params=[p]))
