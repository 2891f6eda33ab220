"""Tests of deepgrad.search: trials, random search and narrowing rounds, reports, Optuna."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from deepgrad.search import (
    PARAMS,
    SearchData,
    SearchSpace,
    random_search,
    run_search,
    run_trial,
    sort_trials,
    write_reports,
)
from deepgrad.search.report import COLUMNS

pytestmark = pytest.mark.default_dtype("float32")

SPACE = SearchSpace(lr=(1e-3, 0.3), batch_sizes=(16, 32), weight_decay=(1e-6, 1e-3),
                    depths=(0, 1), widths=(8, 16), dropout=(0.0, 0.3),
                    optimizers=("sgd", "adam"))


@pytest.fixture(scope="module")
def data() -> SearchData:
    """4 Gaussian blobs in 6 dimensions: 240 samples, a quarter held out."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 6)) * 3
    y = rng.integers(0, 4, 240)
    x = (centres[y] + rng.standard_normal((240, 6))).astype(np.float32)
    return SearchData.from_arrays(x, y.astype(np.int64), val_split=0.25, seed=0)


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_run_trial_records_and_reproducibility(data):
    params = {"optimizer": "adam", "lr": 0.01, "batch_size": 16, "weight_decay": 1e-5,
              "depth": 1, "width": 16, "dropout": 0.1}
    seen = []
    a = run_trial(params, data, epochs=2, seed=5, on_epoch=lambda e, rec: seen.append(e))
    b = run_trial(params, data, epochs=2, seed=5)
    assert _strip([a]) == _strip([b]) and seen == [1, 2]
    assert a["status"] == "ok" and a["epochs"] == 2 and 0.5 < a["val_acc"] <= 1
    assert a["parameters"] == 6 * 16 + 16 + 16 * 4 + 4
    assert list(a)[:len(PARAMS)] == list(PARAMS)
    assert len(data.train) == 180 and len(data.val) == 60 and data.num_classes == 4


def test_random_search_is_reproducible_with_a_seed_and_respects_the_space(data):
    a = random_search(SPACE, data, n_trials=4, epochs=1, seed=3)
    b = random_search(SPACE, data, n_trials=4, epochs=1, seed=3)
    c = random_search(SPACE, data, n_trials=4, epochs=1, seed=4)
    assert _strip(a) == _strip(b)
    assert [r["lr"] for r in a] != [r["lr"] for r in c]
    assert [r["trial"] for r in a] == [0, 1, 2, 3] and [r["seed"] for r in a] == [3, 4, 5, 6]
    for r in a:
        assert SPACE.lr[0] <= r["lr"] <= SPACE.lr[1]
        assert r["batch_size"] in SPACE.batch_sizes and r["optimizer"] in SPACE.optimizers


def test_narrowing_round_draws_from_the_narrowed_space(data):
    logged, spaces = [], []
    result = run_search(SPACE, data, trials=4, epochs=1, seed=0, narrow_rounds=1, top=2,
                        log=logged.append, log_space=lambda r, s: spaces.append((r, s)))
    assert [r["round"] for r in result.trials] == [1] * 4 + [2] * 4
    assert [r["trial"] for r in result.trials] == list(range(8)) and logged == result.trials
    first, second = result.spaces
    assert first == SPACE and [s for _, s in spaces] == result.spaces
    assert set(second.optimizers) <= set(SPACE.optimizers)
    assert SPACE.lr[0] <= second.lr[0] <= second.lr[1] <= SPACE.lr[1]
    for r in result.trials[4:]:
        assert second.lr[0] <= r["lr"] <= second.lr[1]
        assert r["optimizer"] in second.optimizers and r["width"] in second.widths
        assert second.dropout[0] <= r["dropout"] <= second.dropout[1]
    with pytest.raises(ValueError, match="backend"):
        run_search(SPACE, data, 1, 1, backend="grid")


def test_diverged_trials_are_recorded_and_sorted_last(data):
    space = SearchSpace(lr=(1e30, 1e31), optimizers=("sgd",), depths=(0,), dropout=(0, 0))
    records = random_search(space, data, n_trials=2, epochs=1)
    assert {r["status"] for r in records} == {"diverged"}
    assert all(r["val_acc"] is None for r in records)
    with pytest.raises(RuntimeError, match="diverged"):
        run_search(space, data, trials=2, epochs=1, narrow_rounds=1)
    ok = random_search(SPACE, data, n_trials=2, epochs=1, first_trial=2)
    ranked = sort_trials(records + ok)
    assert [r["status"] for r in ranked] == ["ok", "ok", "diverged", "diverged"]
    assert ranked[0]["val_acc"] >= ranked[1]["val_acc"]


def test_reports_are_written(tmp_path, data):
    result = run_search(SPACE, data, trials=3, epochs=1, seed=1, narrow_rounds=1)
    paths = write_reports(tmp_path, result.trials, result.spaces, {"dataset": "blobs"})
    assert sorted(p.name for p in paths.values()) == ["results.md", "search.png",
                                                      "trials.csv"]
    rows = list(csv.DictReader(paths["csv"].open()))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 6
    accs = [float(r["val_acc"]) for r in rows if r["status"] == "ok"]
    assert accs == sorted(accs, reverse=True)
    assert float(rows[0]["lr"]) in [r["lr"] for r in result.trials]  # full precision
    md = paths["md"].read_text()
    assert "| rank | trial |" in md and "round 2 space" in md and "Best: trial" in md
    assert "- dataset: blobs" in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))
    # no completed trial: still a report and a plot
    bad = [dict(r, status="diverged", val_acc=None) for r in result.trials]
    write_reports(tmp_path / "bad", bad, result.spaces, {})
    assert (tmp_path / "bad" / "search.png").is_file()


# ----------------------------------------------------------------------------- Optuna


def test_optuna_backend_shares_a_study_through_its_storage(tmp_path, data):
    optuna = pytest.importorskip("optuna")
    from deepgrad.search import StudyError, optuna_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = optuna_search(SPACE, data, n_trials=3, epochs=2, seed=0, storage=url)
    assert [r["trial"] for r in first] == [0, 1, 2]
    both = optuna_search(SPACE, data, n_trials=2, epochs=2, seed=1, storage=url)  # worker 2
    assert [r["trial"] for r in both] == [0, 1, 2, 3, 4]
    assert _strip(both[:3]) == _strip(first)
    for r in both:
        assert r["status"] in ("ok", "pruned", "diverged")
        assert SPACE.lr[0] <= r["lr"] <= SPACE.lr[1] and tuple(r)[2:2 + len(PARAMS)] == PARAMS
    # seeded TPE in memory is reproducible
    a = optuna_search(SPACE, data, n_trials=2, epochs=1, seed=7)
    b = optuna_search(SPACE, data, n_trials=2, epochs=1, seed=7)
    assert _strip(a) == _strip(b)
    result = run_search(SPACE, data, trials=2, epochs=1, backend="optuna", storage=url,
                        study_name="other")
    assert len(result.trials) == 2 and result.spaces == [SPACE]
    with pytest.raises(StudyError, match="cannot open"):
        optuna_search(SPACE, data, 1, 1, storage="nosuchdb://x")
    with pytest.raises(ValueError, match="narrow"):
        run_search(SPACE, data, 2, 1, backend="optuna", narrow_rounds=1)


def test_optuna_missing_is_a_clear_error(monkeypatch, data):
    import sys

    from deepgrad.search import OptunaUnavailable, optuna_search

    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` fail
    with pytest.raises(OptunaUnavailable, match="pip install optuna"):
        optuna_search(SPACE, data, 1, 1)
