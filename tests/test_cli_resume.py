"""Tests of ``deepgrad train``'s checkpoints, Ctrl-C and ``--resume``.

The real thing: ``python -m deepgrad train`` in a subprocess gets SIGINT once its first
checkpoint exists, exits 130 with one line on stderr, and ``--resume`` then ends with the same
summary and the same ``model.npz`` bytes as an uninterrupted run with the same seed (the
oracle). In-process: every way a resume can be refused, and that a finished result is never
touched by a resume that fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import deepgrad.cli as cli
from tests.cli_helpers import run_cli, write_template_npz

pytestmark = pytest.mark.default_dtype("float32")  # the CLI runs on the library's default

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_template_npz(tmp_path_factory.mktemp("data") / "synth.npz",
                              1200, 300, noise=200, seed=1)


_run = run_cli


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _without_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _same_weights(a: Path, b: Path) -> bool:
    with np.load(a / "model.npz") as wa, np.load(b / "model.npz") as wb:
        return wa.files == wb.files and all(np.array_equal(wa[k], wb[k]) for k in wa.files)


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_ctrl_c_then_resume_matches_an_uninterrupted_run(tmp_path, data):
    common = ["train", "--dataset", data, "--epochs", 3, "--batch-size", 16, "--seed", 3,
              "--limit-train", 600]
    # NOTE: in a subprocess like the other two runs, so that all three run alike (this
    # process has torch loaded by conftest, with threads of its own).
    whole = subprocess.run([sys.executable, "-m", "deepgrad", *map(str, common), "--out",
                            tmp_path / "whole", "--quiet"], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0, whole.stderr

    run = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "deepgrad", *map(str, common), "--out", run],
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # NOTE: a shell's background jobs ignore SIGINT; children inherit it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.npz").exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("deepgrad: interrupted; checkpoint ") and err.rstrip().endswith(
        f"resume with: deepgrad train --resume {run}")
    assert (run / "checkpoint.npz").is_file() and not (run / "summary.json").exists()
    assert not list(run.glob(".*.tmp"))

    resumed = subprocess.run([sys.executable, "-m", "deepgrad", "train", "--resume", run],
                             cwd=tmp_path, env=_env(), capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming " in resumed.stdout.splitlines()[0]
    whole, cut = _summary(tmp_path / "whole"), _summary(run)
    assert cut["epochs"] == 3 and [h["epoch"] for h in cut["history"]] == [1, 2, 3]
    assert _without_seconds(cut["history"]) == _without_seconds(whole["history"])
    assert cut["test_accuracy"] == whole["test_accuracy"] < 1.0
    assert cut["test_loss"] == whole["test_loss"]
    assert _same_weights(run, tmp_path / "whole")
    assert len(cut["resumed_at"]) == 1 and whole["resumed_at"] == []
    differ = {k for k in whole["config"] if whole["config"][k] != cut["config"][k]}
    assert differ == {"out", "quiet"}


def _quick(capsys, tmp_path, data, name, *extra):
    code, out, err = _run(capsys, "train", "--model", "logreg", "--dataset", data,
                          "--limit-train", 300, "--schedule", "exp", "--quiet",
                          "--out", tmp_path / name, *extra)
    assert code == 0, err
    return tmp_path / name


def test_epochs_extend_a_finished_run_as_if_asked_for_at_the_start(tmp_path, data, capsys):
    run = _quick(capsys, tmp_path, data, "short", "--epochs", 2)
    fresh = _quick(capsys, tmp_path, data, "long", "--epochs", 3)
    code, out, err = _run(capsys, "train", "--resume", run, "--epochs", 3, "--quiet")
    assert code == 0, err
    assert _without_seconds(_summary(run)["history"]) == _without_seconds(
        _summary(fresh)["history"])
    assert _same_weights(run, fresh)
    # the same options typed again are fine; other ones are refused
    code, _, err = _run(capsys, "train", "--resume", run, "--model", "logreg", "--epochs", 4,
                        "--dataset", data, "--quiet")
    assert code == 0, err


@pytest.mark.parametrize("argv,message", [
    (["--lr", "0.5"], "argument --lr: --resume continues the run with its saved options"),
    (["--optimizer", "sgd", "--epochs", "3"], "argument --optimizer"),
    (["--epochs", "1"], r"argument --epochs: the run has already finished 2 epoch\(s\)"),
    ([], "nothing to resume: .* has finished its 2 epoch"),
    (["--out", "elsewhere"], "argument --out: a resumed run stays in its directory"),
])
def test_resume_refuses_conflicts_and_leaves_the_finished_run_alone(
        tmp_path, data, capsys, argv, message):
    run = _quick(capsys, tmp_path, data, "r", "--epochs", 2, "--optimizer", "adam")
    before = {name: (run / name).read_bytes() for name in ("summary.json", "model.npz",
                                                           "checkpoint.npz")}
    code, out, err = _run(capsys, "train", "--resume", run, *argv)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("deepgrad: error: ") and re.search(message, err), err
    assert {name: (run / name).read_bytes() for name in before} == before


def test_cosine_runs_cannot_be_extended(tmp_path, data, capsys):
    code, _, err = _run(capsys, "train", "--model", "logreg", "--dataset", data, "--epochs", 1,
                        "--limit-train", 200, "--quiet", "--out", tmp_path / "c")
    assert code == 0, err
    code, _, err = _run(capsys, "train", "--resume", tmp_path / "c", "--epochs", 2)
    assert code == 2 and "cosine schedule was sized for 1 epoch(s)" in err


def test_missing_or_corrupt_run_directories_are_one_line_errors(tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--resume", tmp_path / "nope")
    assert code == 2 and err == f"deepgrad: error: argument --resume: no run directory " \
                                f"{tmp_path / 'nope'}\n"
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, "train", "--resume", tmp_path / "empty")
    assert code == 2 and "has no checkpoint.npz" in err and len(err.splitlines()) == 1
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.npz").write_bytes(b"PK\x03\x04 truncated")
    code, _, err = _run(capsys, "train", "--resume", tmp_path / "bad")
    assert code == 2 and "checkpoint.npz: not a readable deepgrad checkpoint" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_other_data_and_a_fresh_run_over_an_unfinished_one_are_refused(
        tmp_path, data, capsys, monkeypatch):
    run = _quick(capsys, tmp_path, data, "r", "--epochs", 2)
    code, _, err = _run(capsys, "train", "--resume", run, "--epochs", 3, "--quiet")
    assert code == 0, err
    (run / "summary.json").unlink()  # as if it had been interrupted
    checkpoint = (run / "checkpoint.npz").read_bytes()
    code, _, err = _run(capsys, "train", "--model", "logreg", "--dataset", data, "--out", run)
    assert code == 2 and "holds an unfinished run" in err and "--resume" in err
    assert (run / "checkpoint.npz").read_bytes() == checkpoint

    with np.load(data) as d:
        arrays = dict(d)
    moved, other = tmp_path / "moved.npz", tmp_path / "other.npz"
    np.savez(moved, **arrays)
    arrays["y_train"] = (arrays["y_train"] + 1) % 10
    np.savez(other, **arrays)
    code, _, err = _run(capsys, "train", "--resume", run, "--dataset", other)
    assert code == 2 and "the training data differ from those the run started with" in err
    code, _, err = _run(capsys, "train", "--resume", run, "--dataset", moved, "--quiet")
    assert code == 0, err
    assert _summary(run)["dataset"]["source"] == str(moved.resolve())
    assert _summary(run)["config"]["dataset"] == str(data)


def test_an_interrupted_resume_keeps_the_finished_result(tmp_path, data, capsys, monkeypatch):
    run = _quick(capsys, tmp_path, data, "r", "--epochs", 2)
    before = {name: (run / name).read_bytes() for name in ("summary.json", "model.npz")}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "fit", interrupted)
    code, _, err = _run(capsys, "train", "--resume", run, "--epochs", 3)
    assert code == 130
    assert err == f"deepgrad: interrupted; the last checkpoint is in {run}; resume with: " \
                  f"deepgrad train --resume {run}\n"
    assert {name: (run / name).read_bytes() for name in before} == before
