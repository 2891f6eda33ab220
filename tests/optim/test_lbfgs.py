"""optim.LBFGS against torch.optim.LBFGS: same iterates, step by step, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn, optim

# Read by tests/test_coverage.py: the optimizer these tests check against PyTorch/scipy.
COVERED = {"LBFGS"}


def _data(n=40, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(X @ rng.standard_normal(d))[:, None]
    return X, y


def _models(d=5, h=8, seed=0):
    """A tanh MLP in deepgrad and the same one (same weights) in torch."""
    rng = np.random.default_rng(seed)
    shapes = [(h, d), (h,), (1, h), (1,)]
    weights = [rng.standard_normal(s) * 0.5 for s in shapes]
    dg_params = [dg.tensor(w, requires_grad=True) for w in weights]
    th_params = [torch.tensor(w, requires_grad=True) for w in weights]

    def dg_loss(X, y):
        W1, b1, W2, b2 = dg_params
        out = (X @ W1.T + b1).tanh() @ W2.T + b2
        return ((out - y) ** 2).mean()

    def th_loss(X, y):
        W1, b1, W2, b2 = th_params
        out = torch.tanh(X @ W1.T + b1) @ W2.T + b2
        return ((out - y) ** 2).mean()

    return dg_params, th_params, dg_loss, th_loss


def _closures(dg_opt, th_opt, dg_loss, th_loss, X, y):
    Xd, yd = dg.tensor(X), dg.tensor(y)
    Xt, yt = torch.tensor(X), torch.tensor(y)

    def dg_closure():
        dg_opt.zero_grad()
        loss = dg_loss(Xd, yd)
        loss.backward()
        return loss

    def th_closure():
        th_opt.zero_grad()
        loss = th_loss(Xt, yt)
        loss.backward()
        return loss

    return dg_closure, th_closure


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
# NOTE: a handful of iterations per step: on a non-convex loss, rounding differences (torch
# sums dot products in another order) grow with the iteration count -- perturbing torch's own
# start by 1e-15 moves its iterates by ~1e-8 after 60 iterations -- so long runs compare
# rounding, not algorithms. The convex test below runs to convergence.
@pytest.mark.parametrize("history_size, max_iter", [(100, 5), (3, 7)])
def test_lbfgs_matches_torch(line_search_fn, history_size, max_iter):
    X, y = _data()
    dg_params, th_params, dg_loss, th_loss = _models()
    lr = 1.0 if line_search_fn else 0.3
    dg_opt = optim.LBFGS(dg_params, lr=lr, max_iter=max_iter, history_size=history_size,
                         line_search_fn=line_search_fn)
    th_opt = torch.optim.LBFGS(th_params, lr=lr, max_iter=max_iter, history_size=history_size,
                               line_search_fn=line_search_fn)
    dg_closure, th_closure = _closures(dg_opt, th_opt, dg_loss, th_loss, X, y)
    first = None
    for k in range(4):
        dl = float(dg_opt.step(dg_closure))
        tl = float(th_opt.step(th_closure).detach())
        first = dl if first is None else first
        assert abs(dl - tl) <= 1e-9 * max(1.0, abs(tl)), f"step {k}: loss {dl} vs torch {tl}"
        for i, (p, q) in enumerate(zip(dg_params, th_params)):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-8, atol=1e-9,
                                       err_msg=f"step {k}, parameter {i}")
        ds, ts = dg_opt.state[dg_params[0]], th_opt.state[th_params[0]]
        assert ds["n_iter"] == ts["n_iter"] and ds["func_evals"] == ts["func_evals"]
        assert len(ds["old_dirs"]) == len(ts["old_dirs"])
        np.testing.assert_allclose(ds["H_diag"], float(ts["H_diag"]), rtol=1e-7)
    assert float(dg_loss(dg.tensor(X), dg.tensor(y))) < 0.5 * first


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_matches_torch_to_convergence_on_least_squares(line_search_fn):
    # a convex quadratic, so the stopping tests (tolerance_grad / tolerance_change) fire
    rng = np.random.default_rng(1)
    A = rng.standard_normal((30, 6)) @ np.diag([1, 2, 3, 5, 8, 13.0])
    b = rng.standard_normal(30)
    dw = dg.tensor(np.zeros(6), requires_grad=True)
    tw = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    lr = 1.0 if line_search_fn else 0.01
    kw = dict(lr=lr, max_iter=25, history_size=4, line_search_fn=line_search_fn)
    dg_opt, th_opt = optim.LBFGS([dw], **kw), torch.optim.LBFGS([tw], **kw)
    Ad, bd, At, bt = dg.tensor(A), dg.tensor(b), torch.tensor(A), torch.tensor(b)

    def dg_closure():
        dg_opt.zero_grad()
        loss = ((Ad @ dw - bd) ** 2).sum() / 2
        loss.backward()
        return loss

    def th_closure():
        th_opt.zero_grad()
        loss = ((At @ tw - bt) ** 2).sum() / 2
        loss.backward()
        return loss

    for k in range(3):
        dl, tl = float(dg_opt.step(dg_closure)), float(th_opt.step(th_closure).detach())
        assert abs(dl - tl) <= 1e-9 * max(1.0, abs(tl)), f"step {k}: loss {dl} vs torch {tl}"
        np.testing.assert_allclose(dw.data, tw.detach().numpy(), rtol=1e-8, atol=1e-10)
        assert dg_opt.state[dw]["func_evals"] == th_opt.state[tw]["func_evals"]
    if line_search_fn:
        w_star = np.linalg.lstsq(A, b, rcond=None)[0]
        f_star = np.sum((A @ w_star - b) ** 2) / 2
        assert np.sum((A @ dw.data - b) ** 2) / 2 - f_star < 1e-8  # stopped by tolerance_change


def test_lbfgs_state_dict_round_trip():
    X, y = _data()
    dg_params, _, dg_loss, _ = _models()
    opt = optim.LBFGS(dg_params, max_iter=5, line_search_fn="strong_wolfe")
    Xd, yd = dg.tensor(X), dg.tensor(y)

    def closure():
        opt.zero_grad()
        loss = dg_loss(Xd, yd)
        loss.backward()
        return loss

    opt.step(closure)
    saved = opt.state_dict()
    start = [p.data.copy() for p in dg_params]
    opt.step(closure)
    after = [p.data.copy() for p in dg_params]
    for p, s in zip(dg_params, start):
        p.data[...] = s
    fresh = optim.LBFGS(dg_params, max_iter=5, line_search_fn="strong_wolfe")
    fresh.load_state_dict(saved)
    opt = fresh
    fresh.step(closure)
    for p, a in zip(dg_params, after):
        np.testing.assert_allclose(p.data, a, rtol=1e-12, atol=1e-14)


def test_lbfgs_converged_start_returns_at_once():
    w = dg.tensor(np.zeros(3), requires_grad=True)
    opt = optim.LBFGS([w])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure)) == 0.0
    assert len(calls) == 1 and np.all(w.data == 0)


def test_lbfgs_argument_errors():
    w = nn.Parameter(dg.zeros(2))
    with pytest.raises(ValueError, match="learning rate"):
        optim.LBFGS([w], lr=-1)
    with pytest.raises(ValueError, match="strong_wolfe"):
        optim.LBFGS([w], line_search_fn="backtracking")
    with pytest.raises(ValueError, match="parameter groups"):
        optim.LBFGS([{"params": [w]}, {"params": [nn.Parameter(dg.zeros(1))]}])
    with pytest.raises(ValueError, match="closure"):
        optim.LBFGS([w]).step(None)
