"""Where the tests find the real MNIST IDX files: the one place that knows.

``$DEEPGRAD_DATA`` (CI sets it, and .ci/run refuses to start without the files), then
``../shared/datasets/mnist`` beside the repository (the project machines' layout).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def find_mnist_dir() -> Path | None:
    """The directory holding ``train-images-idx3-ubyte.gz`` and friends, or None."""
    candidates = [REPO.parent / "shared" / "datasets" / "mnist"]
    if os.environ.get("DEEPGRAD_DATA"):
        env = Path(os.environ["DEEPGRAD_DATA"])
        candidates[:0] = [env, env / "mnist"]
    return next((c for c in candidates if (c / "train-images-idx3-ubyte.gz").is_file()), None)


MNIST_DIR = find_mnist_dir()
