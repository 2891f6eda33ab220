"""Claims dropout, regularization, batch-size, lr-schedule, clipping, losses, residual and
bias-variance at the smoke budget on real MNIST: each runs in seconds and returns a
well-formed outcome whose verdict is computed from its runs; plus unit tests of the helpers
(early stopping, the plateau adapter, the clipping recorder, residual blocks, the verdict
rules on hand-made runs)."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.lab.claims import (
    batch_size,
    bias_variance,
    clipping,
    dropout,
    losses,
    lr_schedule,
    regularization,
    residual,
)
from tests.lab.claim_smoke import check_claim_at_smoke

pytestmark = pytest.mark.default_dtype("float32")

#: The claims these tests cover (the coverage test's convention).
COVERED = {"dropout", "regularization", "batch-size", "lr-schedule", "clipping", "losses",
           "residual", "bias-variance"}


@pytest.mark.parametrize("name", sorted(COVERED))
def test_claim_at_smoke(name, mnist_dir, tmp_path):
    claim, outcome, _ = check_claim_at_smoke(name, mnist_dir, tmp_path)
    v = outcome.verdict
    assert isinstance(v["effect"], (dict, float, int)) and v["effect"] != {}
    assert len({r["variant"] for r in outcome.runs}) >= 2
    for run in outcome.runs:
        c = run["curves"]
        assert len(c["step"]) >= 1 and len(c["test_loss"]) == len(c["step"])
        assert isinstance(c["diverged"], bool) and isinstance(run["final"], dict)
    # The verdict is computed from the runs: recomputing it gives the same answer.
    judge = type(claim).judge
    takes_settings = len(inspect.signature(judge).parameters) == 2
    again = judge(outcome.runs, outcome.settings) if takes_settings else judge(outcome.runs)
    assert again["holds"] == v["holds"] and again["detail"] == v["detail"]


def _run(variant, seed, **final):
    return {"variant": variant, "seed": seed, "curves": {}, "final": final}


def test_dropout_verdict_follows_the_runs():
    good = [_run("no dropout", s, test_acc=0.88, gap=0.12, train_acc=1.0) for s in range(3)] + \
           [_run("dropout", s, test_acc=0.91 + 0.001 * s, gap=0.09, train_acc=1.0)
            for s in range(3)]
    v = dropout.DropoutClaim.judge(good)
    assert v["holds"] and v["effect"]["test_acc_gain"] == pytest.approx(0.031)
    bad = [dict(r, final=dict(r["final"], test_acc=0.85)) if r["variant"] == "dropout" else r
           for r in good]
    v = dropout.DropoutClaim.judge(bad)
    assert not v["holds"] and "Not confirmed" in v["detail"]


def test_dropout_model_has_dropout_only_when_asked():
    kinds = [type(m).__name__ for m in dropout.build_mlp(16, 0.2, 0.5)]
    assert kinds.count("Dropout") == 3
    assert "Dropout" not in [type(m).__name__ for m in dropout.build_mlp(16, 0.0, 0.0)]


def test_early_stop_index_keeps_the_best_checkpoint():
    assert regularization.early_stop_index([1.0, 0.8, 0.7, 0.75, 0.9, 1.0, 1.1], 3) == (2, 5)
    assert regularization.early_stop_index([1.0, 0.9, 0.8], 2) == (2, 2)


def test_ensemble_averages_probabilities():
    dg.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    x = dg.tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    out = regularization.Ensemble([a, b])(x).numpy()

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    expected = np.log((softmax(a(x).numpy()) + softmax(b(x).numpy())) / 2)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_augmented_only_transforms_in_training_mode():
    class Shift:
        def __call__(self, x):
            return x + 1.0

    m = regularization.Augmented(nn.Identity(), Shift())
    x = dg.tensor(np.zeros((2, 1, 3, 3), dtype=np.float32))
    assert float(m(x).numpy().sum()) == 18.0
    m.eval()
    assert float(m(x).numpy().sum()) == 0.0


def test_plateau_adapter_reduces_the_rate_on_a_stalled_validation_loss():
    model = nn.Linear(2, 2)
    opt = optim.SGD(model.parameters(), lr=1.0)
    x = np.zeros((4, 2), dtype=np.float32)
    y = np.zeros(4, dtype=np.int64)
    sched = lr_schedule.make_scheduler("plateau", opt, 10, model, (x, y))
    for _ in range(4):  # the same loss every epoch: no improvement after the first
        sched.step()
    assert opt.param_groups[0]["lr"] < 1.0 and len(sched.val_loss) == 4
    assert lr_schedule.make_scheduler("constant", opt, 10) is None
    step = lr_schedule.make_scheduler("step", optim.SGD(model.parameters(), lr=1.0), 8)
    assert sorted(step.milestones) == [4, 6]


def test_clip_recorder_records_the_norm_before_clipping():
    p = nn.Parameter(np.zeros(4, dtype=np.float32))
    p.grad = dg.tensor(np.full(4, 3.0, dtype=np.float32))  # norm 6
    rec = clipping.ClipAndRecord(optim.SGD([p], lr=1.0), [p], 1.0)
    rec.step()
    assert rec.norms == [pytest.approx(6.0)]
    assert float(np.linalg.norm(p.data)) == pytest.approx(1.0, rel=1e-4)
    free = clipping.ClipAndRecord(optim.SGD([p], lr=1.0), [p], None)
    p.grad = dg.tensor(np.full(4, 3.0, dtype=np.float32))
    free.step()
    assert free.norms == [pytest.approx(6.0)]


def test_losses_helpers():
    out = dg.tensor(np.zeros((2, 3), dtype=np.float32))
    y = dg.tensor(np.array([0, 2]))
    # sigmoid(0) = 0.5 everywhere: error 0.25 per entry
    assert float(losses.mse_sigmoid_loss(out, y).item()) == pytest.approx(0.25)
    dirty, clean = losses.regression_data(0, 200, 50, 5, 0.1, 20.0)
    assert np.array_equal(dirty.x_train, clean.x_train)
    shifted = dirty.y_train - clean.y_train
    assert 5 <= int((shifted > 19).sum()) <= 40 and np.all(shifted >= 0)
    assert np.array_equal(dirty.y_test, clean.y_test)


def test_residual_block_starts_as_identity_and_stacks_match_in_size():
    dg.manual_seed(0)
    block = residual.ResidualBlock(8)
    x = dg.tensor(np.abs(np.random.default_rng(0).normal(size=(6, 8))).astype(np.float32))
    np.testing.assert_allclose(block(x).numpy(), x.numpy(), rtol=1e-6)  # relu(x + 0) = x
    n_plain = sum(p.data.size for p in residual.build_stack(8, 16, False).parameters())
    n_res = sum(p.data.size for p in residual.build_stack(8, 16, True).parameters())
    assert n_plain == n_res


def test_batch_size_interpolation():
    c = {"epoch": [0.5, 1.0, 2.0], "test_loss": [2.0, 1.0, 0.5]}
    assert batch_size._interp(c, "epoch", 1.5) == pytest.approx(0.75)
    assert math.isnan(batch_size._interp(c, "epoch", 0.1))


def test_bias_variance_verdict_counts_expected_diagnoses():
    runs = []
    for regime, verdict in (("too small", "under-fitting"), ("well sized", "fine"),
                            ("too big", "over-fitting")):
        for s in range(3):
            runs.append(_run(regime, s, verdict=verdict, expected=True, train_error=0.01,
                             error_gap=0.01))
    assert bias_variance.BiasVarianceClaim.judge(runs)["holds"]
    runs[3]["final"]["expected"] = runs[4]["final"]["expected"] = False
    v = bias_variance.BiasVarianceClaim.judge(runs)
    assert not v["holds"] and "well sized" in v["detail"]
