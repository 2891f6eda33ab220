"""The lab framework: registry, budgets, stats, training loop, results.json, reports, index,
computed verdicts, and the ``deepgrad lab`` command."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.lab import BUDGETS, CLAIMS, Claim, LabContext, get_claim, list_claims, run_claims
from deepgrad.lab.cli import add_lab_parser, run_lab_command
from deepgrad.lab.data import LabData
from deepgrad.lab.plots import group_curves, line_plot
from deepgrad.lab.report import to_jsonable
from deepgrad.lab.stats import paired_effect, steps_to_threshold, summarise
from deepgrad.lab.train import CURVE_KEYS, final_metrics, train_classifier
from tests.lab.fake_claims import BrokenClaim, CoinClaim, WrittenInClaim

pytestmark = pytest.mark.default_dtype("float32")


# ----------------------------------------------------------------------------- registry


def test_registry_names_match_and_describe_themselves():
    assert list(CLAIMS) == [c.name for c in list_claims()]
    for name, claim in CLAIMS.items():
        assert isinstance(claim, Claim)
        assert claim.name == name
        assert claim.title and claim.statement and claim.references
        assert get_claim(name) is claim
    for mine in ("optimizers", "batchnorm", "init", "activations"):
        assert mine in CLAIMS


def test_unknown_claim_names_the_known_ones():
    with pytest.raises(ValueError, match="available: .*batchnorm"):
        get_claim("nope")
    with pytest.raises(ValueError, match="unknown claim"):
        run_claims("nope", "smoke", out_dir="/nonexistent-never-created")


# ----------------------------------------------------------------------------- budgets


def test_budgets_and_context(tmp_path):
    assert BUDGETS == ("smoke", "quick", "full")
    for i, budget in enumerate(BUDGETS):
        ctx = LabContext(budget, [0, 1], None, tmp_path / budget)
        assert ctx.pick(1, 2, 3) == i + 1
        assert ctx.out_dir.is_dir()
    with pytest.raises(ValueError, match="unknown budget"):
        LabContext("huge", [0], None, tmp_path)
    with pytest.raises(ValueError, match="seed"):
        LabContext("smoke", [], None, tmp_path)


def test_missing_mnist_is_a_clear_error(tmp_path):
    ctx = LabContext("smoke", [0], tmp_path / "empty", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="empty"):
        ctx.mnist(10, 10)


# ----------------------------------------------------------------------------- stats


def test_summarise():
    s = summarise([1.0, 2.0, 3.0])
    assert s == {"mean": 2.0, "std": 1.0, "n": 3, "min": 1.0, "max": 3.0}
    assert summarise([5.0])["std"] == 0.0
    assert summarise([])["n"] == 0 and math.isnan(summarise([])["mean"])


def test_paired_effect_pairs_by_seed():
    e = paired_effect({0: 3.0, 1: 5.0, 2: 1.0}, {0: 1.0, 1: 1.0, 2: 2.0, 7: 100.0})
    assert e["n"] == 3
    assert e["mean_diff"] == pytest.approx((2 + 4 - 1) / 3)
    assert e["frac_positive"] == pytest.approx(2 / 3)
    assert e["std_diff"] == pytest.approx(np.std([2, 4, -1], ddof=1))
    assert paired_effect([1, 2], [0, 0])["mean_diff"] == 1.5  # sequences pair by position


def test_steps_to_threshold():
    assert steps_to_threshold([10, 20, 30], [2.0, 0.9, 0.5], 1.0) == 20
    assert steps_to_threshold([10, 20, 30], [0.1, 0.5, 0.95], 0.9, below=False) == 30
    assert steps_to_threshold([10, 20], [2.0, float("nan")], 1.0) == math.inf


# ----------------------------------------------------------------------------- training loop


def _blobs(n=256, seed=0) -> LabData:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(0, 1, (n, 4)) + 3 * np.eye(3, 4)[y]).astype(np.float32)
    return LabData(x[: n * 3 // 4], y[: n * 3 // 4], x[n * 3 // 4:], y[n * 3 // 4:], 3)


def test_train_classifier_records_curves_and_learns():
    data = _blobs()
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    curves = train_classifier(model, optim.SGD(model.parameters(), lr=0.1), data, steps=60,
                              batch_size=32, eval_every=20, seed=0)
    assert set(CURVE_KEYS) | {"diverged"} == set(curves)
    assert curves["step"] == [20, 40, 60]
    assert all(len(curves[k]) == 3 for k in CURVE_KEYS)
    assert curves["diverged"] is False
    assert curves["test_acc"][-1] > 0.8
    assert curves["time"] == sorted(curves["time"])
    assert curves["epoch"][-1] == pytest.approx(60 * 32 / len(data.x_train))
    final = final_metrics(curves)
    assert final["test_acc"] == curves["test_acc"][-1] and final["diverged"] is False


def test_train_classifier_is_seeded_and_epochs_work():
    data = _blobs()
    out = []
    for _ in range(2):
        dg.manual_seed(3)
        model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 3))
        out.append(train_classifier(model, optim.Adam(model.parameters(), lr=0.01), data,
                                    epochs=2, batch_size=48, eval_every=4, seed=5,
                                    eval_train=True, clip_norm=1.0, l1=1e-4))
    assert out[0]["train_loss"] == out[1]["train_loss"]
    assert out[0]["step"][-1] == 2 * (len(data.x_train) // 48)


def test_train_classifier_stops_on_divergence():
    data = _blobs()
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 3))
    curves = train_classifier(model, optim.SGD(model.parameters(), lr=1e4), data, steps=200,
                              batch_size=32, eval_every=10, seed=0)
    assert curves["diverged"] is True
    assert curves["step"][-1] < 200
    with pytest.raises(ValueError, match="exactly one"):
        train_classifier(model, optim.SGD(model.parameters(), lr=0.1), data, batch_size=8)


def test_line_plot_handles_ragged_and_nan_runs():
    runs = [{"variant": "x", "seed": 0, "curves": {"step": [1, 2, 3], "loss": [3.0, 2.0, 1.0]}},
            {"variant": "x", "seed": 1, "curves": {"step": [1, 2], "loss": [3.0, float("nan")]}},
            {"variant": "y", "seed": 0, "curves": {"step": [1, 2, 3], "loss": [1.0, 1.0, 1.0]}}]
    fig = line_plot(group_curves(runs), "step", "loss", "t", logy=True)
    assert len(fig.axes[0].lines) == 2


# ----------------------------------------------------------------------------- results + reports


def test_results_json_reports_and_computed_verdicts(tmp_path):
    claims = {"good": CoinClaim("good", 1.0), "bad": CoinClaim("bad", -1.0)}
    lines = []
    results = run_claims("all", "smoke", 3, None, tmp_path, progress=lines.append,
                         claims=claims)
    assert [r["name"] for r in results] == ["good", "bad"]
    # the verdict follows the runs: same code, different data, opposite verdicts
    verdicts = {r["name"]: r["results"]["verdict"]["holds"] for r in results}
    assert verdicts == {"good": True, "bad": False}
    for name in claims:
        d = tmp_path / name
        data = json.loads((d / "results.json").read_text())  # strict JSON: no NaN
        for key in ("claim", "title", "statement", "references", "budget", "seeds", "settings",
                    "runs", "verdict", "notes", "figures", "elapsed_s", "versions"):
            assert key in data, key
        assert data["seeds"] == [0, 1, 2] and data["budget"] == "smoke"
        assert len(data["runs"]) == 6
        for run in data["runs"]:
            assert set(run) >= {"variant", "seed", "curves", "final"}
        assert run["curves"]["nan"] == [None]
        assert set(data["verdict"]) >= {"holds", "effect", "detail"}
        assert data["figures"] == ["loss.png"]
        assert (d / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        md = (d / "report.md").read_text()
        assert "![loss.png](loss.png)" in md and "a fake claim" in md
        assert ("HOLDS here" in md) == (name == "good")
        html = (d / "report.html").read_text()
        assert "data:image/png;base64," in html and 'src="loss.png"' not in html
        assert ("DOES NOT HOLD" in html) == (name == "bad")
    index = (tmp_path / "index.html").read_text()
    assert 'href="good/report.html"' in index and 'href="bad/report.html"' in index
    assert "1 of 2 claims hold" in index
    assert (tmp_path / "index.md").exists() and (tmp_path / "index.json").exists()
    assert any("good" in line and "seed 2" in line for line in lines)


def test_one_failing_claim_does_not_stop_the_others(tmp_path):
    claims = {"broken": BrokenClaim(), "written_in": WrittenInClaim(),
              "good": CoinClaim("good", 1.0)}
    results = run_claims("all", "smoke", 1, None, tmp_path, progress=None, claims=claims)
    by = {r["name"]: r for r in results}
    assert "boom" in by["broken"]["error"]
    assert "must be a bool" in by["written_in"]["error"]
    assert by["good"]["results"]["verdict"]["holds"] is True
    broken = json.loads((tmp_path / "broken" / "results.json").read_text())
    assert broken["verdict"] is None and "boom" in broken["error"]
    assert "FAILED" in (tmp_path / "index.html").read_text()


def test_no_index_for_a_single_claim(tmp_path):
    run_claims("good", "smoke", 1, None, tmp_path, progress=None,
               claims={"good": CoinClaim("good", 1.0)})
    assert (tmp_path / "good" / "report.html").exists()
    assert not (tmp_path / "index.html").exists()


def test_to_jsonable():
    out = to_jsonable({"a": np.float32(1.5), "b": [np.inf, np.nan], "c": np.arange(2),
                       "d": (np.bool_(True),), 3: None})
    assert out == {"a": 1.5, "b": [None, None], "c": [0, 1], "d": [True], "3": None}
    json.dumps(out, allow_nan=False)


# ----------------------------------------------------------------------------- CLI


def _parse(argv):
    parser = argparse.ArgumentParser(prog="deepgrad")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_list(capsys):
    assert run_lab_command(_parse(["lab", "list"])) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(CLAIMS)
    for line, (name, claim) in zip(out, CLAIMS.items()):
        assert line.startswith(name) and claim.title in line


def test_cli_bad_name_exits_2(capsys, tmp_path):
    assert run_lab_command(_parse(["lab", "run", "nope", "--out", str(tmp_path)])) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepgrad: error: unknown claim 'nope'") and "batchnorm" in err


def test_cli_missing_data_exits_2(capsys, tmp_path):
    args = _parse(["lab", "run", "init", "--budget", "smoke", "--data-dir",
                   str(tmp_path / "none"), "--out", str(tmp_path / "out")])
    assert run_lab_command(args) == 2
    assert "deepgrad: error: lab needs MNIST" in capsys.readouterr().err


def test_cli_bad_seeds_and_budget(capsys):
    with pytest.raises(SystemExit):
        _parse(["lab", "run", "init", "--seeds", "0"])
    assert "--seeds: must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["lab", "run", "init", "--budget", "huge"])


def test_cli_run_one_claim_at_smoke(mnist_dir, tmp_path, capsys):
    args = _parse(["lab", "run", "activations", "--budget", "smoke", "--seeds", "1",
                   "--data-dir", str(mnist_dir), "--out", str(tmp_path)])
    assert run_lab_command(args) == 0
    out = capsys.readouterr()
    assert "activations" in out.out and "report.html" in out.out
    assert "[1/1 activations" in out.err  # progress lines
    for f in ("results.json", "report.md", "report.html", "gradient_norms.png"):
        assert (tmp_path / "activations" / f).is_file(), f
