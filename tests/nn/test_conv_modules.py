"""``Conv2d``, the pooling modules and their ``nn.functional`` names against ``torch.nn``.

Table-driven: each Conv2d config (kernel, stride, padding incl. 'same'/'valid', dilation,
groups incl. depthwise, bias, every padding_mode) gets torch's weights, then forward, input and
parameter gradients are compared with the same random upstream gradient in float64 (1e-10) and
float32 (1e-4), and the repr must equal torch's. Pooling modules likewise. Then PyTorch's
initialisation, state_dict round trips, a LeNet-5 stack end to end, and ValueErrors that name
what is wrong.

``COVERED`` (module and ``F`` names with a test here) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
import deepgrad.nn.functional.conv as FC
from deepgrad import nn
from deepgrad.nn.modules.conv import Conv2d
from deepgrad.nn.modules.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d

#: Names with a test here (read by tests/test_coverage.py).
COVERED = {"Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
           "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"}

CONVS = [  # (id, args, kwargs, input shape)
    ("k3", (3, 4, 3), {}, (2, 3, 6, 5)),
    ("k5_pad2", (2, 3, 5), dict(padding=2), (1, 2, 7, 8)),
    ("k1_stride2_no_bias", (4, 6, 1), dict(stride=2, bias=False), (2, 4, 5, 6)),
    ("k3_s2_p1", (3, 4, 3), dict(stride=2, padding=1), (2, 3, 7, 6)),
    ("k32_s21_p12_d21", (3, 4, (3, 2)), dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
     (2, 3, 9, 6)),
    ("same_even", (2, 3, 4), dict(padding="same", dilation=2), (1, 2, 8, 7)),
    ("valid", (3, 2, 3), dict(padding="valid"), (2, 3, 5, 5)),
    ("groups2", (4, 6, 3), dict(groups=2, padding=1), (2, 4, 5, 5)),
    ("depthwise", (4, 8, 3), dict(groups=4, padding=1, stride=2), (2, 4, 7, 6)),
    ("reflect", (3, 4, 3), dict(padding=(1, 2), padding_mode="reflect"), (2, 3, 6, 5)),
    ("replicate_same", (3, 4, 3), dict(padding="same", padding_mode="replicate"), (2, 3, 5, 6)),
    ("circular_groups", (4, 4, 3), dict(padding=2, groups=2, padding_mode="circular"),
     (2, 4, 5, 5)),
    ("unbatched", (3, 4, 3), dict(padding=1), (3, 5, 6)),
]


def _conv_pair(args, kwargs, dtype):
    tm = torch.nn.Conv2d(*args, **kwargs, dtype=torch.float64 if dtype == np.float64
                         else torch.float32)
    dm = Conv2d(*args, **kwargs, dtype=dtype)
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return dm, tm


def _run_pair(dm, tm, x, dtype, rtol, oracle, seed=0):
    dx = dg.tensor(x.astype(dtype), requires_grad=True)
    tx = torch.tensor(x.astype(dtype), requires_grad=True)
    dy, ty = dm(dx), tm(tx)
    if isinstance(ty, tuple):
        np.testing.assert_array_equal(dy[1].data, ty[1].numpy())
        dy, ty = dy[0], ty[0]
    oracle.close(dy, ty, rtol, "forward")
    v = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(dtype)
    dy.backward(dg.tensor(v))
    ty.backward(torch.tensor(v))
    oracle.close(dx.grad, tx.grad, rtol, "input gradient")
    for (name, p), (_, tp) in zip(dm.named_parameters(), tm.named_parameters()):
        assert p.grad.dtype == dtype
        oracle.close(p.grad, tp.grad, rtol, f"gradient of {name}")


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("name,args,kwargs,shape", CONVS, ids=[c[0] for c in CONVS])
def test_conv2d_matches_torch(name, args, kwargs, shape, dtype, rtol, oracle):
    dm, tm = _conv_pair(args, kwargs, dtype)
    assert repr(dm) == repr(tm)
    x = np.random.default_rng(oracle.seed_of(name)).standard_normal(shape)
    _run_pair(dm, tm, x, dtype, rtol, oracle)


POOLS = [  # (id, deepgrad module, torch module, input shape)
    ("max2", MaxPool2d(2), torch.nn.MaxPool2d(2), (2, 3, 6, 7)),
    ("max3_s2_p1_ceil", MaxPool2d(3, 2, 1, ceil_mode=True),
     torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 2, 8, 7)),
    ("max_dil_indices", MaxPool2d((3, 2), stride=1, padding=1, dilation=2, return_indices=True),
     torch.nn.MaxPool2d((3, 2), stride=1, padding=1, dilation=2, return_indices=True),
     (2, 2, 6, 5)),
    ("avg2", AvgPool2d(2), torch.nn.AvgPool2d(2), (2, 3, 6, 7)),
    ("avg3_exclude_pad_ceil", AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
     torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 2, 6, 7)),
    ("avg_divisor", AvgPool2d(2, 1, divisor_override=3),
     torch.nn.AvgPool2d(2, 1, divisor_override=3), (1, 2, 5, 5)),
    ("adaptive_avg", AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None)),
     (2, 2, 7, 5)),
    ("adaptive_avg_global_unbatched", AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1),
     (3, 5, 6)),
    ("adaptive_max_indices", AdaptiveMaxPool2d((4, 3), return_indices=True),
     torch.nn.AdaptiveMaxPool2d((4, 3), return_indices=True), (2, 2, 7, 5)),
]


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("name,dm,tm,shape", POOLS, ids=[p[0] for p in POOLS])
def test_pooling_modules_match_torch(name, dm, tm, shape, dtype, rtol, oracle):
    assert repr(dm) == repr(tm)
    x = np.random.default_rng(oracle.seed_of(name)).standard_normal(shape)
    _run_pair(dm, tm, x, dtype, rtol, oracle)


FUNCTIONAL = [
    ("conv2d", lambda m, x, w, b: m.conv2d(x, w, b, stride=2, padding=1, groups=2),
     [(2, 4, 6, 5), (6, 2, 3, 3), (6,)]),
    ("max_pool2d", lambda m, x: m.max_pool2d(x, 3, 2, 1), [(2, 3, 6, 5)]),
    ("avg_pool2d", lambda m, x: m.avg_pool2d(x, 2, ceil_mode=True), [(2, 3, 5, 5)]),
    ("adaptive_avg_pool2d", lambda m, x: m.adaptive_avg_pool2d(x, (3, 4)), [(2, 3, 7, 5)]),
    ("adaptive_max_pool2d", lambda m, x: m.adaptive_max_pool2d(x, 3), [(2, 3, 7, 5)]),
]


@pytest.mark.parametrize("name,call,shapes", FUNCTIONAL, ids=[f[0] for f in FUNCTIONAL])
def test_functional_names_match_torch(name, call, shapes, oracle):
    inputs = [(lambda rng, s=s: rng.standard_normal(s), True) for s in shapes]
    oracle.parity(lambda *xs: call(FC, *xs), lambda *xs: call(TF, *xs), inputs,
                  oracle.make_arrays(inputs, name), np.float64, 1e-10)


# ---------------------------------------------------------------------- init and state
def test_default_init_follows_torch():
    """kaiming_uniform_(a=sqrt(5)): W ~ U(+-1/sqrt(fan_in)), b ~ U(+-1/sqrt(fan_in)),
    fan_in = in/groups * kh * kw; default dtype float32."""
    dg.set_default_dtype("float32")
    m = Conv2d(32, 64, (3, 5), groups=2)
    assert m.weight.shape == (64, 16, 3, 5) and m.bias.shape == (64,)
    assert m.weight.dtype == m.bias.dtype == np.float32
    bound = 1 / math.sqrt(16 * 15)
    for p in (m.weight, m.bias):
        assert np.abs(p.data).max() <= bound
    assert abs(m.weight.data.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert abs(m.weight.data.mean()) < 0.02 * bound


def test_state_dict_keys_and_bias_false():
    m = Conv2d(3, 4, 3, bias=False)
    assert list(m.state_dict()) == ["weight"] and m.bias is None
    assert list(Conv2d(3, 4, 3).state_dict()) == ["weight", "bias"]


def test_lenet5_stack_matches_torch(oracle):
    """conv -> relu -> maxpool -> conv -> relu -> avgpool -> flatten -> linear: the
    NCHW views of HCWN memory that conv2d returns flow through every other layer."""
    def build(lib, conv, maxp, avgp):
        return lib.Sequential(conv(1, 6, 5, padding=2), lib.ReLU(), maxp(2), conv(6, 16, 5),
                              lib.ReLU(), avgp(2), lib.Flatten(), lib.Linear(16 * 5 * 5, 10))

    tm = build(torch.nn, torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d).double()
    dm = build(nn, lambda *a, **k: Conv2d(*a, **k, dtype=np.float64), MaxPool2d, AvgPool2d)
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(9).standard_normal((4, 1, 28, 28))
    _run_pair(dm, tm, x, np.float64, 1e-10, oracle)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,msg", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2),
     r"in_channels \(3\) must be divisible by groups \(2\)"),
    (dict(in_channels=4, out_channels=3, kernel_size=3, groups=2),
     r"out_channels \(3\) must be divisible by groups \(2\)"),
    (dict(in_channels=3, out_channels=4, kernel_size=3, padding_mode="mirror"),
     r"padding_mode must be one of .*'mirror'"),
    (dict(in_channels=3, out_channels=4, kernel_size=3, padding="same", stride=2),
     r"padding='same' is not supported for strided convolutions"),
    (dict(in_channels=3, out_channels=4, kernel_size=3, padding="full"),
     r"invalid padding string 'full'"),
    (dict(in_channels=0, out_channels=4, kernel_size=3), r"in_channels must be a positive int"),
    (dict(in_channels=3, out_channels=4, kernel_size=(3, 0)), r"kernel_size must be"),
])
def test_constructor_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Conv2d(**kwargs)


def test_forward_errors_name_expected_and_got():
    m = Conv2d(3, 4, 5)
    with pytest.raises(ValueError, match=r"expected input with 3 channels .*got 2 channels"):
        m(dg.tensor(np.zeros((1, 2, 8, 8))))
    with pytest.raises(ValueError, match=r"\(4 x 8\).*smaller than the dilated kernel \(5 x 5\)"):
        m(dg.tensor(np.zeros((1, 3, 4, 8))))
    with pytest.raises(ValueError, match=r"3-D \(C, H, W\) or 4-D .*got shape \(8, 8\)"):
        m(dg.tensor(np.zeros((8, 8))))
    r = Conv2d(3, 4, 3, padding=3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"too large for reflect padding .*size 3"):
        r(dg.tensor(np.zeros((1, 3, 3, 8))))
    with pytest.raises(ValueError, match=r"padding should be at most half"):
        MaxPool2d(2, padding=2)(dg.tensor(np.zeros((1, 3, 8, 8))))
