"""``deepgrad.diagnostics.inspect``: per-layer statistics, flags, and leaving the model alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn
from deepgrad.diagnostics import Report, build_diagnose_model, inspect
from deepgrad.diagnostics.flags import DEAD_FRAC

RECORD_KEYS = {
    "name": str, "type": str, "output_shape": list, "num_params": int,
    "act_mean": float, "act_std": float, "nonfinite": bool,
}
OPTIONAL_FLOATS = ("frac_saturated", "frac_dead", "weight_norm", "grad_norm", "update_ratio",
                   "out_grad_norm", "out_grad_rms")


def _batch(n=128, d=784, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, 10, n)


def _mlp(depth, width, activation, init, **kw):
    return build_diagnose_model(depth, width, activation, init, **kw)


# ----------------------------------------------------------------------------- the four nets
def test_sigmoid_normal_init_is_saturated():
    x, y = _batch()
    report = inspect(_mlp(10, 128, "sigmoid", "normal"), x, y)
    sat = [f for f in report.flags if "(Sigmoid)" in f and "saturated" in f]
    assert len(sat) >= 8, report.flags
    assert all(r["frac_saturated"] > 0.5 for r in report.layers if r["type"] == "Sigmoid")


def test_relu_with_negative_biases_has_dead_units():
    model = _mlp(6, 64, "relu", "he")
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.bias, -10.0)
    x, y = _batch(64)
    report = inspect(model, x, y)
    dead = [f for f in report.flags if "dead units" in f]
    assert dead and dead[0] == "layer 2 (ReLU): 100% dead units", report.flags
    relus = [r for r in report.layers if r["type"] == "ReLU"]
    assert all(r["frac_dead"] == 1.0 for r in relus)


def test_deep_tanh_with_tiny_init_collapses_and_vanishes():
    x, y = _batch(64)
    report = inspect(_mlp(20, 64, "tanh", "normal", init_std=0.01), x, y)
    assert any(f.startswith("activations collapse to 0 by layer") for f in report.flags), \
        report.flags
    assert any(f.startswith("gradients vanish") for f in report.flags), report.flags
    grads = [r["out_grad_rms"] for r in report.layers if r["type"] == "Linear"]
    assert grads[0] < 1e-12 * grads[-1]


def test_he_relu_net_has_no_flags():
    x, y = _batch(128)
    report = inspect(_mlp(10, 128, "relu", "he"), x, y)
    assert report.flags == []
    assert "flags: none" in report.table()


def test_normal_init_relu_explodes():
    x, y = _batch(64)
    report = inspect(_mlp(8, 128, "relu", "normal"), x, y)
    text = " | ".join(report.flags)
    assert "activation std grows" in text and "gradients explode" in text
    assert "update/weight ratio" in text


# ----------------------------------------------------------------------------- exact values
def test_frac_dead_exact_on_handcrafted_linear():
    lin = nn.Linear(2, 4)
    with dg.no_grad():
        lin.weight.data[...] = [[0, 0], [1, 0], [0, 1], [1, 1]]
        lin.bias.data[...] = [-1, 0, 0, 5]
    model = nn.Sequential(lin, nn.ReLU())
    # unit 0: -1 always -> dead; unit 1: x0 (negative for every sample) -> dead;
    # unit 2: x1 (positive once) -> alive; unit 3: x0 + x1 + 5 > 0 -> alive.
    x = np.array([[-1.0, -2.0], [-3.0, 4.0], [-0.5, -0.5]])
    report = inspect(model, x)
    relu = report.layers[1]
    assert relu["type"] == "ReLU" and relu["frac_dead"] == pytest.approx(0.5)
    assert report.layers[0]["frac_dead"] is None


def test_frac_dead_counts_positions_of_conv_shaped_outputs():
    x = np.ones((3, 2, 2, 2))
    x[:, 0, 0, 0] = -1.0                      # dead at every sample
    x[:, 1, 1, 1] = [-1.0, -2.0, 3.0]         # alive at one sample
    x[:, 1, 0, 1] = -5.0                      # dead
    report = inspect(nn.Sequential(nn.ReLU()), x)
    assert report.layers[0]["frac_dead"] == pytest.approx(2 / 8)


def test_frac_saturated_exact():
    x = np.array([[-10.0, -4.0, 0.0, 4.0, 4.7, 10.0, 2.0, -6.0]])
    sig = inspect(nn.Sequential(nn.Sigmoid()), x).layers[0]
    # sigmoid < 0.01 for x < -4.595, > 0.99 for x > 4.595: -10, 4.7, 10, -6
    assert sig["frac_saturated"] == pytest.approx(4 / 8)
    tanh = inspect(nn.Sequential(nn.Tanh()), x).layers[0]
    # |tanh x| > 0.99 for |x| > 2.647: -10, -4, 4, 4.7, 10, -6
    assert tanh["frac_saturated"] == pytest.approx(6 / 8)
    assert inspect(nn.Sequential(nn.ReLU()), x).layers[0]["frac_saturated"] is None


def test_update_ratio_and_gradient_norms_match_backward():
    x, y = _batch(32, 20)
    model = nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 10))
    report = inspect(model, x, y, lr=0.5)
    loss = nn.functional.cross_entropy(model(dg.tensor(x)), dg.tensor(y))
    loss.backward()
    for rec, lin in ((report.layers[0], model[0]), (report.layers[2], model[2])):
        g = np.linalg.norm(lin.weight.grad.data)
        w = np.linalg.norm(lin.weight.data)
        assert rec["grad_norm"] == pytest.approx(g, rel=1e-10)
        assert rec["weight_norm"] == pytest.approx(w, rel=1e-10)
        assert rec["update_ratio"] == pytest.approx(0.5 * g / w, rel=1e-10)
    assert report.loss == pytest.approx(loss.item())
    # d loss / d logits of a mean cross-entropy: (softmax - onehot) / N
    z = model(dg.tensor(x)).data
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(32), y] -= 1
    assert report.layers[2]["out_grad_norm"] == pytest.approx(np.linalg.norm(p / 32), rel=1e-8)


# ----------------------------------------------------------------------------- record shape
def test_record_fields_and_types():
    x, y = _batch(16, 12)
    model = nn.Sequential(nn.Linear(12, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 3))
    report = inspect(model, x, y % 3)
    assert isinstance(report, Report)
    assert [r["name"] for r in report.layers] == ["0", "1", "2", "3", "4"]
    assert [r["type"] for r in report.layers] == ["Linear", "Sigmoid", "Linear", "ReLU",
                                                   "Linear"]
    for r in report.layers:
        for key, typ in RECORD_KEYS.items():
            assert isinstance(r[key], typ), (key, r[key])
        for key in OPTIONAL_FLOATS:
            assert r[key] is None or isinstance(r[key], float), (key, r[key])
        assert isinstance(r["out_grad_rms"], float)
        assert (r["grad_norm"] is None) == (r["num_params"] == 0)
    assert report.layers[0]["output_shape"] == [16, 8]
    assert report.layers[1]["frac_saturated"] is not None and report.layers[1]["frac_dead"] is None
    assert report.layers[3]["frac_dead"] is not None and report.layers[3]["frac_saturated"] is None
    assert report.batch_size == 16 and report.mode == "train"
    d = json.loads(json.dumps(report.to_dict()))
    assert d["layers"][0]["name"] == "0" and "thresholds" in d and d["flags"] == report.flags
    table = report.table()
    lines = table.splitlines()
    assert "layer" in lines[1] and "sat%" in lines[1] and "dead%" in lines[1]
    assert len({len(line) for line in lines[1:3]}) == 1  # header and rule align


def test_without_targets_gradients_are_none():
    x, _ = _batch(8, 6)
    report = inspect(nn.Sequential(nn.Linear(6, 4), nn.ReLU()), x)
    assert report.loss is None
    assert all(r["grad_norm"] is None and r["out_grad_norm"] is None for r in report.layers)


def test_custom_loss_and_no_grad_context():
    x = np.random.default_rng(1).standard_normal((8, 5))
    model = nn.Sequential(nn.Linear(5, 3))
    with dg.no_grad():
        report = inspect(model, x, np.zeros((8, 3)), loss_fn=nn.functional.mse_loss)
        assert not dg.is_grad_enabled()
    assert report.layers[0]["grad_norm"] > 0


def test_nonfinite_outputs_are_flagged_not_raised():
    lin = nn.Linear(4, 4)
    with dg.no_grad():
        lin.weight.data[...] = 1e308
    with np.errstate(over="ignore", invalid="ignore"):  # the forward pass itself overflows
        report = inspect(nn.Sequential(lin, nn.ReLU(), nn.Linear(4, 2)), np.ones((4, 4)),
                         np.zeros(4, dtype=np.int64))
    assert report.flags[0] == "layer 0 (Linear): output contains NaN or inf"
    assert sum("NaN or inf" in f for f in report.flags) == 1
    assert report.loss is None
    json.dumps(report.to_dict(), allow_nan=False)


def test_bad_inputs():
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="NaN"):
        inspect(model, np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="non-empty"):
        inspect(model, np.zeros((0, 2)))
    with pytest.raises(TypeError, match="nn.Module"):
        inspect(lambda t: t, np.zeros((1, 2)))


# ----------------------------------------------------------------------------- no side effects
def test_inspect_leaves_the_model_unchanged():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.act = nn.ReLU()
            self.drop = nn.Dropout(0.5)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 5))

        def forward(self, x):
            return self.head(self.drop(self.act(self.bn(self.conv(x)))))

    model = Net()
    model.head.eval()  # a sub-module in another mode than its parent
    with dg.no_grad():
        model.bn.running_mean.data[...] = 0.3
    seen = []
    user_hook = model.act.register_forward_hook(lambda m, i, o: seen.append(1))
    model.conv.weight.grad = dg.tensor(np.full(model.conv.weight.shape, 7.0))
    params = {n: p.data.copy() for n, p in model.named_parameters()}
    grads = {n: (p.grad, None if p.grad is None else p.grad.data.copy())
             for n, p in model.named_parameters()}
    buffers = {n: b.data.copy() for n, b in model.named_buffers()}
    modes = {n: m.training for n, m in model.named_modules()}
    hooks = {n: len(m._forward_hooks) for n, m in model.named_modules()}
    rng_state = dg.get_rng_state()

    x = np.random.default_rng(0).standard_normal((8, 1, 6, 6))
    report = inspect(model, x, np.arange(8) % 5)

    assert [r["type"] for r in report.layers] == ["Conv2d", "BatchNorm2d", "ReLU", "Dropout",
                                                   "Flatten", "Linear"]
    assert report.layers[0]["output_shape"] == [8, 4, 6, 6]
    assert seen == [1]  # the user's hook ran once and is still registered
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, params[n])
        grad, value = grads[n]
        assert p.grad is grad
        if value is not None:
            np.testing.assert_array_equal(p.grad.data, value)
    for n, b in model.named_buffers():
        np.testing.assert_array_equal(b.data, buffers[n])
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: len(m._forward_hooks) for n, m in model.named_modules()} == hooks
    assert dg.get_rng_state() == rng_state
    user_hook.remove()


def test_eval_mode_option():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU())
    report = inspect(model, np.random.default_rng(0).standard_normal((6, 4)), train=False)
    assert report.mode == "eval" and model.training


def test_dead_units_are_flagged_only_on_a_real_batch():
    # With two samples a healthy unit is zero on both with probability 1/4: no flag.
    row = [-1.0, -1.0, -1.0, 1.0]
    small = inspect(nn.Sequential(nn.ReLU()), np.array([row] * 2))
    assert small.layers[0]["frac_dead"] == 0.75 > DEAD_FRAC
    assert small.flags == []
    large = inspect(nn.Sequential(nn.ReLU()), np.array([row] * 8))
    assert large.flags == ["layer 0 (ReLU): 75% dead units"]
