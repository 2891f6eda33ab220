"""``deepgrad.nn`` modules against their ``torch.nn`` twins, and the Module machinery.

Each table row builds a deepgrad module and its torch twin, copies torch's weights into deepgrad
through ``load_state_dict`` (numpy arrays), and compares forward output, input gradient and
every parameter gradient (by name) under the same random upstream gradient, in float64.

``COVERED`` (the Module subclasses exported by ``deepgrad.nn`` with a test) is read by
tests/test_coverage.py.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn

tnn = torch.nn


# ---------------------------------------------------------------------- helpers
def _np_state(tmodule) -> dict:
    return {k: v.detach().numpy().copy() for k, v in tmodule.state_dict().items()}


def _copy_from_torch(dmodule, tmodule) -> None:
    """Load torch's weights and buffers (strict: the keys must be the same)."""
    dmodule.load_state_dict(_np_state(tmodule))


def N(*shape, scale=1.0):
    return (lambda rng: scale * rng.standard_normal(shape), True)


def U(*shape, lo=0.05, hi=0.95, grad=True):
    return (lambda rng: rng.uniform(lo, hi, shape), grad)


def A(*shape):
    return (lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape), True)


def C(value):
    arr = np.asarray(value)
    return (lambda rng: arr, False)


class DgNet(nn.Module):
    """Exercises ModuleList and ModuleDict inside a model (keys blocks.0.weight, heads.a.bias)."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(4, 5), nn.Linear(5, 5)])
        self.heads = nn.ModuleDict({"a": nn.Linear(5, 3), "b": nn.Linear(5, 3, bias=False)})
        self.act = nn.Tanh()

    def forward(self, x):
        for block in self.blocks:
            x = self.act(block(x))
        return self.heads["a"](x) * self.heads["b"](x)


class TorchNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = tnn.ModuleList([tnn.Linear(4, 5), tnn.Linear(5, 5)])
        self.heads = tnn.ModuleDict({"a": tnn.Linear(5, 3), "b": tnn.Linear(5, 3, bias=False)})
        self.act = tnn.Tanh()

    def forward(self, x):
        for block in self.blocks:
            x = self.act(block(x))
        return self.heads["a"](x) * self.heads["b"](x)


@dataclass
class Row:
    name: str
    covers: tuple  # Module class names tested by this row
    make_dg: Callable
    make_th: Callable
    inputs: list
    train: bool = False  # run in train mode (default: eval, so Dropout is deterministic)
    extra: dict = field(default_factory=dict)


T4 = [0, 2, 1, 2]
W3 = [0.3, 1.0, 2.5]

ROWS = [
    Row("linear", ("Linear",), lambda: nn.Linear(4, 3), lambda: tnn.Linear(4, 3), [N(5, 4)]),
    Row("linear_no_bias_3d", ("Linear",), lambda: nn.Linear(4, 3, bias=False),
        lambda: tnn.Linear(4, 3, bias=False), [N(2, 5, 4)]),
    Row("flatten", ("Flatten",), nn.Flatten, tnn.Flatten, [N(2, 3, 4)]),
    Row("flatten_range", ("Flatten",), lambda: nn.Flatten(0, 1), lambda: tnn.Flatten(0, 1),
        [N(2, 3, 4)]),
    Row("unflatten", ("Unflatten",), lambda: nn.Unflatten(1, (3, 2)),
        lambda: tnn.Unflatten(1, (3, 2)), [N(2, 6, 2)]),
    Row("identity", ("Identity",), lambda: nn.Identity(7, foo=1),
        lambda: tnn.Identity(7, foo=1), [N(3, 4)]),
    Row("relu", ("ReLU",), nn.ReLU, tnn.ReLU, [A(3, 4)]),
    Row("sigmoid", ("Sigmoid",), nn.Sigmoid, tnn.Sigmoid, [N(3, 4)]),
    Row("tanh", ("Tanh",), nn.Tanh, tnn.Tanh, [N(3, 4)]),
    Row("leaky_relu", ("LeakyReLU",), lambda: nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2),
        [A(3, 4)]),
    Row("elu", ("ELU",), lambda: nn.ELU(0.7), lambda: tnn.ELU(0.7), [A(3, 4)]),
    Row("softmax", ("Softmax",), lambda: nn.Softmax(dim=1), lambda: tnn.Softmax(dim=1),
        [N(3, 4)]),
    Row("log_softmax", ("LogSoftmax",), lambda: nn.LogSoftmax(dim=0),
        lambda: tnn.LogSoftmax(dim=0), [N(3, 4)]),
    Row("softplus", ("Softplus",), lambda: nn.Softplus(beta=2.0, threshold=4.0),
        lambda: tnn.Softplus(beta=2.0, threshold=4.0), [N(3, 4)]),
    Row("dropout_eval", ("Dropout",), lambda: nn.Dropout(0.3), lambda: tnn.Dropout(0.3),
        [N(3, 4)]),
    Row("dropout_p0_train", ("Dropout",), lambda: nn.Dropout(0.0), lambda: tnn.Dropout(0.0),
        [N(3, 4)], train=True),
    Row("sequential", ("Sequential", "Linear", "Tanh", "ReLU", "Dropout"),
        lambda: nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Dropout(0.5), nn.Linear(6, 3),
                              nn.ReLU()),
        lambda: tnn.Sequential(tnn.Linear(4, 6), tnn.Tanh(), tnn.Dropout(0.5), tnn.Linear(6, 3),
                               tnn.ReLU()), [N(5, 4)]),
    Row("sequential_ordered_dict", ("Sequential",),
        lambda: nn.Sequential(OrderedDict(fc=nn.Linear(4, 6), act=nn.Sigmoid(),
                                          out=nn.Linear(6, 2))),
        lambda: tnn.Sequential(OrderedDict(fc=tnn.Linear(4, 6), act=tnn.Sigmoid(),
                                           out=tnn.Linear(6, 2))), [N(5, 4)]),
    Row("modulelist_moduledict", ("ModuleList", "ModuleDict", "Module"), DgNet, TorchNet,
        [N(5, 4)]),
    # ------------------------------------------------------------------ losses (input, target)
    Row("l1", ("L1Loss",), nn.L1Loss, tnn.L1Loss, [N(4, 3), N(4, 3)]),
    Row("mse_sum", ("MSELoss",), lambda: nn.MSELoss(reduction="sum"),
        lambda: tnn.MSELoss(reduction="sum"), [N(4, 3), N(4, 3)]),
    Row("smooth_l1", ("SmoothL1Loss",), lambda: nn.SmoothL1Loss(beta=0.5),
        lambda: tnn.SmoothL1Loss(beta=0.5), [N(4, 3), N(4, 3)]),
    Row("huber_none", ("HuberLoss",), lambda: nn.HuberLoss(reduction="none", delta=0.7),
        lambda: tnn.HuberLoss(reduction="none", delta=0.7), [N(4, 3), N(4, 3)]),
    Row("cross_entropy", ("CrossEntropyLoss",),
        lambda: nn.CrossEntropyLoss(weight=dg.tensor(W3), ignore_index=1),
        lambda: tnn.CrossEntropyLoss(weight=torch.tensor(W3, dtype=torch.float64),
                                     ignore_index=1), [N(4, 3), C(T4)]),
    Row("cross_entropy_smoothing", ("CrossEntropyLoss",),
        lambda: nn.CrossEntropyLoss(label_smoothing=0.2, reduction="sum"),
        lambda: tnn.CrossEntropyLoss(label_smoothing=0.2, reduction="sum"), [N(4, 3), C(T4)]),
    Row("nll", ("NLLLoss",), lambda: nn.NLLLoss(weight=dg.tensor(W3)),
        lambda: tnn.NLLLoss(weight=torch.tensor(W3, dtype=torch.float64)), [N(4, 3), C(T4)]),
    Row("bce", ("BCELoss",), lambda: nn.BCELoss(weight=dg.tensor(W3)),
        lambda: tnn.BCELoss(weight=torch.tensor(W3, dtype=torch.float64)),
        [U(4, 3), U(4, 3, lo=0.0, hi=1.0, grad=False)]),
    Row("bce_logits", ("BCEWithLogitsLoss",),
        lambda: nn.BCEWithLogitsLoss(pos_weight=dg.tensor(W3)),
        lambda: tnn.BCEWithLogitsLoss(pos_weight=torch.tensor(W3, dtype=torch.float64)),
        [N(4, 3, scale=3.0), U(4, 3, lo=0.0, hi=1.0, grad=False)]),
]

#: Module classes exported by deepgrad.nn with a test here.
COVERED = {name for r in ROWS for name in r.covers}


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_module_matches_torch(row, oracle):
    torch.manual_seed(oracle.seed_of(row.name) % 2**31)
    tm = row.make_th().double()
    dm = row.make_dg()
    _copy_from_torch(dm, tm)
    tm.train(row.train)
    dm.train(row.train)
    assert [k for k, _ in dm.named_parameters()] == [k for k, _ in tm.named_parameters()]

    rng = np.random.default_rng(oracle.seed_of(row.name))
    arrays = [np.asarray(gen(rng)) for gen, _ in row.inputs]
    d_in = [dg.tensor(a, requires_grad=needs and a.dtype.kind == "f")
            for (_, needs), a in zip(row.inputs, arrays)]
    t_in = [torch.tensor(a, requires_grad=needs and a.dtype.kind == "f")
            for (_, needs), a in zip(row.inputs, arrays)]
    d_out, t_out = dm(*d_in), tm(*t_in)
    oracle.close(d_out, t_out, 1e-10, "forward")
    v = rng.standard_normal(tuple(t_out.shape))
    d_leaves = [x for x in d_in if x.requires_grad] + [p for _, p in dm.named_parameters()]
    t_leaves = [x for x in t_in if x.requires_grad] + [p for _, p in tm.named_parameters()]
    d_grads = dg.autograd.grad(d_out, d_leaves, dg.tensor(v), allow_unused=True)
    t_grads = torch.autograd.grad(t_out, t_leaves, torch.tensor(v), allow_unused=True)
    names = [f"input {i}" for i, x in enumerate(d_in) if x.requires_grad] + [
        k for k, _ in dm.named_parameters()]
    for name, dgr, tgr in zip(names, d_grads, t_grads):
        assert (dgr is None) == (tgr is None), name
        if tgr is not None:
            oracle.close(dgr, tgr, 1e-10, f"gradient of {name}")


PARAM_ROWS = [r for r in ROWS if list(r.make_dg().parameters())]


@pytest.mark.parametrize("row", PARAM_ROWS, ids=[r.name for r in PARAM_ROWS])
def test_module_backward_fills_parameter_grads(row):
    """``loss.backward()`` through the module fills ``.grad`` of every parameter with the same
    values that ``autograd.grad`` returns."""
    dm = row.make_dg()
    rng = np.random.default_rng(1)
    d_in = [dg.tensor(np.asarray(gen(rng))) for gen, _ in row.inputs]
    params = list(dm.parameters())
    out = dm(*d_in)
    v = dg.tensor(rng.standard_normal(out.shape))
    expected = dg.autograd.grad(out, params, v, retain_graph=True)
    out.backward(v)
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(p.grad.data, e.data)


# ---------------------------------------------------------------------- state_dict
def _nested_pair():
    d = nn.Sequential(
        nn.Linear(4, 5),
        nn.ModuleDict({"enc": nn.Linear(5, 5), "skip": nn.Identity()}),
        nn.ModuleList([nn.ReLU(), nn.Linear(5, 3), nn.Sequential(nn.Linear(3, 2))]),
    )
    t = tnn.Sequential(
        tnn.Linear(4, 5),
        tnn.ModuleDict({"enc": tnn.Linear(5, 5), "skip": tnn.Identity()}),
        tnn.ModuleList([tnn.ReLU(), tnn.Linear(5, 3), tnn.Sequential(tnn.Linear(3, 2))]),
    ).double()
    return d, t


def test_state_dict_keys_match_torch_for_nested_model():
    d, t = _nested_pair()
    assert list(d.state_dict()) == list(t.state_dict())
    assert [k for k, _ in d.named_parameters()] == [k for k, _ in t.named_parameters()]
    assert [k for k, _ in d.named_modules()] == [k for k, _ in t.named_modules()]
    assert d.num_parameters() == sum(p.numel() for p in t.parameters())
    for key, value in d.state_dict().items():
        assert value.shape == tuple(t.state_dict()[key].shape), key


def test_state_dict_shares_memory_and_is_detached():
    m = nn.Linear(3, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad
    sd["weight"].data[0, 0] = 123.0
    assert m.weight.data[0, 0] == 123.0


def test_torch_state_dict_loads_and_gives_same_outputs(oracle):
    d, t = _nested_pair()
    result = d.load_state_dict(_np_state(t))
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = np.random.default_rng(0).standard_normal((6, 4))
    xd, xt = dg.tensor(x), torch.tensor(x)
    hd = d[1]["enc"](d[0](xd))
    ht = t[1]["enc"](t[0](xt))
    for dm, tm in zip(d[2], t[2]):
        hd, ht = dm(hd), tm(ht)
    oracle.close(hd, ht, 1e-12, "nested model output")
    for key, value in t.state_dict().items():
        np.testing.assert_array_equal(d.state_dict()[key].data, value.numpy())


def test_load_state_dict_round_trip_between_deepgrad_models():
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k].data, v.data)
    b.weight.data[...] = 0.0  # a copy, not an alias
    assert np.any(a.weight.data != 0)


def test_load_state_dict_missing_key_strict():
    d, t = _nested_pair()
    sd = _np_state(t)
    del sd["1.enc.bias"]
    with pytest.raises(KeyError, match=r"missing.*1\.enc\.bias"):
        d.load_state_dict(sd)


def test_load_state_dict_unexpected_key_strict():
    d, t = _nested_pair()
    sd = _np_state(t)
    sd["2.9.weight"] = np.zeros((2, 2))
    with pytest.raises(KeyError, match=r"unexpected.*2\.9\.weight"):
        d.load_state_dict(sd)


def test_load_state_dict_non_strict_reports_keys():
    m = nn.Linear(4, 3)
    before = m.bias.data.copy()
    result = m.load_state_dict({"weight": np.ones((3, 4)), "extra": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(m.weight.data, np.ones((3, 4)))
    np.testing.assert_array_equal(m.bias.data, before)


def test_load_state_dict_shape_mismatch_names_both_shapes():
    m = nn.Linear(4, 3)
    with pytest.raises(ValueError) as info:
        m.load_state_dict({"weight": np.zeros((3, 5)), "bias": np.zeros(3)})
    msg = str(info.value)
    assert "weight" in msg and "(3, 5)" in msg and "(3, 4)" in msg


# ---------------------------------------------------------------------- modes, hooks, helpers
def test_train_eval_propagates_to_every_submodule():
    d, _ = _nested_pair()
    assert all(m.training for m in d.modules())
    assert d.eval() is d
    assert not any(m.training for m in d.modules())
    d.train()
    assert all(m.training for m in d.modules())
    d.train(False)
    assert not any(m.training for m in d.modules())


def test_train_eval_switches_dropout_inside_a_model():
    model = nn.Sequential(nn.Identity(), nn.Sequential(nn.Dropout(0.5)))
    x = dg.ones(200, 50)
    assert np.any(model(x).data == 0)
    model.eval()
    np.testing.assert_array_equal(model(x).data, x.data)


def test_train_mode_and_grad_mode_are_separate():
    model = nn.Sequential(nn.Linear(3, 2))
    model.eval()
    out = model(dg.ones(1, 3))
    assert out.requires_grad  # eval() does not stop graph recording (DESIGN rule 4)
    with dg.no_grad():
        out = model(dg.ones(1, 3))
    assert not out.requires_grad and not model.training


def test_forward_hook_fires_can_replace_output_and_be_removed():
    m = nn.Linear(3, 2)
    calls = []

    def hook(module, inputs, output):
        calls.append((module, inputs, output))
        return output * 2.0

    handle = m.register_forward_hook(hook)
    x = dg.ones(1, 3)
    plain = m.forward(x)
    out = m(x)
    assert len(calls) == 1 and calls[0][0] is m and calls[0][1][0] is x
    np.testing.assert_allclose(out.data, 2 * plain.data)
    handle.remove()
    np.testing.assert_allclose(m(x).data, plain.data)
    assert len(calls) == 1
    handle.remove()  # removing twice is harmless


def test_forward_pre_hook_fires_can_replace_input_and_be_removed():
    m = nn.Identity()
    seen = []

    def pre(module, inputs):
        seen.append(inputs)
        return inputs[0] + 1.0  # a single value is wrapped into a tuple, as in torch

    handle = m.register_forward_pre_hook(pre)
    x = dg.zeros(2)
    np.testing.assert_array_equal(m(x).data, [1.0, 1.0])
    assert seen[0][0] is x
    handle.remove()
    np.testing.assert_array_equal(m(x).data, [0.0, 0.0])
    assert len(seen) == 1


def test_hooks_on_submodules_fire_in_order_and_handle_is_a_context_manager():
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    order = []
    with model[0].register_forward_hook(lambda m, i, o: order.append("linear")), \
            model[1].register_forward_pre_hook(lambda m, i: order.append("tanh-pre")):
        model(dg.ones(1, 3))
    model(dg.ones(1, 3))
    assert order == ["linear", "tanh-pre"]


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    model(dg.ones(2, 3)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    model.zero_grad(set_to_none=set_to_none)
    for p, g in zip(model.parameters(), grads):
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad is g and not np.any(p.grad.data)


def test_apply_visits_children_first_then_self_and_can_initialise():
    d, _ = _nested_pair()
    visited = []
    assert d.apply(lambda m: visited.append(m)) is d
    assert visited[-1] is d
    assert len(visited) == len(list(d.modules()))
    assert visited.index(d[1]["enc"]) < visited.index(d[1])

    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)

    d.apply(init)
    assert all(np.all(m.weight.data == 0.5) for m in d.modules() if isinstance(m, nn.Linear))


def test_repr_matches_torch_for_common_layers():
    d = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Tanh(), nn.Flatten(), nn.Softmax(dim=1),
                      nn.LeakyReLU(0.2), nn.ELU(alpha=0.5), nn.Sequential(nn.Sigmoid()))
    t = tnn.Sequential(tnn.Linear(4, 3), tnn.ReLU(), tnn.Tanh(), tnn.Flatten(),
                       tnn.Softmax(dim=1), tnn.LeakyReLU(0.2), tnn.ELU(alpha=0.5),
                       tnn.Sequential(tnn.Sigmoid()))
    assert repr(d) == repr(t)


@pytest.mark.parametrize("module,pattern", [
    (nn.Dropout(0.3), r"^Dropout\(p=0\.3"),
    (nn.Linear(2, 5, bias=False), r"^Linear\(in_features=2, out_features=5, bias=False\)$"),
    (nn.MSELoss(), r"^MSELoss\(\)$"),
    (nn.CrossEntropyLoss(reduction="sum"), r"^CrossEntropyLoss\(.*sum.*\)$"),
    (nn.ModuleDict({"a": nn.ReLU()}), r"^ModuleDict\(\n  \(a\): ReLU\(\)\n\)$"),
    (nn.ModuleList([nn.Identity()]), r"^ModuleList\(\n  \(0\): Identity\(\)\n\)$"),
    (DgNet(), r"^DgNet\(\n  \(blocks\): ModuleList\(\n    \(0\): Linear"),
])
def test_repr_readable(module, pattern):
    assert re.search(pattern, repr(module)), repr(module)


def test_parameter_registration_and_containers():
    net = DgNet()
    assert isinstance(net.blocks[0].weight, nn.Parameter) and net.blocks[0].weight.requires_grad
    assert len(net.blocks) == 2 and "a" in net.heads and list(net.heads.keys()) == ["a", "b"]
    net.blocks.append(nn.Linear(5, 5))
    assert "blocks.2.weight" in net.state_dict()
    net.heads["c"] = nn.Linear(5, 1)
    assert "heads.c.bias" in net.state_dict()
    assert net.heads["b"].bias is None and "heads.b.bias" not in net.state_dict()
    seq = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    assert isinstance(seq[1], nn.Tanh) and len(seq[1:]) == 2 and isinstance(seq[-1], nn.Sigmoid)


def test_shared_parameter_is_listed_once():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.Tanh(), lin)
    tlin = tnn.Linear(3, 3)
    tmodel = tnn.Sequential(tlin, tnn.Tanh(), tlin)
    assert len(list(model.parameters())) == len(list(tmodel.parameters())) == 2


# ---------------------------------------------------------------------- initialisation, dropout
@pytest.mark.parametrize("in_f,out_f", [(400, 300), (7, 2000)])
def test_linear_default_init_statistics(in_f, out_f):
    m = nn.Linear(in_f, out_f)
    bound = 1.0 / math.sqrt(in_f)
    w, b = m.weight.data, m.bias.data
    assert w.shape == (out_f, in_f) and b.shape == (out_f,)
    assert np.all(np.abs(w) <= bound) and np.all(np.abs(b) <= bound)
    assert np.abs(w).max() > 0.99 * bound  # the whole interval is used
    n = w.size
    sd = bound / math.sqrt(3.0)  # std of U(-bound, bound)
    assert abs(w.mean()) < 5 * sd / math.sqrt(n)
    assert abs(w.std() / sd - 1) < 5 * math.sqrt(0.8 / n) + 1e-3  # var of U^2 / var^2 = 0.8


@pytest.mark.default_dtype("float32")
def test_linear_parameters_take_the_default_dtype():
    assert nn.Linear(3, 2).weight.dtype == np.float32
    dg.set_default_dtype("float64")
    assert nn.Linear(3, 2).bias.dtype == np.float64
    assert nn.Linear(3, 2, dtype="float32").weight.dtype == np.float32


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_dropout_train_statistics(p):
    dg.manual_seed(1234)
    m = nn.Dropout(p)
    x = dg.ones(200, 500)
    y = m(x).data
    n = y.size
    zero_frac = np.mean(y == 0)
    assert abs(zero_frac - p) < 5 * math.sqrt(p * (1 - p) / n)  # binomial std, 5 sigma
    survivors = y[y != 0]
    np.testing.assert_allclose(survivors, 1.0 / (1.0 - p), rtol=1e-15)
    assert abs(y.mean() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)  # unbiased in expectation


def test_dropout_eval_identity_and_extremes():
    x = dg.randn(30, 40)
    m = nn.Dropout(0.7).eval()
    np.testing.assert_array_equal(m(x).data, x.data)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).data, x.data)
    assert not np.any(nn.Dropout(1.0)(x).data)
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(-0.1)


def test_dropout_masks_differ_between_calls_and_follow_the_seed():
    m = nn.Dropout(0.5)
    x = dg.ones(50, 50)
    dg.manual_seed(3)
    a, b = m(x).data, m(x).data
    dg.manual_seed(3)
    c = m(x).data
    assert np.any(a != b)
    np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------------- errors
def test_module_errors():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(2, 4\)"):
        nn.Linear(4, 2)(dg.zeros(5, 3))
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="elementwise_mean")

    class NoSuper(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match="super"):
        NoSuper()
    with pytest.raises(NotImplementedError):
        nn.Module()(dg.ones(1))
    with pytest.raises(AttributeError, match="nope"):
        _ = nn.Linear(2, 2).nope


def test_weighted_loss_state_dict_keys_match_torch():
    w = [0.3, 1.0, 2.5]
    assert list(nn.CrossEntropyLoss(weight=dg.tensor(w)).state_dict()) == list(
        tnn.CrossEntropyLoss(weight=torch.tensor(w)).state_dict())
