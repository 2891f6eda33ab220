"""Tests of deepgrad.search.space: drawing from a SearchSpace, validation, narrowing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepgrad.search import PARAMS, SearchSpace, best_trials, build_optimizer, narrow
from deepgrad.search.space import OPTIMIZERS


def test_samples_are_reproducible_and_respect_the_ranges():
    space = SearchSpace(lr=(1e-3, 1e-1), batch_sizes=(16, 64), weight_decay=(1e-5, 1e-3),
                        depths=(0, 3), widths=(8,), dropout=(0.1, 0.2),
                        optimizers=("adam", "nesterov"))
    a = [space.sample(np.random.default_rng(7)) for _ in range(1)]
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    draws = [space.sample(rng1) for _ in range(200)]
    assert draws == [space.sample(rng2) for _ in range(200)]
    assert a == [space.sample(np.random.default_rng(7))]
    for d in draws:
        assert tuple(d) == PARAMS
        assert 1e-3 <= d["lr"] <= 1e-1 and 1e-5 <= d["weight_decay"] <= 1e-3
        assert d["batch_size"] in (16, 64) and d["depth"] in (0, 3) and d["width"] == 8
        assert 0.1 <= d["dropout"] <= 0.2 and d["optimizer"] in ("adam", "nesterov")
    # log-uniform: about half of the draws below the geometric mean
    below = np.mean([d["lr"] < 1e-2 for d in draws])
    assert 0.4 < below < 0.6
    assert {d["optimizer"] for d in draws} == {"adam", "nesterov"}


def test_fixed_values_and_zero_weight_decay():
    space = SearchSpace(lr=(0.01, 0.01), weight_decay=(0, 0), dropout=(0, 0))
    d = space.sample(np.random.default_rng(0))
    assert d["lr"] == pytest.approx(0.01) and d["weight_decay"] == 0 and d["dropout"] == 0


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": (0, 1)}, "lr"),
    ({"lr": (1, 0.1)}, "lr"),
    ({"lr": (1e-3,)}, "low, high"),
    ({"weight_decay": (0, 1e-3)}, "log-uniform"),
    ({"dropout": (0.2, 1.0)}, r"\[0, 1\)"),
    ({"batch_sizes": ()}, "at least one"),
    ({"batch_sizes": (0, 32)}, "batch_sizes"),
    ({"widths": (1.5,)}, "widths"),
    ({"depths": (-1,)}, "depths"),
    ({"optimizers": ("adam", "lbfgs")}, "lbfgs"),
    ({"optimizers": ()}, "at least one"),
])
def test_bad_spaces_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchSpace(**kwargs)


def test_build_optimizer_by_name():
    from deepgrad import nn

    params = list(nn.Linear(2, 2).parameters())
    for name in OPTIMIZERS:
        opt = build_optimizer(name, params, 0.01, 1e-4)
        assert opt.param_groups[0]["lr"] == 0.01
    assert build_optimizer("nesterov", params, 0.1, 0).param_groups[0]["nesterov"] is True
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer("newton", params, 1.0, 0)


def _record(trial, acc, status="ok", **params):
    base = {"optimizer": "sgd", "lr": 0.01, "batch_size": 32, "weight_decay": 1e-4,
            "depth": 1, "width": 64, "dropout": 0.1}
    return {"trial": trial, "round": 1, **base, **params, "val_acc": acc, "status": status}


def test_narrowing_shrinks_the_ranges_around_the_best_trials():
    space = SearchSpace(lr=(1e-4, 1.0), batch_sizes=(32, 64, 128), weight_decay=(1e-6, 1e-2),
                        depths=(1, 2, 3), widths=(64, 128, 256), dropout=(0.0, 0.5),
                        optimizers=("sgd", "adam", "rmsprop"))
    results = [
        _record(0, 0.95, lr=0.05, batch_size=64, depth=2, width=128, dropout=0.1,
                optimizer="sgd", weight_decay=1e-5),
        _record(1, 0.94, lr=0.1, batch_size=32, depth=2, width=256, dropout=0.2,
                optimizer="sgd", weight_decay=1e-4),
        _record(2, 0.50, lr=1e-4, batch_size=128, depth=1, width=64, dropout=0.45,
                optimizer="adam"),
        _record(3, 0.40, lr=0.9, batch_size=128, depth=3, width=64, dropout=0.0,
                optimizer="rmsprop"),
        _record(4, None, status="diverged", lr=1.0),
        _record(5, 0.30, lr=3e-4, optimizer="adam"),
        _record(6, 0.20, lr=2e-4, optimizer="adam"),
        _record(7, 0.10, lr=5e-4, optimizer="rmsprop"),
    ]
    assert [r["trial"] for r in best_trials(results, 0.25)] == [0, 1]
    assert [r["trial"] for r in best_trials(results, 3)] == [0, 1, 2]
    new = narrow(space, results, top=0.25, margin=0.1)
    # log-space width 4 decades, margin 0.4 decades each side of [0.05, 0.1]
    assert new.lr[0] == pytest.approx(0.05 / 10 ** 0.4) and new.lr[1] == pytest.approx(
        0.1 * 10 ** 0.4)
    assert math.log(new.lr[1] / new.lr[0]) < math.log(space.lr[1] / space.lr[0])
    assert new.weight_decay[0] == pytest.approx(1e-5 / 10 ** 0.4)
    assert new.dropout == pytest.approx((0.05, 0.25))
    assert new.batch_sizes == (32, 64) and new.depths == (2,) and new.widths == (128, 256)
    assert new.optimizers == ("sgd",)
    # ranges never grow past the old bounds, and narrowing twice shrinks further or keeps
    wide = narrow(space, results, top=1.0, margin=0.5)
    assert wide.lr == space.lr and wide.dropout == space.dropout
    again = narrow(new, results[:2], top=1.0)
    assert new.lr[0] <= again.lr[0] <= again.lr[1] <= new.lr[1]
    with pytest.raises(ValueError, match="no trial completed"):
        narrow(space, [results[4]])
    with pytest.raises(ValueError, match="top"):
        best_trials(results, 0)
