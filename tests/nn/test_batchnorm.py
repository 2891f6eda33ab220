"""``BatchNorm1d``/``BatchNorm2d`` and ``F.batch_norm`` against ``torch.nn`` (DESIGN rule 3).

The table runs every option (momentum 0.1 / None, affine on / off, track_running_stats on / off)
for (N, C), (N, C, L) and (N, C, H, W) input: several training steps with shifted inputs and a
random upstream gradient, comparing outputs, input and parameter gradients, the running
statistics (unbiased variance) and ``num_batches_tracked`` after each step, then the eval output.

``COVERED`` (module and ``F`` names with a test here) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
from deepgrad.nn.functional.norm import batch_norm
from deepgrad.nn.modules.batchnorm import BatchNorm1d, BatchNorm2d

KINDS = {  # name: (deepgrad class, torch class, input shape)
    "1d_NC": (BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)),
    "1d_NCL": (BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
    "2d": (BatchNorm2d, torch.nn.BatchNorm2d, (3, 3, 4, 2)),
}
OPTIONS = list(itertools.product(KINDS, [0.1, None], [True, False], [True, False]))
OPTION_IDS = [f"{k}-mom{m}-affine{a}-track{t}" for k, m, a, t in OPTIONS]

#: Names with a test here (read by tests/test_coverage.py).
COVERED = {"BatchNorm1d", "BatchNorm2d", "batch_norm", "batch_norm_relu"}


def _pair(kind, momentum, affine, track, dtype=np.float64):
    dcls, tcls, shape = KINDS[kind]
    tm = tcls(3, momentum=momentum, affine=affine, track_running_stats=track)
    tm = tm.double() if dtype == np.float64 else tm.float()
    dm = dcls(3, momentum=momentum, affine=affine, track_running_stats=track, dtype=dtype)
    if affine:  # non-trivial gamma and beta
        with torch.no_grad():
            tm.weight.uniform_(0.5, 1.5)
            tm.bias.normal_()
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return dm, tm, shape


def _step(dm, tm, x, v, rtol, oracle, what):
    dx = dg.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    dy, ty = dm(dx), tm(tx)
    oracle.close(dy, ty, rtol, f"{what}: forward")
    assert dy.dtype == x.dtype
    d_leaves = [dx] + [p for _, p in dm.named_parameters()]
    t_leaves = [tx] + [p for _, p in tm.named_parameters()]
    dgs = dg.autograd.grad(dy, d_leaves, dg.tensor(v))
    tgs = torch.autograd.grad(ty, t_leaves, torch.tensor(v))
    names = ["input"] + [n for n, _ in dm.named_parameters()]
    for name, a, e in zip(names, dgs, tgs):
        oracle.close(a, e, rtol, f"{what}: gradient of {name}")
        assert a.dtype == x.dtype, name


def _compare_state(dm, tm, rtol, oracle, what):
    ds, ts = dm.state_dict(), tm.state_dict()
    assert list(ds) == list(ts), what
    for k in ts:
        if k == "num_batches_tracked":
            assert ds[k].dtype == np.int64 and ds[k].shape == ()
            assert int(ds[k].item()) == int(ts[k].item()), f"{what}: {k}"
        else:
            oracle.close(ds[k], ts[k], rtol, f"{what}: {k}")


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("kind,momentum,affine,track", OPTIONS, ids=OPTION_IDS)
def test_training_steps_then_eval_match_torch(kind, momentum, affine, track, dtype, rtol,
                                              oracle):
    dm, tm, shape = _pair(kind, momentum, affine, track, dtype)
    rng = np.random.default_rng(oracle.seed_of(f"{kind}{momentum}{affine}{track}"))
    for step in range(3):
        x = (rng.standard_normal(shape) * (1 + step) + step).astype(dtype)
        v = rng.standard_normal(shape).astype(dtype)
        _step(dm, tm, x, v, rtol, oracle, f"train step {step}")
        _compare_state(dm, tm, rtol, oracle, f"after step {step}")
    dm.eval()
    tm.eval()
    x = (rng.standard_normal(shape) + 0.5).astype(dtype)
    _step(dm, tm, x, rng.standard_normal(shape).astype(dtype), rtol, oracle, "eval")
    _compare_state(dm, tm, rtol, oracle, "after eval")  # eval leaves the statistics alone


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_gradcheck(kind, train):
    dm, _, shape = _pair(kind, 0.1, True, True)
    rng = np.random.default_rng(5)
    dm.running_mean.data[:] = rng.standard_normal(3)
    dm.running_var.data[:] = rng.uniform(0.5, 2, 3)
    dm.train(train)
    x = dg.tensor(rng.standard_normal(shape), requires_grad=True)
    assert dg.autograd.gradcheck(lambda a, w, b: dm(a), (x, dm.weight, dm.bias))
    assert dg.autograd.gradgradcheck(lambda a, w, b: dm(a), (x, dm.weight, dm.bias))


def test_momentum_none_is_the_cumulative_average():
    m = BatchNorm1d(2, momentum=None)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((5, 2)) + k for k in range(4)]
    for b in batches:
        m(dg.tensor(b))
    np.testing.assert_allclose(m.running_mean.data, np.mean([b.mean(0) for b in batches], 0))
    np.testing.assert_allclose(m.running_var.data,
                               np.mean([b.var(0, ddof=1) for b in batches], 0))
    assert int(m.num_batches_tracked.item()) == 4


def test_state_dict_keys_and_load_from_torch():
    for affine, track in itertools.product([True, False], repeat=2):
        d = BatchNorm2d(4, affine=affine, track_running_stats=track)
        t = torch.nn.BatchNorm2d(4, affine=affine, track_running_stats=track)
        assert list(d.state_dict()) == list(t.state_dict())
    t = torch.nn.BatchNorm2d(4).double()
    t.train()
    t(torch.randn(8, 4, 3, 3, dtype=torch.float64) * 3 + 1)
    t.eval()
    d = BatchNorm2d(4).eval()
    d.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 3))
    np.testing.assert_allclose(d(dg.tensor(x)).data, t(torch.tensor(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    assert "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)" \
        == repr(d)


def test_untracked_eval_uses_batch_statistics():
    m = BatchNorm1d(3, track_running_stats=False).eval()
    x = np.random.default_rng(0).standard_normal((10, 3)) * 4 + 2
    y = m(dg.tensor(x)).data
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(0), 1, rtol=1e-4)
    assert m.running_mean is None and m.num_batches_tracked is None


@pytest.mark.parametrize("training", [True, False])
def test_functional_matches_torch(training, oracle):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 3, 4)) * 2 + 1
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    d_rm, d_rv = dg.tensor(rm), dg.tensor(rv)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    dy = batch_norm(dg.tensor(x), d_rm, d_rv, dg.tensor(w), dg.tensor(b), training, 0.3, 1e-3)
    ty = TF.batch_norm(torch.tensor(x), t_rm, t_rv, torch.tensor(w), torch.tensor(b), training,
                       0.3, 1e-3)
    oracle.close(dy, ty, 1e-10, "forward")
    oracle.close(d_rm, t_rm, 1e-10, "running_mean")
    oracle.close(d_rv, t_rv, 1e-10, "running_var")


def test_errors():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        BatchNorm1d(3)(dg.tensor(np.ones((1, 3))))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        BatchNorm2d(3)(dg.tensor(np.ones((1, 3, 1, 1))))
    BatchNorm2d(3).eval()(dg.tensor(np.ones((1, 3, 1, 1))))  # fine in eval
    BatchNorm1d(3)(dg.tensor(np.ones((1, 3, 2))))  # 2 values per channel: fine
    with pytest.raises(ValueError, match=r"expected 4 channels.*got 3"):
        BatchNorm2d(4)(dg.tensor(np.ones((2, 3, 2, 2))))
    with pytest.raises(ValueError, match=r"expected 5 channels.*got 3"):
        BatchNorm1d(5)(dg.tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input"):
        BatchNorm2d(3)(dg.tensor(np.ones((2, 3, 4))))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input"):
        BatchNorm1d(3)(dg.tensor(np.ones((2, 3, 4, 4))))
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match=r"running_mean has shape \(4,\).*3 channels"):
        batch_norm(dg.tensor(np.ones((2, 3))), dg.tensor(np.zeros(4)), dg.tensor(np.ones(4)))
    with pytest.raises(ValueError, match="running_mean and running_var must be given"):
        batch_norm(dg.tensor(np.ones((2, 3))), None, None, training=False)


def test_double_backward_through_training_batch_norm():
    """The backward has a Tensor-op path, so grad-of-grad works (Newton methods need it)."""
    m = BatchNorm1d(2)
    x = dg.tensor(np.random.default_rng(0).standard_normal((4, 2)), requires_grad=True)
    y = m(x)
    (g,) = dg.autograd.grad((y * y * y).sum(), x, create_graph=True)
    (gg,) = dg.autograd.grad(g.sum(), x)
    assert gg.shape == x.shape and np.isfinite(gg.data).all()


class _TorchBNReLU(torch.nn.Module):
    def __init__(self, bn):
        super().__init__()
        self.bn = bn

    def forward(self, x):
        return torch.relu(self.bn(x))


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("kind,momentum,affine,track", OPTIONS, ids=OPTION_IDS)
def test_forward_relu_is_relu_of_batch_norm(kind, momentum, affine, track, dtype, rtol, oracle):
    """``BatchNorm.forward_relu`` (``F.batch_norm_relu``): the values, gradients and running
    statistics of torch's relu(bn(x)), over training steps and then in eval mode."""
    dm, tm, shape = _pair(kind, momentum, affine, track, dtype)

    class Fused:  # the _step helper calls dm(x) and dm.named_parameters()
        def __call__(self, x):
            return dm.forward_relu(x)

        def named_parameters(self):
            return dm.named_parameters()
    fused, tfused = Fused(), _TorchBNReLU(tm)
    rng = np.random.default_rng(oracle.seed_of(f"relu{kind}{momentum}{affine}{track}"))
    for step in range(3):
        x = (rng.standard_normal(shape) * (1 + step) + step).astype(dtype)
        _step(fused, tfused, x, rng.standard_normal(shape).astype(dtype), rtol, oracle,
              f"train step {step}")
        _compare_state(dm, tm, rtol, oracle, f"after step {step}")
    dm.eval()
    tm.eval()
    x = (rng.standard_normal(shape) + 0.5).astype(dtype)
    _step(fused, tfused, x, rng.standard_normal(shape).astype(dtype), rtol, oracle, "eval")
    with dg.no_grad():  # the inference fast path
        y = dm.forward_relu(dg.tensor(x))
    oracle.close(y, torch.relu(tm(torch.tensor(x))), rtol, "eval, no_grad")
