"""Shared by the CLI tests: a synthetic data set in the Keras npz layout and an in-process run
of the ``deepgrad`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepgrad.cli import main


def write_template_npz(path: Path, n_train: int, n_test: int, noise: float,
                       seed: int = 0) -> Path:
    """10 classes of 12x12 uint8 images, each a fixed random template plus N(0, noise^2) pixel
    noise; larger ``noise`` makes the problem harder (test accuracy below 1)."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, 12, 12))

    def make(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = templates[y] + rng.normal(0, noise, (n, 12, 12))
        return np.clip(x, 0, 255).astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = make(n_train), make(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def run_cli(capsys, *argv):
    """Run ``deepgrad ARGV`` in-process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
