"""Tests of ``deepgrad train --ensemble / --swa-start / --ema`` on a tiny synthetic data set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepgrad.training import load_weights
from deepgrad.training.averaging import Ensemble
from tests.cli_helpers import run_cli, write_template_npz

pytestmark = pytest.mark.default_dtype("float32")  # the CLI runs on the library's default


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_template_npz(tmp_path_factory.mktemp("data") / "synth.npz",
                              256, 100, noise=60, seed=0)


_run = run_cli


def _train(capsys, data, out, *extra, model="logreg"):
    return _run(capsys, "train", "--dataset", data, "--model", model, "--epochs", 2,
                "--limit-train", 128, "--out", out, "--quiet", *extra)


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_ensemble_evaluates_the_average_of_its_members(capsys, data, tmp_path):
    code, out, err = _train(capsys, data, tmp_path / "e", "--ensemble", 3, "--seed", 4)
    assert code == 0, err
    assert "ensemble of 3" in out
    s = _summary(tmp_path / "e")
    assert s["ensemble"]["members"] == 3 and s["ensemble"]["seeds"] == [4, 5, 6]
    accs = s["ensemble"]["member_test_accuracy"]
    assert len(accs) == 3 and all(0 <= a <= 1 for a in accs)
    assert 0 <= s["test_accuracy"] <= 1 and np.isfinite(s["test_loss"])
    assert s["checkpoint"] is None and not (tmp_path / "e" / "checkpoint.npz").exists()
    assert sorted({(h["member"], h["seed"]) for h in s["history"]}) == [(0, 4), (1, 5), (2, 6)]
    assert len(s["history"]) == 6 and s["epochs"] == 2
    # model.npz holds every member: it loads into an Ensemble of 3 fresh models
    from deepgrad.models import get_model
    ens = Ensemble([get_model("logreg", input_shape=(12, 12), num_classes=10)
                    for _ in range(3)])
    load_weights(ens, tmp_path / "e" / "model.npz")


def test_ensemble_member_zero_is_the_plain_run(capsys, data, tmp_path):
    assert _train(capsys, data, tmp_path / "p")[0] == 0
    assert _train(capsys, data, tmp_path / "e", "--ensemble", 2)[0] == 0
    plain, ens = _summary(tmp_path / "p"), _summary(tmp_path / "e")
    assert ens["ensemble"]["member_test_accuracy"][0] == plain["test_accuracy"]
    assert plain["checkpoint"] == "checkpoint.npz" and "ensemble" not in plain


def test_swa_and_ema_with_batchnorm(capsys, data, tmp_path):
    run = tmp_path / "s"
    code, out, err = _train(capsys, data, run, "--swa-start", 1, "--swa-every-steps", 1,
                            "--swa-lr", 0.05, "--ema", 0.9, model="lenet5_bn")
    assert code == 0, err
    s = _summary(run)
    # 128 samples, batch size 64: 2 steps per epoch, 4 in all
    assert s["swa"]["start_epoch"] == 1 and s["swa"]["n_averaged"] == 4
    assert s["swa"]["swa_lr"] == 0.05 and s["history"][-1]["lr"] == pytest.approx(0.05)
    assert s["ema"]["decay"] == 0.9 and s["ema"]["n_averaged"] == 4
    for key in ("swa", "ema"):
        assert 0 <= s[key]["test_accuracy"] <= 1 and np.isfinite(s[key]["test_loss"])
        assert (run / f"model_{key}.npz").is_file()
    assert (run / "model.npz").is_file() and not (run / "checkpoint.npz").exists()


def test_swa_once_per_epoch_from_the_start_epoch(capsys, data, tmp_path):
    assert _train(capsys, data, tmp_path / "s", "--swa-start", 2)[0] == 0
    s = _summary(tmp_path / "s")
    assert s["swa"]["n_averaged"] == 1 and "ema" not in s


@pytest.mark.parametrize("extra, needle", [
    (["--ensemble", 0], "--ensemble"),
    (["--ensemble", -1], "--ensemble"),
    (["--ema", 1.0], "--ema"),
    (["--ema", -0.1], "--ema"),
    (["--ema", "x"], "--ema"),
    (["--swa-start", 3], "--swa-start"),
    (["--swa-start", 0], "--swa-start"),
    (["--swa-lr", 0.1], "--swa-lr: needs --swa-start"),
    (["--swa-every-steps", 2], "--swa-every-steps: needs --swa-start"),
    (["--swa-start", 1, "--swa-lr", 0], "--swa-lr"),
    (["--ensemble", 2, "--swa-start", 1], "--ensemble: not with --swa-start"),
    (["--ensemble", 2, "--ema", 0.9], "--ensemble: not with --ema"),
    (["--optimizer", "lbfgs", "--swa-start", 1, "--swa-lr", 0.1], "--swa-lr"),
])
def test_bad_values_exit_2_with_one_line(capsys, data, tmp_path, extra, needle):
    code, out, err = _train(capsys, data, tmp_path / "bad", *extra)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("deepgrad: error: ") and needle in err
    assert "Traceback" not in err and not (tmp_path / "bad" / "summary.json").exists()


@pytest.mark.parametrize("flag", [["--ensemble", 2], ["--swa-start", 1], ["--ema", 0.5]])
def test_refused_with_resume(capsys, data, tmp_path, flag):
    code, out, err = _run(capsys, "train", "--resume", tmp_path, *flag)
    assert code == 2 and err.count("\n") == 1 and "not with --resume" in err
