"""``LayerNorm`` and ``F.layer_norm`` against ``torch.nn`` (DESIGN rule 3).

Rows normalise over 1, 2 and 3 trailing dimensions, with the affine transform on, off, or
without bias; each compares forward, input and parameter gradients under a random upstream
gradient in float64 (1e-10) and float32 (1e-4), and passes gradcheck / gradgradcheck.

``COVERED`` (module and ``F`` names with a test here) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
from deepgrad.nn.functional.norm import layer_norm
from deepgrad.nn.modules.normalization import LayerNorm

ROWS = [  # (name, normalized_shape, input shape, kwargs)
    ("1d", 5, (4, 5), {}),
    ("1d_seq", (6,), (2, 3, 6), {}),
    ("2d", (3, 4), (2, 3, 4), {}),
    ("3d", (2, 3, 4), (2, 2, 3, 4), {}),
    ("3d_unbatched", (2, 3, 4), (2, 3, 4), {}),
    ("no_affine", (3, 4), (2, 3, 4), dict(elementwise_affine=False)),
    ("no_bias", (4,), (3, 4), dict(bias=False)),
    ("eps", (4,), (3, 4), dict(eps=1e-2)),
]
ROW_IDS = [r[0] for r in ROWS]

#: Names with a test here (read by tests/test_coverage.py).
COVERED = {"LayerNorm", "layer_norm"}


def _pair(normalized_shape, kwargs, dtype):
    t = torch.nn.LayerNorm(normalized_shape, **kwargs)
    t = t.double() if dtype == np.float64 else t.float()
    with torch.no_grad():
        for p in t.parameters():
            p.normal_()
    d = LayerNorm(normalized_shape, dtype=dtype, **kwargs)
    d.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    return d, t


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("name,normalized_shape,shape,kwargs", ROWS, ids=ROW_IDS)
def test_matches_torch(name, normalized_shape, shape, kwargs, dtype, rtol, oracle):
    d, t = _pair(normalized_shape, kwargs, dtype)
    assert list(d.state_dict()) == list(t.state_dict())
    rng = np.random.default_rng(oracle.seed_of(name))
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    v = rng.standard_normal(shape).astype(dtype)
    dx, tx = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    dy, ty = d(dx), t(tx)
    assert dy.dtype == dtype
    oracle.close(dy, ty, rtol, "forward")
    d_leaves = [dx] + list(d.parameters())
    t_leaves = [tx] + list(t.parameters())
    names = ["input"] + [n for n, _ in d.named_parameters()]
    for n, a, e in zip(names, dg.autograd.grad(dy, d_leaves, dg.tensor(v)),
                       torch.autograd.grad(ty, t_leaves, torch.tensor(v))):
        assert a.dtype == dtype, n
        oracle.close(a, e, rtol, f"gradient of {n}")
    d.eval()  # no batch dependence: eval is the same map
    oracle.close(d(dg.tensor(x)), ty, rtol, "eval forward")


@pytest.mark.parametrize("name,normalized_shape,shape,kwargs", ROWS, ids=ROW_IDS)
def test_gradcheck(name, normalized_shape, shape, kwargs):
    d, _ = _pair(normalized_shape, kwargs, np.float64)
    rng = np.random.default_rng(1)
    x = dg.tensor(rng.standard_normal(shape), requires_grad=True)
    params = tuple(d.parameters())
    assert dg.autograd.gradcheck(lambda a, *ps: d(a), (x, *params))
    assert dg.autograd.gradgradcheck(lambda a, *ps: d(a), (x, *params))


def test_functional_matches_torch(oracle):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((3, 2, 5)), rng.standard_normal((2, 5)), rng.standard_normal(
        (2, 5))
    oracle.close(layer_norm(dg.tensor(x), (2, 5), dg.tensor(w), dg.tensor(b), 1e-3),
                 TF.layer_norm(torch.tensor(x), (2, 5), torch.tensor(w), torch.tensor(b), 1e-3),
                 1e-10, "F.layer_norm")
    oracle.close(layer_norm(dg.tensor(x), 5), TF.layer_norm(torch.tensor(x), (5,)), 1e-10,
                 "F.layer_norm without affine")


def test_defaults_and_repr():
    m = LayerNorm([3, 4])
    assert m.normalized_shape == (3, 4)
    np.testing.assert_array_equal(m.weight.data, np.ones((3, 4)))
    np.testing.assert_array_equal(m.bias.data, np.zeros((3, 4)))
    assert repr(m) == repr(torch.nn.LayerNorm([3, 4]))
    assert repr(LayerNorm(3, bias=False)) == repr(torch.nn.LayerNorm(3, bias=False))
    assert LayerNorm(4, elementwise_affine=False).weight is None


def test_errors():
    with pytest.raises(ValueError, match=r"normalized_shape=\(4,\).*got input of shape \(2, 3\)"):
        LayerNorm(4)(dg.tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"normalized_shape=\(2, 3\).*\(3, 2\)"):
        LayerNorm((2, 3))(dg.tensor(np.ones((3, 2))))
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected"):
        layer_norm(dg.tensor(np.ones((2, 4))), 4, dg.tensor(np.ones(3)))
    with pytest.raises(ValueError, match="positive"):
        LayerNorm((3, 0))
