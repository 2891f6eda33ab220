"""``diagnose_curves``: bias/variance verdicts on synthetic training histories."""

from __future__ import annotations

import json
import math

import pytest

from deepgrad.diagnostics import diagnose_curves
from deepgrad.diagnostics.curves import REMEDIES


def _history(train_loss, train_acc=None, val_loss=None, val_acc=None, prefix="val"):
    out = []
    for i, tl in enumerate(train_loss):
        h = {"epoch": i + 1, "train_loss": tl,
             "train_acc": None if train_acc is None else train_acc[i]}
        h[f"{prefix}_loss"] = None if val_loss is None else val_loss[i]
        h[f"{prefix}_acc"] = None if val_acc is None else val_acc[i]
        out.append(h)
    return out


def test_under_fitting():
    d = diagnose_curves(_history([1.20, 1.19, 1.19, 1.19], [0.60, 0.61, 0.61, 0.61],
                                 [1.22, 1.21, 1.21, 1.21], [0.59, 0.60, 0.60, 0.60]))
    assert d.verdict == "under-fitting" and d.high_bias and not d.high_variance
    assert d.converged is True
    assert d.evidence["train_error"] == pytest.approx(0.39)
    assert "a bigger model (more layers or units)" in d.remedies
    assert "train longer" not in d.remedies  # converged: longer would not help


def test_over_fitting_by_gap_and_rising_validation_loss():
    d = diagnose_curves(_history([0.5, 0.2, 0.08, 0.03, 0.02, 0.02],
                                 [0.85, 0.94, 0.98, 0.995, 0.999, 0.999],
                                 [0.45, 0.35, 0.36, 0.42, 0.50, 0.55],
                                 [0.87, 0.90, 0.90, 0.90, 0.89, 0.89]))
    assert d.verdict == "over-fitting" and d.high_variance and not d.high_bias
    assert d.evidence["error_gap"] == pytest.approx(0.109)
    assert d.evidence["best_val_epoch"] == 2 and d.evidence["val_loss_rising"] is True
    assert "more training data" in d.remedies and "dropout" in d.remedies
    assert "early stopping (best held-out loss at epoch 2)" in d.remedies


def test_fine():
    d = diagnose_curves(_history([0.3, 0.1, 0.06, 0.0595, 0.059, 0.0588],
                                 [0.91, 0.97, 0.985, 0.986, 0.986, 0.986],
                                 [0.12, 0.08, 0.07, 0.069, 0.069, 0.069],
                                 [0.965, 0.975, 0.979, 0.98, 0.98, 0.98]))
    assert d.verdict == "fine" and d.converged and d.remedies == []
    assert d.summary().startswith("fine\n")


def test_not_converged_says_train_longer():
    d = diagnose_curves(_history([2.0, 1.5, 1.1, 0.8], [0.5, 0.6, 0.7, 0.8],
                                 [2.0, 1.5, 1.1, 0.8], [0.5, 0.6, 0.7, 0.8]))
    assert d.verdict == "under-fitting" and d.converged is False
    assert d.remedies[0].startswith("train longer")
    assert d.summary().startswith("under-fitting, not converged")


def test_both_bias_and_variance_reports_bias_first():
    d = diagnose_curves(_history([0.6, 0.6, 0.6], [0.8, 0.8, 0.8], [1.0, 1.0, 1.0],
                                 [0.7, 0.7, 0.7]))
    assert d.verdict == "under-fitting" and d.high_bias and d.high_variance
    assert "(and over-fitting)" in d.summary()
    assert "dropout" in d.remedies


def test_loss_only_histories():
    over = diagnose_curves(_history([0.1, 0.05, 0.04, 0.04], val_loss=[0.2, 0.2, 0.2, 0.2]))
    assert over.verdict == "over-fitting" and over.evidence["loss_gap_rel"] == pytest.approx(4)
    fine = diagnose_curves(_history([0.1, 0.1], val_loss=[0.11, 0.11]))
    assert fine.verdict == "fine"
    under = diagnose_curves(_history([0.9, 0.9], val_loss=[0.9, 0.9]), acceptable_loss=0.1)
    assert under.verdict == "under-fitting"


def test_percent_accuracies_and_test_keys():
    d = diagnose_curves(_history([0.5, 0.49], [80.0, 80.5], [0.5, 0.5], [80.0, 80.0],
                                 prefix="test"))
    assert d.evidence["held_out"] == "test"
    assert d.evidence["train_error"] == pytest.approx(0.195)
    assert d.verdict == "under-fitting"


def test_train_only_history_and_single_epoch():
    d = diagnose_curves([{"train_loss": 0.4, "train_acc": 0.99}])
    assert d.verdict == "fine" and d.converged is None
    assert "held_out" not in d.evidence


def test_diverged():
    d = diagnose_curves(_history([1.0, math.nan], [0.5, 0.1]))
    assert d.verdict == "diverged" and d.evidence["diverged_at_epoch"] == 2
    assert d.remedies == REMEDIES["diverged"]


def test_to_dict_is_json():
    d = diagnose_curves(_history([1.0, 0.9], [0.5, 0.55], [1.0, 0.95], [0.5, 0.52]))
    out = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert out["verdict"] == d.verdict and out["evidence"]["epochs"] == 2


def test_bad_histories():
    with pytest.raises(ValueError, match="empty"):
        diagnose_curves([])
    with pytest.raises(ValueError, match="train_loss"):
        diagnose_curves([{"train_acc": 0.5}])
