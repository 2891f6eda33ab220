"""Tests of the ``deepgrad`` command: ``main(argv)`` in process, and ``python -m deepgrad``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deepgrad.cli as cli
from deepgrad.cli import main
from deepgrad.data import DataLoader, TensorDataset, load_arrays, load_npz
from deepgrad.models import get_model
from deepgrad.training import evaluate, load_weights

# NOTE: the CLI runs on the library's default dtype, float32, as it does for users.
pytestmark = pytest.mark.default_dtype("float32")

ROOT = Path(__file__).resolve().parents[1]


def _mnist_dir() -> Path | None:
    candidates = [ROOT.parent / "shared" / "datasets" / "mnist",
                  Path("/work/shared/datasets/mnist")]
    if os.environ.get("DEEPGRAD_DATA"):
        env = Path(os.environ["DEEPGRAD_DATA"])
        candidates[:0] = [env, env / "mnist"]
    return next((c for c in candidates if (c / "train-images-idx3-ubyte.gz").is_file()), None)


MNIST = _mnist_dir()
needs_mnist = pytest.mark.skipif(MNIST is None, reason="the MNIST files are not on this machine")


@pytest.fixture(scope="module")
def synth_npz(tmp_path_factory) -> Path:
    """A 10-class problem of 12x12 uint8 images: one noisy template per class (Keras layout)."""
    rng = np.random.default_rng(0)
    templates = rng.integers(0, 256, (10, 12, 12))

    def make(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = templates[y] + rng.normal(0, 60, (n, 12, 12))
        return np.clip(x, 0, 255).astype(np.uint8), y

    x_train, y_train = make(1500)
    x_test, y_test = make(400)
    path = tmp_path_factory.mktemp("npz") / "synth.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


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


@pytest.mark.parametrize("schedule, lrs", [("cosine", [0.1, 0.075, 0.025]),
                                           ("constant", [0.1, 0.1, 0.1])])
def test_lr_schedule(capsys, tmp_path, synth_npz, schedule, lrs):
    code, _, err = _run(capsys, "train", "--dataset", synth_npz, "--epochs", 3, "--lr", 0.1,
                        "--lr-schedule", schedule, "--limit-train", 640, "--batch-size", 64,
                        "--quiet", "--out", tmp_path / "run")
    assert code == 0, err
    summary = _check_summary(tmp_path / "run", 3)
    assert summary["config"]["lr_schedule"] == schedule
    assert [h["lr"] for h in summary["history"]] == pytest.approx(lrs)


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
    assert err == "deepgrad: interrupted\n"
    assert not (tmp_path / "r" / "summary.json").exists()
