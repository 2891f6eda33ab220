"""Tests of ``deepgrad search`` (deepgrad.cli_commands.search): usage errors and runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

import deepgrad.cli as cli
from deepgrad._cli_validation import UsageError
from deepgrad.cli_commands import search as search_cmd
from tests.mnist_data import MNIST_DIR

pytestmark = pytest.mark.default_dtype("float32")


def _wired() -> bool:
    sub = next(a for a in cli.build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    return "search" in sub.choices


def main(argv: list[str]) -> int:
    """``deepgrad.cli.main`` once ``search`` is wired in; until then the same error handling
    around a parser holding only this subcommand."""
    if _wired():
        return cli.main(argv)
    parser = cli._Parser(prog="deepgrad")
    search_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
        return args.handler(args)
    except UsageError as exc:
        print(f"deepgrad: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"deepgrad: error: {exc}", file=sys.stderr)
        return 1


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    """A 4-class problem of 8x8 uint8 images (one noisy template per class), Keras layout."""
    rng = np.random.default_rng(0)
    templates = rng.integers(0, 256, (4, 8, 8))

    def make(n):
        y = rng.integers(0, 4, n).astype(np.uint8)
        x = np.clip(templates[y] + rng.normal(0, 50, (n, 8, 8)), 0, 255).astype(np.uint8)
        return x, y

    (xtr, ytr), (xte, yte) = make(300), make(50)
    path = tmp_path_factory.mktemp("search") / "synth.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


BAD = [
    (["--val-split", "0"], "--val-split"),
    (["--val-split", "1.5"], "--val-split"),
    (["--lr-range", "0,1"], "--lr-range"),
    (["--lr-range", "1,0.1"], "LOW must be <= HIGH"),
    (["--lr-range", "a,b"], "--lr-range"),
    (["--lr-range", "1e-3,1e-2,1e-1"], "LOW,HIGH"),
    (["--optimizers", "sgd,lbfgs"], "lbfgs"),
    (["--batch-sizes", "0,32"], "--batch-sizes"),
    (["--widths", ""], "--widths"),
    (["--depths", "-1"], "--depths"),
    (["--dropout-range", "0,1"], "--dropout-range"),
    (["--weight-decay-range", "0,1e-3"], "log-uniform"),
    (["--trials", "0"], "--trials"),
    (["--epochs", "x"], "--epochs"),
    (["--backend", "grid"], "--backend"),
    (["--storage", "sqlite:///x.db"], "--storage: applies to --backend optuna"),
    (["--study-name", "s"], "--study-name"),
    (["--narrow", "--trials", "1"], "--narrow"),
    (["--dataset", "nosuch"], "unknown dataset"),
    (["--dataset", "missing/none.npz"], "not found"),
    (["--dataset", "NPZ", "--limit-train", "1"], "--limit-train"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_usage_exits_2_with_one_line(argv, message, npz, capsys, tmp_path):
    argv = [str(npz) if a == "NPZ" else a for a in argv]
    status = main(["search", "--out", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("deepgrad: error: ") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err


def test_optuna_backend_without_optuna_names_the_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` fail
    assert main(["search", "--backend", "optuna", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install optuna" in err and err.count("\n") == 1


def test_narrow_with_optuna_is_refused(capsys, tmp_path):
    assert main(["search", "--backend", "optuna", "--narrow", "--out", str(tmp_path)]) == 2
    assert "--narrow" in capsys.readouterr().err


def test_random_search_with_narrowing_writes_the_reports(npz, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["search", "--dataset", str(npz), "--trials", "3", "--epochs", "1",
            "--limit-train", "200", "--val-split", "0.25", "--seed", "2", "--out", str(out),
            "--lr-range", "1e-3,0.3", "--optimizers", "sgd,adam", "--batch-sizes", "16,32",
            "--widths", "8,16", "--depths", "1", "--dropout-range", "0,0.2", "--narrow"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "150 train / 50 validation" in printed and "round 2" in printed
    assert "best: trial" in printed
    for name in ("trials.csv", "results.md", "search.png"):
        assert (out / name).is_file()
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + 6
    first = (out / "trials.csv").read_text()
    assert main([*argv, "--out", str(tmp_path / "again"), "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # best + wrote

    def strip(text):  # the seconds column differs between runs
        i = rows[0].split(",").index("seconds")
        return [",".join(c for j, c in enumerate(r.split(",")) if j != i)
                for r in text.splitlines()]
    assert strip((tmp_path / "again" / "trials.csv").read_text()) == strip(first)


def test_optuna_backend_default_storage_is_in_the_run_dir(npz, tmp_path, capsys):
    pytest.importorskip("optuna")
    out = tmp_path / "run"
    argv = ["search", "--dataset", str(npz), "--backend", "optuna", "--trials", "2",
            "--epochs", "1", "--limit-train", "120", "--widths", "8", "--out", str(out),
            "--no-plot"]
    assert main(argv) == 0
    assert (out / "study.db").is_file() and not (out / "search.png").exists()
    assert main(argv) == 0  # a second worker adds to the same study
    assert len((out / "trials.csv").read_text().splitlines()) == 1 + 4
    assert main([*argv, "--storage", "nosuchdb://x"]) == 2
    assert "cannot open the Optuna study" in capsys.readouterr().err


@pytest.mark.skipif(MNIST_DIR is None, reason="the MNIST files are not on this machine")
def test_mnist_search(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["search", "--data-dir", str(MNIST_DIR), "--trials", "2", "--epochs", "1",
                 "--limit-train", "500", "--widths", "32", "--out", str(out)]) == 0
    assert "400 train / 100 validation" in capsys.readouterr().out
    assert (out / "results.md").is_file()
