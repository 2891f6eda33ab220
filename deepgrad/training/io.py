"""Saving run outputs atomically: model weights as ``.npz`` and summaries as JSON.

Every file is written to a temporary file in the target directory and then moved over the
target with ``os.replace`` (atomic on POSIX and Windows), so an interrupted run leaves either
the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from deepgrad.nn import Module


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file atomically: ``write(f)`` fills a temporary file that then replaces ``path``.

    Args:
        path: the destination; its directory must exist.
        write: called with the open binary temporary file.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    # NOTE: not tempfile.mkstemp, which creates the file mode 0600; open(..., "xb") honours
    # the umask like any other file the user writes, and refuses to reuse an existing name.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically. NaN/inf are refused (not valid JSON)."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def save_weights(model: Module, path: str | os.PathLike) -> Path:
    """Save ``model.state_dict()`` to an ``.npz`` file (one array per key), atomically.

    Load it back with :func:`load_weights`, or by hand:
    ``model.load_state_dict(dict(np.load(path)))``.
    """
    arrays = {key: np.asarray(t.data) for key, t in model.state_dict().items()}
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load_weights(model: Module, path: str | os.PathLike) -> Module:
    """Load weights saved by :func:`save_weights` into ``model`` (strict keys and shapes).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not a readable ``.npz`` file (the file named), or its arrays do
            not fit the model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            state = {key: archive[key] for key in archive.files}
    except Exception as exc:  # NOTE: np.load raises many types for garbage input
        raise ValueError(f"{path}: not a readable weights .npz file "
                         f"({type(exc).__name__}: {exc})") from None
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: {exc.args[0] if exc.args else exc}") from None
    return model
