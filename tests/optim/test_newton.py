"""optim.NewtonCG: Hessian-free Newton on a model's parameters, full batch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad import nn, optim

# Read by tests/test_coverage.py: the optimizer these tests check against PyTorch/scipy.
COVERED = {"NewtonCG"}


def _logistic_data(n=200, d=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d)
    y = (X @ rng.standard_normal(d) + 0.3 + 0.5 * rng.standard_normal(n) > 0).astype(float)
    return X, y


def test_newton_cg_logistic_regression_matches_scipy():
    X, y = _logistic_data()
    lam = 1e-2
    model = nn.Linear(10, 1)
    Xt, yt = dg.tensor(X), dg.tensor(y[:, None])
    opt = optim.NewtonCG(model.parameters())

    def closure():
        logits = model(Xt)
        return (F.binary_cross_entropy_with_logits(logits, yt)
                + lam / 2 * (model.weight ** 2).sum())

    losses = [float(opt.step(closure)) for _ in range(8)]
    final = float(closure())

    # the same objective for scipy, on v = [w (10), b]
    def f(v):
        z = X @ v[:10] + v[10]
        return np.mean(np.logaddexp(0, z) - y * z) + lam / 2 * v[:10] @ v[:10]

    def g(v):
        r = 1 / (1 + np.exp(-(X @ v[:10] + v[10]))) - y
        return np.concatenate([X.T @ r / len(y) + lam * v[:10], [r.mean()]])

    def hp(v, u):
        s = 1 / (1 + np.exp(-(X @ v[:10] + v[10])))
        Ju = X @ u[:10] + u[10]
        w = s * (1 - s) * Ju / len(y)
        return np.concatenate([X.T @ w + lam * u[:10], [w.sum()]])

    v0 = np.concatenate([model.weight.data.reshape(-1) * 0, [0.0]])
    ref = so.minimize(f, v0, jac=g, hessp=hp, method="Newton-CG", options={"xtol": 1e-12})
    v = np.concatenate([model.weight.data.reshape(-1), model.bias.data])
    # scipy stops on its step size with max|g| ~ 5e-8 here; NewtonCG goes on to ~1e-11
    assert ref.success and np.max(np.abs(g(v))) < 1e-9
    np.testing.assert_allclose(v, ref.x, atol=1e-5)
    assert abs(final - ref.fun) < 1e-12
    assert losses[-1] <= losses[0] and all(b <= a + 1e-15 for a, b in zip(losses, losses[1:]))
    state = opt.state[model.weight]
    assert state["n_iter"] <= 8 and state["hvp_evals"] > 0 and state["cg_exit"] == "converged"


def test_newton_cg_trains_a_tanh_mlp_in_few_steps():
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, (64, 1))
    y = np.sin(2 * X) + 0.3 * X
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 12), nn.Tanh(), nn.Linear(12, 1))
    Xt, yt = dg.tensor(X), dg.tensor(y)
    opt = optim.NewtonCG(model.parameters(), max_cg_iter=40)

    def closure():
        return F.mse_loss(model(Xt), yt)

    first = float(closure())
    for _ in range(25):
        opt.step(closure)
    final = float(closure())
    assert final < 1e-4 and final < 1e-3 * first, (first, final)


def test_fixed_newton_step_solves_a_quadratic_exactly():
    rng = np.random.default_rng(2)
    M = rng.standard_normal((6, 6))
    A, b = M @ M.T + np.eye(6), rng.standard_normal(6)
    x = nn.Parameter(dg.zeros(6))
    At, bt = dg.tensor(A), dg.tensor(b)
    opt = optim.NewtonCG([x], line_search_fn=None, cg_tol=1e-13)

    def closure():
        return 0.5 * (x * (At @ x)).sum() - (bt * x).sum()

    opt.step(closure)
    np.testing.assert_allclose(x.data, np.linalg.solve(A, b), rtol=1e-10)
    assert x.grad is None  # NewtonCG leaves .grad alone
    # heavy damping turns the step into a short gradient step: x1 = x0 - g / (damping + ~|A|)
    x.data[...] = 0
    opt = optim.NewtonCG([x], line_search_fn=None, damping=1e6)
    opt.step(closure)
    np.testing.assert_allclose(x.data, b / 1e6, rtol=1e-4)


def test_closure_errors():
    x = nn.Parameter(dg.ones(3))
    opt = optim.NewtonCG([x])

    def calls_backward():
        loss = (x ** 4).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="backward"):
        opt.step(calls_backward)

    def no_graph():
        with dg.no_grad():
            return (x ** 4).sum()

    with pytest.raises(RuntimeError, match="graph"):
        opt.step(no_graph)
    with pytest.raises(ValueError, match="closure"):
        opt.step(None)
    with pytest.raises(ValueError, match="cg_tol"):
        optim.NewtonCG([x], cg_tol=2.0)
    with pytest.raises(ValueError, match="damping"):
        optim.NewtonCG([x], damping=-1.0)
    with pytest.raises(ValueError, match="strong_wolfe"):
        optim.NewtonCG([x], line_search_fn="armijo")
