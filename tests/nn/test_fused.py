"""``deepgrad.nn.modules.fused``: the fused module pairs give what the pairs give, and step
aside whenever a hook could see the difference.

The fused ops themselves (``ops.add_relu``, batch norm with ``relu=True``) are checked against
both oracles in the op tables; here: the choice between fused and unfused, and a whole
ResNet block trained both ways.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.models.resnet import BasicBlock
from deepgrad.nn.modules import fused


def _bn_pair(seed=0):
    rng = np.random.default_rng(seed)
    bns = [nn.BatchNorm2d(3), nn.BatchNorm2d(3)]
    for bn in bns:
        bn.weight.data[:] = np.linspace(0.5, 1.5, 3)
        bn.bias.data[:] = np.array([-0.3, 0.0, 0.4])
    return bns, rng.standard_normal((4, 3, 5, 5))


def test_batch_norm_then_relu_fuses_only_when_unobserved(monkeypatch):
    calls = []
    monkeypatch.setattr(nn.BatchNorm2d, "forward_relu",
                        lambda self, x: calls.append("fused") or nn.BatchNorm2d.forward(self, x)
                        .relu())
    (bn, _), x = _bn_pair()
    relu = nn.ReLU()
    fused.batch_norm_then_relu(bn, relu, dg.tensor(x))
    assert calls == ["fused"]
    seen = []
    handle = bn.register_forward_hook(lambda m, args, out: seen.append(out.data.min()))
    fused.batch_norm_then_relu(bn, relu, dg.tensor(x))
    handle.remove()
    assert calls == ["fused"] and seen and seen[0] < 0  # the hook saw bn's own output
    handle = relu.register_forward_pre_hook(lambda m, args: seen.append("relu"))
    fused.batch_norm_then_relu(bn, relu, dg.tensor(x))
    handle.remove()
    assert calls == ["fused"] and seen[-1] == "relu"
    fused.batch_norm_then_relu(bn, nn.LeakyReLU(), dg.tensor(x))  # not a plain ReLU
    assert calls == ["fused"]

    class ScaledBN(nn.BatchNorm2d):  # a subclass with its own forward: never bypassed
        def forward(self, x):
            return super().forward(x) * 2.0
    sbn = ScaledBN(3)
    y = fused.batch_norm_then_relu(sbn, relu, dg.tensor(x))
    assert calls == ["fused"]
    np.testing.assert_allclose(y.data, np.maximum(2.0 * nn.BatchNorm2d(3)(dg.tensor(x)).data, 0))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_then_relu_equals_the_pair(training):
    (a, b), x = _bn_pair(1)
    a.train(training)
    b.train(training)
    relu = nn.ReLU()
    xa, xb = dg.tensor(x, requires_grad=True), dg.tensor(x, requires_grad=True)
    ya, yb = fused.batch_norm_then_relu(a, relu, xa), relu(b(xb))
    g = np.random.default_rng(2).standard_normal(x.shape)
    ya.backward(dg.tensor(g))
    yb.backward(dg.tensor(g))
    np.testing.assert_allclose(ya.data, yb.data, rtol=1e-12, atol=1e-12)
    for ta, tb in [(xa, xb), (a.weight, b.weight), (a.bias, b.bias)]:
        np.testing.assert_allclose(ta.grad.data, tb.grad.data, rtol=1e-10, atol=1e-12)
    for k, v in b.state_dict().items():
        np.testing.assert_allclose(a.state_dict()[k], v, rtol=1e-12)


def test_relu_of_sum_fuses_only_when_unobserved_and_same_shape(monkeypatch):
    calls = []
    real = fused.ops.add_relu
    monkeypatch.setattr(fused.ops, "add_relu", lambda a, b: calls.append(1) or real(a, b))
    rng = np.random.default_rng(3)
    a, b = dg.tensor(rng.standard_normal((2, 3))), dg.tensor(rng.standard_normal((2, 3)))
    relu = nn.ReLU()
    y = fused.relu_of_sum(relu, a, b)
    np.testing.assert_array_equal(y.data, np.maximum(a.data + b.data, 0))
    assert calls == [1]
    fused.relu_of_sum(relu, a, dg.tensor(rng.standard_normal(3)))  # broadcasting: unfused
    handle = relu.register_forward_hook(lambda m, args, out: None)
    fused.relu_of_sum(relu, a, b)
    handle.remove()
    assert calls == [1]


def test_resnet_block_trains_the_same_fused_and_unfused(monkeypatch):
    """Two identical BasicBlocks, one with every fusion turned off: after three SGD steps the
    outputs, input gradients, weights and running statistics agree."""
    rng = np.random.default_rng(4)
    blocks = []
    for _ in range(2):
        dg.manual_seed(0)
        blocks.append(BasicBlock(4, 8, stride=2))
    x0 = rng.standard_normal((3, 4, 6, 6))
    results = []
    for i, block in enumerate(blocks):
        if i == 1:
            monkeypatch.setattr(fused, "_unobserved", lambda *modules: False)
        opt = optim.SGD(block.parameters(), lr=0.1, momentum=0.9)
        for step in range(3):
            x = dg.tensor(x0 + step, requires_grad=True)
            y = block(x)
            opt.zero_grad()
            y.backward(dg.tensor(np.cos(np.arange(y.data.size)).reshape(y.shape)))
            opt.step()
        results.append((y.data, x.grad.data, block.state_dict()))
    (ya, ga, sa), (yb, gb, sb) = results
    np.testing.assert_allclose(ya, yb, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-12)
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], rtol=1e-10, atol=1e-12, err_msg=k)
