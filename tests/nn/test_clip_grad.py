"""Gradient clipping and weight penalties against PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.nn import utils
from deepgrad.nn.clip_grad import clip_grad_norm_, clip_grad_value_, get_total_norm
from deepgrad.nn.regularization import l1_penalty, l2_penalty


def _params(scale: float = 1.0, seed: int = 0, dtype=np.float64):
    """Three parameters with gradients and one without, in deepgrad and torch."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 2), (5,)]
    data = [rng.normal(size=s).astype(dtype) for s in shapes]
    grads = [scale * rng.normal(size=s).astype(dtype) for s in shapes[:3]] + [None]
    dps, tps = [], []
    for d, g in zip(data, grads):
        dp = dg.tensor(d, requires_grad=True)
        tp = torch.tensor(d, requires_grad=True)
        if g is not None:
            dp.grad = dg.tensor(g.copy())
            tp.grad = torch.tensor(g.copy())
        dps.append(dp)
        tps.append(tp)
    return dps, tps


def _assert_grads(dps, tps, **tol):
    for dp, tp in zip(dps, tps):
        if tp.grad is None:
            assert dp.grad is None
        else:
            np.testing.assert_allclose(dp.grad.data, tp.grad.numpy(), **tol)


NORMS = [1.0, 2.0, math.inf, 3.0, 0.5, -math.inf, "inf"]


@pytest.mark.parametrize("norm_type", NORMS, ids=[str(n) for n in NORMS])
@pytest.mark.parametrize("max_norm", [0.5, 1e6], ids=["clips", "no-op"])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    dps, tps = _params(scale=3.0)
    d_total = clip_grad_norm_(dps, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type=norm_type)
    assert isinstance(d_total, dg.Tensor) and d_total.shape == ()
    assert d_total.dtype == np.float64
    np.testing.assert_allclose(d_total.item(), t_total.item(), rtol=1e-12)
    _assert_grads(dps, tps, rtol=1e-12)


def test_clip_grad_norm_scales_to_max_norm():
    dps, _ = _params(scale=10.0)
    total = clip_grad_norm_(dps, 1.0).item()
    after = get_total_norm([p.grad for p in dps if p.grad is not None]).item()
    assert total > 1.0
    assert after == pytest.approx(1.0 / (1.0 + 1e-6 / total), rel=1e-12)


def test_single_tensor_and_float32():
    dps, tps = _params(scale=5.0, dtype=np.float32)
    d_total = clip_grad_norm_(dps[0], 1.0)
    t_total = torch.nn.utils.clip_grad_norm_(tps[0], 1.0)
    assert d_total.dtype == np.float32 and dps[0].grad.data.dtype == np.float32
    np.testing.assert_allclose(d_total.item(), t_total.item(), rtol=1e-6)
    np.testing.assert_allclose(dps[0].grad.data, tps[0].grad.numpy(), rtol=1e-6)


def test_no_gradients_gives_zero():
    p = dg.tensor(np.ones(3), requires_grad=True)
    assert clip_grad_norm_([p], 1.0).item() == 0.0
    assert clip_grad_norm_([], 1.0).item() == 0.0
    clip_grad_value_([p], 1.0)
    assert p.grad is None


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
def test_nonfinite_norm(bad):
    dps, tps = _params()
    dps[0].grad.data[0, 0] = bad
    tps[0].grad[0, 0] = bad
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(dps, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(dps[1].grad.data, tps[1].grad.numpy())  # untouched
    d_total = clip_grad_norm_(dps, 1.0)
    t_total = torch.nn.utils.clip_grad_norm_(tps, 1.0)
    np.testing.assert_array_equal(d_total.data, t_total.numpy())
    _assert_grads(dps, tps, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("clip_value", [0.0, 0.3, 1.5, 100.0])
def test_clip_grad_value_matches_torch(clip_value):
    dps, tps = _params(scale=2.0)
    assert clip_grad_value_(dps, clip_value) is None
    torch.nn.utils.clip_grad_value_(tps, clip_value)
    _assert_grads(dps, tps, rtol=0, atol=0)


def test_invalid_arguments():
    dps, _ = _params()
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(dps, -1.0)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(dps, -0.1)


def test_reexported_from_nn_utils():
    assert utils.clip_grad_norm_ is clip_grad_norm_
    assert utils.clip_grad_value_ is clip_grad_value_
    assert callable(utils.get_total_norm) and callable(utils.clip_grads_with_norm_)


# ---------------------------------------------------------------------- weight penalties
@pytest.mark.parametrize("fn,tfn", [(l1_penalty, lambda p: p.abs().sum()),
                                    (l2_penalty, lambda p: (p * p).sum())], ids=["l1", "l2"])
def test_penalty_value_and_gradient_match_torch(fn, tfn):
    dps, tps = _params()
    for p in dps + tps:
        p.grad = None
    dps[0].data[0, 0] = 0.0  # |x| at 0: gradient 0, as torch
    with torch.no_grad():
        tps[0][0, 0] = 0.0
    rng = np.random.default_rng(1)
    w = float(rng.uniform(0.5, 2.0))  # a random upstream gradient
    d_val = fn(dps)
    t_val = sum(tfn(p) for p in tps)
    np.testing.assert_allclose(d_val.item(), t_val.item(), rtol=1e-12)
    (d_val * w).backward()
    (t_val * w).backward()
    _assert_grads(dps, tps, rtol=1e-12)


def test_penalty_of_single_tensor_and_empty():
    p = dg.tensor(np.array([-2.0, 3.0]), requires_grad=True)
    assert l1_penalty(p).item() == 5.0
    assert l2_penalty(iter([p])).item() == 13.0
    assert l1_penalty([]).item() == 0.0
    with pytest.raises(TypeError):
        l1_penalty([np.ones(2)])
