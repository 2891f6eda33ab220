"""Tests of the ``deepgrad`` command: ``main(argv)`` in process, and ``python -m deepgrad``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deepgrad.cli as cli
from deepgrad.data import DataLoader, TensorDataset, load_arrays, load_npz
from deepgrad.models import get_model
from deepgrad.training import evaluate, load_weights
from tests.cli_helpers import run_cli, write_template_npz
from tests.mnist_data import MNIST_DIR

# NOTE: the CLI runs on the library's default dtype, float32, as it does for users.
pytestmark = pytest.mark.default_dtype("float32")

ROOT = Path(__file__).resolve().parents[1]


MNIST = MNIST_DIR
needs_mnist = pytest.mark.skipif(MNIST is None, reason="the MNIST files are not on this machine")


@pytest.fixture(scope="module")
def synth_npz(tmp_path_factory) -> Path:
    return write_template_npz(tmp_path_factory.mktemp("npz") / "synth.npz",
                              1500, 400, noise=60, seed=0)


_run = run_cli


def _reloaded_accuracy(run: Path, x_test, y_test) -> float:
    summary = json.loads((run / "summary.json").read_text())
    ds = summary["dataset"]
    model = get_model(summary["model"], input_shape=tuple(ds["input_shape"]),
                      num_classes=ds["num_classes"])
    load_weights(model, run / "model.npz")
    # the file is also loadable by hand, as the docs say
    manual = get_model(summary["model"], input_shape=tuple(ds["input_shape"]),
                       num_classes=ds["num_classes"])
    manual.load_state_dict(dict(np.load(run / "model.npz")))
    loader = DataLoader(TensorDataset(x_test, y_test), batch_size=1000)
    assert evaluate(manual, loader)[1] == evaluate(model, loader)[1]
    return evaluate(model, loader)[1]


def _check_summary(run: Path, epochs: int) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    for key in ("test_accuracy", "test_loss", "epochs", "train_seconds", "history", "config",
                "model", "parameters", "deepgrad_version", "dataset"):
        assert key in summary, key
    assert summary["epochs"] == epochs == len(summary["history"])
    assert [h["epoch"] for h in summary["history"]] == list(range(1, epochs + 1))
    assert summary["train_seconds"] > 0
    assert not list(run.glob(".*.tmp")), "temporary files left behind"
    return summary


@needs_mnist
def test_train_on_a_slice_of_real_mnist(capsys, tmp_path, monkeypatch):
    # the default --data-dir comes from $DEEPGRAD_DATA
    monkeypatch.setenv("DEEPGRAD_DATA", str(MNIST))
    run = tmp_path / "run"
    code, out, err = _run(capsys, "train", "--model", "mlp", "--dataset", "mnist",
                          "--limit-train", 5000, "--epochs", 1, "--val-split", 0.1,
                          "--out", run)
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("training mlp (535,818 parameters) on mnist: 4500 train / "
                               "500 validation / 10000 test")
    assert lines[1].startswith("epoch 1/1  train_loss")
    assert lines[-1].startswith("test accuracy ") and lines[-1].endswith(f"saved to {run}")
    summary = _check_summary(run, 1)
    assert summary["test_accuracy"] > 0.85
    assert summary["model"] == "mlp" and summary["parameters"] == 535818
    assert summary["dataset"]["train_samples"] == 4500
    assert summary["dataset"]["val_samples"] == 500
    assert summary["history"][0]["val_acc"] > 0.8
    assert summary["config"]["lr"] == cli.DEFAULT_LR and summary["config"]["seed"] == 0
    _, _, x_test, y_test = load_arrays("mnist", MNIST)
    assert _reloaded_accuracy(run, x_test, y_test) == summary["test_accuracy"]


def test_train_on_an_npz_file(capsys, tmp_path, synth_npz):
    run = tmp_path / "run"
    code, out, err = _run(capsys, "train", "--dataset", synth_npz, "--epochs", 2, "--out", run)
    assert code == 0, err
    summary = _check_summary(run, 2)
    assert summary["test_accuracy"] > 0.9
    assert summary["dataset"]["name"] == "synth"
    assert summary["dataset"]["input_shape"] == [1, 12, 12]
    assert summary["dataset"]["num_classes"] == 10
    _, _, x_test, y_test, _ = load_npz(synth_npz)
    assert _reloaded_accuracy(run, x_test, y_test) == summary["test_accuracy"]


def test_logreg_full_batch_quiet_and_seeded(capsys, tmp_path, synth_npz):
    results = []
    for name in ("a", "b"):
        code, out, err = _run(capsys, "train", "--model", "logreg", "--dataset", synth_npz,
                              "--batch-size", "full", "--epochs", 3, "--lr", 0.5, "--quiet",
                              "--seed", 7, "--out", tmp_path / name)
        assert code == 0, err
        assert len(out.splitlines()) == 1 and out.startswith("test accuracy")
        summary = _check_summary(tmp_path / name, 3)
        assert summary["batch_size"] == 1500 and summary["parameters"] == 144 * 10 + 10
        results.append(summary["history"])
    for a, b in zip(*results):
        assert a["train_loss"] == b["train_loss"]


def _train_quick(capsys, tmp_path, *argv, model="logreg", name="run"):
    """Run `deepgrad train` quietly on the synthetic npz; return (code, err, summary or None)."""
    code, _, err = _run(capsys, "train", "--model", model, *argv, "--quiet",
                        "--out", tmp_path / name)
    path = tmp_path / name / "summary.json"
    return code, err, (json.loads(path.read_text()) if path.is_file() else None)


FIRST_ORDER = ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw",
               "nadam"]
DEFAULT_LRS = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.01, "adadelta": 1.0,
               "rmsprop": 1e-3, "adam": 1e-3, "adamw": 1e-3, "nadam": 2e-3, "lbfgs": 1.0,
               "newton": 1.0}


def test_optimizer_table_is_complete():
    assert list(cli.OPTIMIZERS) == FIRST_ORDER + ["lbfgs", "newton"]
    assert {name: spec.lr for name, spec in cli.OPTIMIZERS.items()} == DEFAULT_LRS


@pytest.mark.parametrize("optimizer", FIRST_ORDER)
def test_every_first_order_optimizer_trains(capsys, tmp_path, synth_npz, optimizer):
    code, err, summary = _train_quick(capsys, tmp_path, "--dataset", synth_npz, "--optimizer",
                                      optimizer, "--epochs", 2, "--limit-train", 256)
    assert code == 0, err
    assert err == ""
    _check_summary(tmp_path / "run", 2)
    assert summary["optimizer"]["name"] == optimizer
    assert summary["optimizer"]["lr"] == summary["config"]["lr"] == DEFAULT_LRS[optimizer]
    assert summary["batch_size"] == 64 and summary["schedule"]["name"] == "cosine"
    assert summary["optimizer"]["momentum"] == {"sgd": 0.9, "momentum": 0.9, "nesterov": 0.9,
                                                "rmsprop": 0.0}.get(optimizer)
    assert summary["optimizer"]["weight_decay"] == (0.01 if optimizer == "adamw" else 0.0)
    h = summary["history"]
    assert [(r["optimizer"], r["schedule"]) for r in h] == [(optimizer, "cosine")] * 2
    assert h[0]["lr"] == DEFAULT_LRS[optimizer]
    assert h[1]["train_loss"] < h[0]["train_loss"]


@pytest.mark.parametrize("optimizer", ["lbfgs", "newton"])
def test_closure_optimizers_train_full_batch(capsys, tmp_path, synth_npz, optimizer):
    code, err, summary = _train_quick(capsys, tmp_path, "--dataset", synth_npz, "--optimizer",
                                      optimizer, "--epochs", 2, "--limit-train", 500,
                                      "--weight-decay", 1e-3)
    assert code == 0, err
    _check_summary(tmp_path / "run", 2)
    assert summary["batch_size"] == 500 and summary["config"]["batch_size"] == "full"
    assert summary["schedule"] == {"name": "none", "interval": None, "monitor": None}
    h = summary["history"]
    assert [r["lr"] for r in h] == [1.0, 1.0] and h[0]["optimizer"] == optimizer
    assert h[1]["train_loss"] < 0.5 * h[0]["train_loss"]
    assert summary["test_accuracy"] > 0.9


def test_closure_optimizer_with_mini_batches_and_l1(capsys, tmp_path, synth_npz):
    code, err, summary = _train_quick(capsys, tmp_path, "--dataset", synth_npz, "--optimizer",
                                      "newton", "--epochs", 1, "--limit-train", 300,
                                      "--batch-size", 100, "--l1", 1e-4)
    assert code == 0, err
    assert summary["batch_size"] == 100 and summary["optimizer"]["l1"] == 1e-4


def _anneal(start, end, pct):
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


# 640 samples in batches of 64: 10 steps per epoch, 4 epochs
SCHEDULE_CASES = {
    "none": (["--schedule", "none"], [0.1] * 4),
    "step": (["--schedule", "step", "--step-size", 2, "--gamma", 0.5], [0.1, 0.1, 0.05, 0.05]),
    "step default": (["--schedule", "step"], [0.1, 0.01, 0.001, 0.0001]),  # every 4 // 3 epochs
    "exp": (["--schedule", "exp", "--gamma", 0.5], [0.1, 0.05, 0.025, 0.0125]),
    "exp default": (["--schedule", "exp"], [0.1 * 0.98 ** k for k in range(4)]),
    "cosine": (["--schedule", "cosine"], [_anneal(0.1, 0, k / 4) for k in range(4)]),
    "cosine by default": ([], [_anneal(0.1, 0, k / 4) for k in range(4)]),
    # the loss never halves within an epoch at this lr: every epoch after the first is bad
    "plateau": (["--schedule", "plateau", "--lr", 1e-3, "--patience", 0, "--factor", 0.5,
                 "--threshold", 0.5], [1e-3, 1e-3, 5e-4, 2.5e-4]),
    "plateau patience": (["--schedule", "plateau", "--lr", 1e-3, "--patience", 1, "--factor",
                          0.5, "--threshold", 0.5], [1e-3, 1e-3, 1e-3, 5e-4]),
    # up over the first 0.3 * 40 - 1 = 11 steps from max_lr / 25, then down to that / 1e4
    "onecycle": (["--schedule", "onecycle", "--max-lr", 0.5],
                 [0.02, _anneal(0.02, 0.5, 10 / 11), _anneal(0.5, 2e-6, 9 / 28),
                  _anneal(0.5, 2e-6, 19 / 28)]),
    "legacy constant": (["--lr-schedule", "constant"], [0.1] * 4),
}


@pytest.mark.parametrize("case", list(SCHEDULE_CASES))
def test_schedules_give_the_expected_lr_per_epoch(capsys, tmp_path, synth_npz, case):
    argv, lrs = SCHEDULE_CASES[case]
    code, err, summary = _train_quick(capsys, tmp_path, "--dataset", synth_npz, "--epochs", 4,
                                      "--limit-train", 640, *argv)
    assert code == 0, err
    assert [h["lr"] for h in summary["history"]] == pytest.approx(lrs, rel=1e-9)
    name = argv[argv.index("--schedule") + 1] if "--schedule" in argv else (
        "none" if "constant" in argv else "cosine")
    assert summary["schedule"]["name"] == summary["config"]["schedule"] == name
    assert {h["schedule"] for h in summary["history"]} == {name}
    if "legacy" in case:
        assert err == "deepgrad: warning: --lr-schedule is deprecated; use --schedule none\n"
    else:
        assert err == ""


def test_schedule_parameters_are_recorded(capsys, tmp_path, synth_npz):
    _, _, summary = _train_quick(capsys, tmp_path, "--dataset", synth_npz, "--epochs", 2,
                                 "--limit-train", 300, "--schedule", "exp")
    assert summary["schedule"] == {"name": "exp", "interval": "epoch", "monitor": None,
                                   "gamma": 0.98}
    _, _, summary = _train_quick(capsys, tmp_path, "--dataset", synth_npz, "--epochs", 2,
                                 "--limit-train", 300, "--schedule", "plateau",
                                 "--val-split", 0.2, name="val")
    assert summary["schedule"] == {"name": "plateau", "interval": "epoch",
                                   "monitor": "val_loss", "patience": 10, "factor": 0.1,
                                   "threshold": 1e-4}
    _, _, summary = _train_quick(capsys, tmp_path, "--dataset", synth_npz, "--epochs", 2,
                                 "--limit-train", 300, "--schedule", "onecycle",
                                 "--optimizer", "adam", name="onecycle")
    assert summary["schedule"]["max_lr"] == 1e-3
    assert summary["history"][0]["lr"] == pytest.approx(4e-5)


def test_clip_norm_bounds_each_step(capsys, tmp_path, synth_npz):
    common = ["--dataset", synth_npz, "--epochs", 2, "--limit-train", 640, "--momentum", 0,
              "--schedule", "none", "--lr", 1.0]
    code, err, free = _train_quick(capsys, tmp_path, *common, name="free")
    assert code == 0, err
    # each of the 20 steps moves the weights by at most lr * 1e-4: the model cannot learn
    code, err, clipped = _train_quick(capsys, tmp_path, *common, "--clip-norm", 1e-4,
                                      name="clipped")
    assert code == 0, err
    assert clipped["optimizer"]["clip_norm"] == 1e-4
    losses = [h["train_loss"] for h in clipped["history"]]
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
    assert free["history"][1]["train_loss"] < 0.5 * free["history"][0]["train_loss"]


def test_l1_and_weight_decay_shrink_the_weights(capsys, tmp_path, synth_npz):
    common = ["--dataset", synth_npz, "--epochs", 2, "--limit-train", 640]
    norms = {}
    for name, extra in {"plain": [], "l1": ["--l1", 0.05],
                        "wd": ["--weight-decay", 0.5]}.items():
        code, err, summary = _train_quick(capsys, tmp_path, *common, *extra, name=name)
        assert code == 0, err
        weights = np.load(tmp_path / name / "model.npz")
        norms[name] = sum(np.abs(weights[k]).sum() for k in weights.files)
    assert norms["l1"] < 0.5 * norms["plain"] and norms["wd"] < 0.7 * norms["plain"]
    assert summary["optimizer"]["weight_decay"] == 0.5


def test_default_run_directory(capsys, tmp_path, monkeypatch, synth_npz):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, "train", "--model", "logreg", "--dataset", synth_npz,
                          "--epochs", 1, "--limit-train", 300, "--quiet")
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("logreg-synth-")
    assert (run / "model.npz").is_file() and (run / "summary.json").is_file()


def _corrupt_npz(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    return path


BAD = {
    "negative lr": (["--lr", "-1"], "--lr"),
    "zero lr": (["--lr", "0"], "--lr"),
    "nan lr": (["--lr", "nan"], "--lr"),
    "zero epochs": (["--epochs", "0"], "--epochs"),
    "zero batch size": (["--batch-size", "0"], "--batch-size"),
    "word batch size": (["--batch-size", "half"], "--batch-size"),
    "negative momentum": (["--momentum", "-0.1"], "--momentum"),
    "momentum of one": (["--momentum", "1"], "--momentum"),
    "negative weight decay": (["--weight-decay", "-1"], "--weight-decay"),
    "val split above one": (["--val-split", "1.5"], "--val-split"),
    "zero limit": (["--limit-train", "0"], "--limit-train"),
    "negative seed": (["--seed", "-1"], "--seed"),
    "unknown model": (["--model", "resnet9000"], "resnet9000"),
    "unknown optimizer": (["--optimizer", "adamw9000"], "adamw9000"),
    "unknown lr schedule": (["--lr-schedule", "zigzag"], "zigzag"),
    "unknown schedule": (["--schedule", "zigzag"], "zigzag"),
    "contradicting legacy schedule": (["--lr-schedule", "cosine", "--schedule", "none"],
                                      "--lr-schedule"),
    "negative clip norm": (["--clip-norm", "-1"], "--clip-norm"),
    "zero clip norm": (["--clip-norm", "0"], "--clip-norm"),
    "nan clip norm": (["--clip-norm", "nan"], "--clip-norm"),
    "negative l1": (["--l1", "-0.1"], "--l1"),
    "zero gamma": (["--schedule", "exp", "--gamma", "0"], "--gamma"),
    "negative gamma": (["--schedule", "step", "--gamma", "-0.5"], "--gamma"),
    "zero step size": (["--schedule", "step", "--step-size", "0"], "--step-size"),
    "negative patience": (["--schedule", "plateau", "--patience", "-1"], "--patience"),
    "factor of one": (["--schedule", "plateau", "--factor", "1"], "--factor"),
    "zero factor": (["--schedule", "plateau", "--factor", "0"], "--factor"),
    "threshold of one": (["--schedule", "plateau", "--threshold", "1"], "--threshold"),
    "zero max lr": (["--schedule", "onecycle", "--max-lr", "0"], "--max-lr"),
    "gamma without its schedule": (["--gamma", "0.5"], "--gamma"),
    "patience with step": (["--schedule", "step", "--patience", "2"], "--patience"),
    "max lr with cosine": (["--schedule", "cosine", "--max-lr", "1"], "--max-lr"),
    "step size with lbfgs": (["--optimizer", "lbfgs", "--step-size", "1"], "--step-size"),
    "momentum for adam": (["--optimizer", "adam", "--momentum", "0.5"], "--momentum"),
    "momentum for lbfgs": (["--optimizer", "lbfgs", "--momentum", "0.5"], "--momentum"),
    "nesterov without momentum": (["--optimizer", "nesterov", "--momentum", "0"], "--momentum"),
    "schedule for lbfgs": (["--optimizer", "lbfgs", "--schedule", "cosine"], "--schedule"),
    "plateau for newton": (["--optimizer", "newton", "--schedule", "plateau"], "--schedule"),
    "clip norm for newton": (["--optimizer", "newton", "--clip-norm", "1"], "--clip-norm"),
    "clip norm for lbfgs": (["--optimizer", "lbfgs", "--clip-norm", "1"], "--clip-norm"),
    "unknown dataset": (["--dataset", "cifar1000"], "cifar1000"),
    "missing npz": (["--dataset", "{tmp}/nope.npz"], "nope.npz"),
    "corrupt npz": (["--dataset", "{corrupt}"], "corrupt.npz"),
    "data dir without files": (["--dataset", "mnist", "--data-dir", "{tmp}"], "--download"),
    "unknown option": (["--bogus"], "--bogus"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, case):
    argv, needle = BAD[case]
    corrupt = _corrupt_npz(tmp_path)
    argv = [a.format(tmp=tmp_path, corrupt=corrupt) for a in argv]
    code, out, err = _run(capsys, "train", *argv, "--out", tmp_path / "run")
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deepgrad: error: ") and needle in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [[], ["fly"]])
def test_missing_or_unknown_command_is_exit_2(capsys, argv):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("deepgrad: error: ")


def test_help_and_version_exit_0(capsys):
    code, out, _ = _run(capsys, "train", "--help")
    assert code == 0 and "--batch-size" in out and "--val-split" in out
    for name, spec in cli.OPTIMIZERS.items():
        assert f"  {name:<9} [{spec.lr:g}] " in out
    for name in cli.SCHEDULES:
        assert f"\n  {name:<9} " in out
    for option in ("--schedule", "--clip-norm", "--l1", "--gamma", "--max-lr", "--patience"):
        assert option in out
    for command in ("shape", "summary"):
        code, out, _ = _run(capsys, command, "--help")
        assert code == 0 and "--input" in out
    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.startswith("deepgrad ")


def test_out_that_is_a_file_is_exit_2(capsys, tmp_path, synth_npz):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(capsys, "train", "--dataset", synth_npz, "--out", blocker / "run")
    assert code == 2 and err.startswith("deepgrad: error: cannot create the run directory")


def test_divergence_is_one_line_and_exit_1(capsys, tmp_path, synth_npz):
    code, out, err = _run(capsys, "train", "--dataset", synth_npz, "--lr", "1e30",
                          "--limit-train", 300, "--out", tmp_path / "run", "--quiet")
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepgrad: error: ")
    assert "epoch 1, step" in lines[0] and "lower learning rate" in lines[0]


def test_ctrl_c_is_one_line_and_exit_130(capsys, tmp_path, synth_npz, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "fit", interrupted)
    code, out, err = _run(capsys, "train", "--dataset", synth_npz, "--out", tmp_path / "run")
    assert code == 130
    assert err == "deepgrad: interrupted\n"


def _subprocess(*argv, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "deepgrad", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_python_dash_m_deepgrad_train(tmp_path, synth_npz):
    proc = _subprocess("train", "--dataset", synth_npz, "--epochs", 2, "--out", "r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # stdout is a pipe, not a terminal: plain lines, no progress bar
    assert [ln.split("  ")[0] for ln in lines[1:3]] == ["epoch 1/2", "epoch 2/2"]
    assert lines[-1].startswith("test accuracy") and proc.stderr == ""
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["test_accuracy"] > 0.9


def test_python_dash_m_deepgrad_bad_input_has_no_traceback(tmp_path):
    proc = _subprocess("train", "--dataset", tmp_path / "missing.npz", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("deepgrad: error: ") and len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_python_dash_m_deepgrad_ctrl_c(tmp_path, synth_npz):
    import signal

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepgrad", "train", "--dataset", str(synth_npz),
         "--epochs", "100000", "--out", "r"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # NOTE: a shell's background jobs ignore SIGINT and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().startswith("training ")  # training has started
        assert proc.stdout.readline().startswith("epoch ")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    # one line that tells how to resume (tests/test_cli_resume.py checks the resume itself)
    assert err.startswith("deepgrad: interrupted; checkpoint ") and len(err.splitlines()) == 1
    assert err.rstrip().endswith("resume with: deepgrad train --resume r")
    assert not (tmp_path / "r" / "summary.json").exists()


# ----------------------------------------------------------------------------- shape, summary


def test_shape_explains_a_convolution(capsys):
    code, out, err = _run(capsys, "shape", "--input", "1,28,28", "--kernel", 5, "--padding", 2,
                          "--out-channels", 6)
    assert code == 0 and err == ""
    assert "floor(" in out and out.rstrip().endswith("(6, 28, 28)")
    code, out, _ = _run(capsys, "shape", "--input", "3,32,32", "--kernel", 3, "--stride", 2,
                        "--padding", 1, "--dilation", 1)
    assert code == 0 and out.rstrip().endswith("(3, 16, 16)")
    code, out, _ = _run(capsys, "shape", "--input", "1,5,5", "--kernel", 2, "--stride", 2,
                        "--ceil-mode")
    assert code == 0 and out.rstrip().endswith("(1, 3, 3)")


def test_shape_passes_every_argument_through(capsys, monkeypatch):
    calls = []

    def explain(**kwargs):
        calls.append(kwargs)
        return "explained"

    monkeypatch.setattr("deepgrad.cli_commands.inspect.explain_conv_output", explain)
    code, out, _ = _run(capsys, "shape", "--input", "2,9,7", "--kernel", "5,3", "--stride", "2",
                        "--padding", "1,0", "--dilation", "2,1", "--out-channels", 4,
                        "--ceil-mode")
    assert code == 0 and out == "explained\n"
    assert calls == [dict(input_shape=(2, 9, 7), kernel=(5, 3), stride=2, padding=(1, 0),
                          dilation=(2, 1), out_channels=4, ceil_mode=True)]
    _run(capsys, "shape", "--input", "9,7", "--kernel", 3)
    assert calls[-1] == dict(input_shape=(9, 7), kernel=3, stride=1, padding=0, dilation=1,
                             out_channels=None, ceil_mode=False)


def test_summary_prints_the_model_table(capsys):
    code, out, err = _run(capsys, "summary", "--model", "mlp", "--input", "1,28,28")
    assert code == 0 and err == ""
    assert "535,818" in out and "Linear" in out
    code, out, _ = _run(capsys, "summary", "--model", "lenet5", "--input", "1,28,28",
                        "--num-classes", 10)
    assert code == 0 and "Conv2d" in out and "61,706" in out
    code, out, _ = _run(capsys, "summary", "--model", "logreg", "--input", "1,28,28",
                        "--num-classes", 3)
    assert code == 0 and f"{784 * 3 + 3:,}" in out


def test_summary_builds_the_model_for_the_input(capsys, monkeypatch):
    seen = []

    class Table:
        def table(self):
            return "the table"

    def summarize(model, input_shape):
        seen.append((model.num_parameters(), input_shape))
        return Table()

    monkeypatch.setattr("deepgrad.cli_commands.inspect.summarize", summarize)
    code, out, _ = _run(capsys, "summary", "--model", "logreg", "--input", "2,3",
                        "--num-classes", 4)
    assert code == 0 and out == "the table\n"
    assert seen == [(6 * 4 + 4, (2, 3))]


INSPECT_BAD = {
    "kernel larger than the input": (["shape", "--input", "1,4,4", "--kernel", "7"], "7"),
    "too many input dims": (["shape", "--input", "1,2,8,8", "--kernel", "3"], "input"),
    "zero input size": (["shape", "--input", "1,0,28", "--kernel", "3"], "--input"),
    "word input": (["shape", "--input", "one,28,28", "--kernel", "3"], "--input"),
    "zero kernel": (["shape", "--input", "1,28,28", "--kernel", "0"], "--kernel"),
    "kernel triple": (["shape", "--input", "1,28,28", "--kernel", "3,3,3"], "--kernel"),
    "zero stride": (["shape", "--input", "1,28,28", "--kernel", "3", "--stride", "0"],
                    "--stride"),
    "negative padding": (["shape", "--input", "1,28,28", "--kernel", "3", "--padding", "-1"],
                         "--padding"),
    "zero dilation": (["shape", "--input", "1,28,28", "--kernel", "3", "--dilation", "0"],
                      "--dilation"),
    "zero out channels": (["shape", "--input", "1,28,28", "--kernel", "3", "--out-channels",
                           "0"], "--out-channels"),
    "shape without kernel": (["shape", "--input", "1,28,28"], "--kernel"),
    "unknown model": (["summary", "--model", "resnet9000", "--input", "1,28,28"],
                      "resnet9000"),
    "summary without input": (["summary", "--model", "mlp"], "--input"),
    "input too small for the model": (["summary", "--model", "lenet5", "--input", "1,8,8"],
                                      "too small"),
    "input of the wrong rank": (["summary", "--model", "lenet5", "--input", "28,28"],
                                "input_shape"),
    "zero classes": (["summary", "--model", "mlp", "--input", "1,28,28", "--num-classes", "0"],
                     "--num-classes"),
}


@pytest.mark.parametrize("case", list(INSPECT_BAD))
def test_bad_shape_and_summary_input_is_one_line_and_exit_2(capsys, case):
    argv, needle = INSPECT_BAD[case]
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deepgrad: error: ") and needle in lines[0]


def test_diagnose_flags_a_saturated_sigmoid_network(capsys, tmp_path):
    code, out, err = _run(capsys, "diagnose", "--synthetic", "--depth", 6, "--width", 32,
                          "--activation", "sigmoid", "--init", "normal", "--batch", 64,
                          "--out", tmp_path)
    assert code == 0 and err == ""
    assert "saturated" in out
    assert (tmp_path / "report.json").is_file()
    assert (tmp_path / "activations.png").is_file()


def test_diagnose_on_real_mnist_with_he_init_has_no_flags(capsys, mnist_dir):
    code, out, _ = _run(capsys, "diagnose", "--data-dir", mnist_dir, "--depth", 4,
                        "--width", 64, "--activation", "relu", "--init", "he", "--batch", 128)
    assert code == 0 and "Linear" in out


@pytest.mark.parametrize("argv", [["diagnose", "--init", "bogus"],
                                  ["diagnose", "--depth", "0"],
                                  ["diagnose", "--data-dir", "/nonexistent/dir"]])
def test_diagnose_bad_input_is_one_line_exit_2(capsys, argv):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and err.startswith("deepgrad: error:") and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_summary_reports_test_metrics_confusion_matrix_and_diagnosis(capsys, tmp_path,
                                                                    synth_npz):
    out = tmp_path / "run"
    code, _, _ = _run(capsys, "train", "--dataset", synth_npz, "--model", "logreg", "--epochs", 2,
                      "--val-split", "0.2", "--out", out, "--quiet")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary["test_metrics"]
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (summary["dataset"]["num_classes"],) * 2
    assert cm.sum() == summary["dataset"]["test_samples"]
    assert math.isclose(np.trace(cm) / cm.sum(), summary["test_accuracy"], abs_tol=1e-9)
    assert math.isclose(metrics["accuracy"], summary["test_accuracy"], abs_tol=1e-9)
    assert 0.0 <= metrics["macro"]["f1"] <= 1.0
    assert summary["diagnosis"]["verdict"] in ("under-fitting", "over-fitting", "fine",
                                               "diverged")


@pytest.mark.parametrize("argv,lr", [
    (["--model", "lenet5"], 0.05),
    (["--model", "lenet5", "--lr", "0.2"], 0.2),
    (["--model", "mlp"], 0.1),
    (["--model", "lenet5", "--optimizer", "adam"], 1e-3),
])
def test_default_lr_depends_on_the_model_only_where_measured(argv, lr):
    """LeNet-5 with SGD defaults to lr 0.05 (training_options.MODEL_LR says why); an explicit
    --lr and every other model/optimizer keep the optimizer's default."""
    from deepgrad.cli_commands import training_options

    args = cli.build_parser().parse_args(["train", "--dataset", "mnist"] + argv)
    training_options.resolve(args, warn=lambda msg: None)
    assert args.lr == pytest.approx(lr)
