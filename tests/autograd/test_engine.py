"""The autograd engine: accumulation, graph lifetime, ``grad()``, grad modes, hooks, deep graphs,
dtype defaults, and second order (Hessian-vector products and Hessians against torch)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad import nn
from deepgrad.autograd import functional as AF


def _pair(arr, requires_grad=True):
    return dg.tensor(arr, requires_grad=requires_grad), torch.tensor(arr,
                                                                     requires_grad=requires_grad)


# ---------------------------------------------------------------------- accumulation, lifetime
def test_gradients_accumulate_across_backward_calls():
    x = dg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0, 6.0])
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 8.0, 12.0])
    (x * 3.0).sum().backward()  # a second graph adds too
    np.testing.assert_array_equal(x.grad.data, [7.0, 11.0, 15.0])


def test_grad_is_not_aliased_with_upstream_or_other_leaves():
    a = dg.tensor([1.0, 2.0], requires_grad=True)
    b = dg.tensor([3.0, 4.0], requires_grad=True)
    v = dg.tensor([1.0, 1.0])
    (a + b).backward(v)
    a.grad.data += 10.0
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])
    np.testing.assert_array_equal(v.data, [1.0, 1.0])


def test_second_backward_without_retain_graph_raises_with_advice():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retained_graph_gives_same_gradient_twice():
    x = dg.tensor([0.5, -1.0], requires_grad=True)
    y = (x.tanh() ** 2).sum()
    g1, = dg.autograd.grad(y, x, retain_graph=True)
    g2, = dg.autograd.grad(y, x)
    np.testing.assert_array_equal(g1.data, g2.data)


def test_backward_on_non_scalar_without_gradient_raises():
    x = dg.randn(3, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(3, 2\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"\(2,\).*\(3, 2\)"):
        (x * 2).backward(dg.ones(2))


def test_backward_on_tensor_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        dg.ones(2).sum().backward()


def test_backward_inputs_restricts_accumulation():
    a, b = dg.randn(3, requires_grad=True), dg.randn(3, requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    np.testing.assert_array_equal(a.grad.data, b.data)
    assert b.grad is None


# ---------------------------------------------------------------------- autograd.grad
def test_grad_with_create_graph_gives_higher_derivatives():
    x0 = np.array([0.3, -1.2, 2.0])
    x, xt = _pair(x0)
    g, = dg.autograd.grad((x**3).sum(), x, create_graph=True)
    assert g.requires_grad
    np.testing.assert_allclose(g.data, 3 * x0**2, rtol=1e-14)
    g2, = dg.autograd.grad(g.sum(), x, create_graph=True)
    np.testing.assert_allclose(g2.data, 6 * x0, rtol=1e-14)
    g3, = dg.autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.data, [6.0, 6.0, 6.0], rtol=1e-14)
    assert not g3.requires_grad
    gt, = torch.autograd.grad((xt**3).sum(), xt, create_graph=True)
    g2t, = torch.autograd.grad(gt.sum(), xt)
    np.testing.assert_allclose(g2.data, g2t.numpy(), rtol=1e-14)


def test_grad_without_create_graph_returns_detached_and_leaves_grad_untouched():
    x = dg.randn(3, requires_grad=True)
    g, = dg.autograd.grad((x * x).sum(), x)
    assert not g.requires_grad and g.grad_fn is None
    assert x.grad is None


def test_grad_allow_unused():
    x, z = dg.randn(3, requires_grad=True), dg.randn(3, requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        dg.autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = dg.autograd.grad(y, [x, z], allow_unused=True)
    np.testing.assert_array_equal(gx.data, [2.0, 2.0, 2.0])
    assert gz is None


def test_grad_with_grad_outputs_matches_torch():
    rng = np.random.default_rng(0)
    a0, b0, v0, w0 = (rng.standard_normal(s) for s in [(3, 4), (4, 2), (3, 2), (3, 4)])
    a, at = _pair(a0)
    b, bt = _pair(b0)
    outs = [(a @ b).tanh(), a.exp()]
    outs_t = [(at @ bt).tanh(), at.exp()]
    ga, gb = dg.autograd.grad(outs, [a, b], [dg.tensor(v0), dg.tensor(w0)])
    gat, gbt = torch.autograd.grad(outs_t, [at, bt], [torch.tensor(v0), torch.tensor(w0)])
    np.testing.assert_allclose(ga.data, gat.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gb.data, gbt.numpy(), rtol=1e-12)


def test_grad_with_respect_to_a_non_leaf():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    y = (h**2).sum()
    gh, = dg.autograd.grad(y, h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


def test_grad_errors():
    x = dg.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        dg.autograd.grad((x * 2).sum(), dg.randn(3))
    with pytest.raises(ValueError, match="grad_outputs"):
        dg.autograd.grad([x * 2], [x], [dg.ones(3), dg.ones(3)])


# ---------------------------------------------------------------------- grad modes
def test_no_grad_and_enable_grad_contexts():
    x = dg.randn(3, requires_grad=True)
    with dg.no_grad():
        y = x * 2
        assert not dg.is_grad_enabled()
        with dg.enable_grad():
            z = x * 2
            assert dg.is_grad_enabled()
        assert not dg.is_grad_enabled()
    assert dg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(KeyError), dg.no_grad():
        raise KeyError("boom")
    assert dg.is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators():
    x = dg.randn(3, requires_grad=True)

    @dg.no_grad()
    def f(t):
        return t * 2

    @dg.enable_grad()
    def g(t):
        return t * 2

    assert f.__name__ == "f"
    assert not f(x).requires_grad
    with dg.no_grad():
        assert g(x).requires_grad
    assert dg.is_grad_enabled()


def test_set_grad_enabled_as_context_and_call():
    x = dg.randn(3, requires_grad=True)
    with dg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert dg.is_grad_enabled()
    with dg.set_grad_enabled(True):
        assert (x * 2).requires_grad
    dg.set_grad_enabled(False)  # a plain call sets the mode, as in torch
    try:
        assert not (x * 2).requires_grad
    finally:
        dg.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_set_grad_enabled_as_decorator():
    x = dg.randn(3, requires_grad=True)

    @dg.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert dg.is_grad_enabled()  # decorating must not change the mode
    assert not f(x).requires_grad
    assert dg.is_grad_enabled()


# ---------------------------------------------------------------------- graph shapes
def test_deep_graph_of_10000_ops_does_not_hit_the_recursion_limit():
    assert sys.getrecursionlimit() < 20000
    x = dg.tensor([1.0, -2.0], requires_grad=True)
    y = x
    for _ in range(10000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0001**10000] * 2, rtol=1e-10)
    del y  # freeing the chain must not recurse either


def test_deep_graph_double_backward():
    x = dg.tensor([0.1], requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0001
    g, = dg.autograd.grad((y * y).sum(), x, create_graph=True)
    h, = dg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, [2 * 1.0001**6000], rtol=1e-9)


def test_diamond_graph_tensor_used_twice_matches_torch():
    x0 = np.array([[0.5, -1.0], [2.0, 0.3]])
    x, xt = _pair(x0)

    def f(t, lib):
        y = t * 2.0
        a = y.exp()
        b = y * y
        return (a * b + lib.tanh(y) * t).sum()

    f(x, dg).backward()
    f(xt, torch).backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-13)


def test_same_tensor_as_both_operands():
    x, xt = _pair(np.array([1.5, -2.0]))
    (x * x * x).sum().backward()
    (xt * xt * xt).sum().backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-14)


# ---------------------------------------------------------------------- hooks, detach
def test_hook_on_leaf_modifies_its_grad_and_can_be_removed():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: (seen.append(g.data.copy()), g * 10.0)[1])
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.data, [30.0, 30.0])
    handle.remove()
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_hook_on_non_leaf_modifies_the_gradient_flowing_back():
    x0 = np.array([1.0, -2.0, 0.5])
    x, xt = _pair(x0)
    h = x.exp()
    ht = xt.exp()
    h.register_hook(lambda g: g * 2.0)
    ht.register_hook(lambda g: g * 2.0)
    observed = []
    h.register_hook(lambda g: observed.append(g.data.copy()))  # None keeps the gradient
    (h * h).sum().backward()
    (ht * ht).sum().backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(observed[0], 4 * np.exp(x0), rtol=1e-14)  # after the 1st hook


def test_hook_on_leaf_applies_to_autograd_grad_as_in_torch():
    x, xt = _pair(np.array([1.0, 2.0, 3.0]))
    x.register_hook(lambda g: g * 2.0)
    xt.register_hook(lambda g: g * 2.0)
    g, = dg.autograd.grad((x * 1.0).sum(), x)
    gt, = torch.autograd.grad((xt * 1.0).sum(), xt)
    np.testing.assert_array_equal(g.data, gt.numpy())


def test_register_hook_requires_grad():
    with pytest.raises(RuntimeError, match="doesn't require grad"):
        dg.ones(2).register_hook(lambda g: g)


def test_detach_shares_data_and_cuts_the_graph():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    z = (d * x).sum()
    z.backward()
    np.testing.assert_array_equal(x.grad.data, d.data)  # no gradient through d


# ---------------------------------------------------------------------- misuse
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_requires_grad_on_non_float_tensor_raises(dtype):
    with pytest.raises(RuntimeError, match="floating-point"):
        dg.tensor(np.array([1, 0]).astype(dtype), requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        dg.tensor(np.array([1, 0]).astype(dtype)).requires_grad_()


@pytest.mark.parametrize("op", [
    lambda t: t.add_(1.0), lambda t: t.sub_(1.0), lambda t: t.mul_(2.0), lambda t: t.div_(2.0),
    lambda t: t.zero_(), lambda t: t.fill_(1.0), lambda t: t.copy_(dg.zeros(3)),
    lambda t: t.uniform_(), lambda t: t.normal_(), lambda t: t.__setitem__(0, 5.0),
], ids=["add_", "sub_", "mul_", "div_", "zero_", "fill_", "copy_", "uniform_", "normal_",
        "setitem"])
def test_in_place_on_leaf_requiring_grad_raises_unless_no_grad(op):
    x = dg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        op(x)
    np.testing.assert_array_equal(x.data, [1.0, 1.0, 1.0])
    with dg.no_grad():
        op(x)
    assert x.requires_grad


def test_requires_grad_cannot_be_turned_off_on_non_leaf():
    y = dg.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


# ---------------------------------------------------------------------- dtypes
@pytest.mark.default_dtype("float32")
def test_float32_is_the_default_dtype():
    assert dg.get_default_dtype() == np.float32
    for t in (dg.randn(2), dg.rand(2), dg.zeros(2), dg.ones(2), dg.tensor([1.0, 2.0]),
              dg.tensor(1.5), dg.full((2,), 0.5), dg.arange(0.0, 1.0, 0.5), dg.eye(2),
              dg.linspace(0, 1, 3), dg.empty(2)):
        assert t.dtype == np.float32, t
    assert dg.tensor([1, 2]).dtype == np.int64
    assert dg.tensor(np.zeros(2)).dtype == np.float64  # ndarrays keep their dtype
    assert nn.Linear(2, 2).weight.dtype == np.float32
    x = dg.randn(3, requires_grad=True)
    (x * 2.0 + 1.0).exp().sum().backward()
    assert x.grad.dtype == np.float32


@pytest.mark.default_dtype("float32")
def test_set_default_dtype_float64():
    dg.set_default_dtype("float64")
    assert dg.get_default_dtype() == np.float64
    assert dg.randn(2).dtype == np.float64 and dg.tensor([1.0]).dtype == np.float64
    assert nn.Linear(2, 2).bias.dtype == np.float64
    dg.set_default_dtype(dg.float32)
    assert dg.zeros(1).dtype == np.float32
    with pytest.raises(TypeError):
        dg.set_default_dtype("int64")


def test_fixture_runs_tests_in_float64():
    assert dg.get_default_dtype() == np.float64


# ---------------------------------------------------------------------- second order vs torch
ACTS = {
    "tanh": (dg.tanh, torch.tanh),
    "sigmoid": (dg.sigmoid, torch.sigmoid),
    "softplus": (F.softplus, torch.nn.functional.softplus),
    "elu": (F.elu, torch.nn.functional.elu),
    "relu": (F.relu, torch.relu),
}
SIZES = [(5, 7), (7, 6), (6, 3)]


def _mlp_params(seed):
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in SIZES:
        params += [rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in),
                   0.1 * rng.standard_normal(fan_out)]
    return params


def _mlp_loss(lib_f, act1, act2, x, y, *params):
    w1, b1, w2, b2, w3, b3 = params
    h = act1(lib_f.linear(x, w1, b1))
    h = act2(lib_f.linear(h, w2, b2))
    return lib_f.cross_entropy(lib_f.linear(h, w3, b3), y)


def _mlp_data(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((8, 5)), rng.integers(0, 3, 8)


@pytest.mark.parametrize("act1,act2", [("tanh", "sigmoid"), ("softplus", "tanh"),
                                       ("elu", "softplus"), ("relu", "tanh"),
                                       ("tanh", "relu")])
def test_hvp_of_mlp_cross_entropy_matches_torch_double_backward(act1, act2):
    params = _mlp_params(1)
    x0, y0 = _mlp_data(2)
    rng = np.random.default_rng(3)
    vs = [rng.standard_normal(p.shape) for p in params]
    (da1, ta1), (da2, ta2) = ACTS[act1], ACTS[act2]
    xd, yd = dg.tensor(x0), dg.tensor(y0)

    def loss_dg(*ps):
        return _mlp_loss(F, da1, da2, xd, yd, *ps)

    # torch: g = dL/dp with create_graph, then d(g . v)/dp.
    tps = [torch.tensor(p, requires_grad=True) for p in params]
    lt = _mlp_loss(torch.nn.functional, ta1, ta2, torch.tensor(x0), torch.tensor(y0), *tps)
    gt = torch.autograd.grad(lt, tps, create_graph=True)
    hv_t = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(gt, vs)), tps)

    # deepgrad 1: autograd.functional.hvp.
    value, hv = AF.hvp(loss_dg, tuple(dg.tensor(p) for p in params),
                       tuple(dg.tensor(v) for v in vs))
    np.testing.assert_allclose(value.item(), lt.item(), rtol=1e-12)
    # deepgrad 2: grad(create_graph=True) twice, by hand.
    dps = [dg.tensor(p, requires_grad=True) for p in params]
    gd = dg.autograd.grad(loss_dg(*dps), dps, create_graph=True)
    dot = sum(((g * dg.tensor(v)).sum() for g, v in zip(gd, vs)), dg.tensor(0.0))
    hv2 = dg.autograd.grad(dot, dps)
    for k, (a, b, t) in enumerate(zip(hv, hv2, hv_t)):
        scale = np.abs(t.numpy()).max()
        np.testing.assert_allclose(a.data, t.numpy(), rtol=1e-10, atol=1e-10 * scale,
                                   err_msg=f"hvp param {k}")
        np.testing.assert_allclose(b.data, t.numpy(), rtol=1e-10, atol=1e-10 * scale,
                                   err_msg=f"grad-of-grad param {k}")


def test_hvp_of_module_model_matches_torch():
    """The same through nn.Module parameters (Sequential) and loss modules."""
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3),
                             torch.nn.Softplus(), torch.nn.Linear(3, 3)).double()
    dm = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3), nn.Softplus(),
                       nn.Linear(3, 3))
    dm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x0, y0 = np.random.default_rng(0).standard_normal((10, 4)), np.arange(10) % 3
    rng = np.random.default_rng(1)
    vs = [rng.standard_normal(tuple(p.shape)) for p in tm.parameters()]

    lt = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(tm(torch.tensor(x0)), torch.tensor(y0))
    gt = torch.autograd.grad(lt, list(tm.parameters()), create_graph=True)
    hv_t = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(gt, vs)),
                               list(tm.parameters()))
    ld = nn.CrossEntropyLoss(label_smoothing=0.1)(dm(dg.tensor(x0)), dg.tensor(y0))
    params = list(dm.parameters())
    gd = dg.autograd.grad(ld, params, create_graph=True)
    hv = dg.autograd.grad(sum(((g * dg.tensor(v)).sum() for g, v in zip(gd, vs)),
                              dg.tensor(0.0)), params)
    for a, t in zip(hv, hv_t):
        np.testing.assert_allclose(a.data, t.numpy(), rtol=1e-10,
                                   atol=1e-10 * np.abs(t.numpy()).max())


def test_hessian_matches_torch():
    a0 = np.random.default_rng(4).standard_normal((6, 6))

    def f(lib, x):
        flat = x.reshape(6)
        return (lib.tanh(x) ** 2 * x).sum() + (flat @ (flat @ a0_lib(lib))) + lib.exp(x).sum()

    def a0_lib(lib):
        return dg.tensor(a0) if lib is dg else torch.tensor(a0)

    x0 = np.random.default_rng(5).standard_normal((2, 3))
    h = AF.hessian(lambda x: f(dg, x), dg.tensor(x0))
    ht = torch.autograd.functional.hessian(lambda x: f(torch, x), torch.tensor(x0))
    assert h.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(h.data, ht.numpy(), rtol=1e-12, atol=1e-12)
    flat = h.data.reshape(6, 6)
    np.testing.assert_allclose(flat, flat.T, atol=1e-12)


def test_hvp_rejects_non_scalar_function():
    with pytest.raises(ValueError, match="scalar"):
        AF.hvp(lambda x: x * 2, dg.randn(3), dg.randn(3))


def test_vjp_matches_torch():
    x0, v0 = np.random.default_rng(6).standard_normal((2, 3, 4))
    out, g = AF.vjp(lambda x: dg.softmax(x, 1), dg.tensor(x0), dg.tensor(v0))
    out_t, g_t = torch.autograd.functional.vjp(lambda x: torch.softmax(x, 1), torch.tensor(x0),
                                               torch.tensor(v0))
    np.testing.assert_allclose(out.data, out_t.numpy(), rtol=1e-14)
    np.testing.assert_allclose(g.data, g_t.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("act", ["tanh", "softplus", "sigmoid"])
def test_gradgradcheck_tiny_mlp_loss(act):
    rng = np.random.default_rng(7)
    x, y = dg.tensor(rng.standard_normal((4, 3))), dg.tensor(np.array([0, 1, 1, 0]))
    params = (rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((2, 4)),
              rng.standard_normal(2))
    f = ACTS[act][0]

    def loss(w1, b1, w2, b2):
        return F.cross_entropy(F.linear(f(F.linear(x, w1, b1)), w2, b2), y)

    inputs = tuple(dg.tensor(p, requires_grad=True) for p in params)
    assert dg.autograd.gradcheck(loss, inputs)
    assert dg.autograd.gradgradcheck(loss, inputs)


def test_gradcheck_refuses_float32_and_inputs_without_grad():
    with pytest.raises(TypeError, match="float64"):
        dg.autograd.gradcheck(lambda t: t * 2, (dg.randn(2, dtype="float32",
                                                        requires_grad=True),))
    with pytest.raises(ValueError, match="no input requires grad"):
        dg.autograd.gradcheck(lambda t: t * 2, (dg.randn(2),))


def test_gradcheck_works_on_non_contiguous_inputs():
    a = np.random.default_rng(8).standard_normal((3, 4)).T  # a transposed view
    x = dg.from_numpy(a).requires_grad_()
    assert not x.data.flags.c_contiguous
    assert dg.autograd.gradcheck(lambda t: t.exp() * 2, (x,))
    assert dg.autograd.gradgradcheck(lambda t: t.exp() * 2, (x,))
